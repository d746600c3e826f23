//! The hash formats other systems store: hashes made at test time by the real
//! Werkzeug, bcrypt, argon2-cffi, Django and passlib (e2e/python/foreign_hashes.py) verify in
//! place, log in through the handler against PostgreSQL and are upgraded to the current policy;
//! wrong passwords are 401; hashes above their work-factor cap are refused quickly; truncated
//! or garbled ones are refused.

use std::path::Path;
use std::time::{Duration, Instant};

use auth_shared::password::{self, FormatError, Kdf, Prf, Scheme, Verdict};
use serde_json::{Value, json};
use testkit::app::Parts;

fn foreign_hashes(mode: &str) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/python/foreign_hashes.py");
    let out =
        std::process::Command::new(testkit::venv_python()).arg(script).arg(mode).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

/// bcrypt of the password itself (not of a digest of it): it reads only the first 72 bytes.
fn prefix_only(parsed: &password::Parsed) -> bool {
    matches!(parsed.kdf, Kdf::Bcrypt { prehash: password::Prehash::None, .. })
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap()
}

/// The formats the Python libraries make vectors of (all but Django's default, which
/// `legacy.rs` covers).
const FORMATS: [&str; 13] = [
    "werkzeug-scrypt",
    "werkzeug-pbkdf2",
    "bcrypt",
    "phc-argon2",
    "phc-scrypt",
    "phc-pbkdf2",
    "django-argon2",
    "django-bcrypt_sha256",
    "django-bcrypt",
    "django-scrypt",
    "django-pbkdf2_sha1",
    "passlib-pbkdf2",
    "passlib-bcrypt_sha256",
];

#[test]
fn every_library_hash_verifies_at_its_defaults_and_cheap() {
    let policy = testkit::pg::TEST_POLICY;
    let vectors = foreign_hashes("");
    for f in FORMATS {
        assert!(vectors.iter().any(|v| field(v, "format") == f), "no vector for {f}");
    }
    for v in &vectors {
        let (lib, pw, stored) = (field(v, "library"), field(v, "password"), field(v, "hash"));
        let parsed = password::parse(stored).unwrap_or_else(|e| panic!("{lib}: {e}: {stored}"));
        assert_eq!(parsed.scheme.name(), field(v, "format"), "{lib}");
        // A bcrypt match of a password of 72 bytes or more proves only its first 72 bytes, so
        // it never upgrades (see `a_bcrypt_match_on_72_bytes_never_rewrites_the_password`).
        let upgrades = !(prefix_only(&parsed) && pw.len() >= 72);
        assert_eq!(
            password::verify(pw, stored, policy),
            Verdict::Match { needs_upgrade: upgrades },
            "{lib}: {stored}"
        );
        // A changed first character (bcrypt reads only the first 72 bytes, as the system that
        // wrote the hash did, so a suffix beyond them would not count).
        assert_eq!(password::verify(&format!("x{pw}"), stored, policy), Verdict::Mismatch, "{lib}");
        assert_eq!(password::verify("", stored, policy), Verdict::Mismatch, "{lib}");
    }
}

async fn login_status(state: &login::State, name: &str, pw: &str) -> (u16, Duration) {
    let body = json!({"username": name, "password": pw}).to_string();
    let req = testkit::request("POST", "/login", &[("content-type", "application/json")], &body);
    let started = Instant::now();
    let (status, _, _) = testkit::read(login::handle(state, req).await);
    (status, started.elapsed())
}

