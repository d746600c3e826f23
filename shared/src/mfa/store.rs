//! Every SQL statement about second factors: the TOTP factors, the recovery codes, the
//! mfa_tokens of logins waiting for their second step, and the daily count of wrong codes.
//! What each caller locks, and in what order, is in the module docs of [`crate::mfa`].

use tokio_postgres::types::Type;
use tokio_postgres::{Error, GenericClient};
use uuid::Uuid;

/// A TOTP factor as stored.
#[derive(Debug, Clone)]
pub struct Factor {
    /// The sealed secret (see [`super::sealed`]).
    pub sealed: Vec<u8>,
    /// The data key version that sealed it.
    pub key_version: String,
    /// The highest step a code was accepted for.
    pub last_step: u64,
}

fn factor(row: &tokio_postgres::Row) -> Result<Factor, Error> {
    let last: i64 = row.try_get(2)?;
    Ok(Factor {
        sealed: row.try_get(0)?,
        key_version: row.try_get(1)?,
        last_step: last.max(0) as u64,
    })
}

/// Whether the account has an active (confirmed) TOTP factor.
pub async fn has_active(c: &impl GenericClient, user: Uuid) -> Result<bool, Error> {
    const SQL: &str =
        "SELECT EXISTS (SELECT 1 FROM totp_factors WHERE user_id = $1 AND NOT pending)";
    c.query_typed_one(SQL, &[(&user, Type::UUID)]).await?.try_get(0)
}

/// What `GET /mfa` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// An active TOTP factor.
    pub enabled: bool,
    /// A pending one, enrolled and not yet confirmed.
    pub pending: bool,
    /// When the active one was confirmed.
    pub confirmed_at: Option<time::OffsetDateTime>,
    /// Unused recovery codes.
    pub recovery_codes_remaining: i64,
    /// Registered passkeys.
    pub passkeys: i64,
}

/// Reads the account's factors, one round trip.
pub async fn status(c: &impl GenericClient, user: Uuid) -> Result<Status, Error> {
    const SQL: &str = "
        SELECT EXISTS (SELECT 1 FROM totp_factors WHERE user_id = $1 AND NOT pending),
               EXISTS (SELECT 1 FROM totp_factors WHERE user_id = $1 AND pending),
               (SELECT confirmed_at FROM totp_factors WHERE user_id = $1 AND NOT pending),
               (SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL),
               (SELECT count(*) FROM passkeys WHERE user_id = $1)";
    let r = c.query_typed_one(SQL, &[(&user, Type::UUID)]).await?;
    Ok(Status {
        enabled: r.try_get(0)?,
        pending: r.try_get(1)?,
        confirmed_at: r.try_get(2)?,
        recovery_codes_remaining: r.try_get(3)?,
        passkeys: r.try_get(4)?,
    })
}

/// Stores a pending factor, replacing an earlier pending one (the active one, if any, stays
/// until the new one is confirmed).
pub async fn put_pending(
    c: &impl GenericClient,
    user: Uuid,
    sealed: &[u8],
    key_version: &str,
) -> Result<(), Error> {
    const SQL: &str = "
        INSERT INTO totp_factors (user_id, pending, secret, key_version) VALUES ($1, true, $2, $3)
        ON CONFLICT (user_id, pending) DO UPDATE
           SET secret = excluded.secret, key_version = excluded.key_version, last_step = 0,
               created_at = now()";
    c.execute_typed(
        SQL,
        &[(&user, Type::UUID), (&sealed, Type::BYTEA), (&key_version, Type::TEXT)],
    )
    .await?;
    Ok(())
}

/// Reads the active (`pending` false) or pending factor and takes its row lock until the
/// transaction ends: two checks of one factor run one after the other, so a step is used once.
pub async fn lock_factor(
    c: &impl GenericClient,
    user: Uuid,
    pending: bool,
) -> Result<Option<Factor>, Error> {
    const SQL: &str = "SELECT secret, key_version, last_step FROM totp_factors \
                       WHERE user_id = $1 AND pending = $2 FOR UPDATE";
    c.query_typed_opt(SQL, &[(&user, Type::UUID), (&pending, Type::BOOL)])
        .await?
        .map(|r| factor(&r))
        .transpose()
}

