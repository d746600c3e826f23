//! Accounts people make and recover themselves: sign-up, email verification, password reset
//! and email change, with the mail they send. The routes are thin handlers over these steps:
//!
//! - [`signup`]: a new, unverified account (or, for an address already taken, nothing changes
//!   but a reserved username), and the job that mails it.
//! - [`confirm`]: checking a mailed code or link: a sign-up's (with its password), an email
//!   change's, a revert's; and the reset of a forgotten password.
//! - [`mailer`]: what the mailer does with each job: look the account up, apply the limits per
//!   address, mint the code and link, and send.
//! - [`limits`]: the per-source limit of the routes that mail, and the per-address limit of
//!   mail.
//!
//! Nothing a request answers says whether an address has an account: every request that may
//! mail puts exactly one job on the queue ([`Job`]), known address or not, and the mailer alone
//! decides what (if anything) that address receives.

pub mod confirm;
pub mod limits;
pub mod mailer;
pub mod signup;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{ConfigError, Env};

/// SIGNUP_MODE: who may sign up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignupMode {
    /// Anyone (the default).
    Open,
    /// Addresses whose domain is in SIGNUP_ALLOWED_DOMAINS (Unicode, lower case).
    Domains(Vec<String>),
    /// Nobody: only `auth-admin` makes accounts.
    Closed,
}

/// The account settings every account route and the mailer read.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// SIGNUP_MODE and SIGNUP_ALLOWED_DOMAINS.
    pub signup: SignupMode,
    /// REQUIRE_VERIFIED_EMAIL: an unverified account's login fails as a wrong password does.
    pub require_verified: bool,
    /// VERIFY_TTL_SECONDS: life of a sign-up or email-change code and link, of an email
    /// change's revert link, and of a sign-up's hold on its username.
    pub verify_ttl_seconds: u64,
    /// RESET_TTL_SECONDS: life of a reset code and link.
    pub reset_ttl_seconds: u64,
    /// APP_NAME: the name in mails.
    pub app_name: String,
    /// EMAIL_LINK_BASE_URL: the page mail links open (`None`: the caller's default, auth-local's
    /// own page).
    pub link_base: Option<String>,
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self {
            signup: SignupMode::Open,
            require_verified: true,
            verify_ttl_seconds: 86_400,
            reset_ttl_seconds: 3_600,
            app_name: "auth-service".into(),
            link_base: None,
        }
    }
}

impl AccountConfig {
    /// Reads SIGNUP_MODE, SIGNUP_ALLOWED_DOMAINS, REQUIRE_VERIFIED_EMAIL, VERIFY_TTL_SECONDS
    /// (300 to 604,800), RESET_TTL_SECONDS (300 to 86,400), APP_NAME and EMAIL_LINK_BASE_URL
    /// (an absolute `https://` URL, or `http://` for localhost, without a fragment).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let domains = env
            .optional("SIGNUP_ALLOWED_DOMAINS")?
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| {
                let ascii = idna::domain_to_ascii_strict(d).map_err(|_| {
                    ConfigError::new("SIGNUP_ALLOWED_DOMAINS", "lists a domain that is not valid")
                })?;
                Ok(idna::domain_to_unicode(&ascii).0)
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let signup = match env.optional("SIGNUP_MODE")?.as_deref() {
            None | Some("open") => SignupMode::Open,
            Some("closed") => SignupMode::Closed,
            Some("domains") if domains.is_empty() => {
                return Err(ConfigError::new(
                    "SIGNUP_ALLOWED_DOMAINS",
                    "is empty, and SIGNUP_MODE=domains needs at least one domain",
                ));
            }
            Some("domains") => SignupMode::Domains(domains),
            Some(_) => {
                return Err(ConfigError::new("SIGNUP_MODE", "must be open, domains or closed"));
            }
        };
        let require_verified = match env.optional("REQUIRE_VERIFIED_EMAIL")?.as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => {
                return Err(ConfigError::new("REQUIRE_VERIFIED_EMAIL", "must be true or false"));
            }
        };
        let app_name = env.optional("APP_NAME")?.unwrap_or_else(|| "auth-service".into());
        if app_name.chars().any(char::is_control) || app_name.chars().count() > 100 {
            return Err(ConfigError::new(
                "APP_NAME",
                "must be at most 100 characters, with no control character",
            ));
        }
        let link_base =
            env.optional("EMAIL_LINK_BASE_URL")?.map(|b| check_link_base(&b)).transpose()?;
        Ok(Self {
            signup,
            require_verified,
            verify_ttl_seconds: env.integer("VERIFY_TTL_SECONDS", 86_400, 300, 604_800)?,
            reset_ttl_seconds: env.integer("RESET_TTL_SECONDS", 3_600, 300, 86_400)?,
            app_name,
            link_base,
        })
    }

    /// Whether an address of `domain` (Unicode, lower case) may sign up.
    pub fn signup_allowed(&self, domain: &str) -> bool {
        match &self.signup {
            SignupMode::Open => true,
            SignupMode::Closed => false,
            SignupMode::Domains(list) => list.iter().any(|d| d == domain),
        }
    }
}

