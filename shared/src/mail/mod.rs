//! Mail for the account lifecycle, from a mail already decided to bytes on their way: the
//! wording of each mail (a text and an HTML part carrying the same content), the RFC 5322
//! message a local outbox keeps as `.eml` files, Amazon SES v2 `SendEmail`, and the SQS queue
//! that hands jobs to the mailer.
//!
//! This module decides nothing: who gets mail, the codes and links in it, and what goes on
//! the queue are the caller's. It never touches the database.
//!
//! - [`render`]: [`Sender::render`], the subject, text and HTML of each [`Kind`].
//! - [`outbox`]: [`Sender::to_eml`] (RFC 5322 and MIME through lettre) and [`Outbox`], the
//!   numbered `.eml` files a local run writes instead of sending.
//! - [`ses`]: [`send_ses`] and [`ses_client`].
//! - [`queue`]: [`Queue`], jobs as JSON on SQS, or on a channel in a local run.
//!
//! Codes and links are secrets (whoever has one can confirm an address or set a password):
//! they appear in the mail's body and nowhere else, not in a header, an error or a `Debug`
//! output. The user's `name` is as typed (it may hold markup, quotes, CR/LF or bidi controls)
//! and so appears only in the body, HTML-escaped in the HTML part, its control characters
//! blanked and its text direction isolated from the sentence around it. Addresses may appear
//! in errors (SES names the address it refused), never in a subject.

pub mod outbox;
pub mod queue;
pub mod render;
pub mod ses;

#[cfg(test)]
mod tests;

use std::fmt;

use lettre::message::Mailbox;

pub use outbox::Outbox;
pub use queue::Queue;
pub use ses::{send_ses, ses_client};

/// What the mail is about; decides subject and wording. Codes and links are secrets: `Debug`
/// shows `<redacted>` in their place.
#[derive(Clone, PartialEq, Eq)]
pub enum Kind {
    /// Sign-up: a 6-digit code and a link to confirm the address.
    VerifySignup {
        /// The code to type, as minted (shown as given).
        code: String,
        /// The confirmation link, an absolute URL.
        link: String,
    },
    /// Someone signed up with an address that already has an account: say so, and how to
    /// reset the password (link to the forgot page).
    AccountExists {
        /// The forgot-password page, an absolute URL.
        forgot_link: String,
    },
    /// Password reset: a code and a link.
    ResetPassword {
        /// The code to type.
        code: String,
        /// The reset link, an absolute URL.
        link: String,
    },
    /// Email change: sent to the NEW address: a code and a link to confirm it.
    VerifyNewEmail {
        /// The code to type.
        code: String,
        /// The confirmation link, an absolute URL.
        link: String,
    },
    /// Email change requested for an address already used by another account (sent to that
    /// address): say so; no code.
    NewEmailInUse,
    /// Sent to the OLD address when an email change is requested: a link that reverts it (and
    /// ends every session) within the given hours. No link when an earlier change's link still
    /// works: that one, sent to the address before, restores the address of before both.
    EmailChangeNotice {
        /// The address the account is moving to (shown in the body only).
        new_email: String,
        /// The link that undoes the change, an absolute URL.
        revert_link: Option<String>,
        /// How long the revert link works, in hours.
        valid_hours: u64,
    },
    /// A security notice after a credential change; `what` is one of the [`Notice`] values.
    Notice {
        /// What changed.
        what: Notice,
    },
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A derived Debug would put codes and links in any log line that shows a Mail.
        const R: &str = "<redacted>";
        match self {
            Kind::VerifySignup { .. } => {
                f.debug_struct("VerifySignup").field("code", &R).field("link", &R).finish()
            }
            Kind::AccountExists { .. } => {
                f.debug_struct("AccountExists").field("forgot_link", &R).finish()
            }
            Kind::ResetPassword { .. } => {
                f.debug_struct("ResetPassword").field("code", &R).field("link", &R).finish()
            }
            Kind::VerifyNewEmail { .. } => {
                f.debug_struct("VerifyNewEmail").field("code", &R).field("link", &R).finish()
            }
            Kind::NewEmailInUse => f.write_str("NewEmailInUse"),
            Kind::EmailChangeNotice { new_email, valid_hours, .. } => f
                .debug_struct("EmailChangeNotice")
                .field("new_email", new_email)
                .field("revert_link", &R)
                .field("valid_hours", valid_hours)
                .finish(),
            Kind::Notice { what } => f.debug_struct("Notice").field("what", what).finish(),
        }
    }
}

