//! The account routes' parts for a test: a fresh database, the states the routes run with, an
//! in-process queue, and the real mailer writing an outbox folder, run when the test says so
//! ([`Accounts::deliver`]), so a test decides when mail goes out and reads it back parsed.

use std::path::PathBuf;
use std::sync::Arc;

use auth_shared::accounts::AccountConfig;
use auth_shared::accounts::mailer::{Delivery, Mailer};
use auth_shared::data_key::{DataKey, DataKeySource};
use auth_shared::mail::{Outbox, Queue, Sender};
use auth_shared::state::{AccountState, CodeState, EmailState, HashState, TokenState};
use tokio::sync::Mutex;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::app::Parts;

/// A mail from the outbox, parsed.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `To` header.
    pub to: String,
    /// The `Subject` header.
    pub subject: String,
    /// The text part, decoded.
    pub text: String,
    /// The HTML part, decoded.
    pub html: String,
    /// Every header name, in order.
    pub headers: Vec<String>,
}

impl Received {
    /// The 6-digit code the mail shows, if any.
    pub fn code(&self) -> Option<String> {
        self.text
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
    }

    /// The token in the mail's link (`#token=...`), if any.
    pub fn token(&self) -> Option<String> {
        let at = self.text.find("#token=")? + "#token=".len();
        let rest = &self.text[at..];
        let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    }
}

/// The parts of one test.
pub struct Accounts {
    /// Database, pool, signing keys, policy.
    pub parts: Parts,
    /// sign-up, resend, forgot.
    pub account: AccountState,
    /// verify-email, reset.
    pub code: CodeState,
    /// login and /password (REQUIRE_VERIFIED_EMAIL as configured, mailing as the routes do).
    pub login: HashState,
    /// /email.
    pub email: EmailState,
    /// The mailer.
    pub mailer: Arc<Mailer>,
    jobs: Mutex<UnboundedReceiver<String>>,
    /// The outbox folder.
    pub outbox: PathBuf,
}

impl Accounts {
    /// Fresh parts with the settings `cfg` (links point at `https://app.example/`).
    pub async fn new(cfg: AccountConfig) -> Self {
        let parts = Parts::new(8).await;
        let keys = Arc::new(DataKey::new(DataKeySource::Local(vec![42; 32].into())).await);
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let outbox =
            std::env::temp_dir().join(format!("testkit-outbox-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&outbox);
        let (queue, jobs) = Queue::local();
        let sender = Sender::new(&cfg.app_name, "Example <no-reply@example.com>").expect("sender");
        let mailer = Arc::new(Mailer {
            db: parts.db.clone(),
            keys: keys.clone(),
            cfg: cfg.clone(),
            sender,
            delivery: Delivery::Outbox(Outbox::open(outbox.clone()).expect("outbox")),
            default_link_base: "https://app.example/".into(),
        });
        let account = AccountState::new(parts.db.clone(), cfg.clone(), queue.clone(), parts.policy);
        let code = CodeState::new(account.clone(), keys);
        let login = HashState::new(
            parts.db.clone(),
            parts.keys.clone(),
            parts.tokens.clone(),
            parts.policy,
        )
        .requiring_verified_email(cfg.require_verified)
        .with_mail(queue);
        let token = TokenState::new(parts.db.clone(), parts.keys.clone(), parts.tokens.clone());
        let email = EmailState::new(token, account.clone());
        Self { parts, account, code, login, email, mailer, jobs: Mutex::new(jobs), outbox }
    }

    /// Runs the mailer on every job queued so far, all at once (as concurrent invocations
    /// would); returns how many jobs it took.
    pub async fn deliver(&self) -> usize {
        let mut jobs = Vec::new();
        {
            let mut rx = self.jobs.lock().await;
            while let Ok(job) = rx.try_recv() {
                jobs.push(job);
            }
        }
        let n = jobs.len();
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let mailer = self.mailer.clone();
                tokio::spawn(async move { mailer.process(&job).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("mailer task").expect("mailer job");
        }
        n
    }

    /// Every mail in the outbox, in the order written.
    pub fn mails(&self) -> Vec<Received> {
        let Ok(dir) = std::fs::read_dir(&self.outbox) else { return Vec::new() };
        let mut files: Vec<(u64, PathBuf)> = dir
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let n = name.strip_suffix(".eml")?.parse().ok()?;
                Some((n, e.path()))
            })
            .collect();
        files.sort();
        files.into_iter().map(|(_, p)| parse(&std::fs::read(p).expect("eml"))).collect()
    }

    /// The mails to `to` (its ASCII form).
    pub fn mails_to(&self, to: &str) -> Vec<Received> {
        self.mails().into_iter().filter(|m| m.to.eq_ignore_ascii_case(to)).collect()
    }
}

/// Parses one `.eml` file.
pub fn parse(eml: &[u8]) -> Received {
    let m = mailparse::parse_mail(eml).expect("an RFC 5322 message");
    let get = |name: &str| {
        m.headers
            .iter()
            .find(|h| h.get_key().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
            .unwrap_or_default()
    };
    let part = |ty: &str| {
        m.subparts
            .iter()
            .find(|p| p.ctype.mimetype == ty)
            .and_then(|p| p.get_body().ok())
            .unwrap_or_default()
    };
    Received {
        to: get("To"),
        subject: get("Subject"),
        text: part("text/plain"),
        html: part("text/html"),
        headers: m.headers.iter().map(|h| h.get_key()).collect(),
    }
}
