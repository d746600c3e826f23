//! Brute-force throttling of logins, in PostgreSQL.
//!
//! Consecutive failures are counted per account (keyed by user id, so username, email and case
//! variants share one count) or, for an identifier that matches no account, per lower-cased
//! identifier (its lookup key, see [`crate::identifier`], stored as a SHA-256, never in clear).
//! After failure n ≥ 5 the key is refused for 2^(n-5) s, at most 900 s, without the password
//! being checked; refused attempts neither count nor extend the wait. A success clears the
//! count (see `users::record_login`); a count with no failure for 15 minutes starts again from
//! zero and its row is removed. The numbers live here, as constants, and reach the SQL as
//! parameters.
//!
//! Attempts on one key are serialised: each login runs in a transaction holding a
//! transaction-scoped advisory lock on its key from before the count is read until the outcome
//! is written. Concurrent attempts therefore see each other's results exactly as sequential ones
//! would: none slips past the limit, and concurrent successes never lock their own account out.
//! The lock goes with the transaction, so a crashed attempt cannot leave it held.

use sha2::{Digest, Sha256};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Error, GenericClient};

use crate::identifier::Lookup;

/// Failures allowed before the lock starts.
pub const FREE_FAILURES: i32 = 5;
/// The longest lock, in seconds.
pub const MAX_LOCK_SECONDS: u64 = 900;
/// The doubling stops at 2^this seconds (1024 s, past the cap), so the power cannot overflow.
const MAX_EXPONENT: i32 = 10;
/// A count with no failure for this long has expired, in seconds (15 minutes).
pub const WINDOW_SECONDS: u64 = 15 * 60;
/// The throttle key of an account is this prefix and its user id.
pub const ACCOUNT_KEY_PREFIX: &str = "u:";
/// The throttle key of an identifier that names no account is this prefix and the SHA-256 (hex)
/// of its lookup key.
pub const IDENTIFIER_KEY_PREFIX: &str = "i:";

/// The lock after failure `n`, in seconds (0 below the threshold).
pub fn lock_seconds(failures: i32) -> u64 {
    if failures < FREE_FAILURES {
        0
    } else {
        let exp = (failures - FREE_FAILURES).min(MAX_EXPONENT) as u32;
        (1u64 << exp).min(MAX_LOCK_SECONDS)
    }
}

/// The key of an identifier that names no account: safe to log and store.
pub fn identifier_key(lookup: &Lookup) -> String {
    format!("{IDENTIFIER_KEY_PREFIX}{}", hex::encode(Sha256::digest(lookup.key().as_bytes())))
}

