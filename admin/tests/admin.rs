//! `auth-admin` exercised as a process against a real PostgreSQL: migrations (idempotent, and
//! safe when several run at once), user management, and the exit code of every failure.

use std::process::Stdio;

use auth_shared::password::{self, Verdict};
use serde_json::Value;
use testkit::TestDb;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_auth-admin");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn admin(url: Option<&str>, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PBKDF2_ITERATIONS", "100000")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(url) = url {
        cmd.env("DATABASE_URL", url);
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // A command that refuses its arguments exits without reading stdin: a closed pipe
        // is its answer, not a test failure (its exit code and stderr are checked below).
        match pipe.write_all(input.as_bytes()).await {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.unwrap(),
        }
        drop(pipe);
    }
    let out = child.wait_with_output().await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

async fn stored_hash(db: &TestDb, username: &str) -> String {
    db.client()
        .await
        .query_one("SELECT password_hash FROM users WHERE username = $1", &[&username])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn migrate_applies_once_and_then_is_a_no_op() {
    let db = TestDb::empty().await;
    let first = admin(Some(&db.url), &["migrate"], None).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stdout.contains("applied migration 0001 users"), "{}", first.stdout);
    for m in auth_shared::migrate::MIGRATIONS {
        let line = format!("applied migration {:04} {}", m.version, m.name);
        assert!(first.stdout.contains(&line), "{}", first.stdout);
    }
    let again = admin(Some(&db.url), &["migrate"], None).await;
    assert_eq!(again.code, 0);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    let rows = db
        .client()
        .await
        .query("SELECT version FROM schema_migrations ORDER BY 1", &[])
        .await
        .unwrap();
    let all: Vec<i32> = auth_shared::migrate::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(), all);
}

#[tokio::test]
async fn concurrent_migrations_do_not_collide() {
    let db = TestDb::empty().await;
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { admin(Some(&url), &["migrate"], None).await })
        })
        .collect();
    let mut runs = Vec::new();
    for h in handles {
        runs.push(h.await.unwrap());
    }
    let mut applied = 0;
    for r in &runs {
        assert_eq!(r.code, 0, "stdout {} stderr {}", r.stdout, r.stderr);
        applied += r.stdout.matches("applied migration").count();
    }
    assert_eq!(
        applied,
        auth_shared::migrate::MIGRATIONS.len(),
        "each migration applied exactly once across six concurrent runs"
    );
}

#[tokio::test]
async fn user_lifecycle() {
    let db = TestDb::new().await;
    let url = Some(db.url.as_str());
    let r = admin(
        url,
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--email",
            "alice@example.com",
            "--full-name",
            "Alice A",
            "--password-stdin",
        ],
        Some("first password 1\n"),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("created user alice <alice@example.com>"), "{}", r.stdout);
    let hash = stored_hash(&db, "alice").await;
    assert!(hash.starts_with("$pbkdf2-sha256$i=100000,l=32$"), "{hash}");
    assert!(matches!(
        password::verify("first password 1", &hash, testkit::pg::TEST_POLICY),
        Verdict::Match { .. }
    ));

    let r = admin(
        url,
        &["user", "set-password", "ALICE@example.com", "--password-stdin"],
        Some("second password 2\r\n"),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let hash = stored_hash(&db, "alice").await;
    assert!(matches!(
        password::verify("second password 2", &hash, testkit::pg::TEST_POLICY),
        Verdict::Match { .. }
    ));
    assert_eq!(
        password::verify("first password 1", &hash, testkit::pg::TEST_POLICY),
        Verdict::Mismatch
    );

    assert_eq!(admin(url, &["user", "disable", "alice"], None).await.code, 0);
    let list = admin(url, &["user", "list", "--json"], None).await;
    let users: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(users[0]["username"], "alice");
    assert_eq!(users[0]["full_name"], "Alice A");
    assert!(users[0]["disabled_at"].is_string());
    assert!(!list.stdout.contains("pbkdf2"), "no hash in the listing");
    assert_eq!(admin(url, &["user", "enable", "alice"], None).await.code, 0);
    let table = admin(url, &["user", "list"], None).await;
    assert!(
        table.stdout.contains("alice")
            && table.stdout.contains("active")
            && table.stdout.contains("(1 user)"),
        "{}",
        table.stdout
    );

    assert_eq!(admin(url, &["user", "delete", "alice"], None).await.code, 0);
    let empty: Value =
        serde_json::from_str(&admin(url, &["user", "list", "--json"], None).await.stdout).unwrap();
    assert_eq!(empty, Value::Array(vec![]));
}

