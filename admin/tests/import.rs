//! `auth-admin import` and `export` as processes against PostgreSQL (moving a users table in and out): a
//! file mixing every hash format with every kind of bad row, dry run and real run refusing the
//! same rows, a re-run changing nothing, a run killed mid-import and re-run, and an export
//! imported into a fresh database whose users then log in.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::TestDb;
use testkit::app::Parts;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_auth-admin");

async fn admin(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", url)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn foreign_hashes() -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/python/foreign_hashes.py");
    let out = std::process::Command::new(testkit::venv_python())
        .arg(script)
        .arg("--cheap-only")
        .env("FOREIGN_HASHES_PASSWORD", "correct horse battery staple")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

fn dir() -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("auth-admin-import-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// (line, reason) of each refused row in a report.
fn refusals(path: &Path) -> BTreeSet<(u64, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["line"].as_u64().unwrap(), v["reason"].as_str().unwrap().to_owned())
        })
        .collect()
}

async fn users(db: &TestDb) -> Vec<(String, String, String)> {
    db.client()
        .await
        .query("SELECT username, email_key, password_hash FROM users ORDER BY username_key", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// A CSV file: one good row per format, then one of each kind of bad row. Returns the bytes
/// and the line numbers of the bad rows.
fn mixed_csv() -> (Vec<u8>, usize, BTreeSet<u64>) {
    let vectors = foreign_hashes();
    let mut out = b"username,email,full_name,password_hash,created_at\n".to_vec();
    let mut line = 1u64;
    let mut good = 0;
    for (i, v) in vectors.iter().enumerate() {
        line += 1;
        good += 1;
        let h = v["hash"].as_str().unwrap();
        out.extend_from_slice(
            format!(
                "user{i},user{i}@example.com,\"User, {i}\",\"{h}\",2024-01-0{}T10:00:00Z\n",
                1 + i % 9
            )
            .as_bytes(),
        );
    }
    let h = format!("\"{}\"", vectors[5]["hash"].as_str().unwrap());
    let bad_rows: Vec<Vec<u8>> = vec![
        format!("USER0,other0@example.com,,{h},\n").into_bytes(), // duplicate username key
        format!("other1,User1@Example.COM,,{h},\n").into_bytes(), // duplicate email key
        format!("bad\u{ff20}name,bad2@example.com,,{h},\n").into_bytes(), // '@' after NFKC
        b"plain,plain@example.com,,md5$abc$0123456789,\n".to_vec(), // unknown format
        [b"bytes\xff\xfe,bytes@example.com,,".as_slice(), h.as_bytes(), b",\n"].concat(), // bad UTF-8
        b"short,short@example.com\n".to_vec(), // missing columns
        format!("dated,dated@example.com,,{h},yesterday\n").into_bytes(), // bad created_at
        format!("nomail,not-an-email,,{h},\n").into_bytes(),
        format!("capped,capped@example.com,,$2b$15${},\n", &"a".repeat(53)).into_bytes(),
        format!("wide,wide@example.com,,{h},,surplus\n").into_bytes(), // extra fields
        // Invisible characters: a zero-width space, a right-to-left override, a soft hyphen,
        // a word joiner (the same name to a reader as user0..user3).
        format!("user\u{200b}0,zw@example.com,,{h},\n").into_bytes(),
        format!("user1\u{202e},rlo@example.com,,{h},\n").into_bytes(),
        format!("us\u{ad}er2,shy@example.com,,{h},\n").into_bytes(),
        format!("user\u{2060}3,wj@example.com,,{h},\n").into_bytes(),
    ];
    let mut bad = BTreeSet::new();
    for row in bad_rows {
        // Empty lines count as lines: the report names the line an editor shows.
        out.extend_from_slice(b"\n\n");
        line += 3;
        bad.insert(line);
        out.extend_from_slice(&row);
    }
    // An unterminated quote takes in the row after it: one refusal, at the quote's line.
    let bare = vectors
        .iter()
        .map(|v| v["hash"].as_str().unwrap())
        .find(|h| !h.contains(['"', ',']))
        .expect("a hash that needs no quotes");
    out.extend_from_slice(
        format!("quote,\"quote@example.com,,{bare},\nlast,last@example.com,,{bare},\n").as_bytes(),
    );
    bad.insert(line + 1);
    (out, good, bad)
}

#[tokio::test]
async fn a_mixed_file_dry_run_real_run_and_re_run() {
    let db = TestDb::new().await;
    let d = dir();
    let (bytes, good, bad) = mixed_csv();
    let file = d.join("users.csv");
    std::fs::write(&file, &bytes).unwrap();
    let file_s = file.to_str().unwrap();
    let dry_report = d.join("dry.jsonl");
    let real_report = d.join("real.jsonl");

    let (code, out, err) =
        admin(&db.url, &["import", file_s, "--dry-run", "--report", dry_report.to_str().unwrap()])
            .await;
    assert_eq!(code, 5, "{out}{err}");
    assert!(err.contains("dry.jsonl"), "{err}");
    assert!(users(&db).await.is_empty(), "a dry run writes nothing");
    let dry = refusals(&dry_report);
    assert_eq!(dry.iter().map(|(l, _)| *l).collect::<BTreeSet<_>>(), bad, "{dry:?}");
    let reasons: Vec<&str> = dry.iter().map(|(_, r)| r.as_str()).collect();
    for want in [
        "duplicate username",
        "duplicate email",
        "'@'",
        "unusable",
        "UTF-8",
        "missing",
        "created_at",
        "email address",
        "cost",
        "extra fields",
        "holds 2 line break(s), from line",
        "U+200B",
        "U+202E",
        "U+00AD",
        "U+2060",
    ] {
        assert!(reasons.iter().any(|r| r.contains(want)), "no refusal for {want}: {reasons:?}");
    }

    let (code, out, err) =
        admin(&db.url, &["import", file_s, "--report", real_report.to_str().unwrap()]).await;
    assert_eq!(code, 5, "{out}{err}");
    assert_eq!(refusals(&real_report), dry, "dry run and real run refuse the same rows");
    let after = users(&db).await;
    assert_eq!(after.len(), good, "{out}");
    assert!(out.contains(&format!("{good} inserted")), "{out}");
    // The imported kinds of hash are measured for the failure floor.
    assert!(out.contains("failed logins take at least"), "{out}");
    let classes: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM password_costs", &[])
        .await
        .unwrap()
        .get(0);
    assert!(classes > 3, "{classes} kinds measured: {out}");

    // A re-run changes nothing (and still reports the bad rows).
    let (code, out, _) =
        admin(&db.url, &["import", file_s, "--report", real_report.to_str().unwrap()]).await;
    assert_eq!(code, 5);
    assert!(
        out.contains("0 inserted") && out.contains(&format!("{good} already present")),
        "{out}"
    );
    assert_eq!(users(&db).await, after);
    let (code, out, _) = admin(
        &db.url,
        &["import", file_s, "--on-conflict", "update", "--report", real_report.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 5);
    assert!(out.contains("0 inserted, 0 updated"), "{out}");
    assert_eq!(users(&db).await, after);
    // The keys were set: every imported account is found as login finds it.
    let c = db.client().await;
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM users WHERE username_key IS NULL OR email_key IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_killed_import_re_run_imports_every_row_once() {
    let db = TestDb::new().await;
    let d = dir();
    let file = d.join("big.jsonl");
    let hash = auth_shared::password::hash_with_salt("pw", b"0123456789abcdef", 1000);
    let rows = 60_000;
    let mut text = String::new();
    for i in 0..rows {
        text.push_str(
            &json!({"username": format!("u{i}"), "email": format!("u{i}@example.com"), "password_hash": hash})
                .to_string(),
        );
        text.push('\n');
    }
    std::fs::write(&file, text).unwrap();
    let mut child = Command::new(BIN)
        .args(["import", file.to_str().unwrap()])
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let c = db.client().await;
    let mut seen = 0i64;
    for _ in 0..600 {
        seen = c.query_one("SELECT count(*) FROM users", &[]).await.unwrap().get(0);
        if seen > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
    let _ = child.wait().await;
    // Its server processes outlive it until their statements end (one may still commit a
    // batch whose COMMIT was sent): count once they are gone.
    for _ in 0..500 {
        let others: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if others == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let partial: i64 = c.query_one("SELECT count(*) FROM users", &[]).await.unwrap().get(0);
    assert!(seen > 0 && partial < rows, "killed after the first batch: {partial}");
    assert_eq!(partial % 5000, 0, "whole batches only: {partial}");
    let (code, out, err) = admin(&db.url, &["import", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}{err}");
    let total: i64 = c.query_one("SELECT count(*) FROM users", &[]).await.unwrap().get(0);
    assert_eq!(total, rows);
    assert!(out.contains(&format!("{} inserted", rows - partial)), "{out}");
    // The killed run's staging tables were swept by the next one, which dropped its own.
    let left: i64 = c
        .query_one("SELECT count(*) FROM pg_class WHERE relname LIKE 'auth\\_import\\_%'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "no staging table is left behind");
}

#[tokio::test]
async fn an_export_imported_into_a_fresh_database_logs_in() {
    let src = TestDb::new().await;
    let d = dir();
    let (bytes, good, _) = mixed_csv();
    let file = d.join("users.csv");
    std::fs::write(&file, &bytes).unwrap();
    admin(&src.url, &["import", file.to_str().unwrap()]).await;
    src.create_user("native", "native@example.com", "correct horse battery staple").await;
    src.client()
        .await
        .execute(
            "UPDATE users SET disabled_at = now(), email_verified = false WHERE username = 'user1'",
            &[],
        )
        .await
        .unwrap();
    let export = d.join("export.jsonl");
    let (code, _, err) = admin(&src.url, &["export", "--output", export.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{err}");
    let (code, stdout, _) = admin(&src.url, &["export"]).await;
    assert_eq!(code, 0);
    assert_eq!(stdout, std::fs::read_to_string(&export).unwrap());
    assert_eq!(stdout.lines().count(), good + 1);
    let unverified: Vec<&str> =
        stdout.lines().filter(|l| l.contains(r#""email_verified":false"#)).collect();
    assert_eq!(unverified.len(), 1, "{stdout}");
    assert!(unverified[0].contains(r#""username":"user1""#), "{}", unverified[0]);

    let p = Parts::new(2).await;
    let (code, out, err) = admin(&p.test_db.url, &["import", export.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, again, _) = admin(&p.test_db.url, &["export"]).await;
    assert_eq!(code, 0);
    assert_eq!(again, stdout, "the same users, ids, hashes and dates");
    let state = login::State::new(p.db.clone(), p.keys.clone(), p.tokens.clone(), p.policy);
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let body = json!({"username": v["username"], "password": "correct horse battery staple"});
        let req = testkit::request(
            "POST",
            "/login",
            &[("content-type", "application/json")],
            &body.to_string(),
        );
        let (status, _, _) = testkit::read(login::handle(&state, req).await);
        let want = if v["disabled_at"].is_null() { 200 } else { 401 };
        assert_eq!(status, want, "{line}");
    }
}

/// `N rows read: I inserted, U updated, P already present, R refused` → (I, P, R).
fn totals(out: &str) -> (u64, u64, u64) {
    let n = |word: &str| -> u64 {
        let i = out.find(word).unwrap_or_else(|| panic!("no {word:?} in {out}"));
        out[..i].split_whitespace().last().unwrap().parse().unwrap()
    };
    (n(" inserted"), n(" already present"), n(" refused"))
}

#[tokio::test]
async fn concurrent_imports_of_overlapping_files_create_each_account_once_and_lose_no_row() {
    // Two operators import overlapping files at once. Each account must be created once; a
    // row the other run created after this run planned is either found present or refused
    // with a reason (never counted as imported, never dropped), and a re-run settles it.
    let db = TestDb::new().await;
    let d = dir();
    let hash = auth_shared::password::hash_with_salt("pw", b"0123456789abcdef", 1000);
    let write = |name: &str, range: std::ops::Range<u32>| {
        let mut text = String::new();
        for i in range {
            let row = json!({"username": format!("c{i}"), "email": format!("c{i}@example.com"),
                             "password_hash": hash});
            text.push_str(&row.to_string());
            text.push('\n');
        }
        let path = d.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (a, b) = (write("a.jsonl", 0..12_000), write("b.jsonl", 6_000..18_000));
    let (ra, rb) = (d.join("a.refused.jsonl"), d.join("b.refused.jsonl"));
    let run = |file: &PathBuf, report: &PathBuf| {
        let (file, report) =
            (file.to_str().unwrap().to_owned(), report.to_str().unwrap().to_owned());
        let url = db.url.clone();
        async move { admin(&url, &["import", &file, "--report", &report]).await }
    };
    let ((ca, oa, ea), (cb, ob, eb)) = tokio::join!(run(&a, &ra), run(&b, &rb));
    let c = db.client().await;
    let count: i64 = c.query_one("SELECT count(*) FROM users", &[]).await.unwrap().get(0);
    assert_eq!(count, 18_000, "{oa}{ea}{ob}{eb}");
    let (ia, pa, fa) = totals(&oa);
    let (ib, pb, fb) = totals(&ob);
    assert_eq!(ia + ib, 18_000, "each account created by exactly one run: {oa}{ob}");
    assert_eq!((ia + pa + fa, ib + pb + fb), (12_000, 12_000), "every row accounted for");
    for (code, refused, report) in [(ca, fa, &ra), (cb, fb, &rb)] {
        assert_eq!(code, if refused > 0 { 5 } else { 0 });
        let reasons = refusals(report);
        assert_eq!(reasons.len() as u64, refused);
        assert!(reasons.iter().all(|(_, r)| r.contains("during the import")), "{reasons:?}");
    }
    // A re-run of each finds every row present.
    for (file, report) in [(&a, &ra), (&b, &rb)] {
        let (code, out, err) = run(file, report).await;
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(totals(&out), (0, 12_000, 0), "{out}");
    }
}

/// Files whose shape is wrong as a whole get exit 5 and a message naming the problem; a report
/// that would replace the input is refused; a run that stops early leaves an earlier report
/// as it was (the report is renamed into place only at the end).
#[tokio::test]
async fn unusable_files_get_exit_5_and_leave_the_input_and_an_earlier_report_alone() {
    let db = TestDb::new().await;
    let d = dir();
    let h = auth_shared::password::hash_with_salt("pw", b"0123456789abcdef", 1000);
    let q = format!("\"{h}\""); // PHC strings hold commas: quoted in CSV
    let good = d.join("good.csv");
    let text = format!("username,email,password_hash\na,a@example.com,{q}\n");
    std::fs::write(&good, &text).unwrap();
    let report = d.join("earlier.jsonl");
    std::fs::write(&report, "an earlier report\n").unwrap();

    let (code, _, err) =
        admin(&db.url, &["import", good.to_str().unwrap(), "--report", good.to_str().unwrap()])
            .await;
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("is the input file"), "{err}");
    assert_eq!(std::fs::read_to_string(&good).unwrap(), text, "the input is untouched");

    // A report path that is a directory, and an input that is missing: refused before
    // anything is written.
    let (code, _, err) =
        admin(&db.url, &["import", good.to_str().unwrap(), "--report", d.to_str().unwrap()]).await;
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("is a directory"), "{err}");
    let missing = d.join("missing.csv");
    let (code, _, err) = admin(&db.url, &["import", missing.to_str().unwrap()]).await;
    assert_eq!(code, 5, "{err}");
    let n: i64 =
        db.client().await.query_one("SELECT count(*) FROM users", &[]).await.unwrap().get(0);
    assert_eq!(n, 0, "nothing was written");
    // A column with an unknown name is named on stderr (a misspelt one would lose its data).
    let typo = d.join("typo.csv");
    std::fs::write(
        &typo,
        format!("username,email,password_hash,fullname\nt,t@example.com,{q},Tom\n"),
    )
    .unwrap();
    let (code, out, err) = admin(&db.url, &["import", typo.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("columns not imported (unknown names): fullname"), "{err}");

    let cases: [(&str, &[u8], &str); 5] = [
        ("empty.csv", b"", "is empty"),
        ("blank", b" \n\r\n\t\n", "is empty"),
        ("utf16.csv", b"\xFF\xFEu\0s\0e\0r\0", "UTF-16"),
        ("noheader.csv", b"name,mail,hash\nx,y,z\n", "has no \"username\" column"),
        ("twice.csv", b"username,email,password_hash,EMAIL\n", "\"email\" column twice"),
    ];
    for (name, bytes, want) in cases {
        let f = d.join(name);
        std::fs::write(&f, bytes).unwrap();
        let (code, out, err) =
            admin(&db.url, &["import", f.to_str().unwrap(), "--report", report.to_str().unwrap()])
                .await;
        assert_eq!(code, 5, "{name}: {out}{err}");
        assert!(err.contains(want), "{name}: {err}");
        assert_eq!(std::fs::read_to_string(&report).unwrap(), "an earlier report\n", "{name}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".partial-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A NUL byte (which PostgreSQL text cannot hold) in a refused row, in an escaped JSON string
/// and inside an otherwise valid hash, and lone CRs as line ends: each row is refused or read
/// on its own line, and the rest of the file is imported.
#[tokio::test]
async fn nul_bytes_and_lone_carriage_returns_cost_only_their_own_rows() {
    let db = TestDb::new().await;
    let d = dir();
    let h = auth_shared::password::hash_with_salt("pw", b"0123456789abcdef", 1000);
    let q = format!("\"{h}\""); // PHC strings hold commas: quoted in CSV
    let salted = h.replacen("$", "$\0", 3);
    let csv = d.join("nul.csv");
    let mut bytes = format!("username,email,password_hash\na,a@example.com,{q}\n\0\n").into_bytes();
    bytes.extend(
        format!("b,b@example.com,\"{salted}\"\rc,c@example.com,{q}\rd,d@example.com,{q}\n").bytes(),
    );
    std::fs::write(&csv, &bytes).unwrap();
    let report = d.join("nul.report");
    let (code, out, err) =
        admin(&db.url, &["import", csv.to_str().unwrap(), "--report", report.to_str().unwrap()])
            .await;
    assert_eq!(code, 5, "{out}{err}");
    let got = refusals(&report);
    let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [3, 4], "{got:?}");
    assert!(got.iter().all(|(_, r)| r.contains("NUL") || r.contains("missing")), "{got:?}");
    assert!(out.contains("3 inserted"), "{out}");

    let jsonl = d.join("nul.jsonl");
    let text = format!(
        "{}\n{}\n",
        json!({"username": "e", "email": "e@example.com", "password_hash": h}),
        json!({"username": "f\u{0}", "email": "f@example.com", "password_hash": h}),
    );
    std::fs::write(&jsonl, text).unwrap();
    let (code, out, err) =
        admin(&db.url, &["import", jsonl.to_str().unwrap(), "--report", report.to_str().unwrap()])
            .await;
    assert_eq!(code, 5, "{out}{err}");
    assert_eq!(refusals(&report).into_iter().map(|(l, _)| l).collect::<Vec<_>>(), [2]);
    assert!(out.contains("1 inserted"), "{out}");
}

/// With `--on-conflict update`, a dry run counts as "would be updated" only the present
/// accounts the real run changes.
#[tokio::test]
async fn a_dry_run_counts_updates_as_the_real_run_makes_them() {
    let db = TestDb::new().await;
    let d = dir();
    let h = auth_shared::password::hash_with_salt("pw", b"0123456789abcdef", 1000);
    let q = format!("\"{h}\""); // PHC strings hold commas: quoted in CSV
    let first = d.join("first.csv");
    std::fs::write(
        &first,
        format!(
            "username,email,full_name,password_hash\na,a@example.com,A,{q}\nb,b@example.com,B,{q}\n"
        ),
    )
    .unwrap();
    let (code, out, err) = admin(&db.url, &["import", first.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}{err}");
    let second = d.join("second.csv");
    std::fs::write(
        &second,
        format!("username,email,full_name,password_hash\na,a@example.com,A,{q}\nb,b@example.com,Bee,{q}\n"),
    )
    .unwrap();
    let args = ["import", second.to_str().unwrap(), "--on-conflict", "update"];
    let (code, dry, err) = admin(&db.url, &[&args[..], &["--dry-run"]].concat()).await;
    assert_eq!(code, 0, "{dry}{err}");
    let (code, real, err) = admin(&db.url, &args).await;
    assert_eq!(code, 0, "{real}{err}");
    assert!(dry.contains("1 would be updated, 1 already present"), "{dry}");
    assert!(real.contains("1 updated, 1 already present"), "{real}");
}

#[tokio::test]
async fn the_verification_state_is_imported_and_a_bad_one_refuses_its_row() {
    let db = TestDb::new().await;
    let d = dir();
    let h = auth_shared::password::hash("correct horse battery staple", testkit::pg::TEST_POLICY);
    let csv = format!(
        "username,email,password_hash,email_verified\n\
         yes1,yes1@example.com,\"{h}\",true\n\
         no1,no1@example.com,\"{h}\",false\n\
         no2,no2@example.com,\"{h}\",F\n\
         yes2,yes2@example.com,\"{h}\",\n\
         yes3,yes3@example.com,\"{h}\",1\n\
         bad,bad@example.com,\"{h}\",maybe\n"
    );
    let file = d.join("verified.csv");
    std::fs::write(&file, csv).unwrap();
    let report = d.join("verified.report.jsonl");
    let (code, out, err) =
        admin(&db.url, &["import", file.to_str().unwrap(), "--report", report.to_str().unwrap()])
            .await;
    // A refused row makes the exit code 5; the good rows are in.
    assert_eq!(code, 5, "{out}{err}");
    let refused = refusals(&report);
    assert_eq!(refused.len(), 1, "{refused:?}");
    let (line, reason) = refused.iter().next().unwrap();
    assert_eq!(*line, 7);
    assert!(reason.contains("email_verified is not true or false"), "{reason}");
    // JSON Lines: a boolean, as export writes it, or a string; absent is verified.
    let jsonl = format!(
        "{{\"username\":\"j1\",\"email\":\"j1@example.com\",\"password_hash\":\"{h}\",\"email_verified\":false}}\n\
         {{\"username\":\"j2\",\"email\":\"j2@example.com\",\"password_hash\":\"{h}\",\"email_verified\":\"no\"}}\n\
         {{\"username\":\"j3\",\"email\":\"j3@example.com\",\"password_hash\":\"{h}\"}}\n\
         {{\"username\":\"j4\",\"email\":\"j4@example.com\",\"password_hash\":\"{h}\",\"email_verified\":7}}\n"
    );
    let file = d.join("verified.jsonl");
    std::fs::write(&file, jsonl).unwrap();
    let (code, out, err) =
        admin(&db.url, &["import", file.to_str().unwrap(), "--report", report.to_str().unwrap()])
            .await;
    // A refused row makes the exit code 5; the good rows are in.
    assert_eq!(code, 5, "{out}{err}");
    let refused = refusals(&report);
    assert_eq!(refused.iter().map(|r| r.0).collect::<Vec<_>>(), [4], "{refused:?}");
    let rows = db
        .client()
        .await
        .query("SELECT username, email_verified FROM users ORDER BY username", &[])
        .await
        .unwrap();
    let got: Vec<(String, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let want = [
        ("j1", false),
        ("j2", false),
        ("j3", true),
        ("no1", false),
        ("no2", false),
        ("yes1", true),
        ("yes2", true),
        ("yes3", true),
    ];
    assert_eq!(got, want.map(|(u, v)| (u.to_owned(), v)));
}