/// Records `step` as the active factor's last used step.
pub async fn use_step(c: &impl GenericClient, user: Uuid, step: u64) -> Result<(), Error> {
    let step = step as i64;
    c.execute_typed(
        "UPDATE totp_factors SET last_step = $2 WHERE user_id = $1 AND NOT pending",
        &[(&user, Type::UUID), (&step, Type::INT8)],
    )
    .await?;
    Ok(())
}

/// Makes the pending factor the active one (the earlier active one, if any, is gone), with
/// `step` used, and removes the account's waiting mfa_tokens (an enrolment token must not
/// outlive the enrolment; a login token was for the factor this one replaces). Call with the
/// pending row locked ([`lock_factor`]).
pub async fn activate(c: &impl GenericClient, user: Uuid, step: u64) -> Result<(), Error> {
    let step = step as i64;
    c.execute_typed(
        "WITH tokens AS (DELETE FROM mfa_tokens WHERE user_id = $1) \
         DELETE FROM totp_factors WHERE user_id = $1 AND NOT pending",
        &[(&user, Type::UUID)],
    )
    .await?;
    c.execute_typed(
        "UPDATE totp_factors SET pending = false, confirmed_at = now(), last_step = $2 \
         WHERE user_id = $1 AND pending",
        &[(&user, Type::UUID), (&step, Type::INT8)],
    )
    .await?;
    Ok(())
}

/// Removes every factor of the account, its recovery codes, its waiting mfa_tokens and its
/// count of wrong codes; returns whether there was an active factor.
pub async fn remove_all(c: &impl GenericClient, user: Uuid) -> Result<bool, Error> {
    const SQL: &str = "
        WITH factors AS (DELETE FROM totp_factors WHERE user_id = $1 RETURNING pending),
             codes AS (DELETE FROM recovery_codes WHERE user_id = $1),
             steps AS (DELETE FROM mfa_tokens WHERE user_id = $1),
             failures AS (DELETE FROM mfa_failures WHERE user_id = $1)
        SELECT EXISTS (SELECT 1 FROM factors WHERE NOT pending)";
    c.query_typed_one(SQL, &[(&user, Type::UUID)]).await?.try_get(0)
}

/// Replaces the account's recovery codes with `hashes`, made under `key_version`.
pub async fn replace_codes(
    c: &impl GenericClient,
    user: Uuid,
    key_version: &str,
    hashes: &[[u8; 32]],
) -> Result<(), Error> {
    const SQL: &str = "
        WITH gone AS (DELETE FROM recovery_codes WHERE user_id = $1)
        INSERT INTO recovery_codes (user_id, code_hash, key_version)
        SELECT $1, h, $2 FROM unnest($3::bytea[]) AS h";
    let hashes: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
    c.execute_typed(
        SQL,
        &[(&user, Type::UUID), (&key_version, Type::TEXT), (&hashes, Type::BYTEA_ARRAY)],
    )
    .await?;
    Ok(())
}

