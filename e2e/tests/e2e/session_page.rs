//! auth-local's page at `/`, driven in headless Chromium through Selenium (WebDriver with
//! Debian's chromedriver) by `python/session_page.py`: log in, profile, refresh, password
//! changes (wrong, weak, good), a login with the new password, logout, and the refusals after
//! it, all read from what the page shows; a second factor set up, used and turned off
//! (`python/mfa_page.py`); a passkey added, used and removed with WebDriver's virtual
//! authenticator (`python/passkey_page.py`). The page's own headers are checked here.

use std::path::Path;

use testkit::TestDb;
use testkit::client::send;
use testkit::local::LocalServer;

const KEY: &str = "session-page-test-key-of-more-than-32-bytes";
const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase for alice";

async fn server(db: &TestDb) -> LocalServer {
    LocalServer::start(
        &testkit::binary("auth-local"),
        &[("DATABASE_URL", &db.url), ("SECRET_KEY", KEY), ("PBKDF2_ITERATIONS", "100000")],
    )
    .await
    .unwrap()
}

/// Runs the page script `script` (under `e2e/python`) with `args` in the tests' Python, against
/// `server`; it must exit 0 and say "every step passed". Returns the server's log, then, with
/// the requests the page made.
async fn drive_page(server: &LocalServer, script: &str, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join(script);
    let out = tokio::process::Command::new(testkit::venv_python())
        .arg(script)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "{text}\nserver output:\n{}", server.output());
    assert!(text.contains("every step passed"), "{text}");
    server.output()
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy_and_only_for_get_and_head() {
    let db = TestDb::new().await;
    let server = server(&db).await;
    assert!(server.output().contains(&format!("open {}/ to try it", server.base)));

    let page = send("GET", &server.url("/"), &[], "").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let csp = page.header("content-security-policy").unwrap_or_default();
    for directive in ["default-src 'none'", "script-src 'sha256-", "connect-src 'self'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(String::from_utf8_lossy(&page.body).contains("<form id=\"login-form\""));

    let head = send("HEAD", &server.url("/"), &[], "").await;
    assert_eq!((head.status, head.body.len()), (200, 0));

    let post = send("POST", &server.url("/"), &[("content-type", "application/json")], "{}").await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_eq!(post.json()["error"], "method_not_allowed");
}

#[tokio::test]
async fn a_person_tries_a_session_in_the_browser() {
    let db = TestDb::new().await;
    db.create_user("alice", "alice@example.com", PASSWORD).await;
    let server = server(&db).await;
    let screenshot = std::env::temp_dir().join("session_page.png");
    let (base, shot) = (&server.base, screenshot.to_str().unwrap());
    let args = [base.as_str(), "alice", "alice@example.com", PASSWORD, NEW_PASSWORD, shot];
    // The requests the page made reached the functions' routes.
    let log = drive_page(&server, "session_page.py", &args).await;
    for line in [
        r#"route="/login" status=200"#,
        r#"route="/profile" status=200"#,
        r#"route="/refresh" status=200"#,
        r#"route="/password" status=400"#,
        r#"route="/password" status=401"#,
        r#"route="/password" status=200"#,
        r#"route="/logout" status=204"#,
        r#"route="/profile" status=401"#,
    ] {
        assert!(log.contains(line), "{line} is not in the server's log:\n{log}");
    }
}

#[tokio::test]
async fn a_person_signs_up_and_resets_a_password_in_the_browser() {
    let db = TestDb::new().await;
    db.create_user("olga", "olga@example.com", PASSWORD).await;
    let outbox = std::env::temp_dir().join(format!("accounts-page-outbox-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outbox);
    let server = LocalServer::start(
        &testkit::binary("auth-local"),
        &[
            ("DATABASE_URL", &db.url),
            ("SECRET_KEY", KEY),
            ("PBKDF2_ITERATIONS", "100000"),
            ("MAIL_OUTBOX_DIR", outbox.to_str().unwrap()),
        ],
    )
    .await
    .unwrap();
    let args = [
        server.base.as_str(),
        "newton",
        "newton@example.com",
        PASSWORD,
        "olga",
        "olga@example.com",
        NEW_PASSWORD,
    ];
    let log = drive_page(&server, "accounts_page.py", &args).await;
    // The mails are in the outbox as RFC 5322 files, their text part carrying the link.
    let mails: Vec<_> = std::fs::read_dir(&outbox).unwrap().filter_map(Result::ok).collect();
    assert!(mails.len() >= 2, "{mails:?}");
    for line in [
        r#"route="/signup" status=202"#,
        r#"route="/verify-email" status=400"#,
        r#"route="/verify-email" status=200"#,
        r#"route="/password/forgot" status=202"#,
        r#"route="/password/reset" status=204"#,
    ] {
        assert!(log.contains(line), "{line} is not in the server's log:\n{log}");
    }
    let _ = std::fs::remove_dir_all(&outbox);
}

#[tokio::test]
async fn a_person_sets_up_a_second_factor_and_signs_in_with_it_in_the_browser() {
    let db = TestDb::new().await;
    db.create_user("tess", "tess@example.com", PASSWORD).await;
    let server = server(&db).await;
    let log = drive_page(&server, "mfa_page.py", &[&server.base, "tess", PASSWORD]).await;
    for line in [
        r#"route="/mfa/totp" status=400"#,
        r#"route="/mfa/totp" status=200"#,
        r#"route="/page/qr.svg" status=200"#,
        r#"route="/mfa/totp/verify" status=200"#,
        r#"route="/login" status=403"#,
        r#"route="/login/mfa" status=400"#,
        r#"route="/login/mfa" status=200"#,
        r#"route="/mfa/totp/disable" status=204"#,
    ] {
        assert!(log.contains(line), "{line} is not in the server's log:\n{log}");
    }
    // No secret or code reaches the server's log.
    assert!(!log.contains("otpauth://"), "{log}");
}

#[tokio::test]
async fn a_person_adds_a_passkey_and_signs_in_with_it_in_the_browser() {
    let db = TestDb::new().await;
    db.create_user("pia", "pia@example.com", PASSWORD).await;
    let server = server(&db).await;
    // The relying party is localhost (auth-local's default, with its own origin on that name).
    let base = server.base.replace("127.0.0.1", "localhost");
    let log = drive_page(&server, "passkey_page.py", &[&base, "pia", PASSWORD]).await;
    for line in [
        r#"route="/passkeys/register/options" status=400"#,
        r#"route="/passkeys/register/options" status=200"#,
        r#"route="/passkeys/register" status=201"#,
        r#"route="/passkeys/login/options" status=200"#,
        r#"route="/passkeys/login" status=200"#,
        r#"route="/passkeys" status=200"#,
        r#"route="/passkeys/{id}" status=204"#,
        r#"route="/passkeys/login" status=401"#,
    ] {
        assert!(log.contains(line), "{line} is not in the server's log:\n{log}");
    }
}