/// The credential changes a security notice tells of ([`Kind::Notice`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Notice {
    /// The password was changed by the signed-in user.
    PasswordChanged,
    /// The password was set through a reset code or link.
    PasswordReset,
    /// The account's email address was changed (sent to the old and the new address alike).
    EmailChanged,
    /// An email change was undone through the revert link.
    EmailChangeReverted,
    /// Multi-factor authentication was turned on.
    MfaEnabled,
    /// Multi-factor authentication was turned off.
    MfaDisabled,
    /// A passkey was registered.
    PasskeyAdded,
    /// A passkey was removed.
    PasskeyRemoved,
}

/// One mail ready to send. `to` is an address already validated by the caller (ASCII local
/// part, domain as A-labels, i.e. pure ASCII); `name` is the user's username or full name as
/// typed (may contain anything: <, >, &, quotes, RTL marks, CR/LF) and appears ONLY in the
/// body (HTML-escaped in the HTML part), never in a header. `Debug` redacts the codes and
/// links of `kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address, bare (`user@example.com`, no display name). [`Sender::to_eml`]
    /// refuses one that is not printable ASCII with exactly one `@`.
    pub to: String,
    /// Whom to greet: `Hello {name},`, or `Hello,` when `None`.
    pub name: Option<String>,
    /// What the mail says.
    pub kind: Kind,
}

/// A rendered mail: the subject (one line, no name or address in it), the text part and the
/// HTML part (a whole HTML document). Both parts carry the same content. `Debug` shows the
/// subject and the parts' lengths, not the parts (they hold codes and links).
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line, without CR or LF.
    pub subject: String,
    /// The `text/plain` part, UTF-8, lines ending in `\n`.
    pub text: String,
    /// The `text/html` part, UTF-8, a whole document with inline styles.
    pub html: String,
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendered")
            .field("subject", &self.subject)
            .field("text_bytes", &self.text.len())
            .field("html_bytes", &self.html.len())
            .finish()
    }
}

/// The fixed settings: APP_NAME (appears in subject and body; it comes from configuration, but
/// is still escaped in HTML, and one with a control character, CR/LF among them, is refused at
/// construction) and EMAIL_FROM (an address, optionally `Name <addr>`).
#[derive(Clone, Debug)]
pub struct Sender {
    app_name: String,
    /// EMAIL_FROM parsed: the `From` of every message.
    from: Mailbox,
    /// The same, as SES's FromEmailAddress wants it: a non-ASCII display name as RFC 2047
    /// encoded-words.
    from_ses: String,
}

impl Sender {
    /// The sender named `app_name`, mailing from `from` (`addr` or `Name <addr>`, RFC 5322
    /// `mailbox`; a display name may be any UTF-8, the address must be printable ASCII with
    /// exactly one `@`).
    ///
    /// Errors: [`MailError::InvalidSetting`] for an empty app name or one holding a control
    /// character (CR/LF would split a subject header), and for a `from` that does not parse,
    /// holds more than one mailbox, or whose address is not ASCII.
    pub fn new(app_name: &str, from: &str) -> Result<Self, MailError> {
        // Checked before trimming: a trailing CR/LF is as much a refused setting as one inside.
        if app_name.chars().any(char::is_control) {
            return Err(MailError::InvalidSetting(
                "APP_NAME holds a control character (CR, LF, tab, ...)".into(),
            ));
        }
        if from.chars().any(char::is_control) {
            return Err(MailError::InvalidSetting(
                "EMAIL_FROM holds a control character (CR, LF, tab, ...)".into(),
            ));
        }
        let app_name = app_name.trim();
        if app_name.is_empty() {
            return Err(MailError::InvalidSetting("APP_NAME is empty".into()));
        }
        let from_setting = from.trim();
        // lettre's parser reads the mailboxes it can and ignores what follows them: a list
        // (`a@x, b@y`) is caught by counting, trailing junk by `trailing_junk`.
        let list: lettre::message::Mailboxes = from_setting.parse().map_err(|_| {
            MailError::InvalidSetting(format!(
                "EMAIL_FROM {from_setting:?} is not an address or `Name <address>`"
            ))
        })?;
        let mut boxes = list.into_iter();
        let (Some(mailbox), None) = (boxes.next(), boxes.next()) else {
            return Err(MailError::InvalidSetting(format!(
                "EMAIL_FROM {from_setting:?} must be exactly one mailbox"
            )));
        };
        let address = mailbox.email.to_string();
        check_address(&address).map_err(|why| {
            MailError::InvalidSetting(format!("EMAIL_FROM {from_setting:?}: the address {why}"))
        })?;
        if !from_setting.contains(&address) || trailing_junk(from_setting, &address) {
            return Err(MailError::InvalidSetting(format!(
                "EMAIL_FROM {from_setting:?} is not an address or `Name <address>`"
            )));
        }
        let from_ses = ses::from_address(&mailbox);
        Ok(Self { app_name: app_name.to_owned(), from: mailbox, from_ses })
    }

