//! Failed logins that take the same time whatever the account's stored hash is.
//!
//! An unknown identifier costs one current-policy hash (PBKDF2-SHA256). A wrong password
//! against a hash imported from elsewhere costs that format's own function besides (bcrypt at
//! cost 12 is about six policy hashes), so without more, a failure's time would tell which
//! identifiers name dormant imported accounts. So every failure (unknown identifier, wrong
//! password, disabled or otherwise refused account) answers no sooner than a floor: the time
//! of a failed verification against the costliest kind of hash present, measured as a ratio
//! to one policy hash and scaled by this container's own policy-hash time (so it follows the
//! CPU the container has, and its load).
//!
//! - The ratio of each *cost class* (a format and its work factors, [`password::cost_class`])
//!   present among the accounts is measured by `auth-admin migrate` and `auth-admin import`
//!   ([`calibrate`]) and kept in the `password_costs` table with the policy it was measured
//!   under; the floor's ratio is the largest, rescaled to the function's PBKDF2_ITERATIONS.
//!   Hashes of the policy's own kind have no class: they cost one policy hash by construction.
//! - The wait is spent asleep, after the attempt's transaction, holding no lock, connection or
//!   core: the CPU spent is never more than the verification's own. The Lambda bill is another
//!   matter: a failure is billed the floor (ratio × one policy hash) instead of its own time.
//! - A failure also costs one policy hash per try, as before: a password not in NFKC is tried
//!   twice, so its floor is twice as long, for every account alike (that depends only on the
//!   typed text).
//!
//! Successes are not delayed: whoever succeeds knows the account exists.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Error, GenericClient};

use crate::password::{self, Policy};

/// How long the floor's ratio, read from `password_costs`, is used before it is read again.
pub const RATIO_TTL: Duration = Duration::from_secs(60);

/// Weight of a new measurement of one policy hash in this container's running estimate.
const EWMA_WEIGHT: f64 = 0.25;

/// This container's floor: the ratio read from the database and its own estimate of one
/// policy hash.
#[derive(Debug, Default)]
pub struct FailureFloor {
    /// The estimate of one policy hash, nanoseconds (0: none yet).
    policy_ns: AtomicU64,
    /// The largest ratio in `password_costs`, and when it was read.
    ratio: Mutex<Option<(f64, Instant)>>,
}

impl FailureFloor {
    /// The ratio, if it was read within [`RATIO_TTL`].
    pub fn cached_ratio(&self) -> Option<f64> {
        let cached = *self.ratio.lock().unwrap_or_else(|p| p.into_inner());
        cached.filter(|(_, at)| at.elapsed() < RATIO_TTL).map(|(r, _)| r)
    }

    /// Reads the ratio under `policy` through `c` when the cached one is stale; returns it (1
    /// when no class is recorded: every hash is of the policy's kind).
    pub async fn ratio(&self, c: &impl GenericClient, policy: Policy) -> Result<f64, Error> {
        if let Some(r) = self.cached_ratio() {
            return Ok(r);
        }
        let r = max_ratio(c, policy).await?;
        *self.ratio.lock().unwrap_or_else(|p| p.into_inner()) = Some((r, Instant::now()));
        Ok(r)
    }

    /// Whether this container has measured a policy hash yet.
    pub fn has_policy_estimate(&self) -> bool {
        self.policy_ns.load(Ordering::Relaxed) > 0
    }

    /// Verifies `password` against `stored` (or, for an identifier that names no account, makes
    /// [`password::verify_dummy`]'s work) as login does, and returns the verdict and the time it
    /// took, keeping this container's policy-hash estimate up to date on the way: one hash is
    /// timed the first time, then every verification of the policy's own kind is, when it is
    /// known to have made every try (a mismatch, or a single try: a match may stop at the
    /// first, and a success typed out of NFKC must not halve the estimate). Blocking: run it on
    /// a blocking thread.
    pub fn timed_verify(
        &self,
        password: &str,
        stored: Option<&str>,
        policy: Policy,
    ) -> (password::Verdict, Duration) {
        if !self.has_policy_estimate() {
            let t = Instant::now();
            password::burn("the time of one policy hash", policy.iterations);
            self.observe_policy_hash(t.elapsed());
        }
        let started = Instant::now();
        let verdict = match stored {
            Some(hash) => password::verify(password, hash, policy),
            None => password::verify_dummy(password, policy),
        };
        let took = started.elapsed();
        let tries = tries(password);
        let all_tries = tries == 1 || verdict == password::Verdict::Mismatch;
        if all_tries && stored.is_none_or(|h| password::cost_class(h, policy).is_none()) {
            self.observe_policy_hash(took / tries);
        }
        (verdict, took)
    }

