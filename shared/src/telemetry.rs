//! Logging: structured `tracing` events to stdout, in Lambda's JSON log format when
//! AWS_LAMBDA_LOG_FORMAT=JSON, at AWS_LAMBDA_LOG_LEVEL (or RUST_LOG, default INFO); colours
//! only on a terminal, so CloudWatch never sees escape codes. One level for everything: a
//! per-module filter would pull a regex engine into every function for nothing.

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::filter::LevelFilter;

/// Installs the subscriber once per process (later calls do nothing).
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| LevelFilter::from_str(l.trim()).ok())
        .unwrap_or(LevelFilter::INFO);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_writer(std::io::stdout);
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).try_init()
    } else {
        builder.with_ansi(std::io::stdout().is_terminal()).try_init()
    };
}
