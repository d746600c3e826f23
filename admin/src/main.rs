//! `auth-admin`: the command an operator needs to run the service at all (there is no sign-up
//! endpoint): schema migrations and user management, against DATABASE_URL (or
//! DATABASE_SECRET_ARN, as the functions read it).
//!
//! Passwords are read from stdin (`--password-stdin`) or a hidden prompt, never from argv, where
//! any user on the machine could read them in the process list.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use auth_shared::account::NewAccount;
use auth_shared::config::{ConfigError, Env};
use auth_shared::db::DbConfig;
use auth_shared::db::{Db, DbError};
use auth_shared::password::{self, Policy};
use auth_shared::sessions::{self, Scope, SessionConfig, SessionInfo};
use auth_shared::tokio_postgres::error::SqlState;
use auth_shared::users::{self, NewUser, User};
use clap::{Parser, Subcommand};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

mod export;
mod import;

/// Migrations and user management for the auth service.
#[derive(Parser)]
#[command(name = "auth-admin", version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 done, 1 unexpected error, 2 usage, 3 already exists, \
4 no such user, 5 invalid input (e.g. a weak password), 6 database unreachable, \
7 configuration error.\nEnvironment: DATABASE_URL (or DATABASE_SECRET_ARN and DATABASE_HOST...), \
PBKDF2_ITERATIONS.";