#[tokio::test]
async fn failures_have_their_exit_codes() {
    let db = TestDb::new().await;
    let url = Some(db.url.as_str());
    let create = |u: &'static str, e: &'static str| {
        ["user", "create", "--username", u, "--email", e, "--password-stdin"]
    };
    assert_eq!(
        admin(url, &create("alice", "alice@example.com"), Some("long enough\n")).await.code,
        0
    );

    // (DATABASE_URL, arguments, stdin, exit code, message)
    type Case<'a> = (Option<&'a str>, Vec<&'a str>, Option<&'a str>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (
            url,
            create("ALICE", "other@example.com").to_vec(),
            Some("long enough\n"),
            3,
            "already exists",
        ),
        (
            url,
            create("bob", "Alice@Example.com").to_vec(),
            Some("long enough\n"),
            3,
            "already exists",
        ),
        (
            url,
            create("bob", "bob@example.com").to_vec(),
            Some("short\n"),
            5,
            "at least 8 characters",
        ),
        (url, create("bob", "bob@example.com").to_vec(), Some(""), 5, "at least 8 characters"),
        (
            url,
            create("bo@b", "bob@example.com").to_vec(),
            Some("long enough\n"),
            5,
            "must not contain '@'",
        ),
        (url, create("bo b", "bob@example.com").to_vec(), Some("long enough\n"), 5, "spaces"),
        (
            url,
            create("bo\u{200b}b", "bob@example.com").to_vec(),
            Some("long enough\n"),
            5,
            "U+200B",
        ),
        (
            url,
            create("bob\u{202e}", "bob@example.com").to_vec(),
            Some("long enough\n"),
            5,
            "U+202E",
        ),
        (url, create("b\u{ad}ob", "bob@example.com").to_vec(), Some("long enough\n"), 5, "U+00AD"),
        (
            url,
            create("bo\u{2060}b", "bob@example.com").to_vec(),
            Some("long enough\n"),
            5,
            "U+2060",
        ),
        (url, create("bob", "not-an-email").to_vec(), Some("long enough\n"), 5, "not an email"),
        (
            url,
            vec!["user", "create", "--username", "bob", "--email", "bob@example.com"],
            None,
            5,
            "--password-stdin",
        ),
        (
            url,
            vec!["user", "set-password", "nobody", "--password-stdin"],
            Some("long enough\n"),
            4,
            "no user",
        ),
        (url, vec!["user", "disable", "nobody"], None, 4, "no user"),
        (url, vec!["user", "enable", "nobody@example.com"], None, 4, "no user"),
        (url, vec!["user", "delete", "nobody"], None, 4, "no user"),
        (
            Some("postgres://u:pw-in-url@127.0.0.1:1/x?sslmode=disable"),
            vec!["user", "list"],
            None,
            6,
            "cannot reach the database",
        ),
        (None, vec!["user", "list"], None, 7, "DATABASE_URL is not set"),
        (
            url,
            vec![
                "user",
                "create",
                "--username",
                "bob",
                "--email",
                "b@x.y",
                "--password",
                "argv-password",
            ],
            None,
            2,
            "unexpected argument",
        ),
        (url, vec!["frobnicate"], None, 2, "unrecognized subcommand"),
    ];
    for (url, args, stdin, code, text) in cases {
        let r = admin(url, &args, stdin).await;
        assert_eq!(r.code, code, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(text), "{args:?}: wanted {text:?} in {}", r.stderr);
        assert!(!r.stderr.contains("pw-in-url") && !r.stderr.contains("panicked"), "{}", r.stderr);
    }
}

#[tokio::test]
async fn the_hidden_prompt_asks_twice_on_a_terminal() {
    // `script` gives the command a pseudo-terminal, as an operator's shell would.
    let db = TestDb::new().await;
    let cmd = format!("{BIN} user create --username carol --email carol@example.com");
    let run = |input: &'static str| {
        let mut c = Command::new("script");
        c.args(["-qec", &cmd, "/dev/null"])
            .env("DATABASE_URL", &db.url)
            .env("PBKDF2_ITERATIONS", "100000")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        async move {
            let mut child = c.spawn().unwrap();
            let mut pipe = child.stdin.take().unwrap();
            for line in input.lines() {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                pipe.write_all(format!("{line}\n").as_bytes()).await.unwrap();
            }
            let out = child.wait_with_output().await.unwrap();
            (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
        }
    };
    let (code, out) = run("one password\ntwo password").await;
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("differ"), "{out}");
    let (code, out) = run("typed password\ntyped password").await;
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("typed password"), "the prompt does not echo: {out}");
    let hash = stored_hash(&db, "carol").await;
    assert!(matches!(
        password::verify("typed password", &hash, testkit::pg::TEST_POLICY),
        Verdict::Match { .. }
    ));
}