fn check_link_base(base: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| ConfigError::new("EMAIL_LINK_BASE_URL", why.to_owned());
    let url = url::Url::parse(base).map_err(|_| bad("is not an absolute URL"))?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        _ => return Err(bad("must be an https:// URL (http:// only for localhost)")),
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a fragment (the link's token goes there)"));
    }
    Ok(base.to_owned())
}

/// What a mail link asks its page to do (the link's `action` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    /// Confirm a sign-up (the page asks for the sign-up's password too).
    VerifyEmail,
    /// Set a new password.
    ResetPassword,
    /// Confirm a new address.
    ConfirmEmail,
    /// Undo an email change.
    RevertEmail,
    /// The forgot-password form (no token).
    ForgotPassword,
}

impl LinkAction {
    fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify-email",
            Self::ResetPassword => "reset-password",
            Self::ConfirmEmail => "confirm-email",
            Self::RevertEmail => "revert-email",
            Self::ForgotPassword => "forgot-password",
        }
    }
}

/// A mail link: `<base>?action=<action>#token=<token>` (`&action=` when the base has a query
/// already). The token travels in the fragment, which browsers never send to a server or in a
/// `Referer`; the page reads it and POSTs it, so a mail scanner's GET uses nothing up.
pub fn link(base: &str, action: LinkAction, token: Option<&str>) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{sep}action={}", action.as_str());
    if let Some(t) = token {
        out.push_str("#token=");
        out.push_str(t);
    }
    out
}

/// A security notice's subject.
pub use crate::mail::Notice;

/// One job for the mailer: the body of one queue message. `id` names the job, so a retried
/// job is neither counted twice by the per-address limit nor mailed again once sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// A sign-up for `email` (stored form): its code if the account waits for it, or the
    /// "an account exists" mail if the address already had one.
    Signup {
        /// The job's id.
        id: Uuid,
        /// The address, as stored.
        email: String,
    },
    /// Mail the code again, if the address has an account still unverified.
    Resend {
        /// The job's id.
        id: Uuid,
        /// The address, as stored.
        email: String,
    },
    /// A reset code, if the identifier names an enabled account.
    Forgot {
        /// The job's id.
        id: Uuid,
        /// An email or a username, as typed.
        identifier: String,
    },
    /// An email change: a code to the new address, a notice with a revert link to the old.
    EmailChange {
        /// The job's id.
        id: Uuid,
        /// The account.
        user_id: Uuid,
        /// The new address, as stored.
        new_email: String,
    },
    /// A security notice to the account's address.
    Notice {
        /// The job's id.
        id: Uuid,
        /// The account.
        user_id: Uuid,
        /// What changed.
        what: NoticeWhat,
    },
}

