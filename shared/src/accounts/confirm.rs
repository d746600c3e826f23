//! Checking what a mail carried: a sign-up's code or link (with the sign-up's password), an
//! email change's, a revert's, and a reset's (with the new password).
//!
//! Every refusal is one answer ([`Refused`]), for an unknown, expired, used, replaced or
//! over-tried code and for a wrong sign-up password, and counts a wrong try against the
//! account's codes of that purpose when a row was found.
//!
//! # What it locks
//! The account's code row (`SELECT ... FOR UPDATE`, see [`crate::codes`]) from reading its
//! counts to consuming it or counting the try; then the account's row, by the `UPDATE` that
//! completes the step. Of two checks of one code, one consumes it and the other, once the lock
//! is its, finds no row. A reset's `UPDATE` of the password takes the user's row lock as
//! `/password` does, so a refresh or login racing it sees the sessions ended and the hash
//! changed (see [`crate::sessions`]): none survives the reset.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_postgres::types::Type;
use tokio_postgres::{Error, GenericClient};
use uuid::Uuid;

use crate::codes::{self, Held, Presented, Purpose};
use crate::data_key::DataKey;
use crate::password::{self, Policy, Verdict};

/// The one refusal: 400 `invalid_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// What a confirmation completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// A sign-up's address is proven; the account can log in.
    SignedUp {
        /// The account.
        user_id: Uuid,
        /// Its address.
        email: String,
    },
    /// An email change is complete: login uses the new address.
    EmailChanged {
        /// The account.
        user_id: Uuid,
        /// The new address.
        email: String,
    },
    /// An email change was undone (and every session ended).
    Reverted {
        /// The account.
        user_id: Uuid,
        /// The address restored.
        email: String,
    },
}

impl Confirmed {
    /// The address the answer names.
    pub fn email(&self) -> &str {
        match self {
            Self::SignedUp { email, .. }
            | Self::EmailChanged { email, .. }
            | Self::Reverted { email, .. } => email,
        }
    }
}

/// How password checks run here: the hashing slots and deadline of the function.
#[derive(Clone)]
pub struct Hashing {
    /// The container's hashing slots.
    pub slots: Arc<Semaphore>,
    /// The check's deadline (a check cut off counts as a wrong password).
    pub deadline: Duration,
    /// PBKDF2_ITERATIONS.
    pub policy: Policy,
}

impl Hashing {
    /// Whether `password` matches `stored` (`None`: no account, one dummy hash spent).
    async fn matches(&self, password: &str, stored: Option<String>) -> bool {
        let (password, policy) = (password.to_owned(), self.policy);
        let verdict =
            crate::hashing::within_deadline(&self.slots, self.deadline, move || match stored {
                Some(h) => password::verify(&password, &h, policy),
                None => password::verify_dummy(&password, policy),
            })
            .await;
        matches!(verdict, Some(Verdict::Match { .. }))
    }

    /// A new hash of `password`, `None` when the deadline cut it off.
    pub async fn hash(&self, password: &str) -> Option<String> {
        let (password, policy) = (password.to_owned(), self.policy);
        crate::hashing::within_deadline(&self.slots, self.deadline, move || {
            password::hash(&password, policy)
        })
        .await
    }
}

/// The lookup key of an address as a request gives it: its deliverable form's when it is one
/// (so an IDN typed as A-labels finds the account stored in Unicode), else as typed.
pub fn address_key(email: &str) -> String {
    crate::account::MailAddress::parse(email)
        .map(|a| a.key())
        .unwrap_or_else(|_| crate::identifier::key(email))
}

async fn password_hash_of(c: &impl GenericClient, user_id: Uuid) -> Result<Option<String>, Error> {
    Ok(c.query_typed_opt(
        "SELECT password_hash FROM users WHERE id = $1 AND disabled_at IS NULL FOR UPDATE",
        &[(&user_id, Type::UUID)],
    )
    .await?
    .map(|r| r.get(0)))
}

/// The first of `rows` that `presented` matches, or `None` after counting a wrong try on each.
async fn pick(
    c: &impl GenericClient,
    keys: &DataKey,
    rows: Vec<Held>,
    presented: Presented<'_>,
) -> Result<Option<Held>, Error> {
    for row in &rows {
        if row.matches(keys, presented).await {
            return Ok(Some(row.clone()));
        }
    }
    for row in &rows {
        codes::record_wrong(c, row).await?;
    }
    Ok(None)
}