#[tokio::test]
async fn a_login_with_each_format_upgrades_it() {
    let p = Parts::new(2).await;
    let state = login::State::new(p.db.clone(), p.keys.clone(), p.tokens.clone(), p.policy);
    let vectors = foreign_hashes("--cheap-only");
    let c = p.test_db.client().await;
    for (i, v) in vectors.iter().enumerate() {
        let (lib, pw, stored) = (field(v, "library"), field(v, "password"), field(v, "hash"));
        let name = format!("user{i}");
        p.test_db.create_user_with_hash(&name, &format!("{name}@example.com"), stored).await;
        assert_eq!(login_status(&state, &name, "wrong password").await.0, 401, "{lib}");
        assert_eq!(login_status(&state, &name, pw).await.0, 200, "{lib}: {stored}");
        let now: String = c
            .query_one("SELECT password_hash FROM users WHERE username = $1", &[&name])
            .await
            .unwrap()
            .get(0);
        if prefix_only(&password::parse(stored).unwrap()) && pw.len() >= 72 {
            assert_eq!(now, stored, "{lib}: a 72-byte bcrypt match is not upgraded");
            c.execute("DELETE FROM login_throttle", &[]).await.unwrap();
            continue;
        }
        assert!(now.starts_with("$pbkdf2-sha256$i="), "{lib}: {now}");
        let parsed = password::parse(&now).unwrap();
        assert_eq!(
            (parsed.scheme, parsed.kdf),
            (Scheme::PhcPbkdf2, Kdf::Pbkdf2 { prf: Prf::Sha256, iterations: p.policy.iterations }),
            "{lib}"
        );
        assert_eq!(password::verify(pw, &now, p.policy), Verdict::Match { needs_upgrade: false });
        assert_eq!(login_status(&state, &name, pw).await.0, 200, "the upgraded hash works: {lib}");
        c.execute("DELETE FROM login_throttle", &[]).await.unwrap();
    }
}

/// Rewrites a valid hash's work factor above its cap, keeping everything else well-formed.
fn above_cap(format: &str, stored: &str) -> Option<String> {
    let re = |from: &str, to: &str| {
        assert!(stored.contains(from), "{stored} lacks {from}");
        Some(stored.replacen(from, to, 1))
    };
    let after = |prefix: &str| stored.strip_prefix(prefix).unwrap();
    match format {
        "werkzeug-scrypt" => Some(format!("scrypt:2097152:8:1{}", &stored[stored.find('$')?..])),
        "werkzeug-pbkdf2" => {
            Some(format!("pbkdf2:sha512:20000000{}", &stored[stored.find('$')?..]))
        }
        "bcrypt" => Some(format!("{}15{}", &stored[..4], &stored[6..])),
        "django-bcrypt" | "django-bcrypt_sha256" => {
            let (head, rest) = stored.split_once("$$")?;
            Some(format!("{head}$${}15{}", &rest[..3], &rest[5..]))
        }
        "passlib-bcrypt_sha256" if stored.contains("r=") => re(",r=5$", ",r=15$"),
        "passlib-bcrypt_sha256" => re("b,5$", "b,15$"),
        "phc-argon2" | "django-argon2" => re("m=1024,", "m=1048576,"),
        "phc-scrypt" => re("ln=10,", "ln=21,"),
        "django-scrypt" => Some(format!("scrypt$2097152${}", after("scrypt$1024$"))),
        "django-pbkdf2_sha1" => {
            Some(format!("pbkdf2_sha1$20000000${}", after("pbkdf2_sha1$1000$")))
        }
        "passlib-pbkdf2" => re("$1000$", "$20000000$"),
        "phc-pbkdf2" => re("i=1000,", "i=20000000,"),
        _ => None,
    }
}

