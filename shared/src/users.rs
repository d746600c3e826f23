//! The users table: every SQL statement about accounts, in one place. Statements go out with
//! explicit parameter types (`query_typed`): one round trip each and no named prepared
//! statements, so they also pass through RDS Proxy without pinning the session.

use time::OffsetDateTime;
use tokio_postgres::types::Type;
use tokio_postgres::{Error, GenericClient, Row};
use uuid::Uuid;

use crate::identifier::{self, Lookup};
use crate::throttle::ACCOUNT_KEY_PREFIX;

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Primary key.
    pub id: Uuid,
    /// Unique by its lookup key (see [`crate::identifier`]); never contains '@'.
    pub username: String,
    /// Unique by its lookup key.
    pub email: String,
    /// Optional display name.
    pub full_name: Option<String>,
    /// The stored password hash (PHC or a legacy format).
    pub password_hash: String,
    /// When the account was made.
    pub created_at: OffsetDateTime,
    /// When the password was last set; tokens issued before it are refused.
    pub password_changed_at: OffsetDateTime,
    /// The last successful login.
    pub last_login_at: Option<OffsetDateTime>,
    /// Set when the account is disabled.
    pub disabled_at: Option<OffsetDateTime>,
    /// Whether the address has been proven (a confirmed sign-up, a completed reset or email
    /// change, or an operator's word: accounts made by `auth-admin` or import are verified
    /// unless told otherwise).
    pub email_verified: bool,
}

/// An account as the user sees it: the body of `GET /profile` (openapi.yaml), and the first fields of
/// `auth-admin user list --json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Profile<'a> {
    /// The account id.
    pub id: Uuid,
    /// Username.
    pub username: &'a str,
    /// Email.
    pub email: &'a str,
    /// Display name.
    pub full_name: Option<&'a str>,
    /// When the account was made (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The last successful login (RFC 3339), or null.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
    /// Whether the address has been proven.
    pub email_verified: bool,
}

impl<'a> From<&'a User> for Profile<'a> {
    fn from(u: &'a User) -> Self {
        Self {
            id: u.id,
            username: &u.username,
            email: &u.email,
            full_name: u.full_name.as_deref(),
            created_at: u.created_at,
            last_login_at: u.last_login_at,
            email_verified: u.email_verified,
        }
    }
}

macro_rules! select_user {
    ($where:literal) => {
        concat!(
            "SELECT id, username, email, full_name, password_hash, created_at, ",
            "password_changed_at, last_login_at, disabled_at, email_verified FROM users ",
            $where
        )
    };
}

impl User {
    /// Reads the ten columns `select_user!` lists, in its order, from the start of `row`.
    pub(crate) fn from_row(row: &Row) -> Result<Self, Error> {
        Ok(Self {
            id: row.try_get(0)?,
            username: row.try_get(1)?,
            email: row.try_get(2)?,
            full_name: row.try_get(3)?,
            password_hash: row.try_get(4)?,
            created_at: row.try_get(5)?,
            password_changed_at: row.try_get(6)?,
            last_login_at: row.try_get(7)?,
            disabled_at: row.try_get(8)?,
            email_verified: row.try_get(9)?,
        })
    }

    /// True unless the account is disabled.
    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }

    /// See [`tokens_valid_from`].
    pub fn tokens_valid_from(&self) -> Option<i64> {
        tokens_valid_from(self.created_at, self.password_changed_at)
    }
}

/// The first whole second (since the epoch) whose tokens count as issued after the last
/// password change: tokens with an earlier `iat` are refused. `None` when the password never
/// changed since the account was made (creation is not a change).
pub fn tokens_valid_from(
    created_at: OffsetDateTime,
    password_changed_at: OffsetDateTime,
) -> Option<i64> {
    (password_changed_at > created_at).then(|| password_changed_at.unix_timestamp() + 1)
}