/// `POST /verify-email`: a code (with `email`) or a link token; `password` for a sign-up
/// (always checked, against a dummy hash when nothing matched, so a refusal costs what a
/// success does). A code with a password is a sign-up's; without, an email change's. Runs in
/// the caller's transaction.
///
/// # Errors
/// The database's; `Ok(Err(Refused))` for every refusal.
pub async fn verify_email(
    c: &impl GenericClient,
    keys: &DataKey,
    hashing: &Hashing,
    email: Option<&str>,
    presented: Presented<'_>,
    password: Option<&str>,
) -> Result<Result<Confirmed, Refused>, Error> {
    let rows = match (presented, email, password) {
        (Presented::Token(t), _, _) => codes::lock_token(c, t).await?.into_iter().collect(),
        (Presented::Code(_), Some(email), Some(_)) => {
            let key = address_key(email);
            let id: Option<Uuid> = c
                .query_typed_opt(
                    "SELECT id FROM users WHERE email_key = $1 AND NOT email_verified",
                    &[(&key, Type::TEXT)],
                )
                .await?
                .map(|r| r.get(0));
            match id {
                Some(id) => codes::lock(c, Purpose::Signup, presented, Some(id), None).await?,
                None => Vec::new(),
            }
        }
        (Presented::Code(_), Some(email), None) => {
            let key = address_key(email);
            codes::lock(c, Purpose::EmailChange, presented, None, Some(&key)).await?
        }
        (Presented::Code(_), None, _) => Vec::new(),
    };
    // A token names its purpose: a sign-up's needs the password, the others take none, and a
    // reset's belongs to /password/reset.
    let rows: Vec<Held> = rows
        .into_iter()
        .filter(|r| match r.purpose {
            Purpose::Signup => password.is_some(),
            Purpose::EmailChange | Purpose::Revert => password.is_none(),
            Purpose::Reset => false,
        })
        .collect();
    let found = pick(c, keys, rows, presented).await?;
    let Some(held) = found else {
        if let Some(p) = password {
            hashing.matches(p, None).await;
        }
        return Ok(Err(Refused));
    };
    match held.purpose {
        Purpose::Signup => {
            let stored = password_hash_of(c, held.user_id).await?;
            let ok = match (password, stored) {
                (Some(p), Some(h)) => hashing.matches(p, Some(h)).await,
                (Some(p), None) => {
                    hashing.matches(p, None).await;
                    false
                }
                (None, _) => false,
            };
            if !ok {
                codes::record_wrong(c, &held).await?;
                return Ok(Err(Refused));
            }
            let email: String = c
                .query_typed_one(
                    "UPDATE users SET email_verified = true, signup_expires_at = NULL
                      WHERE id = $1 RETURNING email",
                    &[(&held.user_id, Type::UUID)],
                )
                .await?
                .get(0);
            codes::consume(c, held.user_id, Purpose::Signup).await?;
            c.execute_typed(
                "DELETE FROM username_reservations WHERE email_key = $1",
                &[(&crate::identifier::key(&email), Type::TEXT)],
            )
            .await?;
            Ok(Ok(Confirmed::SignedUp { user_id: held.user_id, email }))
        }
        Purpose::EmailChange => {
            let Some(new_email) = held.email.clone() else { return Ok(Err(Refused)) };
            let key = crate::identifier::key(&new_email);
            // The address may have been taken since the change was asked for: then the change
            // cannot complete, and its code is spent.
            let moved = c
                .query_typed_opt(
                    "UPDATE users SET email = $2, email_key = $3, email_verified = true
                      WHERE id = $1 AND disabled_at IS NULL
                        AND NOT EXISTS (SELECT 1 FROM users WHERE email_key = $3 AND id <> $1)
                      RETURNING email",
                    &[(&held.user_id, Type::UUID), (&new_email, Type::TEXT), (&key, Type::TEXT)],
                )
                .await?;
            codes::consume(c, held.user_id, Purpose::EmailChange).await?;
            match moved {
                Some(_) => {
                    Ok(Ok(Confirmed::EmailChanged { user_id: held.user_id, email: new_email }))
                }
                None => Ok(Err(Refused)),
            }
        }
        Purpose::Revert => {
            let Some(old) = held.email.clone() else { return Ok(Err(Refused)) };
            let key = crate::identifier::key(&old);
            let restored = c
                .query_typed_opt(
                    "UPDATE users SET email = $2, email_key = $3, email_verified = true
                      WHERE id = $1
                        AND NOT EXISTS (SELECT 1 FROM users WHERE email_key = $3 AND id <> $1)
                      RETURNING id",
                    &[(&held.user_id, Type::UUID), (&old, Type::TEXT), (&key, Type::TEXT)],
                )
                .await?;
            if restored.is_none() {
                codes::consume(c, held.user_id, Purpose::Revert).await?;
                return Ok(Err(Refused));
            }
            codes::void_all(c, held.user_id, None).await?;
            c.execute_typed(
                "UPDATE sessions SET ended_at = now(), end_reason = 'email_change_reverted'
                  WHERE user_id = $1 AND ended_at IS NULL",
                &[(&held.user_id, Type::UUID)],
            )
            .await?;
            Ok(Ok(Confirmed::Reverted { user_id: held.user_id, email: old }))
        }
        Purpose::Reset => Ok(Err(Refused)),
    }
}

/// `POST /password/reset`: a code (with `email`) or a link token, and the new password,
/// already checked against the policy. On success the password is replaced, every session
/// ends, the throttle count clears and the address counts as verified
/// ([`crate::users::reset_password`]). Runs in the caller's transaction.
///
/// # Errors
/// The database's; `Ok(Err(Refused))` for every refusal (a hash cut off by its deadline too).
pub async fn reset_password(
    c: &impl GenericClient,
    keys: &DataKey,
    hashing: &Hashing,
    email: Option<&str>,
    presented: Presented<'_>,
    new_password: &str,
) -> Result<Result<Uuid, Refused>, Error> {
    let rows = match (presented, email) {
        (Presented::Token(t), _) => codes::lock_token(c, t)
            .await?
            .into_iter()
            .filter(|r| r.purpose == Purpose::Reset)
            .collect(),
        (Presented::Code(_), Some(email)) => {
            let key = address_key(email);
            let id: Option<Uuid> = c
                .query_typed_opt("SELECT id FROM users WHERE email_key = $1", &[(&key, Type::TEXT)])
                .await?
                .map(|r| r.get(0));
            match id {
                Some(id) => codes::lock(c, Purpose::Reset, presented, Some(id), None).await?,
                None => Vec::new(),
            }
        }
        (Presented::Code(_), None) => Vec::new(),
    };
    let Some(held) = pick(c, keys, rows, presented).await? else { return Ok(Err(Refused)) };
    let Some(hash) = hashing.hash(new_password).await else { return Ok(Err(Refused)) };
    if !crate::users::reset_password(c, held.user_id, &hash).await? {
        return Ok(Err(Refused));
    }
    Ok(Ok(held.user_id))
}