#[derive(Subcommand)]
enum Command {
    /// Apply pending schema migrations (idempotent; safe against a live database).
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Import accounts from a CSV file (with a header row) or JSON Lines: username, email,
    /// password_hash, and optionally full_name, created_at, id. Refused rows go to a report
    /// file; exit code 5 when any row was refused.
    Import {
        /// The file (.csv, or .jsonl/.ndjson/.json; otherwise told by its first byte).
        file: std::path::PathBuf,
        /// Check every row (against the database too) without writing.
        #[arg(long)]
        dry_run: bool,
        /// What to do with an account that already exists (both keys naming it): keep it, or
        /// overwrite its name, hash and creation date from the file.
        #[arg(long, value_enum, default_value = "skip")]
        on_conflict: import::OnConflict,
        /// Where refused rows are written (JSON Lines: line, reason, record); default
        /// FILE.refused.jsonl.
        #[arg(long)]
        report: Option<std::path::PathBuf>,
    },
    /// Export every account, with its password hash, as JSON Lines (the import format). Second
    /// factors are never exported: no TOTP secret or recovery code leaves the database.
    Export {
        /// Write to this file (created readable by its owner only) instead of stdout.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the password comes from a hidden prompt or --password-stdin.
    Create {
        /// Username: 1 to 320 characters, no '@', no spaces.
        #[arg(long)]
        username: String,
        /// Email address.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        full_name: Option<String>,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// Leave the address unproven: the account cannot log in (while REQUIRE_VERIFIED_EMAIL
        /// holds) until its owner confirms it by mail or `user verify` marks it.
        #[arg(long)]
        unverified: bool,
    },
    /// Print one account: its fields, whether its address is verified, its state.
    Show {
        /// Username or email.
        user: String,
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Mark an account's address as verified (it can then log in; a pending sign-up's code is
    /// voided).
    Verify {
        /// Username or email.
        user: String,
    },
    /// Set a new password (ends every token issued before now).
    SetPassword {
        /// Username or email.
        user: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: its logins fail and its tokens stop working.
    Disable {
        /// Username or email.
        user: String,
    },
    /// Enable a disabled account.
    Enable {
        /// Username or email.
        user: String,
    },
    /// Delete an account (and its sessions).
    Delete {
        /// Username or email.
        user: String,
    },
    /// List accounts.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List an account's live sessions (--all: ended, expired and idle ones too, with when
    /// and why they ended, until they are purged a day later).
    Sessions {
        /// Username or email.
        user: String,
        /// Also list sessions that are over, with their end and its reason.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End every session of an account (its refresh tokens stop working at once, its access
    /// tokens at this service at once and elsewhere at their `exp`).
    SignOut {
        /// Username or email.
        user: String,
    },
    /// Show an account's second factors: TOTP (active, pending), recovery codes left, and
    /// whether its second step is locked. Never a secret or a code.
    Mfa {
        /// Username or email.
        user: String,
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Remove every second factor of an account (for a user who lost the phone and the
    /// recovery codes, once you know it is them): the TOTP factor, the recovery codes, waiting
    /// second steps and the daily lock; every session ends. The password stays.
    MfaReset {
        /// Username or email.
        user: String,
    },
    /// List an account's passkeys: id, name, registered, last used. Never key material.
    Passkeys {
        /// Username or email.
        user: String,
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Remove one passkey of an account (by the id `user passkeys` shows); its sessions stay.
    PasskeyRemove {
        /// Username or email.
        user: String,
        /// The passkey's id.
        id: String,
    },
}

/// A failure, with its exit code.
enum Failure {
    Exists(String),
    NoUser(String),
    Invalid(String),
    Unreachable(String),
    Config(ConfigError),
    Other(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Self::Other(_) => 1,
            Self::Exists(_) => 3,
            Self::NoUser(_) => 4,
            Self::Invalid(_) => 5,
            Self::Unreachable(_) => 6,
            Self::Config(_) => 7,
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Exists(m) | Self::NoUser(m) | Self::Invalid(m) | Self::Other(m) => m.clone(),
            Self::Unreachable(m) => format!("cannot reach the database: {m}"),
            Self::Config(e) => e.to_string(),
        }
    }
}

impl From<DbError> for Failure {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(m) => Self::Unreachable(m),
            DbError::Timeout => Self::Unreachable("no answer within DB_CONNECT_TIMEOUT_MS".into()),
            DbError::Query(e) => query(e),
        }
    }
}

/// A statement's error, for a one-shot command on a plain checkout (no retry: if the
/// connection broke, the operator runs the command again).
fn query(e: auth_shared::tokio_postgres::Error) -> Failure {
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => {
            Failure::Exists("a user with that username or email already exists".into())
        }
        Some(c) if *c == SqlState::CHECK_VIOLATION => {
            Failure::Invalid("the username or email does not have an acceptable shape".into())
        }
        _ if e.is_closed() || e.code().is_none() => {
            Failure::Unreachable(format!("the database connection failed: {e}"))
        }
        _ => Failure::Other(format!("database error: {e}")),
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("auth-admin: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("auth-admin: error: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}

async fn connect(env: &Env) -> Result<Db, Failure> {
    connect_with(env, 1).await
}

/// A pool of up to `connections` (import writes on two).
async fn connect_with(env: &Env, connections: usize) -> Result<Db, Failure> {
    let cfg = DbConfig::from_env(env, connections)?;
    Db::connect(cfg).await.map_err(|e| match e {
        auth_shared::db::DbSetupError::Config(c) => Failure::Config(c),
        other => Failure::Unreachable(other.to_string()),
    })
}

async fn run(command: Command) -> Result<(), Failure> {
    let env = Env::process();
    match command {
        Command::Migrate => {
            let db = connect(&env).await?;
            let mut client = db.checkout().await?;
            let report = auth_shared::migrate::run(&mut client)
                .await
                .map_err(|e| Failure::Other(e.to_string()))?;
            for (version, name) in &report.applied {
                println!("applied migration {version:04} {name}");
            }
            if report.applied.is_empty() {
                println!(
                    "schema is up to date ({} migrations applied earlier)",
                    report.already_applied
                );
            }
            calibrate(&mut client, &env).await
        }
        Command::User(cmd) => user(cmd, &env).await,
        Command::Import { file, dry_run, on_conflict, report } => {
            let report = report.unwrap_or_else(|| {
                let mut name = file.clone().into_os_string();
                name.push(".refused.jsonl");
                name.into()
            });
            let db = connect_with(&env, 2).await?;
            let opts = import::Options { dry_run, on_conflict, report: report.clone() };
            let t = import::run(&db, &file, &opts).await.map_err(|e| match e {
                import::ImportError::Input(m) => Failure::Invalid(m),
                e => Failure::Other(e.to_string()),
            })?;
            let verb = if dry_run { "would be " } else { "" };
            println!(
                "{} rows read: {} {verb}inserted, {} {verb}updated, {} already present, {} refused",
                t.read, t.inserted, t.updated, t.skipped, t.refused
            );
            if !dry_run {
                let mut client = db.checkout().await?;
                calibrate(&mut client, &env).await?;
            }
            if t.refused > 0 {
                return Err(Failure::Invalid(format!(
                    "{} row(s) refused; each is in {} with its line number and reason",
                    t.refused,
                    report.display()
                )));
            }
            Ok(())
        }
        Command::Export { output } => {
            let db = connect(&env).await?;
            let mut client = db.checkout().await?;
            let n = match &output {
                Some(path) => {
                    let mut o = std::fs::OpenOptions::new();
                    o.write(true).create(true).truncate(true);
                    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
                    let f = o
                        .open(path)
                        .map_err(|e| Failure::Other(format!("{}: {e}", path.display())))?;
                    export::export(&mut client, &mut std::io::BufWriter::new(f)).await
                }
                None => {
                    let stdout = std::io::stdout();
                    export::export(&mut client, &mut std::io::BufWriter::new(stdout.lock())).await
                }
            }
            .map_err(Failure::Other)?;
            eprintln!("auth-admin: exported {n} account(s)");
            eprintln!(
                "auth-admin: second factors are not exported (no TOTP secret or recovery code leaves the database): users who had one enrol again after an import"
            );
            Ok(())
        }
    }
}

/// Measures the failed-login cost of every kind of stored hash the accounts hold that has not
/// been measured yet (see `auth_shared::failure_floor`), and says what the floor is now.
async fn calibrate(
    client: &mut auth_shared::tokio_postgres::Client,
    env: &Env,
) -> Result<(), Failure> {
    let policy = Policy::from_env(env)?;
    let cal = auth_shared::failure_floor::calibrate(client, policy).await.map_err(query)?;
    match cal.classes.first() {
        None => println!("failed logins: every stored hash is of the current policy's kind"),
        Some((class, ratio)) => println!(
            "failed logins take at least {ratio:.2} policy hashes: the costliest of {} kind(s) \
             of stored hash is {class}",
            cal.classes.len()
        ),
    }
    Ok(())
}

async fn user(cmd: UserCommand, env: &Env) -> Result<(), Failure> {
    let policy = Policy::from_env(env)?;
    match cmd {
        UserCommand::Create { username, email, full_name, password_stdin, unverified } => {
            let account = NewAccount::parse(&username, &email, full_name.as_deref())
                .map_err(|e| Failure::Invalid(e.to_string()))?;
            let db = connect(env).await?;
            let password = read_password(password_stdin)?;
            let hash = password::hash(&password, policy);
            let new = NewUser {
                username: account.username.as_str(),
                email: account.email.as_str(),
                full_name: account.full_name.as_ref().map(|n| n.as_str()),
                password_hash: &hash,
                email_verified: !unverified,
            };
            let created = users::create(&**db.checkout().await?, &new).await.map_err(query)?;
            println!("created user {} <{}> (id {})", created.username, created.email, created.id);
            Ok(())
        }
        UserCommand::SetPassword { user, password_stdin } => {
            let db = connect(env).await?;
            let password = read_password(password_stdin)?;
            let hash = password::hash(&password, policy);
            let found =
                users::set_password(&**db.checkout().await?, &user, &hash).await.map_err(query)?;
            done(found, &user, "password set; tokens issued before now no longer work")
        }
        UserCommand::Show { user, json } => {
            let db = connect(env).await?;
            let Some(u) =
                users::find_by_identifier(&**db.checkout().await?, &user).await.map_err(query)?
            else {
                return Err(Failure::NoUser(format!("no user with username or email {user:?}")));
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&UserJson::from(&u)).unwrap_or_default()
                );
            } else {
                print_user(&u);
            }
            Ok(())
        }
        UserCommand::Verify { user } => {
            let db = connect(env).await?;
            let found = users::set_verified(&**db.checkout().await?, &user).await.map_err(query)?;
            done(found, &user, "email verified")
        }
        UserCommand::Disable { user } => set_disabled(env, user, true).await,
        UserCommand::Enable { user } => set_disabled(env, user, false).await,
        UserCommand::Delete { user } => {
            let db = connect(env).await?;
            let found = users::delete(&**db.checkout().await?, &user).await.map_err(query)?;
            done(found, &user, "deleted")
        }
        UserCommand::Sessions { user, all, json } => {
            let db = connect(env).await?;
            let client = db.checkout().await?;
            let found = users::find_by_identifier(&**client, &user).await.map_err(query)?;
            let Some(account) = found else { return done(false, &user, "") };
            let cfg = SessionConfig::from_env(env)?;
            let listed = sessions::list(&**client, account.id, &cfg, all).await.map_err(query)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&listed).unwrap_or_default());
            } else {
                print_sessions(&listed, all);
            }
            Ok(())
        }
        UserCommand::Mfa { user, json } => {
            let db = connect(env).await?;
            let client = db.checkout().await?;
            let found = users::find_by_identifier(&**client, &user).await.map_err(query)?;
            let Some(account) = found else { return done(false, &user, "") };
            let st = auth_shared::mfa::store::status(&**client, account.id).await.map_err(query)?;
            let locked =
                auth_shared::mfa::store::daily_lock(&**client, account.id).await.map_err(query)?;
            let confirmed = st.confirmed_at.and_then(|t| t.format(&Rfc3339).ok());
            if json {
                let doc = serde_json::json!({
                    "totp": {"enabled": st.enabled, "pending": st.pending, "confirmed_at": confirmed},
                    "recovery_codes_remaining": st.recovery_codes_remaining,
                    "passkeys": st.passkeys,
                    "second_step_locked_for_seconds": locked,
                });
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                let totp = match (st.enabled, st.pending) {
                    (true, _) => format!("active since {}", confirmed.unwrap_or_default()),
                    (false, true) => "pending confirmation".to_owned(),
                    (false, false) => "none".to_owned(),
                };
                println!("{user}:");
                println!("  totp:            {totp}");
                println!("  recovery codes:  {} left", st.recovery_codes_remaining);
                println!("  passkeys:        {}", st.passkeys);
                if let Some(s) = locked {
                    println!("  second step:     locked for {s} s (10 wrong codes in 24 hours)");
                }
            }
            Ok(())
        }
        UserCommand::MfaReset { user } => {
            let db = connect(env).await?;
            let mut client = db.checkout().await?;
            let found = users::find_by_identifier(&**client, &user).await.map_err(query)?;
            let Some(account) = found else { return done(false, &user, "") };
            let client: &mut auth_shared::tokio_postgres::Client = &mut client;
            let tx = client.transaction().await.map_err(query)?;
            auth_shared::throttle::lock_account(&tx, account.id).await.map_err(query)?;
            let had = auth_shared::mfa::store::remove_all(&tx, account.id).await.map_err(query)?;
            let ended = sessions::end(&tx, account.id, None, Scope::Global, "mfa_reset")
                .await
                .map_err(query)?;
            tx.commit().await.map_err(query)?;
            tracing::warn!(event = "mfa_disabled", user_id = %account.id, by = "auth-admin", "mfa_disabled");
            println!(
                "{user}: second factors removed{} ({ended} session{} ended)",
                if had { "" } else { " (there was no active one)" },
                if ended == 1 { "" } else { "s" }
            );
            Ok(())
        }
        UserCommand::Passkeys { user, json } => {
            let db = connect(env).await?;
            let client = db.checkout().await?;
            let found = users::find_by_identifier(&**client, &user).await.map_err(query)?;
            let Some(account) = found else { return done(false, &user, "") };
            let listed =
                auth_shared::passkeys::store::list(&**client, account.id).await.map_err(query)?;
            if json {
                let doc = serde_json::json!({ "passkeys": listed });
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else if listed.is_empty() {
                println!("{user}: no passkeys");
            } else {
                println!(
                    "{user}: {} passkey{}",
                    listed.len(),
                    if listed.len() == 1 { "" } else { "s" }
                );
                for p in &listed {
                    let at = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
                    println!(
                        "  {}  {:?}  registered {}  last used {}",
                        p.id,
                        p.name,
                        at(p.created_at),
                        p.last_used_at.map(at).unwrap_or_else(|| "never".into())
                    );
                }
            }
            Ok(())
        }
        UserCommand::PasskeyRemove { user, id } => {
            let passkey = uuid::Uuid::parse_str(id.trim()).map_err(|_| {
                Failure::Invalid(format!("{id:?} is not a passkey id (see `user passkeys`)"))
            })?;
            let db = connect(env).await?;
            let client = db.checkout().await?;
            let found = users::find_by_identifier(&**client, &user).await.map_err(query)?;
            let Some(account) = found else { return done(false, &user, "") };
            let removed = auth_shared::passkeys::store::remove(&**client, account.id, passkey)
                .await
                .map_err(query)?;
            if !removed {
                return Err(Failure::NoUser(format!("{user} has no passkey {passkey}")));
            }
            tracing::warn!(event = "passkey_removed", user_id = %account.id, passkey_id = %passkey, by = "auth-admin", "passkey_removed");
            println!("{user}: passkey {passkey} removed");
            Ok(())
        }
        UserCommand::SignOut { user } => {
            let db = connect(env).await?;
            let client = db.checkout().await?;
            let found = users::find_by_identifier(&**client, &user).await.map_err(query)?;
            let Some(account) = found else { return done(false, &user, "") };
            let ended = sessions::end(&**client, account.id, None, Scope::Global, "signed_out")
                .await
                .map_err(query)?;
            println!(
                "{user}: signed out ({ended} session{} ended)",
                if ended == 1 { "" } else { "s" }
            );
            Ok(())
        }
        UserCommand::List { json } => {
            let db = connect(env).await?;
            let all = users::list(&**db.checkout().await?).await.map_err(query)?;
            if json {
                let docs: Vec<UserJson> = all.iter().map(UserJson::from).collect();
                println!("{}", serde_json::to_string_pretty(&docs).unwrap_or_default());
            } else {
                print_table(&all);
            }
            Ok(())
        }
    }
}

async fn set_disabled(env: &Env, user: String, disabled: bool) -> Result<(), Failure> {
    let db = connect(env).await?;
    let found =
        users::set_disabled(&**db.checkout().await?, &user, disabled).await.map_err(query)?;
    done(found, &user, if disabled { "disabled" } else { "enabled" })
}

fn done(found: bool, user: &str, what: &str) -> Result<(), Failure> {
    if !found {
        return Err(Failure::NoUser(format!("no user with username or email {user:?}")));
    }
    println!("{user}: {what}");
    Ok(())
}

/// One account as `user list --json` prints it: its profile, and the two dates an operator
/// needs besides.
#[derive(serde::Serialize)]
struct UserJson<'a> {
    #[serde(flatten)]
    profile: users::Profile<'a>,
    #[serde(with = "time::serde::rfc3339")]
    password_changed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    disabled_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a User> for UserJson<'a> {
    fn from(u: &'a User) -> Self {
        Self {
            profile: users::Profile::from(u),
            password_changed_at: u.password_changed_at,
            disabled_at: u.disabled_at,
        }
    }
}