/// Finds the account an identifier names, by its lookup key: `email_key` when the key
/// contains '@', else `username_key` (see [`Lookup`]).
pub async fn find_by_identifier(
    c: &impl GenericClient,
    identifier: &str,
) -> Result<Option<User>, Error> {
    let lookup = Lookup::of(identifier);
    let (username_key, email_key) = lookup.params();
    c.query_typed_opt(
        select_user!("WHERE username_key = $1 OR email_key = $2"),
        &[(&username_key, Type::TEXT), (&email_key, Type::TEXT)],
    )
    .await?
    .as_ref()
    .map(User::from_row)
    .transpose()
}

/// Finds an account by id.
pub async fn find_by_id(c: &impl GenericClient, id: Uuid) -> Result<Option<User>, Error> {
    c.query_typed_opt(select_user!("WHERE id = $1"), &[(&id, Type::UUID)])
        .await?
        .as_ref()
        .map(User::from_row)
        .transpose()
}

/// What a recorded login returns: the times a token's `iat` must be weighed against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginRecord {
    /// The database's clock at the login (the same clock as the other two).
    pub now: OffsetDateTime,
    /// When the account was made.
    pub created_at: OffsetDateTime,
    /// When its password was last set.
    pub password_changed_at: OffsetDateTime,
}

/// A [`LoginRecord`] from a row's first three columns: `now()`, `created_at`,
/// `password_changed_at`.
fn login_record(r: &tokio_postgres::Row) -> Result<LoginRecord, Error> {
    Ok(LoginRecord {
        now: r.try_get(0)?,
        created_at: r.try_get(1)?,
        password_changed_at: r.try_get(2)?,
    })
}

/// Records a successful login in one statement: sets `last_login_at`, replaces the hash with
/// `upgraded` when given, and clears the account's failure count, but only if the account is
/// still active and its hash is still `verified_hash` (an admin may have changed the password
/// since it was checked). Returns `None` when the account changed underneath and the login
/// must fail.
pub async fn record_login(
    c: &impl GenericClient,
    id: Uuid,
    verified_hash: &str,
    upgraded: Option<&str>,
) -> Result<Option<LoginRecord>, Error> {
    const SQL: &str = "
        WITH updated AS (
            UPDATE users
               SET last_login_at = now(),
                   password_hash = coalesce($3, password_hash)
             WHERE id = $1 AND password_hash = $2 AND disabled_at IS NULL
         RETURNING created_at, password_changed_at
        ), cleared AS (
            DELETE FROM login_throttle
             WHERE key = $4 || $1::text AND EXISTS (SELECT 1 FROM updated)
        )
        SELECT now(), created_at, password_changed_at FROM updated";
    let row = c
        .query_typed_opt(
            SQL,
            &[
                (&id, Type::UUID),
                (&verified_hash, Type::TEXT),
                (&upgraded, Type::TEXT),
                (&ACCOUNT_KEY_PREFIX, Type::TEXT),
            ],
        )
        .await?;
    row.map(|r| login_record(&r)).transpose()
}

/// Records a login completed by its second step (the password was checked when its mfa_token
/// was handed out; a password change since then deleted that token): sets `last_login_at` and
/// clears the account's failure count, if the account is still active. `None` otherwise.
pub async fn record_second_step_login(
    c: &impl GenericClient,
    id: Uuid,
) -> Result<Option<LoginRecord>, Error> {
    const SQL: &str = "
        WITH updated AS (
            UPDATE users SET last_login_at = now() WHERE id = $1 AND disabled_at IS NULL
         RETURNING created_at, password_changed_at
        ), cleared AS (
            DELETE FROM login_throttle
             WHERE key = $2 || $1::text AND EXISTS (SELECT 1 FROM updated)
        )
        SELECT now(), created_at, password_changed_at FROM updated";
    let row =
        c.query_typed_opt(SQL, &[(&id, Type::UUID), (&ACCOUNT_KEY_PREFIX, Type::TEXT)]).await?;
    row.map(|r| login_record(&r)).transpose()
}