    /// The app name, as given (trimmed).
    pub fn app_name(&self) -> &str {
        &self.app_name
    }

    /// The From mailbox, as SES's FromEmailAddress takes it (`addr` or `Name <addr>`, a
    /// non-ASCII name in RFC 2047 encoded-words).
    pub fn from_address(&self) -> &str {
        &self.from_ses
    }
}

/// Whether `setting` has anything after the mailbox whose address is `address` but the `>`
/// that closes it: lettre's parser stops at the end of the first mailbox.
fn trailing_junk(setting: &str, address: &str) -> bool {
    let Some(at) = setting.rfind(address) else { return true };
    let rest = setting[at + address.len()..].trim();
    !(rest.is_empty() || rest == ">")
}

/// Checks the shape this module promises SES and the `.eml` writer: printable ASCII (no
/// space, no control character) with exactly one `@`, something on each side of it. Returns
/// why not, in words that do not repeat the address.
pub(crate) fn check_address(address: &str) -> Result<(), &'static str> {
    if address.is_empty() {
        return Err("is empty");
    }
    if !address.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("holds a space, a control character or a non-ASCII character");
    }
    let mut parts = address.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty() => Ok(()),
        (_, _, Some(_)) => Err("has more than one '@'"),
        _ => Err("is not of the form local@domain"),
    }
}

/// Why a mail could not be rendered, written, sent or queued. Messages never hold a code, a
/// token or a link (those are secrets), nor a mail's body; they may hold an address (the
/// sender's, or the recipient's when it is the one refused, as SES's own messages do).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// [`Sender::new`] refused APP_NAME or EMAIL_FROM; says which and why.
    #[error("invalid mail setting: {0}")]
    InvalidSetting(String),
    /// The message could not be built (a refused recipient address, or lettre's own error).
    #[error("the message could not be built: {0}")]
    Build(String),
    /// The outbox folder could not be created, read or written.
    #[error("outbox: {0}")]
    Io(#[from] std::io::Error),
    /// SES SendEmail failed: the AWS error code and message, or the transport's error chain.
    #[error("SES SendEmail failed: {0}")]
    Ses(String),
    /// SQS SendMessage failed (or, for a local queue, its receiver is gone).
    #[error("SQS SendMessage failed: {0}")]
    Sqs(String),
    /// A job could not be serialised to JSON.
    #[error("the job could not be serialised: {0}")]
    Json(#[from] serde_json::Error),
}

/// An AWS SDK error in words (SES and SQS alike): the AWS code and message when the service
/// answered, else the error and its sources (a timeout, a refused connection, a TLS failure).
/// Neither holds the request body, so no code, link or job reaches a log through it.
fn describe<E>(
    e: aws_sdk_sesv2::error::SdkError<E, aws_sdk_sesv2::config::http::HttpResponse>,
) -> String
where
    E: aws_sdk_sesv2::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_sesv2::error::ProvideErrorMetadata;
    if let Some(code) = e.code() {
        return format!("{code}: {}", e.message().unwrap_or("no message"));
    }
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    reason
}