/// The policy as SQL parameters, in the order the statements below number them from `$2`:
/// free failures, longest lock (s), largest exponent, window (s).
fn policy_params() -> [(&'static (dyn ToSql + Sync), Type); 4] {
    const MAX_LOCK: f64 = MAX_LOCK_SECONDS as f64;
    const WINDOW: f64 = WINDOW_SECONDS as f64;
    [
        (&FREE_FAILURES, Type::INT4),
        (&MAX_LOCK, Type::FLOAT8),
        (&MAX_EXPONENT, Type::INT4),
        (&WINDOW, Type::FLOAT8),
    ]
}

/// `params` for a statement about one `key` ($1) under the policy ($2..$5).
fn with_policy(key: &String) -> [(&(dyn ToSql + Sync), Type); 5] {
    let [a, b, c, d] = policy_params();
    [(key, Type::TEXT), a, b, c, d]
}

/// Takes the attempt lock for the account `identifier` names (or, when it names none, for the
/// identifier itself) and returns its throttle key ([`ACCOUNT_KEY_PREFIX`] and the user id, or
/// [`identifier_key`]; safe to log). Must run inside a transaction: the lock is held until it
/// ends. Known and unknown identifiers cost the same statement.
pub async fn lock_key(c: &impl GenericClient, identifier: &str) -> Result<String, Error> {
    const SQL: &str = "
        SELECT key, pg_advisory_xact_lock(hashtextextended(key, 0))::text FROM (
            SELECT coalesce((SELECT $3 || id::text FROM users
                              WHERE username_key = $1 OR email_key = $2), $4) AS key) k";
    let lookup = Lookup::of(identifier);
    let (username_key, email_key) = lookup.params();
    let unknown = identifier_key(&lookup);
    c.query_typed_one(
        SQL,
        &[
            (&username_key, Type::TEXT),
            (&email_key, Type::TEXT),
            (&ACCOUNT_KEY_PREFIX, Type::TEXT),
            (&unknown, Type::TEXT),
        ],
    )
    .await?
    .try_get(0)
}

/// Takes the attempt lock of the account `user_id` (the same lock a login on that account
/// takes) and returns its key. Must run inside a transaction.
pub async fn lock_account(c: &impl GenericClient, user_id: uuid::Uuid) -> Result<String, Error> {
    let key = format!("{ACCOUNT_KEY_PREFIX}{user_id}");
    c.query_typed_one(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::text",
        &[(&key, Type::TEXT)],
    )
    .await?;
    Ok(key)
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
        SELECT CASE WHEN last_failure_at < now() - make_interval(secs => $5) THEN 0
                    ELSE failures END,
               extract(epoch FROM last_failure_at
                       + make_interval(secs => least($3, 2 ^ least(failures - $2, $4)))
                       - now())::float8
          FROM login_throttle WHERE key = $1";
    let key = key.to_owned();
    let Some(row) = c.query_typed_opt(SQL, &with_policy(&key)).await? else {
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

/// Counts a failure for `key` (starting again from one after [`WINDOW_SECONDS`] without
/// one); returns the new count. Call under the key's lock. The failure is dated when it is
/// recorded (`clock_timestamp()`), not when its transaction began (`now()`): the lock that
/// follows it runs from the end of the password check, so a check that took a while (a costly
/// stored hash, one cut off by its deadline) does not use up the lock before it starts.
pub async fn record_failure(c: &impl GenericClient, key: &str) -> Result<i32, Error> {
    const SQL: &str = "
        INSERT INTO login_throttle AS t (key, failures, last_failure_at)
        VALUES ($1, 1, clock_timestamp())
        ON CONFLICT (key) DO UPDATE
           SET failures = CASE WHEN t.last_failure_at < now() - make_interval(secs => $2)
                               THEN 1 ELSE t.failures + 1 END,
               last_failure_at = clock_timestamp()
        RETURNING failures";
    const WINDOW: f64 = WINDOW_SECONDS as f64;
    c.query_typed_one(SQL, &[(&key, Type::TEXT), (&WINDOW, Type::FLOAT8)]).await?.try_get(0)
}

/// What a password check run under a key's lock came to (see [`check_password`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked<T> {
    /// The key is locked for `retry_after` more whole seconds: nothing was checked, and the
    /// refusal neither counts nor extends the wait.
    Locked {
        /// Whole seconds until the next attempt is allowed (at least 1).
        retry_after: u64,
    },
    /// The check missed its deadline (its wait for a hashing slot included): count it as a
    /// wrong password, failing closed.
    Cut,
    /// The check ran; its result.
    Done(T),
}

/// The one sequence every route that checks a password follows, login and the password change
/// alike: with `key` locked in this transaction ([`lock_key`] or [`lock_account`]), read where
/// the key stands; if it is open, run `work` (the password check, and the hash that may follow
/// it) through [`crate::hashing::within_deadline`] with `slots` and `deadline`. The caller then
/// counts a failure with [`record_failure`] (for [`Checked::Cut`] too) in the same transaction,
/// so the lock is held from reading the count to writing the outcome.
///
/// # Errors
/// The database's, from reading the count.
pub async fn check_password<T, F>(
    c: &impl GenericClient,
    key: &str,
    slots: &std::sync::Arc<tokio::sync::Semaphore>,
    deadline: std::time::Duration,
    work: F,
) -> Result<Checked<T>, Error>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if let Status::Locked { retry_after } = status(c, key).await? {
        return Ok(Checked::Locked { retry_after });
    }
    Ok(match crate::hashing::within_deadline(slots, deadline, work).await {
        Some(done) => Checked::Done(done),
        None => Checked::Cut,
    })
}

/// Removes up to [`PURGE_BATCH`] expired counts (no failure for [`WINDOW_SECONDS`]). Runs on
/// its own, outside any attempt's transaction, and skips rows another transaction holds.
pub async fn purge_expired(c: &impl GenericClient) -> Result<u64, Error> {
    const SQL: &str = "
        DELETE FROM login_throttle
         WHERE key IN (SELECT key FROM login_throttle
                        WHERE last_failure_at < now() - make_interval(secs => $1)
                        ORDER BY last_failure_at LIMIT $2
                          FOR UPDATE SKIP LOCKED)";
    const WINDOW: f64 = WINDOW_SECONDS as f64;
    c.execute_typed(SQL, &[(&WINDOW, Type::FLOAT8), (&PURGE_BATCH, Type::INT8)]).await
}

/// How many expired rows one failed login removes at most.
pub const PURGE_BATCH: i64 = 100;

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
