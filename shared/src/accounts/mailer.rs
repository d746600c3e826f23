//! What the mailer does with one job ([`Job`]): it looks the account up, decides the mail (if
//! any), applies the per-address limit ([`super::limits::count_address`]), mints the code and
//! link for it, commits, and only then sends. The same code runs in the mailer Lambda (one SQS
//! message at a time, a failed send retried by SQS, then its dead-letter queue) and inside
//! auth-local (an in-process queue, mail written to an outbox folder).
//!
//! A job whose send fails is retried with the same id: the limit does not count it again,
//! and its code is minted anew (the one in the unsent mail never left). A job that cannot be
//! read is logged and dropped (a retry could not read it either).
//!
//! # What it locks
//! Per mail, an advisory transaction lock on the address's keyed hash (the limit's count and
//! the code's minting happen under it), and the account's code row by the minting's upsert:
//! twenty resends at once mint and send one code, in one mail.

use std::sync::Arc;

use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::limits::{self, AddressLimit};
use super::{AccountConfig, Job, LinkAction, link};
use crate::account::MailAddress;
use crate::codes::{self, Purpose};
use crate::data_key::{DataKey, KeyVersion};
use crate::db::{Db, DbError};
use crate::mail::{Kind, Mail, MailError, Outbox, Sender};
use crate::users::{self, User};

/// Where mail goes: Amazon SES, or (auth-local) an outbox folder of `.eml` files.
pub enum Delivery {
    /// SES v2 SendEmail.
    Ses(aws_sdk_sesv2::Client),
    /// RFC 5322 files, `<n>.eml`.
    Outbox(Outbox),
}

/// Why a job failed (and should be retried).
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The data key could not be read.
    #[error(transparent)]
    Key(#[from] crate::data_key::DataKeyError),
    /// Sending failed.
    #[error(transparent)]
    Mail(#[from] MailError),
}

/// The mailer's parts, built once per container.
pub struct Mailer {
    /// The pool.
    pub db: Arc<Db>,
    /// The data key.
    pub keys: Arc<DataKey>,
    /// The account settings (TTLs, APP_NAME, the link base).
    pub cfg: AccountConfig,
    /// EMAIL_FROM and APP_NAME, for rendering.
    pub sender: Sender,
    /// Where mail goes.
    pub delivery: Delivery,
    /// The link base to use when EMAIL_LINK_BASE_URL is unset (auth-local's page).
    pub default_link_base: String,
}

/// One mail decided, with what its sending needs.
struct Planned {
    to: String,
    name: Option<String>,
    kind: Kind,
}

impl Mailer {
    fn base(&self) -> &str {
        self.cfg.link_base.as_deref().unwrap_or(&self.default_link_base)
    }

    /// Handles one job as its queue message's body. `Ok` when it is done (sent, suppressed,
    /// nothing to send, or unreadable); `Err` when it should be retried.
    ///
    /// # Errors
    /// [`MailerError`] for a failure a retry may cure (database, key, SES).
    pub async fn process(&self, body: &str) -> Result<(), MailerError> {
        let job: Job = match serde_json::from_str(body) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(event = "mail_failed", error = %e, "a mail job could not be read; dropped");
                return Ok(());
            }
        };
        let key = self.keys.current().await?;
        let planned = self.plan(&job, &key).await?;
        for p in planned {
            self.send(&job, p).await?;
        }
        Ok(())
    }

    /// Decides the job's mail and mints its codes (committed before anything is sent).
    async fn plan(&self, job: &Job, key: &Arc<KeyVersion>) -> Result<Vec<Planned>, MailerError> {
        let job = job.clone();
        let key = key.clone();
        let cfg = self.cfg.clone();
        let base = self.base().to_owned();
        let deadline = self.db.config().statement_timeout * 4;
        Ok(self
            .db
            .run_within(deadline, move |c| {
                let (job, key, cfg, base) = (job.clone(), key.clone(), cfg.clone(), base.clone());
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    let out = plan_in(&tx, &job, &key, &cfg, &base).await?;
                    tx.commit().await?;
                    Ok(out)
                })
            })
            .await?)
    }

    async fn send(&self, job: &Job, p: Planned) -> Result<(), MailerError> {
        let mail = Mail { to: p.to, name: p.name, kind: p.kind };
        let address = audit_address(&*self.keys.current().await?, &mail.to);
        let kind = job_name(job);
        match &self.delivery {
            Delivery::Ses(client) => {
                if let Err(e) = crate::mail::send_ses(client, &self.sender, &mail).await {
                    tracing::warn!(event = "mail_failed", job = kind, address, error = %e, "mail_failed");
                    return Err(e.into());
                }
            }
            Delivery::Outbox(outbox) => {
                let eml = self.sender.to_eml(&mail)?;
                outbox.write(&eml)?;
            }
        }
        tracing::info!(event = "mail_sent", job = kind, address, "mail_sent");
        Ok(())
    }
}

