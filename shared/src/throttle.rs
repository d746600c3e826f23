//! Brute-force throttling of logins, in PostgreSQL.
//!
//! Consecutive failures are counted per account (keyed by user id, so username, email and case
//! variants share one count) or, for an identifier that matches no account, per lower-cased
//! identifier (stored as a SHA-256, never in clear). After failure n ≥ 5 the key is refused
//! for 2^(n-5) s, at most 900 s, without the password being checked; refused attempts neither
//! count nor extend the wait. A success clears the count (see `users::record_login`); a count
//! with no failure for 15 minutes starts again from zero and its row is removed.
//!
//! Attempts on one key are serialised: each login runs in a transaction holding a
//! transaction-scoped advisory lock on its key from before the count is read until the outcome
//! is written. Concurrent attempts therefore see each other's results exactly as sequential ones
//! would: none slips past the limit, and concurrent successes never lock their own account out.
//! The lock goes with the transaction, so a crashed attempt cannot leave it held.

use tokio_postgres::types::Type;
use tokio_postgres::{Error, GenericClient};

/// Failures allowed before the lock starts.
pub const FREE_FAILURES: i32 = 5;
/// The longest lock, in seconds.
pub const MAX_LOCK_SECONDS: u64 = 900;

/// The lock after failure `n`, in seconds (0 below the threshold).
pub fn lock_seconds(failures: i32) -> u64 {
    if failures < FREE_FAILURES {
        0
    } else {
        let exp = (failures - FREE_FAILURES).min(10) as u32;
        (1u64 << exp).min(MAX_LOCK_SECONDS)
    }
}

/// Takes the attempt lock for the account `identifier` names (or, when it names none, for the
/// identifier itself) and returns its throttle key ('u:' || id, or 'i:' || sha256 of the
/// lower-cased identifier; safe to log). Must run inside a transaction: the lock is held until
/// it ends. Known and unknown identifiers cost the same statement.
pub async fn lock_key(c: &impl GenericClient, identifier: &str) -> Result<String, Error> {
    macro_rules! lock_sql {
        ($column:literal) => {
            concat!(
                "SELECT key, pg_advisory_xact_lock(hashtextextended(key, 0))::text FROM (SELECT coalesce(",
                "(SELECT 'u:' || id::text FROM users WHERE lower(",
                $column,
                ") = lower($1)), 'i:' || encode(sha256(convert_to(lower($1), 'UTF8')), 'hex')) AS key) k"
            )
        };
    }
    let sql =
        if crate::users::is_email(identifier) { lock_sql!("email") } else { lock_sql!("username") };
    c.query_typed_one(sql, &[(&identifier, Type::TEXT)]).await?.try_get(0)
}

/// Where a key stands, read under its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Attempts may go ahead; `failures` consecutive failures so far (expired counts are 0).
    Open {
        /// Consecutive failures so far.
        failures: i32,
    },
    /// Refused for `retry_after` more whole seconds (at least 1).
    Locked {
        /// Whole seconds until the next attempt is allowed.
        retry_after: u64,
    },
}

/// Reads the count of `key`. Call after [`lock_key`], in the same transaction.
pub async fn status(c: &impl GenericClient, key: &str) -> Result<Status, Error> {
    const SQL: &str = "
        SELECT CASE WHEN last_failure_at < now() - interval '15 minutes' THEN 0 ELSE failures END,
               extract(epoch FROM last_failure_at
                       + make_interval(secs => least(900, 2 ^ least(failures - 5, 10))) - now())::float8
          FROM login_throttle WHERE key = $1";
    let Some(row) = c.query_typed_opt(SQL, &[(&key, Type::TEXT)]).await? else {
        return Ok(Status::Open { failures: 0 });
    };
    let failures: i32 = row.try_get(0)?;
    let remaining: f64 = row.try_get(1)?;
    Ok(if failures >= FREE_FAILURES && remaining > 0.0 {
        Status::Locked { retry_after: (remaining.ceil() as u64).clamp(1, MAX_LOCK_SECONDS) }
    } else {
        Status::Open { failures }
    })
}

/// Counts a failure for `key` (starting again from one after 15 quiet minutes); returns the
/// new count. Call under the key's lock.
pub async fn record_failure(c: &impl GenericClient, key: &str) -> Result<i32, Error> {
    const SQL: &str = "
        INSERT INTO login_throttle AS t (key, failures, last_failure_at) VALUES ($1, 1, now())
        ON CONFLICT (key) DO UPDATE
           SET failures = CASE WHEN t.last_failure_at < now() - interval '15 minutes'
                               THEN 1 ELSE t.failures + 1 END,
               last_failure_at = now()
        RETURNING failures";
    c.query_typed_one(SQL, &[(&key, Type::TEXT)]).await?.try_get(0)
}

/// Removes up to 100 expired counts (no failure for 15 minutes). Runs on its own, outside any
/// attempt's transaction, and skips rows another transaction holds.
pub async fn purge_expired(c: &impl GenericClient) -> Result<u64, Error> {
    const SQL: &str = "
        DELETE FROM login_throttle
         WHERE key IN (SELECT key FROM login_throttle
                        WHERE last_failure_at < now() - interval '15 minutes'
                        ORDER BY last_failure_at LIMIT 100
                          FOR UPDATE SKIP LOCKED)";
    c.execute_typed(SQL, &[]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_cognito() {
        let got: Vec<u64> = (1..=16).map(lock_seconds).collect();
        assert_eq!(got, [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]);
        assert_eq!(lock_seconds(i32::MAX), 900);
    }
}