/// What a security notice reports (the serialisable twin of [`Notice`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NoticeWhat {
    /// The password was changed at /password.
    PasswordChanged,
    /// The password was reset by mail.
    PasswordReset,
    /// The address was changed (sent to the new one).
    EmailChanged,
    /// An email change was undone.
    EmailChangeReverted,
    /// A second factor was turned on.
    MfaEnabled,
    /// The second factor was turned off.
    MfaDisabled,
    /// A passkey was registered.
    PasskeyAdded,
    /// A passkey was removed.
    PasskeyRemoved,
}

impl From<NoticeWhat> for Notice {
    fn from(w: NoticeWhat) -> Self {
        match w {
            NoticeWhat::PasswordChanged => Notice::PasswordChanged,
            NoticeWhat::PasswordReset => Notice::PasswordReset,
            NoticeWhat::EmailChanged => Notice::EmailChanged,
            NoticeWhat::EmailChangeReverted => Notice::EmailChangeReverted,
            NoticeWhat::MfaEnabled => Notice::MfaEnabled,
            NoticeWhat::MfaDisabled => Notice::MfaDisabled,
            NoticeWhat::PasskeyAdded => Notice::PasskeyAdded,
            NoticeWhat::PasskeyRemoved => Notice::PasskeyRemoved,
        }
    }
}

impl Job {
    /// A new job id.
    pub fn new_id() -> Uuid {
        crate::random::uuid()
    }

    /// The job's id.
    pub fn id(&self) -> Uuid {
        match self {
            Self::Signup { id, .. }
            | Self::Resend { id, .. }
            | Self::Forgot { id, .. }
            | Self::EmailChange { id, .. }
            | Self::Notice { id, .. } => *id,
        }
    }
}

/// A required string member of an account route's body: present, 1 to `max` characters, no
/// NUL; the error names the member, never its value.
///
/// # Errors
/// [`crate::http::ApiError::InvalidRequest`].
pub fn required(
    name: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<String, crate::http::ApiError> {
    let invalid = |why: String| crate::http::ApiError::InvalidRequest(why);
    let v = value.ok_or_else(|| invalid(format!("The {name} member is missing.")))?;
    let n = v.chars().count();
    if n == 0 || n > max {
        return Err(invalid(format!("The {name} must be 1 to {max} characters.")));
    }
    if v.contains('\0') {
        return Err(invalid(format!("The {name} must not contain NUL characters.")));
    }
    Ok(v)
}

/// The longest link token accepted before it is looked at (a real one has 60 characters:
/// `<selector>.<secret>`, see [`crate::codes`]).
pub const MAX_TOKEN_CHARS: usize = 200;

/// What a body gave to prove it holds a mail: a code with the address it was sent to, or a
/// link's token. Owned, so a database retry can take it again; [`Given::parts`] is what
/// [`crate::codes`] looks up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Given {
    /// `{"email", "code"}`: the address as typed and the code.
    Code {
        /// The address, as typed.
        email: String,
        /// The code, as typed (its shape is judged as it is compared).
        code: String,
    },
    /// `{"token"}`: a link token.
    Token(String),
}

impl Given {
    /// Reads a body's `email`, `code` and `token` members: a code with its address, or a token
    /// alone. A code or token of the wrong length is 400 `invalid_code`, as a wrong one is (so
    /// letters, 7 digits or an empty code are refused like any wrong code); every other shape
    /// (both, neither, a code without its address, a token with one) is 400 `invalid_request`
    /// saying what to send.
    ///
    /// # Errors
    /// [`crate::http::ApiError::InvalidRequest`] and [`crate::http::ApiError::InvalidCode`].
    pub fn from_body(
        email: Option<String>,
        code: Option<String>,
        token: Option<String>,
    ) -> Result<Self, crate::http::ApiError> {
        use crate::http::ApiError;
        let invalid = |why: &str| ApiError::InvalidRequest(why.to_owned());
        match (email, code, token) {
            (Some(email), Some(code), None) => Ok(Self::Code {
                email: required("email", Some(email), crate::identifier::MAX_IDENTIFIER_CHARS)?,
                code: required("code", Some(code), 100).map_err(|_| ApiError::InvalidCode)?,
            }),
            (None, None, Some(token)) => Ok(Self::Token(
                required("token", Some(token), MAX_TOKEN_CHARS)
                    .map_err(|_| ApiError::InvalidCode)?,
            )),
            (_, Some(_), Some(_)) => Err(invalid("Give a code (with email) or a token, not both.")),
            (None, Some(_), None) => Err(invalid("A code needs the email it was sent to.")),
            (Some(_), None, None) => {
                Err(invalid("Give the code the mail carried, or its link's token."))
            }
            (Some(_), None, Some(_)) => {
                Err(invalid("A token needs no email; send the token alone."))
            }
            (None, None, None) => Err(invalid("Give a code (with email) or a token.")),
        }
    }