fn job_name(job: &Job) -> &'static str {
    match job {
        Job::Signup { .. } => "signup",
        Job::Resend { .. } => "resend",
        Job::Forgot { .. } => "forgot",
        Job::EmailChange { .. } => "email_change",
        Job::Notice { .. } => "notice",
    }
}

/// The address mail to `stored` goes to (domain as A-labels), `None` when it is not one mail
/// can be sent to (an account imported with such an address).
fn deliverable(stored: &str) -> Option<String> {
    match MailAddress::parse(stored) {
        Ok(a) => Some(a.ascii().to_owned()),
        Err(_) => None,
    }
}

/// How log lines name an address: 8 bytes of its keyed hash, in hex, over its lookup key (so
/// one address is one name in the logs whatever its case or form), never the address.
fn audit_address(key: &KeyVersion, to: &str) -> String {
    hex::encode(&key.mac("audit address", &[crate::identifier::key(to).as_bytes()])[..8])
}

/// Counts one mail to `to` for `job` under the limit; `false` (and the audit line) when it is
/// suppressed.
async fn allowed(
    c: &impl GenericClient,
    key: &KeyVersion,
    job: Uuid,
    kind: &str,
    to: &str,
) -> Result<bool, tokio_postgres::Error> {
    let hash = key.mac("mail address", &[crate::identifier::key(to).as_bytes()]);
    match limits::count_address(c, &hash, job).await? {
        AddressLimit::Send | AddressLimit::Retry => Ok(true),
        AddressLimit::Suppressed => {
            let address = audit_address(key, to);
            tracing::info!(event = "mail_suppressed", job = kind, address, "mail_suppressed");
            Ok(false)
        }
    }
}

/// Whom a mail to the account's own address greets: its full name or username, once the
/// address is proven. Before that (a sign-up not yet confirmed) the names were typed by whoever
/// typed the address, and a mail greeting with them would carry a stranger's text.
fn name_of(u: &User) -> Option<String> {
    u.email_verified.then(|| u.full_name.clone().unwrap_or_else(|| u.username.clone()))
}

async fn find_by_email(
    c: &impl GenericClient,
    email: &str,
) -> Result<Option<User>, tokio_postgres::Error> {
    let user = users::find_by_identifier(c, email).await?;
    Ok(user.filter(|u| crate::identifier::key(&u.email) == crate::identifier::key(email)))
}

