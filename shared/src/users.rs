//! The users table: every SQL statement about accounts, in one place. Statements go out with
//! explicit parameter types (`query_typed`): one round trip each and no named prepared
//! statements, so they also pass through RDS Proxy without pinning the session.

use time::OffsetDateTime;
use tokio_postgres::types::Type;
use tokio_postgres::{Error, GenericClient, Row};
use uuid::Uuid;

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Primary key.
    pub id: Uuid,
    /// Unique regardless of case; never contains '@'.
    pub username: String,
    /// Unique regardless of case.
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
}

macro_rules! select_user {
    ($where:literal) => {
        concat!(
            "SELECT id, username, email, full_name, password_hash, created_at, ",
            "password_changed_at, last_login_at, disabled_at FROM users ",
            $where
        )
    };
}

impl User {
    fn from_row(row: &Row) -> Result<Self, Error> {
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

/// An identifier with '@' is an email; usernames cannot contain one.
pub fn is_email(identifier: &str) -> bool {
    identifier.contains('@')
}

/// Finds the account an identifier names: `lower(email)` when it contains '@', else
/// `lower(username)`.
pub async fn find_by_identifier(
    c: &impl GenericClient,
    identifier: &str,
) -> Result<Option<User>, Error> {
    let sql = if is_email(identifier) {
        select_user!("WHERE lower(email) = lower($1)")
    } else {
        select_user!("WHERE lower(username) = lower($1)")
    };
    c.query_typed_opt(sql, &[(&identifier, Type::TEXT)])
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

impl LoginRecord {
    /// See [`tokens_valid_from`].
    pub fn tokens_valid_from(&self) -> Option<i64> {
        tokens_valid_from(self.created_at, self.password_changed_at)
    }
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
             WHERE key = 'u:' || $1::text AND EXISTS (SELECT 1 FROM updated)
        )
        SELECT now(), created_at, password_changed_at FROM updated";
    let row = c
        .query_typed_opt(
            SQL,
            &[(&id, Type::UUID), (&verified_hash, Type::TEXT), (&upgraded, Type::TEXT)],
        )
        .await?;
    row.map(|r| {
        Ok(LoginRecord {
            now: r.try_get(0)?,
            created_at: r.try_get(1)?,
            password_changed_at: r.try_get(2)?,
        })
    })
    .transpose()
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
}

/// Creates an account. A duplicate username or email fails with SQLSTATE 23505.
pub async fn create(c: &impl GenericClient, u: &NewUser<'_>) -> Result<User, Error> {
    let row = c
        .query_typed_one(
            concat!(
                "INSERT INTO users (username, email, full_name, password_hash) ",
                "VALUES ($1, $2, $3, $4) RETURNING id, username, email, full_name, password_hash, ",
                "created_at, password_changed_at, last_login_at, disabled_at"
            ),
            &[
                (&u.username, Type::TEXT),
                (&u.email, Type::TEXT),
                (&u.full_name, Type::TEXT),
                (&u.password_hash, Type::TEXT),
            ],
        )
        .await?;
    User::from_row(&row)
}

/// The `WHERE` clause naming one account by identifier ($1), as login matches it.
macro_rules! by_identifier {
    () => {
        "(CASE WHEN strpos($1, '@') > 0 THEN lower(email) = lower($1) ELSE lower(username) = lower($1) END)"
    };
}

/// Sets a new password hash. `password_changed_at` moves to now, and always into a later
/// second than before, so every token issued before the change (whose `iat` is at most that
/// second) is refused. The account's failure count is cleared. Returns false for an unknown
/// identifier.
pub async fn set_password(
    c: &impl GenericClient,
    identifier: &str,
    hash: &str,
) -> Result<bool, Error> {
    const SQL: &str = concat!(
        "WITH updated AS (UPDATE users SET password_hash = $2, password_changed_at = ",
        "greatest(now(), date_trunc('second', password_changed_at) + interval '1 second') ",
        "WHERE ",
        by_identifier!(),
        " RETURNING id), cleared AS (DELETE FROM login_throttle ",
        "WHERE key IN (SELECT 'u:' || id::text FROM updated)) SELECT count(*) FROM updated"
    );
    let n: i64 = c
        .query_typed_one(SQL, &[(&identifier, Type::TEXT), (&hash, Type::TEXT)])
        .await?
        .try_get(0)?;
    Ok(n > 0)
}

/// Disables or enables an account; returns false for an unknown identifier.
pub async fn set_disabled(
    c: &impl GenericClient,
    identifier: &str,
    disabled: bool,
) -> Result<bool, Error> {
    const SQL: &str = concat!(
        "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END WHERE ",
        by_identifier!()
    );
    let n = c.execute_typed(SQL, &[(&identifier, Type::TEXT), (&disabled, Type::BOOL)]).await?;
    Ok(n > 0)
}

/// Deletes an account (and its failure count); returns false for an unknown identifier.
pub async fn delete(c: &impl GenericClient, identifier: &str) -> Result<bool, Error> {
    const SQL: &str = concat!(
        "WITH deleted AS (DELETE FROM users WHERE ",
        by_identifier!(),
        " RETURNING id), cleared AS (DELETE FROM login_throttle ",
        "WHERE key IN (SELECT 'u:' || id::text FROM deleted)) SELECT count(*) FROM deleted"
    );
    let n: i64 = c.query_typed_one(SQL, &[(&identifier, Type::TEXT)]).await?.try_get(0)?;
    Ok(n > 0)
}

/// Every account, by username.
pub async fn list(c: &impl GenericClient) -> Result<Vec<User>, Error> {
    c.query_typed(select_user!("ORDER BY lower(username)"), &[])
        .await?
        .iter()
        .map(User::from_row)
        .collect()
}