/// One account as `user show` prints it: a field a line.
fn print_user(u: &User) {
    let when = |t: Option<OffsetDateTime>, none: &str| {
        t.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_else(|| none.to_owned())
    };
    println!("id:                  {}", u.id);
    println!("username:            {}", u.username);
    println!("email:               {}", u.email);
    println!("email verified:      {}", if u.email_verified { "yes" } else { "no" });
    println!("full name:           {}", u.full_name.as_deref().unwrap_or("-"));
    println!("status:              {}", if u.is_active() { "active" } else { "disabled" });
    println!("created:             {}", when(Some(u.created_at), "-"));
    println!("password changed:    {}", when(Some(u.password_changed_at), "-"));
    println!("last login:          {}", when(u.last_login_at, "never"));
    if let Some(t) = u.disabled_at {
        println!("disabled:            {}", when(Some(t), "-"));
    }
}

/// The sessions as a table; with `over` (--all) the end of each that is over and why.
fn print_sessions(all: &[SessionInfo], over: bool) {
    let when = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let mut head = format!(
        "{:<36}  {:<8}  {:<25}  {:<25}  {:<25}",
        "SESSION", "STATUS", "STARTED", "LAST REFRESH", "ENDS"
    );
    if over {
        head.push_str("  REASON");
    }
    println!("{head}");
    for s in all {
        let ends = s.ended_at.map_or_else(|| when(s.expires_at), when);
        let mut line = format!(
            "{:<36}  {:<8}  {:<25}  {:<25}  {:<25}",
            s.id.to_string(),
            s.status,
            when(s.created_at),
            when(s.refreshed_at),
            ends
        );
        if over {
            let reason = match (s.end_reason.as_deref(), s.status.as_str()) {
                (Some(r), _) => r,
                (None, "active") => "-",
                (None, status) => status,
            };
            line.push_str("  ");
            line.push_str(reason);
        }
        println!("{}", line.trim_end());
    }
    let live = if over { "" } else { "live " };
    println!("({} {live}session{})", all.len(), if all.len() == 1 { "" } else { "s" });
}