async fn plan_in(
    c: &impl GenericClient,
    job: &Job,
    key: &KeyVersion,
    cfg: &AccountConfig,
    base: &str,
) -> Result<Vec<Planned>, tokio_postgres::Error> {
    let id = job.id();
    let kind = job_name(job);
    let mut out = Vec::new();
    match job {
        Job::Signup { email, .. } | Job::Resend { email, .. } => {
            let Some(u) = find_by_email(c, email).await?.filter(User::is_active) else {
                return Ok(out);
            };
            let Some(to) = deliverable(&u.email) else { return Ok(out) };
            let resend = matches!(job, Job::Resend { .. });
            if u.email_verified && resend {
                return Ok(out);
            }
            if !allowed(c, key, id, kind, &to).await? {
                return Ok(out);
            }
            let kind = if u.email_verified {
                Kind::AccountExists { forgot_link: link(base, LinkAction::ForgotPassword, None) }
            } else {
                let m = codes::mint(c, key, u.id, Purpose::Signup, None, cfg.verify_ttl_seconds)
                    .await?;
                use secrecy::ExposeSecret;
                Kind::VerifySignup {
                    code: m.code.expose_secret().to_owned(),
                    link: link(base, LinkAction::VerifyEmail, Some(m.token.expose_secret())),
                }
            };
            out.push(Planned { to, name: name_of(&u), kind });
        }
        Job::Forgot { identifier, .. } => {
            let Some(u) = users::find_by_identifier(c, identifier).await?.filter(User::is_active)
            else {
                return Ok(out);
            };
            let Some(to) = deliverable(&u.email) else { return Ok(out) };
            if !allowed(c, key, id, kind, &to).await? {
                return Ok(out);
            }
            let m = codes::mint(c, key, u.id, Purpose::Reset, None, cfg.reset_ttl_seconds).await?;
            use secrecy::ExposeSecret;
            out.push(Planned {
                to,
                name: name_of(&u),
                kind: Kind::ResetPassword {
                    code: m.code.expose_secret().to_owned(),
                    link: link(base, LinkAction::ResetPassword, Some(m.token.expose_secret())),
                },
            });
        }
        Job::EmailChange { user_id, new_email, .. } => {
            let Some(u) = users::find_by_id(c, *user_id).await?.filter(User::is_active) else {
                return Ok(out);
            };
            let taken = find_by_email(c, new_email).await?.is_some_and(|o| o.id != u.id);
            // The new address is not proven to be the account's: its mail greets nobody, so
            // no text of the requester's choosing reaches a stranger's mailbox.
            if let Some(to_new) = deliverable(new_email)
                && allowed(c, key, id, kind, &to_new).await?
            {
                let kind = if taken {
                    Kind::NewEmailInUse
                } else {
                    let m = codes::mint(
                        c,
                        key,
                        u.id,
                        Purpose::EmailChange,
                        Some(new_email),
                        cfg.verify_ttl_seconds,
                    )
                    .await?;
                    use secrecy::ExposeSecret;
                    Kind::VerifyNewEmail {
                        code: m.code.expose_secret().to_owned(),
                        link: link(base, LinkAction::ConfirmEmail, Some(m.token.expose_secret())),
                    }
                };
                out.push(Planned { to: to_new, name: None, kind });
            }
            // The old address hears of it, with a link that undoes the change: whether or not
            // the new address is free (so the requester's own mailbox tells nothing of it), and
            // never held back by the per-address limit (it is a security notice, and the way
            // back). When an earlier change's revert link still works it is kept, not replaced:
            // it restores the address before both, and a second change by whoever made the
            // first must not kill it.
            if let Some(to_old) = deliverable(&u.email) {
                let live = codes::expires_at(c, u.id, Purpose::Revert)
                    .await?
                    .is_some_and(|t| t > time::OffsetDateTime::now_utc());
                let revert_link = if live {
                    None
                } else {
                    let m = codes::mint(
                        c,
                        key,
                        u.id,
                        Purpose::Revert,
                        Some(&u.email),
                        cfg.verify_ttl_seconds,
                    )
                    .await?;
                    use secrecy::ExposeSecret;
                    Some(link(base, LinkAction::RevertEmail, Some(m.token.expose_secret())))
                };
                out.push(Planned {
                    to: to_old,
                    name: name_of(&u),
                    kind: Kind::EmailChangeNotice {
                        new_email: new_email.clone(),
                        revert_link,
                        valid_hours: cfg.verify_ttl_seconds.div_ceil(3600),
                    },
                });
            }
        }
        Job::Notice { user_id, what, .. } => {
            let Some(u) = users::find_by_id(c, *user_id).await? else { return Ok(out) };
            let Some(to) = deliverable(&u.email) else { return Ok(out) };
            // Security notices are neither held back by the limit nor counted by it: they
            // carry no code, and one about a change must not be lost to the mails before it.
            out.push(Planned {
                to,
                name: name_of(&u),
                kind: Kind::Notice { what: (*what).into() },
            });
        }
    }
    Ok(out)
}