#[tokio::test]
async fn hashes_above_their_cap_are_refused_quickly() {
    let p = Parts::new(2).await;
    let state = login::State::new(p.db.clone(), p.keys.clone(), p.tokens.clone(), p.policy);
    let vectors = foreign_hashes("--cheap-only");
    let c = p.test_db.client().await;
    let mut seen = std::collections::BTreeSet::new();
    for (i, v) in vectors.iter().enumerate() {
        let (lib, pw, stored) = (field(v, "library"), field(v, "password"), field(v, "hash"));
        let format = field(v, "format");
        let big = above_cap(format, stored).unwrap_or_else(|| panic!("{lib}: no rewrite"));
        match password::parse(&big) {
            Err(FormatError::Cost(_) | FormatError::Iterations) => {}
            other => panic!("{lib}: {big} parsed as {other:?}"),
        }
        seen.insert(format);
        let started = Instant::now();
        assert_eq!(password::verify(pw, &big, p.policy), Verdict::Mismatch, "{lib}");
        assert!(started.elapsed() < Duration::from_millis(500), "{lib}: {:?}", started.elapsed());
        let name = format!("big{i}");
        p.test_db.create_user_with_hash(&name, &format!("{name}@example.com"), &big).await;
        let (status, took) = login_status(&state, &name, pw).await;
        assert_eq!(status, 401, "{lib}");
        assert!(took < Duration::from_secs(1), "{lib}: {took:?}");
        c.execute("DELETE FROM login_throttle", &[]).await.unwrap();
    }
    assert_eq!(seen.len(), FORMATS.len());
}

#[tokio::test]
async fn truncated_or_garbled_hashes_are_refused() {
    let p = Parts::new(2).await;
    let state = login::State::new(p.db.clone(), p.keys.clone(), p.tokens.clone(), p.policy);
    let vectors = foreign_hashes("--cheap-only");
    let c = p.test_db.client().await;
    for (i, v) in vectors.iter().enumerate() {
        let (lib, pw, stored) = (field(v, "library"), field(v, "password"), field(v, "hash"));
        let cut = stored.len() * 2 / 3;
        let mut garbled = stored.to_owned();
        // A character well inside the hash field (the last quarter) changed to another of its
        // alphabet: the string may still parse, but no longer matches.
        let at = stored.len() - stored.len() / 8;
        let old = garbled.as_bytes()[at];
        let new = if old == b'A' || old == b'a' || old == b'0' { "B" } else { "a" };
        let new = if stored.starts_with("scrypt:") || stored.starts_with("pbkdf2:") {
            if old == b'0' { "1" } else { "0" }
        } else {
            new
        };
        garbled.replace_range(at..=at, new);
        for (j, bad) in [
            stored[..cut].to_owned(),
            stored[..stored.len() - 1].to_owned(),
            garbled,
            format!("{stored}$"),
            stored.replace('$', "$$"),
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(password::verify(pw, &bad, p.policy), Verdict::Mismatch, "{lib}: {bad}");
            if j % 2 == 0 {
                let name = format!("bad{i}_{j}");
                p.test_db.create_user_with_hash(&name, &format!("{name}@example.com"), &bad).await;
                assert_eq!(login_status(&state, &name, pw).await.0, 401, "{lib}: {bad}");
            }
        }
        c.execute("DELETE FROM login_throttle", &[]).await.unwrap();
    }
}

/// A bcrypt hash of `password` made by the real `bcrypt` library (which, like every bcrypt,
/// reads only the first 72 bytes), at cost 4.
fn real_bcrypt(password: &str) -> String {
    real_bcrypt_at(password, 4)
}

