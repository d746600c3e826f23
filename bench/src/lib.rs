//! Shared helpers for the benchmark programs: sample statistics and table rows.

/// Median, 10th and 90th percentile of a sample, in its unit.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Median.
    pub median: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Number of samples.
    pub n: usize,
}

/// Summarises a sample (sorted in place).
pub fn summarise(samples: &mut [f64]) -> Summary {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Summary { median: at(0.5), p10: at(0.1), p90: at(0.9), n: samples.len() }
}