#[tokio::test]
async fn sessions_are_listed_and_signed_out_and_end_with_password_changes() {
    let db = TestDb::new().await;
    let id = db.create_user("sam", "sam@example.com", "correct horse battery staple").await;
    for _ in 0..2 {
        testkit::events::session_tokens(&db, id, "sam").await;
    }
    let listed =
        admin(Some(&db.url), &["user", "sessions", "Sam@Example.com", "--json"], None).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let all: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|s| s["status"] == "active" && s["id"].is_string()), "{all:?}");
    let table = admin(Some(&db.url), &["user", "sessions", "sam"], None).await;
    assert!(
        table.stdout.contains("active") && table.stdout.contains("(2 live sessions)"),
        "{}",
        table.stdout
    );

    let out = admin(Some(&db.url), &["user", "sign-out", "sam"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("2 sessions ended"), "{}", out.stdout);
    // An operator checking that the sign-out worked sees no live session...
    let listed = admin(Some(&db.url), &["user", "sessions", "sam", "--json"], None).await;
    let live: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    assert!(live.is_empty(), "{live:?}");
    let table = admin(Some(&db.url), &["user", "sessions", "sam"], None).await;
    assert!(table.stdout.contains("(0 live sessions)"), "{}", table.stdout);
    // ...and with --all, the ended ones with when and why.
    let listed = admin(Some(&db.url), &["user", "sessions", "sam", "--all", "--json"], None).await;
    let all: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        all.iter().all(|s| s["status"] == "ended"
            && s["end_reason"] == "signed_out"
            && s["ended_at"].is_string()),
        "{all:?}"
    );
    let table = admin(Some(&db.url), &["user", "sessions", "sam", "--all"], None).await;
    assert!(
        table.stdout.contains("REASON") && table.stdout.matches("signed_out").count() == 2,
        "{}",
        table.stdout
    );

    // set-password and disable end every session too.
    for (args, reason) in [
        (vec!["user", "set-password", "sam", "--password-stdin"], "password_changed"),
        (vec!["user", "disable", "sam"], "disabled"),
    ] {
        testkit::events::session_tokens(&db, id, "sam").await;
        let out = admin(Some(&db.url), &args, Some("a brand new passphrase\n")).await;
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        let listed = admin(Some(&db.url), &["user", "sessions", "sam", "--json"], None).await;
        let live: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
        assert!(live.is_empty(), "{args:?}: {live:?}");
        let listed =
            admin(Some(&db.url), &["user", "sessions", "sam", "--all", "--json"], None).await;
        let all: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
        assert!(all.iter().all(|s| s["status"] == "ended"), "{args:?}: {all:?}");
        assert!(all.iter().any(|s| s["end_reason"] == reason), "{args:?}: {all:?}");
    }
    let unknown = admin(Some(&db.url), &["user", "sessions", "nobody"], None).await;
    assert_eq!(unknown.code, 4);
    let unknown = admin(Some(&db.url), &["user", "sign-out", "nobody"], None).await;
    assert_eq!(unknown.code, 4);
}

#[tokio::test]
async fn new_passwords_follow_the_service_policy() {
    let db = TestDb::new().await;
    db.create_user("tia", "tia@example.com", "correct horse battery staple").await;
    for weak in ["password1", "qwertyuiop", "Iloveyou!"] {
        let out = admin(
            Some(&db.url),
            &["user", "set-password", "tia", "--password-stdin"],
            Some(&format!("{weak}\n")),
        )
        .await;
        assert_eq!(out.code, 5, "{weak}: {}", out.stdout);
        assert!(out.stderr.contains("commonly used or breached"), "{weak}: {}", out.stderr);
    }
}

