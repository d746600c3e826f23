//! A sign-up's write: a new account, unverified, holding its username and address until
//! VERIFY_TTL_SECONDS pass; or, for an address that already has an account, nothing but a
//! reserved username (so that no answer depends on whether the address was known).
//!
//! # What it locks
//! Advisory transaction locks on the address's and the username's lookup keys, taken in
//! sorted order (so two sign-ups never wait on each other crosswise), from reading who holds
//! them to writing the account and the reservation. Two sign-ups for one address, or for one
//! username, therefore run one after the other: the second sees the first's pending account
//! (and replaces its username and password) or its username (and gets 409). The unique
//! indexes on the keys stay the last word, for writers that take no such lock (`auth-admin`,
//! import): a sign-up that loses to one fails with SQLSTATE 23505, answered as a taken
//! username.

use tokio_postgres::types::Type;
use tokio_postgres::{Error, GenericClient};

use crate::account::{MailAddress, Username};

/// What a sign-up came to. The route answers 202 to [`Registered::Accepted`] whatever the
/// address's state; the mailer decides the mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A pending account was made or renewed, or the address already had an account (which
    /// did not change).
    Accepted,
    /// The username is held by another account or a recent sign-up.
    UsernameTaken,
}

/// The checked fields of one sign-up.
pub struct SignUp<'a> {
    /// The username.
    pub username: &'a Username,
    /// The address.
    pub email: &'a MailAddress,
    /// The display name, if given.
    pub full_name: Option<&'a str>,
    /// The hash of the chosen password (made before the transaction, for either outcome).
    pub password_hash: &'a str,
}

async fn lock(c: &impl GenericClient, key: &str) -> Result<(), Error> {
    c.query_typed_one(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::text",
        &[(&key, Type::TEXT)],
    )
    .await?;
    Ok(())
}

/// Writes one sign-up in the caller's transaction (see the module's locking).
///
/// # Errors
/// The database's (23505 when a writer without the locks took a key meanwhile).
pub async fn register(
    c: &impl GenericClient,
    s: &SignUp<'_>,
    ttl_seconds: u64,
) -> Result<Registered, Error> {
    let (username_key, email_key) = (s.username.key(), s.email.key());
    let mut keys = [format!("signup e:{email_key}"), format!("signup u:{username_key}")];
    keys.sort();
    for k in &keys {
        lock(c, k).await?;
    }
    let ttl = ttl_seconds as f64;
    // The address's account, and whether it is a sign-up still pending (live or lapsed).
    let existing = c
        .query_typed_opt(
            "SELECT id, signup_expires_at IS NOT NULL FROM users WHERE email_key = $1 FOR UPDATE",
            &[(&email_key, Type::TEXT)],
        )
        .await?;
    let pending: Option<uuid::Uuid> = match &existing {
        Some(row) if row.try_get::<_, bool>(1)? => Some(row.try_get(0)?),
        _ => None,
    };
    // Held: by an account other than this address's pending sign-up (a lapsed sign-up holds
    // nothing), or by a live reservation of another address.
    let held: bool = c
        .query_typed_one(
            "SELECT EXISTS (SELECT 1 FROM users
                             WHERE username_key = $1 AND id IS DISTINCT FROM $2
                               AND (signup_expires_at IS NULL OR signup_expires_at > now()))
                 OR EXISTS (SELECT 1 FROM username_reservations
                             WHERE username_key = $1 AND email_key <> $3 AND expires_at > now())",
            &[(&username_key, Type::TEXT), (&pending, Type::UUID), (&email_key, Type::TEXT)],
        )
        .await?
        .try_get(0)?;
    if held {
        return Ok(Registered::UsernameTaken);
    }
    // A lapsed sign-up of another address that still has the name gives it up.
    c.execute_typed(
        "DELETE FROM users WHERE username_key = $1 AND id IS DISTINCT FROM $2
                             AND signup_expires_at < now()",
        &[(&username_key, Type::TEXT), (&pending, Type::UUID)],
    )
    .await?;
    match (&existing, pending) {
        (None, _) => {
            c.execute_typed(
                "INSERT INTO users (username, email, full_name, password_hash, username_key,
                                    email_key, email_verified, signup_expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, false, now() + make_interval(secs => $7))",
                &[
                    (&s.username.as_str(), Type::TEXT),
                    (&s.email.as_str(), Type::TEXT),
                    (&s.full_name, Type::TEXT),
                    (&s.password_hash, Type::TEXT),
                    (&username_key, Type::TEXT),
                    (&email_key, Type::TEXT),
                    (&ttl, Type::FLOAT8),
                ],
            )
            .await?;
        }
        (Some(_), Some(id)) => {
            // Signing up again replaces the pending account's username and password: whoever
            // typed this address first cannot keep a password its owner never chose.
            c.execute_typed(
                "UPDATE users SET username = $2, username_key = $3, password_hash = $4,
                                  full_name = $5, created_at = now(), password_changed_at = now(),
                                  signup_expires_at = now() + make_interval(secs => $6)
                  WHERE id = $1",
                &[
                    (&id, Type::UUID),
                    (&s.username.as_str(), Type::TEXT),
                    (&username_key, Type::TEXT),
                    (&s.password_hash, Type::TEXT),
                    (&s.full_name, Type::TEXT),
                    (&ttl, Type::FLOAT8),
                ],
            )
            .await?;
        }
        // An account that is not a pending sign-up: nothing about it changes.
        (Some(_), None) => {}
    }
    c.execute_typed(
        "INSERT INTO username_reservations (username_key, email_key, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))
         ON CONFLICT (username_key) DO UPDATE
            SET email_key = excluded.email_key, expires_at = excluded.expires_at",
        &[(&username_key, Type::TEXT), (&email_key, Type::TEXT), (&ttl, Type::FLOAT8)],
    )
    .await?;
    c.execute_typed(
        "DELETE FROM username_reservations WHERE ctid IN
           (SELECT ctid FROM username_reservations WHERE expires_at < now() LIMIT 100)",
        &[],
    )
    .await?;
    Ok(Registered::Accepted)
}
