//! Brute-force throttling of logins, in PostgreSQL.
//!
//! Consecutive failures are counted per account (keyed by user id, so username, email and case
//! variants share one count) or, for an identifier that matches no account, per lower-cased
//! identifier (stored as a SHA-256, never in clear). After failure n ≥ 5 the key is refused
//! for 2^(n-5) s, at most 900 s, without the password being checked; refused attempts neither
//! count nor extend the wait. A success clears the count (see `users::record_login`); a count
//! with no failure for 15 minutes starts again from zero and its row is removed.
//!
//! Each attempt is counted as a failure *before* the password is checked, in one atomic
//! upsert, so concurrent attempts cannot slip past the limit: the fifth one to arrive sets the
//! lock and the sixth is refused even while the others are still hashing.

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Error};
use uuid::Uuid;

/// Failures allowed before the lock starts.
pub const FREE_FAILURES: i32 = 5;
/// The longest lock, in seconds.
pub const MAX_LOCK_SECONDS: u64 = 900;

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Go ahead; this attempt is already counted as failure number `failures`.
    Open {
        /// The throttle key ('u:' || id, or 'i:' || sha256 of the identifier).
        key: String,
        /// The count including this attempt.
        failures: i32,
    },
    /// Refused for `retry_after` more seconds.
    Locked {
        /// The throttle key.
        key: String,
        /// Whole seconds until the next attempt is allowed (at least 1).
        retry_after: u64,
    },
}

impl Gate {
    /// The throttle key, safe to log (it holds no identifier in clear).
    pub fn key(&self) -> &str {
        match self {
            Self::Open { key, .. } | Self::Locked { key, .. } => key,
        }
    }
}

/// The lock after failure `n`, in seconds (0 below the threshold).
pub fn lock_seconds(failures: i32) -> u64 {
    if failures < FREE_FAILURES {
        0
    } else {
        let exp = (failures - FREE_FAILURES).min(10) as u32;
        (1u64 << exp).min(MAX_LOCK_SECONDS)
    }
}

/// Counts an attempt for the account `user` (or, when `None`, for `identifier`) unless its key
/// is locked. Also removes up to 100 expired rows of other keys.
pub async fn begin_attempt(c: &Client, user: Option<Uuid>, identifier: &str) -> Result<Gate, Error> {
    const SQL: &str = "
        WITH k AS (
            SELECT CASE WHEN $1::uuid IS NULL
                        THEN 'i:' || encode(sha256(convert_to(lower($2), 'UTF8')), 'hex')
                        ELSE 'u:' || $1::uuid::text END AS key
        ), attempt AS (
            INSERT INTO login_throttle AS t (key, failures, last_failure_at)
            SELECT key, 1, now() FROM k
            ON CONFLICT (key) DO UPDATE
               SET failures = CASE WHEN t.last_failure_at < now() - interval '15 minutes'
                                   THEN 1 ELSE t.failures + 1 END,
                   last_failure_at = now()
             WHERE t.failures < 5
                OR t.last_failure_at
                   + make_interval(secs => least(900, 2 ^ least(t.failures - 5, 10))) <= now()
            RETURNING failures
        ), purged AS (
            DELETE FROM login_throttle
             WHERE key IN (SELECT key FROM login_throttle
                            WHERE last_failure_at < now() - interval '15 minutes'
                              AND key <> (SELECT key FROM k)
                            ORDER BY last_failure_at LIMIT 100
                              FOR UPDATE SKIP LOCKED)
        )
        SELECT k.key,
               (SELECT failures FROM attempt),
               (SELECT greatest(1, ceil(extract(epoch FROM t.last_failure_at
                        + make_interval(secs => least(900, 2 ^ least(t.failures - 5, 10)))
                        - now())))::bigint
                  FROM login_throttle t WHERE t.key = k.key)
          FROM k";
    let row = c.query_typed_one(SQL, &[(&user, Type::UUID), (&identifier, Type::TEXT)]).await?;
    let key: String = row.try_get(0)?;
    let failures: Option<i32> = row.try_get(1)?;
    let wait: Option<i64> = row.try_get(2)?;
    Ok(match failures {
        Some(failures) => Gate::Open { key, failures },
        None => Gate::Locked { key, retry_after: wait.unwrap_or(1).clamp(1, 900) as u64 },
    })
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