fn print_table(all: &[User]) {
    let rows: Vec<[String; 6]> = all
        .iter()
        .map(|u| {
            [
                u.username.clone(),
                u.email.clone(),
                if u.email_verified { "yes".into() } else { "no".into() },
                u.full_name.clone().unwrap_or_default(),
                if u.is_active() { "active".into() } else { "disabled".into() },
                u.last_login_at
                    .and_then(|t| t.format(&Rfc3339).ok())
                    .unwrap_or_else(|| "never".into()),
            ]
        })
        .collect();
    let head = ["USERNAME", "EMAIL", "VERIFIED", "FULL NAME", "STATUS", "LAST LOGIN"];
    let width = |i: usize| {
        rows.iter().map(|r| r[i].chars().count()).chain([head[i].len()]).max().unwrap_or(0)
    };
    let widths: Vec<usize> = (0..6).map(width).collect();
    let line = |cells: [&str; 6]| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}", w = *w)).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(head);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
    }
    println!("({} user{})", rows.len(), if rows.len() == 1 { "" } else { "s" });
}

/// Reads a new password from stdin's first line or a hidden prompt (asked twice), and checks
/// its length.
fn read_password(from_stdin: bool) -> Result<String, Failure> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::Invalid(format!("reading the password from stdin: {e}")))?;
        line.strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&line)
            .to_owned()
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::Invalid("no terminal to prompt on; pass --password-stdin".into()));
        }
        let first = rpassword::prompt_password("New password: ")
            .map_err(|e| Failure::Invalid(format!("reading the password: {e}")))?;
        let again = rpassword::prompt_password("Repeat it: ")
            .map_err(|e| Failure::Invalid(format!("reading the password: {e}")))?;
        if first != again {
            return Err(Failure::Invalid("the two passwords differ".into()));
        }
        first
    };
    // The same policy as POST /password (the current password is not known here).
    password::check_new(&password, None)
        .map_err(|w| Failure::Invalid(format!("the password is too weak: {w}")))?;
    Ok(password)
}
