//! Sessions and refresh tokens: every SQL statement about them, and the rules of rotation and
//! reuse detection (OAuth 2.0 Security BCP, RFC 9700 §4.14; docs/sessions.md).
//!
//! A session starts at each successful login. Its refresh tokens are 256 random bits,
//! base64url; only their SHA-256 is stored (a fast hash is enough for a random secret of that
//! size), and no token is ever logged. A refresh consumes the presented token and issues a new
//! one. A consumed token presented again within REFRESH_REUSE_INTERVAL_SECONDS works (a retry
//! after a lost response, two tabs racing); later, it is taken as stolen and ends the session.
//!
//! # What each operation locks (why two of them cannot both win)
//! - **refresh** (one call of the migration's `auth_refresh`, one round trip) first takes the
//!   session's row lock (`SELECT ... FOR UPDATE`, which reads the locked row as its last holder
//!   left it: ended, refreshed), then reads the token in a new statement (under READ COMMITTED
//!   only a new statement sees what the lock's previous holder committed to other rows), and
//!   holds the lock until commit, across consuming the token, inserting its successor and
//!   moving `refreshed_at`. Concurrent refreshes of one session therefore run one after the
//!   other: the first consumes the token, the others see it consumed within the interval (and
//!   get the successor the first one got: one chain per session) or after it (and end the
//!   session).
//! - **logout** and **sign-out** end sessions with `UPDATE sessions SET ended_at ...`, which
//!   takes the same row lock: a refresh that got the lock first has committed its new token
//!   (which dies with the session a moment later); one that waits then reads `ended_at` and
//!   is refused. No session survives a logout.
//! - **password change** (self-service and admin) locks the user's row first (`FOR UPDATE`, or
//!   the `UPDATE` of its hash), then ends the user's other sessions (their row locks, as
//!   logout), then takes the current one's row lock in a statement of its own and ends it too,
//!   opening its successor (a new id, the same start, end and `amr`, a fresh refresh token):
//!   every access token signed before the change names an ended session. A login that
//!   verified the old password writes the user's row in `users::record_login` only if the hash
//!   is unchanged, and opens its session in that same transaction, so it either commits before
//!   the change (and its session is ended by it) or fails. A new second factor does the same
//!   but keeps the current session's id (its tokens stay good; only its refresh token changes).
//! - Nothing takes a session's lock and then the user's, so the order is always user, then
//!   session: no deadlock.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use tokio_postgres::{Error, GenericClient};
use uuid::Uuid;

use crate::config::{ConfigError, Env};

/// Session lifetimes: SESSION_TTL_SECONDS, SESSION_IDLE_TIMEOUT_SECONDS,
/// REFRESH_REUSE_INTERVAL_SECONDS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// A session's absolute lifetime from its login, in seconds (default 30 days, Cognito's).
    pub ttl_seconds: u64,
    /// How long a session may go without a refresh, in seconds; 0 means no limit.
    pub idle_timeout_seconds: u64,
    /// How long a consumed refresh token still works, in seconds.
    pub reuse_interval_seconds: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { ttl_seconds: 2_592_000, idle_timeout_seconds: 0, reuse_interval_seconds: 10 }
    }
}

impl SessionConfig {
    /// Reads SESSION_TTL_SECONDS (300 to 31,536,000; default 2,592,000),
    /// SESSION_IDLE_TIMEOUT_SECONDS (0, or 60 to 31,536,000; default 0) and
    /// REFRESH_REUSE_INTERVAL_SECONDS (0 to 300; default 10).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let idle =
            env.integer("SESSION_IDLE_TIMEOUT_SECONDS", d.idle_timeout_seconds, 0, 31_536_000)?;
        if idle != 0 && idle < 60 {
            return Err(ConfigError::new(
                "SESSION_IDLE_TIMEOUT_SECONDS",
                format!("must be 0 (no limit) or from 60 to 31536000, got {idle}"),
            ));
        }
        Ok(Self {
            ttl_seconds: env.integer("SESSION_TTL_SECONDS", d.ttl_seconds, 300, 31_536_000)?,
            idle_timeout_seconds: idle,
            reuse_interval_seconds: env.integer(
                "REFRESH_REUSE_INTERVAL_SECONDS",
                d.reuse_interval_seconds,
                0,
                300,
            )?,
        })
    }

    fn ttl(&self) -> f64 {
        self.ttl_seconds as f64
    }

    fn idle(&self) -> f64 {
        self.idle_timeout_seconds as f64
    }

    fn reuse(&self) -> f64 {
        self.reuse_interval_seconds as f64
    }
}