/// The times a new access token for the account `id` is dated against (see [`LoginRecord`]),
/// read now; `None` when the account is gone.
pub async fn times(c: &impl GenericClient, id: Uuid) -> Result<Option<LoginRecord>, Error> {
    const SQL: &str = "SELECT now(), created_at, password_changed_at FROM users WHERE id = $1";
    let row = c.query_typed_opt(SQL, &[(&id, Type::UUID)]).await?;
    row.map(|r| login_record(&r)).transpose()
}

/// A new account's fields.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Username (no '@').
    pub username: &'a str,
    /// Email.
    pub email: &'a str,
    /// Display name.
    pub full_name: Option<&'a str>,
    /// The hash of its password.
    pub password_hash: &'a str,
    /// Whether its address counts as proven (see [`User::email_verified`]).
    pub email_verified: bool,
}

/// Creates an account with its lookup keys. A duplicate username or email (by key) fails with
/// SQLSTATE 23505, a username whose key contains '@' with 23514.
pub async fn create(c: &impl GenericClient, u: &NewUser<'_>) -> Result<User, Error> {
    let (username_key, email_key) = (identifier::key(u.username), identifier::key(u.email));
    let row = c
        .query_typed_one(
            concat!(
                "INSERT INTO users (username, email, full_name, password_hash, username_key, ",
                "email_key, email_verified) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, ",
                "username, email, full_name, password_hash, created_at, password_changed_at, ",
                "last_login_at, disabled_at, email_verified"
            ),
            &[
                (&u.username, Type::TEXT),
                (&u.email, Type::TEXT),
                (&u.full_name, Type::TEXT),
                (&u.password_hash, Type::TEXT),
                (&username_key, Type::TEXT),
                (&email_key, Type::TEXT),
                (&u.email_verified, Type::BOOL),
            ],
        )
        .await?;
    User::from_row(&row)
}

/// Fills in the lookup keys of accounts that have none (rows from before migration 3, or
/// copied in with plain SQL), and computes again those of addresses whose key holds an
/// A-label (`xn--`: keys made before a domain's A-labels were read in Unicode); returns how
/// many changed. Run by the migration runner. Two accounts whose keys collide fail it with
/// SQLSTATE 23505, naming the key.
pub async fn fill_identifier_keys(c: &impl GenericClient) -> Result<u64, Error> {
    let rows = c
        .query_typed(
            "SELECT id, username, email FROM users
              WHERE username_key IS NULL OR email_key IS NULL OR email_key LIKE '%xn--%'",
            &[],
        )
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut username_keys = Vec::with_capacity(rows.len());
    let mut email_keys = Vec::with_capacity(rows.len());
    for row in &rows {
        ids.push(row.try_get::<_, Uuid>(0)?);
        username_keys.push(identifier::key(row.try_get(1)?));
        email_keys.push(identifier::key(row.try_get(2)?));
    }
    c.execute_typed(
        "UPDATE users u SET username_key = k.uk, email_key = k.ek
           FROM unnest($1::uuid[], $2::text[], $3::text[]) AS k(id, uk, ek)
          WHERE u.id = k.id
            AND (u.username_key IS DISTINCT FROM k.uk OR u.email_key IS DISTINCT FROM k.ek)",
        &[
            (&ids, Type::UUID_ARRAY),
            (&username_keys, Type::TEXT_ARRAY),
            (&email_keys, Type::TEXT_ARRAY),
        ],
    )
    .await
}

/// The `WHERE` clause naming one account by identifier, as login matches it: $1 is the
/// username key and $2 the email key from [`Lookup::params`] (one of them NULL).
macro_rules! by_identifier {
    () => {
        "(username_key = $1 OR email_key = $2)"
    };
}

/// The `SET` of a password change: the new hash (the placeholder given), and `password_changed_at` moved to now,
/// always into a later second than before, so every token issued before the change (whose
/// `iat` is at most that second) is refused.
macro_rules! set_new_password {
    ($hash:literal) => {
        concat!(
            "password_hash = ",
            $hash,
            ", password_changed_at = ",
            "greatest(now(), date_trunc('second', password_changed_at) + interval '1 second')"
        )
    };
}