#[tokio::test]
async fn the_verification_state_is_shown_and_an_operator_can_verify() {
    let db = TestDb::new().await;
    let url = Some(db.url.as_str());
    let create = |name: &'static str, extra: &'static [&'static str]| {
        let email = format!("{name}@example.com");
        async move {
            let mut args = vec!["user", "create", "--username", name, "--email", &email];
            args.extend_from_slice(extra);
            args.push("--password-stdin");
            admin(url, &args, Some("a fine password 1\n")).await
        }
    };
    assert_eq!(create("plain", &[]).await.code, 0);
    let r = create("pending", &["--unverified"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);

    let show = admin(url, &["user", "show", "plain"], None).await;
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(show.stdout.contains("email verified:      yes"), "{}", show.stdout);
    assert!(!show.stdout.contains("pbkdf2"), "no hash: {}", show.stdout);
    let show = admin(url, &["user", "show", "PENDING@example.com"], None).await;
    assert!(show.stdout.contains("email verified:      no"), "{}", show.stdout);
    let json = admin(url, &["user", "show", "pending", "--json"], None).await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        (v["username"].as_str(), v["email_verified"].as_bool()),
        (Some("pending"), Some(false))
    );
    let table = admin(url, &["user", "list"], None).await;
    assert!(table.stdout.contains("VERIFIED"), "{}", table.stdout);

    let r = admin(url, &["user", "verify", "pending"], None).await;
    assert_eq!((r.code, r.stdout.trim()), (0, "pending: email verified"), "{}", r.stderr);
    let json = admin(url, &["user", "show", "pending", "--json"], None).await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["email_verified"], true);

    for args in [["user", "show", "nobody"], ["user", "verify", "nobody"]] {
        let r = admin(url, &args, None).await;
        assert_eq!(r.code, 4, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("no user with username or email"), "{}", r.stderr);
    }
}