/// Length of a refresh token: 32 random bytes in unpadded base64url.
pub const REFRESH_TOKEN_CHARS: usize = 43;

/// A new refresh token and the SHA-256 that is stored for it.
pub fn new_refresh_token() -> (String, [u8; 32]) {
    let token = URL_SAFE_NO_PAD.encode(crate::random::bytes::<32>());
    let hash = Sha256::digest(token.as_bytes()).into();
    (token, hash)
}

/// The stored hash of a presented refresh token, or `None` when it cannot be one of ours
/// (wrong length or alphabet): such a token is simply unknown.
pub fn refresh_token_hash(token: &str) -> Option<[u8; 32]> {
    let shaped = token.len() == REFRESH_TOKEN_CHARS
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    shaped.then(|| Sha256::digest(token.as_bytes()).into())
}

/// A session as opened or rotated: what the client is handed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The session.
    pub session_id: Uuid,
    /// The new refresh token (never logged).
    pub refresh_token: String,
    /// Seconds until the session's absolute end.
    pub refresh_expires_in: u64,
    /// How the session's login was made (RFC 8176 `amr`), for its access tokens.
    pub amr: Vec<String>,
}

fn amr_of(methods: &[&str]) -> Vec<String> {
    methods.iter().map(|m| (*m).to_owned()).collect()
}

fn seconds_left(row: &tokio_postgres::Row, idx: usize) -> Result<u64, Error> {
    let left: f64 = row.try_get(idx)?;
    Ok(left.max(0.0).floor() as u64)
}

/// Opens a session for `user_id` with its first refresh token, in one statement. Run it in
/// the login's transaction, after `users::record_login`.
pub async fn open(
    c: &impl GenericClient,
    user_id: Uuid,
    cfg: &SessionConfig,
) -> Result<Grant, Error> {
    open_with(c, user_id, cfg, crate::mfa::AMR_PASSWORD).await
}

/// [`open`] for a login made with the methods `amr` (RFC 8176: a second factor's
/// `["pwd", "otp", "mfa"]`).
pub async fn open_with(
    c: &impl GenericClient,
    user_id: Uuid,
    cfg: &SessionConfig,
    amr: &[&str],
) -> Result<Grant, Error> {
    const SQL: &str = "
        WITH s AS (
            INSERT INTO sessions (user_id, expires_at, amr)
            VALUES ($1, now() + make_interval(secs => $2), $4)
            RETURNING id, expires_at
        ), t AS (
            INSERT INTO refresh_tokens (token_hash, session_id) SELECT $3, id FROM s
        )
        SELECT id, extract(epoch FROM expires_at - now())::float8 FROM s";
    let (token, hash) = new_refresh_token();
    let row = c
        .query_typed_one(
            SQL,
            &[
                (&user_id, Type::UUID),
                (&cfg.ttl(), Type::FLOAT8),
                (&&hash[..], Type::BYTEA),
                (&amr, Type::TEXT_ARRAY),
            ],
        )
        .await?;
    Ok(Grant {
        session_id: row.try_get(0)?,
        refresh_token: token,
        refresh_expires_in: seconds_left(&row, 1)?,
        amr: amr_of(amr),
    })
}