/// The account's unused recovery codes (hash, key version), their rows locked until the
/// transaction ends: one code used twice at once is used once.
pub async fn lock_codes(
    c: &impl GenericClient,
    user: Uuid,
) -> Result<Vec<(Vec<u8>, String)>, Error> {
    const SQL: &str = "SELECT code_hash, key_version FROM recovery_codes \
                       WHERE user_id = $1 AND used_at IS NULL FOR UPDATE";
    c.query_typed(SQL, &[(&user, Type::UUID)])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Marks one recovery code used.
pub async fn use_code(c: &impl GenericClient, user: Uuid, hash: &[u8]) -> Result<(), Error> {
    c.execute_typed(
        "UPDATE recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2",
        &[(&user, Type::UUID), (&hash, Type::BYTEA)],
    )
    .await?;
    Ok(())
}

/// Stores a new mfa_token's hash for `user` and `purpose` (`login` or `enroll`), living
/// `ttl_seconds`.
pub async fn new_token(
    c: &impl GenericClient,
    hash: &[u8; 32],
    user: Uuid,
    purpose: &str,
    ttl_seconds: u64,
) -> Result<(), Error> {
    const SQL: &str = "INSERT INTO mfa_tokens (token_hash, user_id, purpose, expires_at) \
                       VALUES ($1, $2, $3, now() + make_interval(secs => $4))";
    let ttl = ttl_seconds as f64;
    c.execute_typed(
        SQL,
        &[
            (&&hash[..], Type::BYTEA),
            (&user, Type::UUID),
            (&purpose, Type::TEXT),
            (&ttl, Type::FLOAT8),
        ],
    )
    .await?;
    Ok(())
}

/// Share-locks the active account `user`'s row (until the transaction ends) if its password
/// hash is still `hash` (the one a login just checked); false when it changed or the account is
/// gone or disabled. A login's mfa_token is stored only under this lock, so a password change
/// or reset (which updates the row, then removes the account's mfa_tokens) either comes first
/// and refuses the login, or comes after and removes the token.
pub async fn share_lock_with_hash(
    c: &impl GenericClient,
    user: Uuid,
    hash: &str,
) -> Result<bool, Error> {
    const SQL: &str = "SELECT 1 FROM users WHERE id = $1 AND password_hash = $2 \
                       AND disabled_at IS NULL FOR SHARE";
    Ok(c.query_typed_opt(SQL, &[(&user, Type::UUID), (&hash, Type::TEXT)]).await?.is_some())
}

/// Removes up to 100 expired mfa_tokens (the second steps never taken); skips rows another
/// transaction holds. Nothing counts on it running: an expired token is refused whether its row
/// is there or not.
pub async fn purge_expired_tokens(c: &impl GenericClient) -> Result<u64, Error> {
    const SQL: &str = "
        DELETE FROM mfa_tokens WHERE token_hash IN (
            SELECT token_hash FROM mfa_tokens WHERE expires_at < now()
             ORDER BY expires_at LIMIT 100 FOR UPDATE SKIP LOCKED)";
    c.execute_typed(SQL, &[]).await
}

/// The account an mfa_token of `purpose` names, whatever its state (the first, lock-free read
/// of the second step: the account's row is locked before the token's).
pub async fn token_owner(
    c: &impl GenericClient,
    hash: &[u8; 32],
    purpose: &str,
) -> Result<Option<Uuid>, Error> {
    const SQL: &str = "SELECT user_id FROM mfa_tokens WHERE token_hash = $1 AND purpose = $2";
    c.query_typed_opt(SQL, &[(&&hash[..], Type::BYTEA), (&purpose, Type::TEXT)])
        .await?
        .map(|r| r.try_get(0))
        .transpose()
}

/// The account a live mfa_token of `purpose` names (not expired, fewer than
/// [`super::MAX_TOKEN_FAILURES`] wrong codes, the account active), without a lock.
pub async fn live_token_owner(
    c: &impl GenericClient,
    hash: &[u8; 32],
    purpose: &str,
) -> Result<Option<Uuid>, Error> {
    const SQL: &str = "SELECT t.user_id FROM mfa_tokens t JOIN users u ON u.id = t.user_id \
                       WHERE t.token_hash = $1 AND t.purpose = $2 AND t.expires_at > now() \
                       AND t.failures < $3 AND u.disabled_at IS NULL";
    let max = super::MAX_TOKEN_FAILURES;
    c.query_typed_opt(SQL, &[(&&hash[..], Type::BYTEA), (&purpose, Type::TEXT), (&max, Type::INT4)])
        .await?
        .map(|r| r.try_get(0))
        .transpose()
}

/// The username of the active account `user` (the label of its otpauth URI).
pub async fn username(c: &impl GenericClient, user: Uuid) -> Result<Option<String>, Error> {
    const SQL: &str = "SELECT username FROM users WHERE id = $1 AND disabled_at IS NULL";
    c.query_typed_opt(SQL, &[(&user, Type::UUID)]).await?.map(|r| r.try_get(0)).transpose()
}

/// Locks the live mfa_token (not expired, fewer than [`super::MAX_TOKEN_FAILURES`] wrong codes)
/// until the transaction ends; `None` when it is gone or dead. Call after the account's row
/// lock ([`lock_account_row`]).
pub async fn lock_token(
    c: &impl GenericClient,
    hash: &[u8; 32],
    purpose: &str,
) -> Result<bool, Error> {
    const SQL: &str = "SELECT 1 FROM mfa_tokens WHERE token_hash = $1 AND purpose = $2 \
                       AND expires_at > now() AND failures < $3 FOR UPDATE";
    let max = super::MAX_TOKEN_FAILURES;
    Ok(c.query_typed_opt(
        SQL,
        &[(&&hash[..], Type::BYTEA), (&purpose, Type::TEXT), (&max, Type::INT4)],
    )
    .await?
    .is_some())
}

/// Counts a wrong code against the mfa_token.
pub async fn fail_token(c: &impl GenericClient, hash: &[u8; 32]) -> Result<(), Error> {
    c.execute_typed(
        "UPDATE mfa_tokens SET failures = failures + 1 WHERE token_hash = $1",
        &[(&&hash[..], Type::BYTEA)],
    )
    .await?;
    Ok(())
}

/// Uses up the mfa_token, and removes the account's expired ones.
pub async fn consume_token(
    c: &impl GenericClient,
    hash: &[u8; 32],
    user: Uuid,
) -> Result<(), Error> {
    c.execute_typed(
        "DELETE FROM mfa_tokens WHERE token_hash = $1 OR (user_id = $2 AND expires_at < now())",
        &[(&&hash[..], Type::BYTEA), (&user, Type::UUID)],
    )
    .await?;
    Ok(())
}

/// Takes the account's row lock in share mode until the transaction ends (the second step's
/// first lock): a password change, which updates the row, waits for the step to finish or
/// the step waits for the change (and then finds its mfa_token gone). Returns whether the
/// account exists and is active, and its username.
pub async fn lock_account_row(c: &impl GenericClient, user: Uuid) -> Result<Option<String>, Error> {
    const SQL: &str = "SELECT username FROM users WHERE id = $1 AND disabled_at IS NULL FOR SHARE";
    c.query_typed_opt(SQL, &[(&user, Type::UUID)]).await?.map(|r| r.try_get(0)).transpose()
}

/// Whole seconds the account's second step stays locked (10 wrong codes within 24 hours), or
/// `None` when it is open.
pub async fn daily_lock(c: &impl GenericClient, user: Uuid) -> Result<Option<u64>, Error> {
    const SQL: &str = "
        SELECT extract(epoch FROM since + make_interval(secs => $3) - now())::float8
          FROM mfa_failures
         WHERE user_id = $1 AND failures >= $2 AND since > now() - make_interval(secs => $3)";
    let (max, window) = (super::DAILY_MAX_FAILURES, super::DAILY_WINDOW_SECONDS as f64);
    let row = c
        .query_typed_opt(SQL, &[(&user, Type::UUID), (&max, Type::INT4), (&window, Type::FLOAT8)])
        .await?;
    row.map(|r| Ok(r.try_get::<_, f64>(0)?.ceil().max(1.0) as u64)).transpose()
}

/// Counts a wrong code in the account's daily count (a count older than 24 hours starts again).
pub async fn count_daily_failure(c: &impl GenericClient, user: Uuid) -> Result<(), Error> {
    const SQL: &str = "
        INSERT INTO mfa_failures AS f (user_id, failures, since) VALUES ($1, 1, now())
        ON CONFLICT (user_id) DO UPDATE
           SET failures = CASE WHEN f.since > now() - make_interval(secs => $2)
                               THEN f.failures + 1 ELSE 1 END,
               since = CASE WHEN f.since > now() - make_interval(secs => $2)
                            THEN f.since ELSE now() END";
    let window = super::DAILY_WINDOW_SECONDS as f64;
    c.execute_typed(SQL, &[(&user, Type::UUID), (&window, Type::FLOAT8)]).await?;
    Ok(())
}

/// Clears the account's daily count (a recovery code used, or a right code).
pub async fn clear_daily(c: &impl GenericClient, user: Uuid) -> Result<(), Error> {
    c.execute_typed("DELETE FROM mfa_failures WHERE user_id = $1", &[(&user, Type::UUID)]).await?;
    Ok(())
}

/// Raises the session's `amr` to `amr` (after a new factor's verify).
pub async fn set_session_amr(
    c: &impl GenericClient,
    session: Uuid,
    amr: &[&str],
) -> Result<(), Error> {
    c.execute_typed(
        "UPDATE sessions SET amr = $2 WHERE id = $1",
        &[(&session, Type::UUID), (&amr, Type::TEXT_ARRAY)],
    )
    .await?;
    Ok(())
}
