//! Every SQL statement about passkeys: the registered credentials, the registrations waiting
//! for their answer, and the login challenges already used. What each caller locks is in the
//! module docs of [`crate::passkeys`].

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use tokio_postgres::types::{Json, Type};
use tokio_postgres::{Error, GenericClient};
use uuid::Uuid;

/// A passkey as `GET /passkeys` and `auth-admin user passkeys` show it (no key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// Its id (not the credential id): what `DELETE /passkeys/{id}` names.
    pub id: Uuid,
    /// The name the user gave it.
    pub name: String,
    /// When it was registered (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last signed in, if ever (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// The account's passkeys, oldest first.
pub async fn list(c: &impl GenericClient, user: Uuid) -> Result<Vec<Listed>, Error> {
    const SQL: &str = "SELECT id, name, created_at, last_used_at FROM passkeys \
                       WHERE user_id = $1 ORDER BY created_at, id";
    let rows = c.query_typed(SQL, &[(&user, Type::UUID)]).await?;
    rows.iter()
        .map(|r| {
            Ok(Listed {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                created_at: r.try_get(2)?,
                last_used_at: r.try_get(3)?,
            })
        })
        .collect()
}

/// The credential ids of the account's passkeys (the registration's `excludeCredentials`).
pub async fn credential_ids(c: &impl GenericClient, user: Uuid) -> Result<Vec<Vec<u8>>, Error> {
    const SQL: &str = "SELECT credential_id FROM passkeys WHERE user_id = $1";
    let rows = c.query_typed(SQL, &[(&user, Type::UUID)]).await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

/// Stores a registration's ceremony state for `ttl` seconds, bound to `user`; the account's
/// expired ones go, and only its newest 5 stay waiting.
pub async fn put_registration(
    c: &impl GenericClient,
    challenge: &[u8],
    user: Uuid,
    state: &Value,
    ttl: u64,
) -> Result<(), Error> {
    const SQL: &str = "
        WITH gone AS (
            DELETE FROM passkey_registrations
             WHERE user_id = $2 AND (expires_at <= now() OR challenge IN (
                   SELECT challenge FROM passkey_registrations WHERE user_id = $2
                    ORDER BY expires_at DESC OFFSET 4))
        )
        INSERT INTO passkey_registrations (challenge, user_id, state, expires_at)
        VALUES ($1, $2, $3, now() + make_interval(secs => $4))";
    c.execute_typed(
        SQL,
        &[
            (&challenge, Type::BYTEA),
            (&user, Type::UUID),
            (&Json(state), Type::JSONB),
            (&(ttl as f64), Type::FLOAT8),
        ],
    )
    .await?;
    Ok(())
}

/// Takes (deletes) the registration `challenge` names if it is `user`'s and still live: its
/// state. Single use: of two takers, one gets it.
pub async fn take_registration(
    c: &impl GenericClient,
    challenge: &[u8],
    user: Uuid,
) -> Result<Option<Value>, Error> {
    const SQL: &str = "
        WITH taken AS (
            DELETE FROM passkey_registrations WHERE challenge = $1 AND user_id = $2
            RETURNING state, expires_at
        )
        SELECT state FROM taken WHERE expires_at > now()";
    let row = c.query_typed_opt(SQL, &[(&challenge, Type::BYTEA), (&user, Type::UUID)]).await?;
    row.map(|r| r.try_get::<_, Json<Value>>(0).map(|j| j.0)).transpose()
}

/// How many passkeys the account has.
pub async fn count(c: &impl GenericClient, user: Uuid) -> Result<i64, Error> {
    const SQL: &str = "SELECT count(*) FROM passkeys WHERE user_id = $1";
    c.query_typed_one(SQL, &[(&user, Type::UUID)]).await?.try_get(0)
}

/// Stores a new passkey: its id and creation time, or `None` when its credential id is
/// registered already (to this account or another). Run it under the account's attempt lock
/// after [`count`], so that the limit holds.
pub async fn insert(
    c: &impl GenericClient,
    user: Uuid,
    credential_id: &[u8],
    name: &str,
    credential: &Value,
) -> Result<Option<(Uuid, OffsetDateTime)>, Error> {
    const SQL: &str = "
        INSERT INTO passkeys (user_id, credential_id, name, credential) VALUES ($1, $2, $3, $4)
        ON CONFLICT (credential_id) DO NOTHING RETURNING id, created_at";
    let row = c
        .query_typed_opt(
            SQL,
            &[
                (&user, Type::UUID),
                (&credential_id, Type::BYTEA),
                (&name, Type::TEXT),
                (&Json(credential), Type::JSONB),
            ],
        )
        .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}

/// Records a login challenge as used until `expires_at` (unix seconds): `false` when it was
/// used already (a replay). One call in sixteen, drawn here (not from the challenge, which the
/// caller picks), also clears up to 100 expired ones: more than are added meanwhile.
pub async fn use_challenge(
    c: &impl GenericClient,
    hash: &[u8; 32],
    expires_at: u64,
) -> Result<bool, Error> {
    const SQL: &str = "
        INSERT INTO passkey_challenges_used (challenge_hash, expires_at)
        VALUES ($1, to_timestamp($2)) ON CONFLICT DO NOTHING";
    let inserted = c
        .execute_typed(SQL, &[(&&hash[..], Type::BYTEA), (&(expires_at as f64), Type::FLOAT8)])
        .await?;
    if crate::random::bytes::<1>()[0] & 0x0f == 0 {
        const PURGE: &str = "
            DELETE FROM passkey_challenges_used WHERE challenge_hash IN (
                SELECT challenge_hash FROM passkey_challenges_used WHERE expires_at < now()
                 LIMIT 100 FOR UPDATE SKIP LOCKED)";
        c.execute_typed(PURGE, &[]).await?;
    }
    Ok(inserted == 1)
}

/// A passkey as a login reads it, its row locked `FOR UPDATE`.
#[derive(Debug, Clone)]
pub struct Held {
    /// Its id.
    pub id: Uuid,
    /// The library's stored credential.
    pub credential: Value,
}

/// Locks the passkey `credential_id` names if it is `user`'s.
pub async fn lock_for_login(
    c: &impl GenericClient,
    credential_id: &[u8],
    user: Uuid,
) -> Result<Option<Held>, Error> {
    const SQL: &str = "SELECT id, credential FROM passkeys \
                       WHERE credential_id = $1 AND user_id = $2 FOR UPDATE";
    let row = c.query_typed_opt(SQL, &[(&credential_id, Type::BYTEA), (&user, Type::UUID)]).await?;
    row.map(|r| Ok(Held { id: r.try_get(0)?, credential: r.try_get::<_, Json<Value>>(1)?.0 }))
        .transpose()
}

/// Records a sign-in with passkey `id`: its credential as the library updated it (counter,
/// backup state) and the time.
pub async fn record_use(c: &impl GenericClient, id: Uuid, credential: &Value) -> Result<(), Error> {
    const SQL: &str = "UPDATE passkeys SET credential = $2, last_used_at = now() WHERE id = $1";
    c.execute_typed(SQL, &[(&id, Type::UUID), (&Json(credential), Type::JSONB)]).await?;
    Ok(())
}

/// Removes the account's passkey `id`: `false` when the account has none by that id.
pub async fn remove(c: &impl GenericClient, user: Uuid, id: Uuid) -> Result<bool, Error> {
    const SQL: &str = "DELETE FROM passkeys WHERE id = $1 AND user_id = $2";
    Ok(c.execute_typed(SQL, &[(&id, Type::UUID), (&user, Type::UUID)]).await? == 1)
}