    /// The address a code names (`None` for a token), and what to look up.
    #[must_use]
    pub fn parts(&self) -> (Option<&str>, crate::codes::Presented<'_>) {
        match self {
            Self::Code { email, code } => (Some(email), crate::codes::Presented::Code(code)),
            Self::Token(token) => (None, crate::codes::Presented::Token(token)),
        }
    }
}

/// Queues a security notice of `what` to `user`'s address, when the function has a mail queue;
/// the change it reports stands without it (a queue that refuses is logged, not answered).
pub async fn notify(queue: Option<&crate::mail::Queue>, user_id: Uuid, what: NoticeWhat) {
    if let Some(queue) = queue {
        let job = Job::Notice { id: Job::new_id(), user_id, what };
        if let Err(e) = enqueue(queue, &job).await {
            tracing::error!(error = %e, "a security notice could not be queued");
        }
    }
}

/// Puts `job` on the mail queue; a queue that cannot take it is 503 (nothing was promised yet
/// that the client cannot ask for again).
///
/// # Errors
/// [`crate::http::ApiError::ServiceUnavailable`].
pub async fn enqueue(queue: &crate::mail::Queue, job: &Job) -> Result<(), crate::http::ApiError> {
    queue.send(job).await.map_err(|e| {
        crate::http::ApiError::ServiceUnavailable(format!("the mail queue refused a job: {e}"))
    })
}