/// What presenting a refresh token came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Rotated: a new token for the same session.
    Rotated {
        /// The account.
        user_id: Uuid,
        /// Its username, for the access token.
        username: String,
        /// The new token and the session.
        grant: Grant,
        /// The account's times, for the access token's `iat`.
        times: crate::users::LoginRecord,
    },
    /// A consumed token came back after the reuse interval: the session is now ended.
    Reused {
        /// The account.
        user_id: Uuid,
        /// The session that was ended.
        session_id: Uuid,
    },
    /// Refused without side effects; the reason is for the log only (the client always gets
    /// the same `invalid_grant`).
    Refused(&'static str),
}

/// The successor of the refresh token `token` under `salt`: base64url of
/// HMAC-SHA-256(key = the token's text, message = the salt), 43 characters like every refresh
/// token. The first presentation of a token picks the salt and stores it on the consumed row;
/// a replay within the reuse interval reads it back and so gets the same successor, never a
/// second chain (see the migration `0006_refresh_one_chain.sql`). Neither the token alone nor a
/// copy of the database alone (which holds the token's SHA-256 and the salt) computes it.
pub fn successor_of(token: &str, salt: &[u8]) -> (String, [u8; 32]) {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(salt);
    let successor = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let hash = Sha256::digest(successor.as_bytes()).into();
    (successor, hash)
}

/// Rotates the refresh token `token` (already checked by [`refresh_token_hash`], whose result
/// is `hash`), in one round trip: the migration's `auth_refresh` takes the session's row lock
/// (with the session's and account's columns), then reads the token in a statement of its own
/// (under READ COMMITTED only a new statement sees what the lock's previous holder committed),
/// then, at the token's first presentation, consumes it, inserts its successor and moves
/// `refreshed_at` in one statement, all in the caller's transaction (or its own, called
/// alone), holding the lock until commit. A presentation within the reuse interval gets the
/// successor the first one got ([`successor_of`]). See the module docs for what this locks.
pub async fn refresh(
    c: &impl GenericClient,
    token: &str,
    hash: &[u8; 32],
    cfg: &SessionConfig,
) -> Result<Refresh, Error> {
    // A bare function scan: the function answers the session's `amr` too, read under the
    // session's lock (a new factor's verify raises it with an UPDATE of the same row), so this
    // statement needs no join of its own to plan and run on every refresh.
    const SQL: &str = "SELECT outcome, session_id, user_id, username, expires_in, db_now, \
                       created_at, password_changed_at, successor_salt, coalesce(amr, '{pwd}') \
                       FROM auth_refresh($1, $2, $3, $4, $5)";
    let salt = crate::random::bytes::<32>();
    let (mut successor, new_hash) = successor_of(token, &salt);
    let row = c
        .query_typed_one(
            SQL,
            &[
                (&&hash[..], Type::BYTEA),
                (&&salt[..], Type::BYTEA),
                (&&new_hash[..], Type::BYTEA),
                (&cfg.reuse(), Type::FLOAT8),
                (&cfg.idle(), Type::FLOAT8),
            ],
        )
        .await?;
    let outcome: &str = row.try_get(0)?;
    Ok(match outcome {
        "rotated" => {
            let recorded: &[u8] = row.try_get(8)?;
            if recorded != salt {
                // A replay within the interval: the successor the first presentation got.
                successor = successor_of(token, recorded).0;
            }
            Refresh::Rotated {
                user_id: row.try_get(2)?,
                username: row.try_get(3)?,
                grant: Grant {
                    session_id: row.try_get(1)?,
                    refresh_token: successor,
                    refresh_expires_in: seconds_left(&row, 4)?,
                    amr: row.try_get(9)?,
                },
                times: crate::users::LoginRecord {
                    now: row.try_get(5)?,
                    created_at: row.try_get(6)?,
                    password_changed_at: row.try_get(7)?,
                },
            }
        }
        "reused" => Refresh::Reused { user_id: row.try_get(2)?, session_id: row.try_get(1)? },
        "session_ended" => Refresh::Refused("session_ended"),
        _ => Refresh::Refused("unknown"),
    })
}