/// [`real_bcrypt`] at `cost`.
fn real_bcrypt_at(password: &str, cost: u32) -> String {
    let script = "import bcrypt, sys\nprint(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(int(sys.argv[2]))).decode())";
    let out = std::process::Command::new(testkit::venv_python())
        .args(["-c", script, password, &cost.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_bcrypt_match_on_72_bytes_never_rewrites_the_password() {
    let p = Parts::new(2).await;
    let state = login::State::new(p.db.clone(), p.keys.clone(), p.tokens.clone(), p.policy);
    let c = p.test_db.client().await;
    // The user's own password: 71 ASCII bytes, then 'é' (two bytes, across byte 72), then more.
    let own = format!("{}\u{e9} and the rest of my passphrase", "a".repeat(71));
    // Someone else's text with the same first 72 bytes ('è' shares 'é''s first byte).
    let prefix_twin = format!("{}\u{e8}something else entirely", "a".repeat(71));
    // Exactly the first 72 bytes, and the text of 72 ASCII bytes followed by more.
    let exactly_72 = "b".repeat(72);
    for (i, (stored_pw, typed)) in [
        (own.as_str(), prefix_twin.as_str()),
        (own.as_str(), own.as_str()),
        (&format!("{exactly_72} tail") as &str, exactly_72.as_str()),
    ]
    .into_iter()
    .enumerate()
    {
        let bcrypt = real_bcrypt(stored_pw);
        for (j, stored) in [bcrypt.clone(), format!("bcrypt${bcrypt}")].into_iter().enumerate() {
            let name = format!("long{i}_{j}");
            p.test_db.create_user_with_hash(&name, &format!("{name}@example.com"), &stored).await;
            // bcrypt itself matches on the first 72 bytes: that login succeeds, as it did on the
            // system that wrote the hash...
            assert_eq!(login_status(&state, &name, typed).await.0, 200, "{stored}");
            // ...but proves only those bytes, so the stored hash stays as it was.
            let now: String = c
                .query_one("SELECT password_hash FROM users WHERE username = $1", &[&name])
                .await
                .unwrap()
                .get(0);
            assert_eq!(now, stored, "a 72-byte match must not replace the hash");
            assert_eq!(login_status(&state, &name, stored_pw).await.0, 200, "own password");
        }
    }
    // A password under 72 bytes is verified whole, and upgraded as before.
    let short = "a short bcrypt passphrase";
    p.test_db.create_user_with_hash("short", "short@example.com", &real_bcrypt(short)).await;
    assert_eq!(login_status(&state, "short", short).await.0, 200);
    let now: String = c
        .query_one("SELECT password_hash FROM users WHERE username = 'short'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(now.starts_with("$pbkdf2-sha256$"), "{now}");
}

#[tokio::test]
async fn guesses_the_deadline_cuts_off_are_counted_like_any_failure() {
    use auth_shared::db::{ConnectSettings, Db};
    let p = Parts::new(2).await;
    // One statement deadline (the check's) of a second.
    let settings = ConnectSettings::from_url(&p.test_db.url).unwrap();
    let mut cfg = testkit::pg::db_config(settings.clone(), 2);
    cfg.statement_timeout = Duration::from_secs(1);
    let db = std::sync::Arc::new(Db::with_settings(settings, cfg).unwrap());
    let state = login::State::new(db, p.keys.clone(), p.tokens.clone(), p.policy);
    // passlib's pbkdf2_sha512 at its cap, the slowest PRF: about a second a try, and a guess
    // not in NFKC ("ﬁ" is a compatibility ligature) is tried twice.
    let salt = "c2FsdHNhbHRzYWx0c2FsdA";
    let digest = "A".repeat(86);
    let capped = format!("$pbkdf2-sha512${}${salt}${digest}", password::MAX_ITERATIONS_SHA512);
    assert!(password::parse(&capped).is_ok());
    let over = format!("$pbkdf2-sha512${}${salt}${digest}", password::MAX_ITERATIONS_SHA512 + 1);
    assert_eq!(password::parse(&over), Err(FormatError::Iterations));
    p.test_db.create_user_with_hash("slow", "slow@example.com", &capped).await;
    for i in 0..password_free_failures() {
        let (status, took) = login_status(&state, "slow", &format!("ﬁrst guess {i}")).await;
        assert_eq!(status, 401, "guess {i} answers as any wrong password");
        assert!(took < Duration::from_secs(3), "guess {i} took {took:?}");
    }
    let (status, _) = login_status(&state, "slow", "ﬁrst guess again").await;
    assert_eq!(status, 429, "the cut-off guesses counted: the account is locked");
    let c = p.test_db.client().await;
    let failures: i32 =
        c.query_one("SELECT failures FROM login_throttle", &[]).await.unwrap().get(0);
    assert_eq!(failures, password_free_failures());
}

fn password_free_failures() -> i32 {
    auth_shared::throttle::FREE_FAILURES
}

#[tokio::test]
async fn a_failure_takes_as_long_as_one_against_the_costliest_stored_hash() {
    use auth_shared::failure_floor;
    let p = Parts::new(2).await;
    let state = login::State::new(p.db.clone(), p.keys.clone(), p.tokens.clone(), p.policy);
    // A dormant imported account whose hash costs several policy hashes, and a current one.
    let pw = "the imported account's passphrase";
    p.test_db.create_user_with_hash("dormant", "d@example.com", &real_bcrypt_at(pw, 9)).await;
    p.test_db.create_user("current", "c@example.com", pw).await;
    let mut client = p.test_db.client().await;
    let cal = failure_floor::calibrate(&mut client, p.policy).await.unwrap();
    assert_eq!(cal.classes.len(), 1, "{cal:?}");
    let (class, ratio) = &cal.classes[0];
    assert_eq!(class, "bcrypt cost=9");
    // One bcrypt-9 failure is its own hash plus one policy hash: about 2.2 policy hashes
    // here, so anything clearly above one (a busy machine skews each probe).
    assert!(*ratio > 1.5, "bcrypt 9 against 100,000 PBKDF2 iterations: {ratio}");
    // Calibrating again measures nothing new; a class no account has any more is forgotten.
    assert_eq!(failure_floor::calibrate(&mut client, p.policy).await.unwrap(), cal);
    // Read under a policy of ten times the iterations, the class's own part is a tenth: a
    // function whose PBKDF2_ITERATIONS differs from auth-admin's rescales, nothing re-measures.
    let tenfold = password::Policy { iterations: p.policy.iterations * 10 };
    let rescaled = failure_floor::max_ratio(&client, tenfold).await.unwrap();
    assert!((rescaled - (1.0 + (ratio - 1.0) / 10.0)).abs() < 1e-9, "{rescaled} from {ratio}");
    let same = failure_floor::max_ratio(&client, p.policy).await.unwrap();
    assert!((same - ratio).abs() < 1e-9, "{same} against {ratio}");
    // Five rounds, interleaved, each case's own throttle cleared; the fastest of each case is
    // kept, as a busy machine only ever slows a round (and slows a computed hash more than
    // the floor's wait, which would make the costliest case look slower than it is).
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..5 {
        for (i, (who, typed)) in
            [("nobody", "a guess"), ("dormant", "a guess"), ("current", "a guess")]
                .iter()
                .enumerate()
        {
            let (status, took) = login_status(&state, who, typed).await;
            assert_eq!(status, 401);
            times[i].push(took);
        }
        client.execute("DELETE FROM login_throttle", &[]).await.unwrap();
    }
    let fastest = |v: &[Duration]| v.iter().copied().min().unwrap();
    let unknown = fastest(&times[0]);
    let dormant = fastest(&times[1]);
    let current = fastest(&times[2]);
    // Every failure waits for the floor: the calibrated failure time of the costliest stored
    // hash, `ratio` policy hashes. One policy hash is timed here (the fastest of five, as a
    // busy machine only ever slows a hash); without the floor an unknown identifier or a wrong
    // password against a current hash would take one policy hash, well under 0.8 × ratio.
    // Comparing with the dormant account's own time instead is at the mercy of the load: on a
    // busy CI core its bcrypt ran 1.5 times slower than calibrated.
    let policy_hash = (0..5)
        .map(|_| {
            let t = std::time::Instant::now();
            password::verify_dummy("a guess", p.policy);
            t.elapsed()
        })
        .min()
        .unwrap();
    let floor = policy_hash.mul_f64(ratio * 0.8);
    assert!(unknown >= floor, "unknown {unknown:?} under {floor:?} (dormant took {dormant:?})");
    assert!(current >= floor, "current {current:?} under {floor:?} (dormant took {dormant:?})");
    // With the dormant account's hash upgraded (its first login), the floor falls back.
    assert_eq!(login_status(&state, "dormant", pw).await.0, 200);
    let cal = failure_floor::calibrate(&mut client, p.policy).await.unwrap();
    assert!(cal.classes.is_empty(), "{cal:?}");
}