#[tokio::test]
async fn mfa_shows_the_factors_and_mfa_reset_removes_them_and_ends_the_sessions() {
    let db = TestDb::new().await;
    let id = db.create_user("lou", "lou@example.com", "correct horse battery staple").await;
    testkit::events::session_tokens(&db, id, "lou").await;
    // A confirmed factor (its sealed secret is opaque here), ten codes of which one is used, and
    // a day of wrong codes.
    let c = db.client().await;
    c.execute(
        "INSERT INTO totp_factors (user_id, pending, secret, key_version, confirmed_at)
         VALUES ($1, false, '\\x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'local', now())",
        &[&id],
    )
    .await
    .unwrap();
    c.execute(
        "INSERT INTO recovery_codes (user_id, code_hash, key_version, used_at)
         SELECT $1, sha256(n::text::bytea), 'local', CASE WHEN n = 1 THEN now() END
           FROM generate_series(1, 10) AS n",
        &[&id],
    )
    .await
    .unwrap();
    c.execute("INSERT INTO mfa_failures VALUES ($1, 10, now())", &[&id]).await.unwrap();

    let shown = admin(Some(&db.url), &["user", "mfa", "lou", "--json"], None).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let doc: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(doc["totp"]["enabled"], true, "{doc}");
    assert_eq!(doc["recovery_codes_remaining"], 9, "{doc}");
    assert!(doc["second_step_locked_for_seconds"].as_u64().is_some_and(|s| s > 86_000), "{doc}");
    let lines = admin(Some(&db.url), &["user", "mfa", "lou"], None).await;
    assert!(
        lines.stdout.contains("active since") && lines.stdout.contains("9 left"),
        "{}",
        lines.stdout
    );
    assert!(lines.stdout.contains("locked for"), "{}", lines.stdout);

    // An export carries no secret or recovery code, and says so; importing it again (the
    // accounts are present) leaves the factor alone.
    let file = std::env::temp_dir().join(format!("mfa-export-{id}.jsonl"));
    let export = admin(Some(&db.url), &["export", "--output", file.to_str().unwrap()], None).await;
    assert_eq!(export.code, 0, "{}", export.stderr);
    assert!(export.stderr.contains("second factors are not exported"), "{}", export.stderr);
    let exported = std::fs::read_to_string(&file).unwrap();
    assert!(exported.contains(r#""username":"lou""#), "{exported}");
    for leak in ["totp", "recovery", "00112233445566778899", "secret"] {
        assert!(!exported.contains(leak), "{leak} in the export: {exported}");
    }
    let import = admin(Some(&db.url), &["import", file.to_str().unwrap()], None).await;
    assert_eq!(import.code, 0, "{}{}", import.stdout, import.stderr);
    let _ = std::fs::remove_file(&file);
    let doc: Value = serde_json::from_str(
        &admin(Some(&db.url), &["user", "mfa", "lou", "--json"], None).await.stdout,
    )
    .unwrap();
    assert_eq!(doc["totp"]["enabled"], true, "import left the factor: {doc}");
    assert_eq!(doc["recovery_codes_remaining"], 9, "{doc}");

    let reset = admin(Some(&db.url), &["user", "mfa-reset", "lou"], None).await;
    assert_eq!(reset.code, 0, "{}", reset.stderr);
    assert!(reset.stdout.contains("second factors removed (1 session ended)"), "{}", reset.stdout);
    let doc: Value = serde_json::from_str(
        &admin(Some(&db.url), &["user", "mfa", "lou", "--json"], None).await.stdout,
    )
    .unwrap();
    assert_eq!(doc["totp"]["enabled"], false, "{doc}");
    assert_eq!(doc["recovery_codes_remaining"], 0, "{doc}");
    assert!(doc["second_step_locked_for_seconds"].is_null(), "{doc}");
    let live: Vec<Value> = serde_json::from_str(
        &admin(Some(&db.url), &["user", "sessions", "lou", "--json"], None).await.stdout,
    )
    .unwrap();
    assert!(live.is_empty(), "{live:?}");
    // Again: nothing left to remove, said so.
    let again = admin(Some(&db.url), &["user", "mfa-reset", "lou"], None).await;
    assert!(again.stdout.contains("there was no active one"), "{}", again.stdout);
    for cmd in ["mfa", "mfa-reset"] {
        assert_eq!(admin(Some(&db.url), &["user", cmd, "nobody"], None).await.code, 4, "{cmd}");
    }
}

#[tokio::test]
async fn passkeys_are_listed_and_one_is_removed() {
    let db = TestDb::new().await;
    let id = db.create_user("pat", "pat@example.com", "correct horse battery staple").await;
    let none = admin(Some(&db.url), &["user", "passkeys", "pat"], None).await;
    assert_eq!((none.code, none.stdout.trim()), (0, "pat: no passkeys"), "{}", none.stderr);
    let c = db.client().await;
    let rows = c
        .query(
            "INSERT INTO passkeys (user_id, credential_id, name, credential)
             SELECT $1, sha256(n::text::bytea), 'Key ' || n, '{\"secret\": \"no\"}'::jsonb
               FROM generate_series(1, 2) AS n RETURNING id",
            &[&id],
        )
        .await
        .unwrap();
    let first: uuid::Uuid = rows[0].get(0);
    let listed = admin(Some(&db.url), &["user", "passkeys", "pat", "--json"], None).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let doc: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(doc["passkeys"].as_array().unwrap().len(), 2, "{doc}");
    let mut names: Vec<&str> =
        doc["passkeys"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["Key 1", "Key 2"], "{doc}");
    assert_eq!(doc["passkeys"][0]["last_used_at"], Value::Null);
    assert!(!listed.stdout.contains("secret"), "no stored credential shown: {}", listed.stdout);
    let lines = admin(Some(&db.url), &["user", "passkeys", "pat"], None).await;
    assert!(
        lines.stdout.contains("2 passkeys") && lines.stdout.contains("last used never"),
        "{}",
        lines.stdout
    );
    let mfa = admin(Some(&db.url), &["user", "mfa", "pat", "--json"], None).await;
    assert_eq!(serde_json::from_str::<Value>(&mfa.stdout).unwrap()["passkeys"], 2);

    let removed =
        admin(Some(&db.url), &["user", "passkey-remove", "pat", &first.to_string()], None).await;
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert!(removed.stdout.contains("removed"), "{}", removed.stdout);
    let again =
        admin(Some(&db.url), &["user", "passkey-remove", "pat", &first.to_string()], None).await;
    assert_eq!(again.code, 4, "gone: {}", again.stderr);
    let bad = admin(Some(&db.url), &["user", "passkey-remove", "pat", "not-an-id"], None).await;
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("not a passkey id"), "{}", bad.stderr);
    let nobody = admin(Some(&db.url), &["user", "passkeys", "nobody"], None).await;
    assert_eq!(nobody.code, 4, "{}", nobody.stderr);
    let left: i64 = c.query_one("SELECT count(*) FROM passkeys", &[]).await.unwrap().get(0);
    assert_eq!(left, 1);
}