/// Ends the session of a refresh token, whatever state the token is in (RFC 7009: the caller
/// answers the same either way). Returns the account and session when there was one to end.
pub async fn end_by_refresh_token(
    c: &impl GenericClient,
    hash: &[u8; 32],
) -> Result<Option<(Uuid, Uuid)>, Error> {
    const SQL: &str = "
        UPDATE sessions SET ended_at = now(), end_reason = 'logout'
         WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1)
           AND ended_at IS NULL
        RETURNING user_id, id";
    let row = c.query_typed_opt(SQL, &[(&&hash[..], Type::BYTEA)]).await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}

/// Which sessions a logout ends (`local`, `others`, `global`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The access token's own session.
    Local,
    /// Every other session of the user.
    Others,
    /// All of the user's sessions.
    Global,
}

impl Scope {
    /// The name as clients send it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Others => "others",
            Self::Global => "global",
        }
    }
}

/// Ends sessions of `user_id` relative to `current` (the access token's `sid`, if it has one)
/// with `reason`; returns how many were ended.
pub async fn end(
    c: &impl GenericClient,
    user_id: Uuid,
    current: Option<Uuid>,
    scope: Scope,
    reason: &str,
) -> Result<u64, Error> {
    const SQL: &str = "
        UPDATE sessions SET ended_at = now(), end_reason = $4
         WHERE user_id = $1 AND ended_at IS NULL
           AND CASE $3 WHEN 'local' THEN id = $2
                       WHEN 'others' THEN id IS DISTINCT FROM $2
                       ELSE true END";
    let scope = scope.as_str();
    c.execute_typed(
        SQL,
        &[
            (&user_id, Type::UUID),
            (&current, Type::UUID),
            (&scope, Type::TEXT),
            (&reason, Type::TEXT),
        ],
    )
    .await
}

/// After a password change, in its transaction (the user's row already locked): ends the
/// user's other sessions (`password_changed`) and carries the current one, `current`,
/// on under a new id: its row ends too, and a successor takes its start, absolute end and `amr`
/// with a fresh refresh token. Every access token signed before the change therefore names an
/// ended session and is refused, whatever second it was signed in, so the token answered with
/// the change can be signed at once. A change made with a token without `sid`, or whose session
/// ended meanwhile, opens a new session (`amr` `["pwd"]`). See the module docs for the locks.
pub async fn after_password_change(
    c: &impl GenericClient,
    user_id: Uuid,
    current: Option<Uuid>,
    cfg: &SessionConfig,
) -> Result<Grant, Error> {
    carry_on(
        c,
        user_id,
        current,
        cfg,
        "password_changed",
        crate::mfa::AMR_PASSWORD,
        Goes::OnUnderANewId,
    )
    .await
}

/// [`after_password_change`] for a credential change that revokes no access token (a new
/// second factor, reason `mfa_enabled`): the other sessions end, `current` keeps going under its
/// own id with a fresh refresh token. When there is no current session (a token without `sid`),
/// or it ended meanwhile, a new one is opened with `amr` (what the change itself proved).
pub async fn keep_only(
    c: &impl GenericClient,
    user_id: Uuid,
    current: Option<Uuid>,
    cfg: &SessionConfig,
    reason: &str,
    amr: &[&str],
) -> Result<Grant, Error> {
    carry_on(c, user_id, current, cfg, reason, amr, Goes::OnUnderItsId).await
}

/// How the current session goes on after a credential change.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Goes {
    /// Its row ends and a successor takes over (a password change: its tokens are refused).
    OnUnderANewId,
    /// It keeps its id and only its refresh token is replaced (a new factor).
    OnUnderItsId,
}