    /// Takes in one measured policy hash.
    pub fn observe_policy_hash(&self, took: Duration) {
        let new = took.as_nanos().min(u128::from(u64::MAX)) as f64;
        let old = self.policy_ns.load(Ordering::Relaxed) as f64;
        let next = if old == 0.0 { new } else { old + EWMA_WEIGHT * (new - old) };
        self.policy_ns.store(next as u64, Ordering::Relaxed);
    }

    /// The floor of a failure whose password takes `tries` verifications (1, or 2 when not in
    /// NFKC), under `ratio`: ratio × tries × one policy hash.
    pub fn floor(&self, ratio: f64, tries: u32) -> Duration {
        let ns = self.policy_ns.load(Ordering::Relaxed) as f64;
        Duration::from_nanos((ns * ratio.max(1.0) * f64::from(tries)) as u64)
    }
}

/// How many verifications a typed password takes: 2 when it is not in NFKC (the normalised
/// text, then the text as typed: see [`password::verify()`]), else 1.
pub fn tries(password: &str) -> u32 {
    match password::normalize(password) {
        std::borrow::Cow::Owned(_) => 2,
        std::borrow::Cow::Borrowed(_) => 1,
    }
}

/// The ratio of a class measured against a policy hash of `then` iterations, under a policy
/// of `now`: the class's own part (ratio − 1 policy hashes) scales by then/now, the policy
/// hash that every failure adds stays one. In SQL, for the columns of `password_costs`.
const RESCALED: &str = "1 + (ratio - 1) * policy_iterations / $1::float8";

/// The largest ratio recorded, rescaled to `policy`, or 1.
pub async fn max_ratio(c: &impl GenericClient, policy: Policy) -> Result<f64, Error> {
    let now = f64::from(policy.iterations);
    let sql = format!("SELECT coalesce(max({RESCALED}), 1)::float8 FROM password_costs");
    c.query_typed_one(&sql, &[(&now, Type::FLOAT8)]).await?.try_get(0)
}

/// What [`calibrate`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// Each cost class present and its ratio, costliest first.
    pub classes: Vec<(String, f64)>,
}

/// Measures the cost class of every hash among the accounts that has no ratio recorded yet,
/// and forgets the classes no account has any more; returns every class's ratio under
/// `policy`. Reads every account's hash once
/// (streamed); measures one hash of each new class (three tries each, the fastest kept: a busy
/// core only makes a try slower). Runs the hashes on this thread: call it from a command, not
/// a request.
pub async fn calibrate(client: &mut Client, policy: Policy) -> Result<Calibration, Error> {
    use futures_util::TryStreamExt;
    let mut samples: std::collections::BTreeMap<String, String> = Default::default();
    {
        let rows =
            client.query_raw("SELECT password_hash FROM users", std::iter::empty::<&str>()).await?;
        futures_util::pin_mut!(rows);
        while let Some(row) = rows.try_next().await? {
            let stored: &str = row.try_get(0)?;
            if let Some(class) = password::cost_class(stored, policy)
                && !samples.contains_key(&class)
            {
                samples.insert(class, stored.to_owned());
            }
        }
    }
    let known: Vec<String> = client
        .query_typed("SELECT class FROM password_costs", &[])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let gone: Vec<&String> = known.iter().filter(|k| !samples.contains_key(*k)).collect();
    for class in gone {
        client
            .execute_typed("DELETE FROM password_costs WHERE class = $1", &[(class, Type::TEXT)])
            .await?;
    }
    let iterations = i32::try_from(policy.iterations).unwrap_or(i32::MAX);
    for (class, stored) in &samples {
        if known.contains(class) {
            continue;
        }
        let ratio = password::failure_ratio(stored, policy);
        client
            .execute_typed(
                "INSERT INTO password_costs (class, ratio, policy_iterations) VALUES ($1, $2, $3)
                 ON CONFLICT (class) DO UPDATE
                    SET ratio = $2, policy_iterations = $3, measured_at = now()",
                &[(class, Type::TEXT), (&ratio, Type::FLOAT8), (&iterations, Type::INT4)],
            )
            .await?;
    }
    let now = f64::from(policy.iterations);
    let sql = format!("SELECT class, ({RESCALED})::float8 FROM password_costs");
    let mut classes: Vec<(String, f64)> = client
        .query_typed(&sql, &[(&now, Type::FLOAT8)])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, Error>>()?;
    classes.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(Calibration { classes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_scales_the_policy_hash() {
        let f = FailureFloor::default();
        assert_eq!(f.floor(5.0, 1), Duration::ZERO, "no estimate yet");
        f.observe_policy_hash(Duration::from_millis(40));
        assert!(f.has_policy_estimate());
        assert_eq!(f.floor(5.0, 1), Duration::from_millis(200));
        assert_eq!(f.floor(5.0, 2), Duration::from_millis(400));
        assert_eq!(f.floor(0.5, 1), Duration::from_millis(40), "never below one hash a try");
        f.observe_policy_hash(Duration::from_millis(80));
        assert_eq!(f.floor(1.0, 1), Duration::from_millis(50));
    }
}