/// Sets a new password hash (the admin's set-password): see `set_new_password!`. The
/// account's failure count is cleared, every session of it ends and every open mailed code or
/// link of it is void, but for the revert link of an email change ([`end_what_a_password_opened`]
/// says why). Returns false for an unknown identifier.
pub async fn set_password(
    c: &impl GenericClient,
    identifier: &str,
    hash: &str,
) -> Result<bool, Error> {
    const SQL: &str = concat!(
        "WITH updated AS (UPDATE users SET ",
        set_new_password!("$3"),
        " WHERE ",
        by_identifier!(),
        " RETURNING id) SELECT id FROM updated"
    );
    let lookup = Lookup::of(identifier);
    let (username_key, email_key) = lookup.params();
    let id: Option<Uuid> = c
        .query_typed_opt(
            SQL,
            &[(&username_key, Type::TEXT), (&email_key, Type::TEXT), (&hash, Type::TEXT)],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    let Some(id) = id else { return Ok(false) };
    end_what_a_password_opened(c, id, true).await?;
    Ok(true)
}

/// After a new password: clears the account's failure count, voids its open mailed codes and
/// links and the mfa_tokens of logins waiting for their second step, and with `sessions` ends
/// every session of it.
///
/// The revert link of an email change is kept: it is the way back for an owner whose address
/// was moved by someone holding the password, who could otherwise kill it by changing or
/// resetting the password.
///
/// This is a statement of its own, after the `UPDATE` of the password: that `UPDATE` waits for
/// the account's row lock, which a login that verified the old hash holds while it opens its
/// session; parts of the same statement would read from a snapshot taken before the lock was
/// granted and miss the session that login committed meanwhile. A new statement sees it.
async fn end_what_a_password_opened(
    c: &impl GenericClient,
    id: Uuid,
    sessions: bool,
) -> Result<(), Error> {
    const SQL: &str = "
        WITH cleared AS (DELETE FROM login_throttle WHERE key = $2 || $1::text),
             voided AS (DELETE FROM account_codes WHERE user_id = $1 AND purpose <> 'revert'),
             second_steps AS (DELETE FROM mfa_tokens WHERE user_id = $1)
        UPDATE sessions SET ended_at = now(), end_reason = 'password_changed'
         WHERE $3 AND user_id = $1 AND ended_at IS NULL";
    c.execute_typed(
        SQL,
        &[(&id, Type::UUID), (&ACCOUNT_KEY_PREFIX, Type::TEXT), (&sessions, Type::BOOL)],
    )
    .await?;
    Ok(())
}

/// Sets a new password hash for the account `id` (the self-service change, whose caller holds
/// the account's row lock and ends or rotates its sessions): see `set_new_password!`. Clears
/// the failure count and voids every open mailed code or link but an email change's revert
/// link ([`end_what_a_password_opened`]). Returns the times the new access token is dated
/// against.
pub async fn change_password(
    c: &impl GenericClient,
    id: Uuid,
    hash: &str,
) -> Result<LoginRecord, Error> {
    const SQL: &str = concat!(
        "UPDATE users SET ",
        set_new_password!("$2"),
        " WHERE id = $1 RETURNING now(), created_at, password_changed_at"
    );
    let r = c.query_typed_one(SQL, &[(&id, Type::UUID), (&hash, Type::TEXT)]).await?;
    end_what_a_password_opened(c, id, false).await?;
    login_record(&r)
}

/// A password reset by mail for the account `id`: the new hash (see `set_new_password!`), the
/// address counted as verified (the mail reached it), the failure count cleared, every session
/// ended and every open mailed code or link void but an email change's revert link, in the
/// caller's transaction ([`end_what_a_password_opened`] says why in two statements). Returns
/// false when the account is gone or disabled.
pub async fn reset_password(c: &impl GenericClient, id: Uuid, hash: &str) -> Result<bool, Error> {
    const SQL: &str = concat!(
        "UPDATE users SET ",
        set_new_password!("$2"),
        ", email_verified = true, signup_expires_at = NULL",
        " WHERE id = $1 AND disabled_at IS NULL"
    );
    if c.execute_typed(SQL, &[(&id, Type::UUID), (&hash, Type::TEXT)]).await? == 0 {
        return Ok(false);
    }
    end_what_a_password_opened(c, id, true).await?;
    Ok(true)
}

/// Reads the stored hash of the account `id` and takes its row lock until the transaction
/// ends (a password change's first step); `None` when the account is gone.
pub async fn lock_for_password_change(
    c: &impl GenericClient,
    id: Uuid,
) -> Result<Option<String>, Error> {
    let row = c
        .query_typed_opt(
            "SELECT password_hash FROM users WHERE id = $1 AND disabled_at IS NULL FOR UPDATE",
            &[(&id, Type::UUID)],
        )
        .await?;
    row.map(|r| r.try_get(0)).transpose()
}

/// Disables or enables an account; returns false for an unknown identifier. Disabling ends
/// every session of it.
pub async fn set_disabled(
    c: &impl GenericClient,
    identifier: &str,
    disabled: bool,
) -> Result<bool, Error> {
    const SQL: &str = concat!(
        "WITH updated AS (UPDATE users SET disabled_at = CASE WHEN $3 THEN coalesce(disabled_at, now()) END WHERE ",
        by_identifier!(),
        " RETURNING id), ended AS (UPDATE sessions SET ended_at = now(), end_reason = 'disabled' ",
        "WHERE $3 AND ended_at IS NULL AND user_id IN (SELECT id FROM updated)) ",
        "SELECT count(*) FROM updated"
    );
    let lookup = Lookup::of(identifier);
    let (username_key, email_key) = lookup.params();
    let n: i64 = c
        .query_typed_one(
            SQL,
            &[(&username_key, Type::TEXT), (&email_key, Type::TEXT), (&disabled, Type::BOOL)],
        )
        .await?
        .try_get(0)?;
    Ok(n > 0)
}

/// Marks an account's address as proven (an operator's word: `auth-admin user verify`), ending
/// a pending sign-up's expiry and voiding its open sign-up code; returns false for an unknown
/// identifier.
pub async fn set_verified(c: &impl GenericClient, identifier: &str) -> Result<bool, Error> {
    const SQL: &str = concat!(
        "WITH updated AS (UPDATE users SET email_verified = true, signup_expires_at = NULL WHERE ",
        by_identifier!(),
        " RETURNING id), voided AS (DELETE FROM account_codes WHERE purpose = 'signup' ",
        "AND user_id IN (SELECT id FROM updated)) SELECT count(*) FROM updated"
    );
    let lookup = Lookup::of(identifier);
    let (username_key, email_key) = lookup.params();
    let n: i64 = c
        .query_typed_one(SQL, &[(&username_key, Type::TEXT), (&email_key, Type::TEXT)])
        .await?
        .try_get(0)?;
    Ok(n > 0)
}

/// Deletes an account (and its failure count); returns false for an unknown identifier.
pub async fn delete(c: &impl GenericClient, identifier: &str) -> Result<bool, Error> {
    const SQL: &str = concat!(
        "WITH deleted AS (DELETE FROM users WHERE ",
        by_identifier!(),
        " RETURNING id), cleared AS (DELETE FROM login_throttle ",
        "WHERE key IN (SELECT $3 || id::text FROM deleted)) SELECT count(*) FROM deleted"
    );
    let lookup = Lookup::of(identifier);
    let (username_key, email_key) = lookup.params();
    let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 3] =
        [(&username_key, Type::TEXT), (&email_key, Type::TEXT), (&ACCOUNT_KEY_PREFIX, Type::TEXT)];
    let n: i64 = c.query_typed_one(SQL, &params).await?.try_get(0)?;
    Ok(n > 0)
}

/// Every account, by username.
pub async fn list(c: &impl GenericClient) -> Result<Vec<User>, Error> {
    c.query_typed(select_user!("ORDER BY username_key"), &[])
        .await?
        .iter()
        .map(User::from_row)
        .collect()
}