async fn carry_on(
    c: &impl GenericClient,
    user_id: Uuid,
    current: Option<Uuid>,
    cfg: &SessionConfig,
    reason: &str,
    amr: &[&str],
    goes: Goes,
) -> Result<Grant, Error> {
    end(c, user_id, current, Scope::Others, reason).await?;
    let Some(session_id) = current else { return open_with(c, user_id, cfg, amr).await };
    // The session's lock first, in a statement of its own: the statement below must see a
    // token a racing refresh committed while this waited for the lock (see `refresh`).
    let locked = c
        .query_typed_opt(
            "SELECT id FROM sessions WHERE id = $1 AND user_id = $2 AND ended_at IS NULL \
             FOR UPDATE",
            &[(&session_id, Type::UUID), (&user_id, Type::UUID)],
        )
        .await?;
    if locked.is_none() {
        return open_with(c, user_id, cfg, amr).await;
    }
    // Either way the statement answers the session the new refresh token belongs to.
    const SUCCEED: &str = "
        WITH old AS (
            UPDATE sessions SET ended_at = now(), end_reason = $4
            WHERE id = $1 AND user_id = $2 AND ended_at IS NULL
            RETURNING user_id, created_at, expires_at, amr
        ), s AS (
            INSERT INTO sessions (user_id, created_at, expires_at, amr)
            SELECT user_id, created_at, expires_at, amr FROM old
            RETURNING id, expires_at, amr
        ), t AS (
            INSERT INTO refresh_tokens (token_hash, session_id) SELECT $3, id FROM s
        )
        SELECT id, extract(epoch FROM expires_at - now())::float8, amr FROM s";
    const KEEP: &str = "
        WITH locked AS (
            SELECT id, expires_at, amr FROM sessions
            WHERE id = $1 AND user_id = $2
        ), gone AS (
            DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM locked)
        ), fresh AS (
            INSERT INTO refresh_tokens (token_hash, session_id) SELECT $3, id FROM locked
        )
        SELECT id, extract(epoch FROM expires_at - now())::float8, amr FROM locked";
    let (token, hash) = new_refresh_token();
    let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 4] = [
        (&session_id, Type::UUID),
        (&user_id, Type::UUID),
        (&&hash[..], Type::BYTEA),
        (&reason, Type::TEXT),
    ];
    let row = if goes == Goes::OnUnderANewId {
        c.query_typed_opt(SUCCEED, &params).await?
    } else {
        c.query_typed_opt(KEEP, &params[..3]).await?
    };
    match row {
        Some(row) => Ok(Grant {
            session_id: row.try_get(0)?,
            refresh_token: token,
            refresh_expires_in: seconds_left(&row, 1)?,
            amr: row.try_get(2)?,
        }),
        None => open_with(c, user_id, cfg, amr).await,
    }
}

/// The account `user_id` and, when `sid` is given, whether that session of it is still
/// usable (not ended, expired or idle, the account active), in one round trip: what an endpoint taking an access token reads
/// (the migration's `auth_find_user`, whose plan PostgreSQL keeps for the connection). `None`
/// when the account does not exist.
pub async fn find_user(
    c: &impl GenericClient,
    user_id: Uuid,
    sid: Option<Uuid>,
    cfg: &SessionConfig,
) -> Result<Option<(crate::users::User, bool)>, Error> {
    const SQL: &str = "SELECT id, username, email, full_name, password_hash, created_at, \
                       password_changed_at, last_login_at, disabled_at, email_verified, \
                       session_usable \
                       FROM auth_find_user($1, $2, $3)";
    let row = c
        .query_typed_opt(
            SQL,
            &[(&user_id, Type::UUID), (&sid, Type::UUID), (&cfg.idle(), Type::FLOAT8)],
        )
        .await?;
    row.map(|r| Ok((crate::users::User::from_row(&r)?, r.try_get(10)?))).transpose()
}

/// Sessions over (ended, or past their absolute end) for this long are removed.
pub const KEEP_ENDED_SECONDS: f64 = 86_400.0;