/// An address as a request names an account by it: its stored form when it is a deliverable
/// address (an IDN typed as A-labels finds the account stored in Unicode); else as typed, when
/// it still has the shape of an address (an imported account's); else 400.
///
/// # Errors
/// [`crate::http::ApiError::InvalidRequest`] for text that is no address at all (no `@`,
/// control characters, over 320 characters).
pub fn stored_address(email: &str) -> Result<String, crate::http::ApiError> {
    if let Ok(a) = crate::account::MailAddress::parse(email) {
        return Ok(a.as_str().to_owned());
    }
    crate::account::Email::parse(email)
        .map(|e| e.as_str().to_owned())
        .map_err(|e| crate::http::ApiError::InvalidRequest(format!("The {e}.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_gives_a_code_with_its_address_or_a_token_alone() {
        use crate::http::ApiError;
        let s = |v: &str| Some(v.to_owned());
        let code = Given::from_body(s("ann@example.com"), s("123456"), None).unwrap();
        assert_eq!(code.parts().0, Some("ann@example.com"));
        assert!(matches!(code.parts().1, crate::codes::Presented::Code("123456")));
        let token = Given::from_body(None, None, s("sel.secret")).unwrap();
        assert!(matches!(token.parts(), (None, crate::codes::Presented::Token("sel.secret"))));
        // Codes and tokens of no length or too long are refused as wrong ones are.
        for (code, token) in [(s(""), None), (Some("1".repeat(101)), None)] {
            let got = Given::from_body(s("ann@example.com"), code, token);
            assert!(matches!(got, Err(ApiError::InvalidCode)), "{got:?}");
        }
        for token in ["", &"t".repeat(MAX_TOKEN_CHARS + 1)] {
            let got = Given::from_body(None, None, s(token));
            assert!(matches!(got, Err(ApiError::InvalidCode)), "{got:?}");
        }
        // Every other shape says what to send.
        for (email, code, token) in [
            (s("a@b.c"), s("123456"), s("t")),
            (None, s("123456"), s("t")),
            (None, s("123456"), None),
            (s("a@b.c"), None, None),
            (s("a@b.c"), None, s("t")),
            (None, None, None),
        ] {
            let got = Given::from_body(email.clone(), code.clone(), token.clone());
            assert!(
                matches!(&got, Err(ApiError::InvalidRequest(why)) if why.starts_with("Give") || why.starts_with("A ")),
                "{email:?} {code:?} {token:?}: {got:?}"
            );
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn settings_are_checked() {
        let d = AccountConfig::from_env(&env(&[])).unwrap();
        assert_eq!(d.signup, SignupMode::Open);
        assert!(d.require_verified);
        assert_eq!((d.verify_ttl_seconds, d.reset_ttl_seconds), (86_400, 3_600));
        let c = AccountConfig::from_env(&env(&[
            ("SIGNUP_MODE", "domains"),
            ("SIGNUP_ALLOWED_DOMAINS", "Example.COM, bücher.de,xn--caf-dma.fr"),
        ]))
        .unwrap();
        assert_eq!(
            c.signup,
            SignupMode::Domains(vec!["example.com".into(), "bücher.de".into(), "café.fr".into()])
        );
        assert!(c.signup_allowed("bücher.de") && !c.signup_allowed("example.org"));
        for (pairs, var) in [
            (vec![("SIGNUP_MODE", "Open")], "SIGNUP_MODE"),
            (vec![("SIGNUP_MODE", "domains")], "SIGNUP_ALLOWED_DOMAINS"),
            (vec![("SIGNUP_ALLOWED_DOMAINS", "a_b..c")], "SIGNUP_ALLOWED_DOMAINS"),
            (vec![("REQUIRE_VERIFIED_EMAIL", "yes")], "REQUIRE_VERIFIED_EMAIL"),
            (vec![("VERIFY_TTL_SECONDS", "10")], "VERIFY_TTL_SECONDS"),
            (vec![("RESET_TTL_SECONDS", "1e9")], "RESET_TTL_SECONDS"),
            (vec![("APP_NAME", "a\r\nBcc: x")], "APP_NAME"),
            (vec![("EMAIL_LINK_BASE_URL", "app.example.com")], "EMAIL_LINK_BASE_URL"),
            (vec![("EMAIL_LINK_BASE_URL", "http://app.example.com")], "EMAIL_LINK_BASE_URL"),
            (vec![("EMAIL_LINK_BASE_URL", "https://a.example/#x")], "EMAIL_LINK_BASE_URL"),
            (vec![("EMAIL_LINK_BASE_URL", "javascript:alert(1)")], "EMAIL_LINK_BASE_URL"),
        ] {
            let e = AccountConfig::from_env(&env(&pairs)).unwrap_err();
            assert_eq!(e.var, var, "{pairs:?}: {e}");
        }
        assert!(
            AccountConfig::from_env(&env(&[("EMAIL_LINK_BASE_URL", "http://localhost:3000/app")]))
                .is_ok()
        );
    }

    #[test]
    fn links_carry_the_token_in_the_fragment_only() {
        let l = link("https://app.example/account", LinkAction::ResetPassword, Some("s.t"));
        assert_eq!(l, "https://app.example/account?action=reset-password#token=s.t");
        let l = link("https://app.example/a?x=1", LinkAction::VerifyEmail, Some("s.t"));
        assert_eq!(l, "https://app.example/a?x=1&action=verify-email#token=s.t");
        assert_eq!(
            link("https://app.example/", LinkAction::ForgotPassword, None),
            "https://app.example/?action=forgot-password"
        );
    }

    #[test]
    fn jobs_round_trip_as_json() {
        let id = Job::new_id();
        let job = Job::Forgot { id, identifier: "ann".into() };
        let text = serde_json::to_string(&job).unwrap();
        assert!(text.contains(r#""job":"forgot""#), "{text}");
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
        assert_eq!(job.id(), id);
        assert!(serde_json::from_str::<Job>(r#"{"job":"nope","id":"x"}"#).is_err());
    }
}