/// Removes up to 100 sessions that have been over for [`KEEP_ENDED_SECONDS`] (their refresh
/// tokens go with them); skips rows another transaction holds. Nothing counts on it running.
pub async fn purge(c: &impl GenericClient) -> Result<u64, Error> {
    const SQL: &str = "
        DELETE FROM sessions WHERE id IN (
            SELECT id FROM sessions
             WHERE coalesce(ended_at, expires_at) < now() - make_interval(secs => $1)
             ORDER BY coalesce(ended_at, expires_at) LIMIT 100 FOR UPDATE SKIP LOCKED)";
    c.execute_typed(SQL, &[(&KEEP_ENDED_SECONDS, Type::FLOAT8)]).await
}

/// One session as `auth-admin user sessions` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionInfo {
    /// The session id (the `sid` of its access tokens).
    pub id: Uuid,
    /// Its login.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Its last refresh (or the login).
    #[serde(with = "time::serde::rfc3339")]
    pub refreshed_at: OffsetDateTime,
    /// Its absolute end.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was ended, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// Why it was ended.
    pub end_reason: Option<String>,
    /// `active`, `ended`, `expired` or `idle`.
    pub status: String,
}

/// The sessions of `user_id`, newest first: only the live ones (status `active`), or with
/// `all` every one not yet purged, ended, expired and idle ones included (their end time and
/// reason in [`SessionInfo`]).
pub async fn list(
    c: &impl GenericClient,
    user_id: Uuid,
    cfg: &SessionConfig,
    all: bool,
) -> Result<Vec<SessionInfo>, Error> {
    const SQL: &str = "
        SELECT * FROM (
            SELECT s.id, s.created_at, s.refreshed_at, s.expires_at, s.ended_at, s.end_reason,
                   CASE WHEN s.ended_at IS NOT NULL THEN 'ended'
                        WHEN s.expires_at <= now() THEN 'expired'
                        WHEN $2 > 0 AND s.refreshed_at <= now() - make_interval(secs => $2)
                            THEN 'idle'
                        ELSE 'active' END AS status
              FROM sessions s WHERE s.user_id = $1) listed
         WHERE $3 OR status = 'active'
         ORDER BY created_at DESC";
    c.query_typed(SQL, &[(&user_id, Type::UUID), (&cfg.idle(), Type::FLOAT8), (&all, Type::BOOL)])
        .await?
        .iter()
        .map(|r| {
            Ok(SessionInfo {
                id: r.try_get(0)?,
                created_at: r.try_get(1)?,
                refreshed_at: r.try_get(2)?,
                expires_at: r.try_get(3)?,
                ended_at: r.try_get(4)?,
                end_reason: r.try_get(5)?,
                status: r.try_get(6)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_only_our_shape_hashes() {
        let (t, h) = new_refresh_token();
        assert_eq!(t.len(), REFRESH_TOKEN_CHARS);
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap().len(), 32);
        assert_eq!(refresh_token_hash(&t), Some(h));
        assert_ne!(new_refresh_token().0, t);
        for bad in ["", "short", &"a".repeat(44), &format!("{}=", &t[..42]), &"é".repeat(43)] {
            assert_eq!(refresh_token_hash(bad), None, "{bad}");
        }
    }

    #[test]
    fn config_ranges() {
        let env = |pairs: &[(&str, &str)]| Env::from_pairs(pairs.iter().copied());
        assert_eq!(SessionConfig::from_env(&env(&[])).unwrap(), SessionConfig::default());
        for (var, value) in [
            ("SESSION_TTL_SECONDS", "299"),
            ("SESSION_IDLE_TIMEOUT_SECONDS", "59"),
            ("SESSION_IDLE_TIMEOUT_SECONDS", "-1"),
            ("REFRESH_REUSE_INTERVAL_SECONDS", "301"),
        ] {
            assert_eq!(SessionConfig::from_env(&env(&[(var, value)])).unwrap_err().var, var);
        }
    }
}
