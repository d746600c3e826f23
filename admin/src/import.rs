//! `auth-admin import FILE` and `auth-admin export`: moving a whole users table in or out.
//!
//! An import file is CSV with a header row, or JSON Lines (by extension: `.csv`, or `.jsonl`,
//! `.ndjson`, `.json`; otherwise by its first byte), with the columns `username`, `email`,
//! `password_hash` and optionally `full_name`, `created_at`, `id`, and (as `export` writes
//! them) `password_changed_at`, `last_login_at`, `disabled_at`. Every row is checked as the
//! service would check it: the identifiers' lookup keys (computed here, as `users::create`
//! does), no '@' in a username key, no duplicate key within the file or against another
//! account in the database, a hash in a format the service verifies (`password::parse`), valid
//! UTF-8, every required column, RFC 3339 dates. A refused row is written, with its line
//! number and reason, to the report file; none is dropped silently.
//!
//! Rows are written in batches, each in one transaction, so a run that is killed leaves whole
//! batches; a re-run skips the accounts already present (`--on-conflict skip`, by both keys
//! matching one account) or overwrites their name, hash and dates (`update`), so it ends with
//! every good row imported exactly once. Memory holds one batch and two 128-bit fingerprints
//! per row (for the duplicate check), not the file.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auth_shared::identifier::{self, MAX_IDENTIFIER_CHARS};
use auth_shared::password;
use auth_shared::tokio_postgres::types::Type;
use auth_shared::tokio_postgres::{Client, Transaction};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// Rows per transaction.
pub const BATCH: usize = 5000;

/// What to do with a row whose account (both keys) already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnConflict {
    /// Leave the account as it is.
    Skip,
    /// Overwrite its full name, hash and dates from the file.
    Update,
}

/// One good row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line (CSV: record) number in the file.
    pub line: u64,
    /// Optional account id.
    pub id: Option<Uuid>,
    /// Username.
    pub username: String,
    /// Email.
    pub email: String,
    /// Display name.
    pub full_name: Option<String>,
    /// Stored hash.
    pub password_hash: String,
    /// When the account was made (`now()` when absent).
    pub created_at: Option<OffsetDateTime>,
    /// When its password was last set (`created_at` when absent).
    pub password_changed_at: Option<OffsetDateTime>,
    /// Last login.
    pub last_login_at: Option<OffsetDateTime>,
    /// Disabled since.
    pub disabled_at: Option<OffsetDateTime>,
    /// `identifier::key(username)`.
    pub username_key: String,
    /// `identifier::key(email)`.
    pub email_key: String,
}

/// A refused row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// Line (CSV: record) number.
    pub line: u64,
    /// Why.
    pub reason: String,
    /// The row as read (lossy UTF-8), so it can be fixed and imported again.
    pub record: String,
}

/// The fields of a record, before checking; `None` for an absent column.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Fields {
    /// Username.
    pub username: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Display name.
    pub full_name: Option<String>,
    /// Stored hash.
    pub password_hash: Option<String>,
    /// RFC 3339.
    pub created_at: Option<String>,
    /// UUID.
    pub id: Option<String>,
    /// RFC 3339.
    pub password_changed_at: Option<String>,
    /// RFC 3339.
    pub last_login_at: Option<String>,
    /// RFC 3339.
    pub disabled_at: Option<String>,
}

fn date(what: &str, s: Option<&str>) -> Result<Option<OffsetDateTime>, String> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(Some(t));
    }
    // PostgreSQL's text form: `2024-01-02 03:04:05.123456+00`.
    let mut t = s.replacen(' ', "T", 1);
    if let Some(i) = t.rfind(['+', '-']).filter(|&i| i > 10)
        && t[i + 1..].len() == 2
    {
        t.push_str(":00");
    }
    OffsetDateTime::parse(&t, &Rfc3339)
        .map(Some)
        .map_err(|_| format!("{what} is not an RFC 3339 date: {s:?}"))
}

fn text(what: &str, s: &str, max: usize) -> Result<(), String> {
    let n = s.chars().count();
    if n == 0 || n > max {
        return Err(format!("{what} must be 1 to {max} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{what} must not contain control characters"));
    }
    Ok(())
}

/// Checks one record's fields (line `line`); the keys are computed here.
pub fn check(line: u64, f: Fields) -> Result<Row, String> {
    let missing: Vec<&str> = [
        ("username", f.username.is_none()),
        ("email", f.email.is_none()),
        ("password_hash", f.password_hash.is_none()),
    ]
    .iter()
    .filter(|(_, m)| *m)
    .map(|(n, _)| *n)
    .collect();
    if !missing.is_empty() {
        return Err(format!("missing column(s): {}", missing.join(", ")));
    }
    let (username, email, hash) = (
        f.username.unwrap_or_default(),
        f.email.unwrap_or_default(),
        f.password_hash.unwrap_or_default(),
    );
    text("username", &username, MAX_IDENTIFIER_CHARS)?;
    let username_key = identifier::key(&username);
    if username_key.contains('@') {
        return Err("username contains '@' (after normalisation)".into());
    }
    if username.chars().any(char::is_whitespace) {
        return Err("username contains spaces".into());
    }
    text("email", &email, MAX_IDENTIFIER_CHARS)?;
    let email_key = identifier::key(&email);
    let shaped = match email_key.rsplit_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !domain.contains('@'),
        None => false,
    };
    if !shaped || email.chars().any(char::is_whitespace) {
        return Err(format!("{email:?} is not an email address"));
    }
    let full_name = f.full_name.filter(|n| !n.is_empty());
    if let Some(n) = &full_name {
        text("full_name", n, 200)?;
    }
    if let Err(e) = password::parse(&hash) {
        return Err(format!("password_hash unusable: {e}"));
    }
    let id = match f.id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Uuid::parse_str(s).map_err(|_| format!("id is not a UUID: {s:?}"))?),
    };
    Ok(Row {
        line,
        id,
        username,
        email,
        full_name,
        password_hash: hash,
        created_at: date("created_at", f.created_at.as_deref())?,
        password_changed_at: date("password_changed_at", f.password_changed_at.as_deref())?,
        last_login_at: date("last_login_at", f.last_login_at.as_deref())?,
        disabled_at: date("disabled_at", f.disabled_at.as_deref())?,
        username_key,
        email_key,
    })
}

/// A record as read: its number, its fields or why it could not be read, its raw text.
pub type Record = (u64, Result<Fields, String>, String);

/// Reads records one at a time, CSV or JSON Lines.
pub enum Reader<R: Read> {
    /// CSV with a header row.
    Csv {
        /// The reader.
        reader: csv::Reader<R>,
        /// Column index of each known field.
        columns: HashMap<String, usize>,
        /// Records read.
        n: u64,
    },
    /// One JSON object per line.
    Jsonl {
        /// The reader.
        reader: BufReader<R>,
        /// Lines read.
        n: u64,
    },
}

impl<R: Read> Reader<R> {
    /// A CSV reader (the header row is read now) or a JSON Lines one.
    pub fn new(input: R, csv_format: bool) -> Result<Self, String> {
        if !csv_format {
            return Ok(Self::Jsonl { reader: BufReader::new(input), n: 0 });
        }
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
        let header = reader.byte_headers().map_err(|e| format!("reading the header: {e}"))?;
        let mut columns = HashMap::new();
        for (i, name) in header.iter().enumerate() {
            let name =
                String::from_utf8_lossy(name).trim().trim_start_matches('\u{feff}').to_lowercase();
            columns.insert(name, i);
        }
        for need in ["username", "email", "password_hash"] {
            if !columns.contains_key(need) {
                return Err(format!("the header has no {need:?} column"));
            }
        }
        Ok(Self::Csv { reader, columns, n: 1 })
    }

    /// The next record, `None` at the end.
    pub fn next_record(&mut self) -> Option<Record> {
        match self {
            Self::Csv { reader, columns, n } => {
                let mut rec = csv::ByteRecord::new();
                loop {
                    *n += 1;
                    match reader.read_byte_record(&mut rec) {
                        Ok(false) => return None,
                        Ok(true) if rec.len() == 1 && rec[0].is_empty() => continue,
                        Ok(true) => {}
                        Err(e) => {
                            return Some((*n, Err(format!("unreadable CSV: {e}")), String::new()));
                        }
                    }
                    let line = rec.position().map_or(*n, |p| p.line());
                    let raw = rec.iter().map(String::from_utf8_lossy).collect::<Vec<_>>().join(",");
                    let header_len = columns.values().max().map_or(0, |m| m + 1);
                    if rec.len() < header_len {
                        return Some((
                            line,
                            Err(format!("missing columns: {} of {header_len}", rec.len())),
                            raw,
                        ));
                    }
                    let get = |name: &str| -> Result<Option<String>, String> {
                        match columns.get(name).and_then(|&i| rec.get(i)) {
                            None => Ok(None),
                            Some(b) => String::from_utf8(b.to_vec())
                                .map(Some)
                                .map_err(|_| format!("{name} is not valid UTF-8")),
                        }
                    };
                    let fields = (|| {
                        Ok(Fields {
                            username: get("username")?,
                            email: get("email")?,
                            full_name: get("full_name")?,
                            password_hash: get("password_hash")?,
                            created_at: get("created_at")?,
                            id: get("id")?,
                            password_changed_at: get("password_changed_at")?,
                            last_login_at: get("last_login_at")?,
                            disabled_at: get("disabled_at")?,
                        })
                    })();
                    return Some((line, fields, raw));
                }
            }
            Self::Jsonl { reader, n } => {
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    *n += 1;
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(0) => return None,
                        Ok(_) => {}
                        Err(e) => {
                            return Some((*n, Err(format!("unreadable: {e}")), String::new()));
                        }
                    }
                    if buf.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let raw = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    let fields = match std::str::from_utf8(&buf) {
                        Err(_) => Err("not valid UTF-8".to_owned()),
                        Ok(s) => serde_json::from_str::<Fields>(s)
                            .map_err(|e| format!("not a JSON object of strings: {e}")),
                    };
                    return Some((*n, fields, raw));
                }
            }
        }
    }
}

/// CSV unless the name or the first byte says JSON Lines.
pub fn is_csv(path: &Path, first: Option<u8>) -> bool {
    match path.extension().and_then(|e| e.to_str()).map(str::to_lowercase).as_deref() {
        Some("csv") => true,
        Some("jsonl" | "ndjson" | "json") => false,
        _ => first != Some(b'{'),
    }
}

/// Fingerprints of lookup keys seen in the file (128 bits each, so memory is 16 bytes a key).
struct Seen {
    keys: HashMap<u128, u64>,
    a: std::hash::RandomState,
    b: std::hash::RandomState,
}

impl Seen {
    fn new() -> Self {
        Self { keys: HashMap::new(), a: Default::default(), b: Default::default() }
    }
    fn print(&self, kind: u8, key: &str) -> u128 {
        let h = |s: &std::hash::RandomState| {
            let mut h = s.build_hasher();
            h.write_u8(kind);
            h.write(key.as_bytes());
            h.finish()
        };
        (u128::from(h(&self.a)) << 64) | u128::from(h(&self.b))
    }
    /// The line that already used this key, or records it for `line`.
    fn first(&mut self, kind: u8, key: &str, line: u64) -> Option<u64> {
        let p = self.print(kind, key);
        match self.keys.get(&p) {
            Some(&l) => Some(l),
            None => {
                self.keys.insert(p, line);
                None
            }
        }
    }
}

/// Totals of a run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Records read.
    pub read: u64,
    /// Accounts written (new).
    pub inserted: u64,
    /// Accounts already present and updated (`--on-conflict update`).
    pub updated: u64,
    /// Accounts already present and left alone.
    pub skipped: u64,
    /// Rows refused.
    pub refused: u64,
}

/// Options of one run.
pub struct Options {
    /// Validate only.
    pub dry_run: bool,
    /// What to do with accounts already present.
    pub on_conflict: OnConflict,
    /// Where refused rows go.
    pub report: PathBuf,
}

/// What the database says of a row: a new account, the same account already present (both
/// keys, and the id if given, name one account), or a conflict with another account.
enum Existing {
    New,
    Same(Uuid),
    Conflict(String),
}

async fn existing(
    tx: &Transaction<'_>,
    rows: &[Row],
) -> Result<Vec<Existing>, auth_shared::tokio_postgres::Error> {
    let uk: Vec<&str> = rows.iter().map(|r| r.username_key.as_str()).collect();
    let ek: Vec<&str> = rows.iter().map(|r| r.email_key.as_str()).collect();
    let ids: Vec<Uuid> = rows.iter().filter_map(|r| r.id).collect();
    let found = tx
        .query_typed(
            "SELECT id, username_key, email_key FROM users
              WHERE username_key = ANY($1) OR email_key = ANY($2) OR id = ANY($3)",
            &[(&uk, Type::TEXT_ARRAY), (&ek, Type::TEXT_ARRAY), (&ids, Type::UUID_ARRAY)],
        )
        .await?;
    let mut by_u = HashMap::new();
    let mut by_e = HashMap::new();
    let mut by_id = HashMap::new();
    for r in &found {
        let (id, u, e): (Uuid, Option<String>, Option<String>) = (r.get(0), r.get(1), r.get(2));
        by_id.insert(id, ());
        if let Some(u) = u {
            by_u.insert(u, id);
        }
        if let Some(e) = e {
            by_e.insert(e, id);
        }
    }
    Ok(rows
        .iter()
        .map(|r| {
            let (u, e) = (by_u.get(&r.username_key), by_e.get(&r.email_key));
            let id_taken = r.id.is_some_and(|id| by_id.contains_key(&id));
            match (u, e) {
                (None, None) if !id_taken => Existing::New,
                (Some(a), Some(b)) if a == b && r.id.is_none_or(|id| id == *a) => {
                    Existing::Same(*a)
                }
                (Some(_), _) if u != e => {
                    Existing::Conflict("username belongs to another account".into())
                }
                (_, Some(_)) if u != e => {
                    Existing::Conflict("email belongs to another account".into())
                }
                _ => Existing::Conflict("id belongs to another account".into()),
            }
        })
        .collect())
}

/// Writes (or, in a dry run, only checks) one batch in one transaction; refusals go to
/// `refused`.
async fn batch(
    client: &mut Client,
    rows: &mut Vec<Row>,
    raws: &mut Vec<String>,
    opts: &Options,
    totals: &mut Totals,
    refused: &mut Vec<Refusal>,
) -> Result<(), auth_shared::tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let tx = client.transaction().await?;
    let states = existing(&tx, rows).await?;
    let mut new = Vec::new();
    let mut same = Vec::new();
    for ((row, raw), state) in rows.drain(..).zip(raws.drain(..)).zip(states) {
        match state {
            Existing::New => new.push(row),
            Existing::Same(id) => same.push((id, row)),
            Existing::Conflict(reason) => {
                refused.push(Refusal { line: row.line, reason, record: raw });
            }
        }
    }
    if opts.dry_run {
        totals.inserted += new.len() as u64;
        match opts.on_conflict {
            OnConflict::Skip => totals.skipped += same.len() as u64,
            OnConflict::Update => totals.updated += same.len() as u64,
        }
        return tx.rollback().await;
    }
    if !new.is_empty() {
        let ids: Vec<Option<Uuid>> = new.iter().map(|r| r.id).collect();
        let un: Vec<&str> = new.iter().map(|r| r.username.as_str()).collect();
        let em: Vec<&str> = new.iter().map(|r| r.email.as_str()).collect();
        let fu: Vec<Option<&str>> = new.iter().map(|r| r.full_name.as_deref()).collect();
        let ha: Vec<&str> = new.iter().map(|r| r.password_hash.as_str()).collect();
        let ca: Vec<Option<OffsetDateTime>> = new.iter().map(|r| r.created_at).collect();
        let pc: Vec<Option<OffsetDateTime>> = new.iter().map(|r| r.password_changed_at).collect();
        let ll: Vec<Option<OffsetDateTime>> = new.iter().map(|r| r.last_login_at).collect();
        let da: Vec<Option<OffsetDateTime>> = new.iter().map(|r| r.disabled_at).collect();
        let uk: Vec<&str> = new.iter().map(|r| r.username_key.as_str()).collect();
        let ek: Vec<&str> = new.iter().map(|r| r.email_key.as_str()).collect();
        let n = tx
            .execute_typed(
                "INSERT INTO users (id, username, email, full_name, password_hash, created_at,
                                    password_changed_at, last_login_at, disabled_at,
                                    username_key, email_key)
                 SELECT coalesce(id, gen_random_uuid()), u, e, f, h, coalesce(c, now()),
                        coalesce(pc, c, now()), ll, da, uk, ek
                   FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                               $6::timestamptz[], $7::timestamptz[], $8::timestamptz[],
                               $9::timestamptz[], $10::text[], $11::text[])
                        AS k(id, u, e, f, h, c, pc, ll, da, uk, ek)
                 ON CONFLICT DO NOTHING",
                &[
                    (&ids, Type::UUID_ARRAY),
                    (&un, Type::TEXT_ARRAY),
                    (&em, Type::TEXT_ARRAY),
                    (&fu, Type::TEXT_ARRAY),
                    (&ha, Type::TEXT_ARRAY),
                    (&ca, Type::TIMESTAMPTZ_ARRAY),
                    (&pc, Type::TIMESTAMPTZ_ARRAY),
                    (&ll, Type::TIMESTAMPTZ_ARRAY),
                    (&da, Type::TIMESTAMPTZ_ARRAY),
                    (&uk, Type::TEXT_ARRAY),
                    (&ek, Type::TEXT_ARRAY),
                ],
            )
            .await?;
        totals.inserted += n;
        totals.skipped += new.len() as u64 - n;
    }
    match opts.on_conflict {
        OnConflict::Skip => totals.skipped += same.len() as u64,
        OnConflict::Update if !same.is_empty() => {
            let ids: Vec<Uuid> = same.iter().map(|(id, _)| *id).collect();
            let fu: Vec<Option<&str>> = same.iter().map(|(_, r)| r.full_name.as_deref()).collect();
            let ha: Vec<&str> = same.iter().map(|(_, r)| r.password_hash.as_str()).collect();
            let ca: Vec<Option<OffsetDateTime>> = same.iter().map(|(_, r)| r.created_at).collect();
            let n = tx
                .execute_typed(
                    "UPDATE users u SET full_name = k.f, password_hash = k.h,
                            created_at = coalesce(k.c, u.created_at)
                       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])
                            AS k(id, f, h, c)
                      WHERE u.id = k.id
                        AND (u.full_name IS DISTINCT FROM k.f OR u.password_hash <> k.h
                             OR u.created_at <> coalesce(k.c, u.created_at))",
                    &[
                        (&ids, Type::UUID_ARRAY),
                        (&fu, Type::TEXT_ARRAY),
                        (&ha, Type::TEXT_ARRAY),
                        (&ca, Type::TIMESTAMPTZ_ARRAY),
                    ],
                )
                .await?;
            totals.updated += n;
            totals.skipped += same.len() as u64 - n;
        }
        OnConflict::Update => {}
    }
    tx.commit().await
}

/// Progress on stderr: a bar with rows/s on a terminal, a plain line every few seconds
/// otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(total_bytes: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(total_bytes);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {percent:>3}% {msg} {elapsed_precise} (eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        Self { bar, started: Instant::now(), last: Instant::now() }
    }

    fn update(&mut self, bytes: u64, t: &Totals) {
        let rate = t.read as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        if let Some(b) = &self.bar {
            b.set_position(bytes);
            b.set_message(format!("{} rows, {rate:.0} rows/s, {} refused", t.read, t.refused));
        } else if self.last.elapsed() >= Duration::from_secs(5) {
            self.last = Instant::now();
            eprintln!("auth-admin: {} rows read, {rate:.0} rows/s, {} refused", t.read, t.refused);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Counts the bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    n: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(k)
    }
}

/// Imports (or checks) `path`; returns the totals, with every refused row in the report file.
pub async fn run(client: &mut Client, path: &Path, opts: &Options) -> Result<Totals, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut first = [0u8; 1];
    let peek = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut first))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let csv_format = is_csv(path, (peek == 1).then_some(first[0]));
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let input = Counting { inner: file, n: count.clone() };
    let mut reader = Reader::new(std::io::BufReader::with_capacity(1 << 20, input), csv_format)?;
    let mut report = std::io::BufWriter::new(create_private(&opts.report)?);
    let mut seen = Seen::new();
    let mut totals = Totals::default();
    let mut progress = Progress::new(size);
    let (mut rows, mut raws, mut refused) = (Vec::new(), Vec::new(), Vec::new());
    let write_refusals = |report: &mut std::io::BufWriter<std::fs::File>,
                          refused: &mut Vec<Refusal>,
                          totals: &mut Totals| {
        for r in refused.drain(..) {
            totals.refused += 1;
            let line = serde_json::to_string(&r).unwrap_or_default();
            writeln!(report, "{line}").map_err(|e| format!("writing the report: {e}"))?;
        }
        Ok::<_, String>(())
    };
    while let Some((line, fields, raw)) = reader.next_record() {
        totals.read += 1;
        let row = fields.and_then(|f| check(line, f)).and_then(|row| {
            let u = seen.first(0, &row.username_key, line);
            let e = seen.first(1, &row.email_key, line);
            let i = row.id.and_then(|id| seen.first(2, &id.to_string(), line));
            match (u, e, i) {
                (Some(l), _, _) => {
                    Err(format!("duplicate username (by its normalised key) of line {l}"))
                }
                (_, Some(l), _) => {
                    Err(format!("duplicate email (by its normalised key) of line {l}"))
                }
                (_, _, Some(l)) => Err(format!("duplicate id of line {l}")),
                _ => Ok(row),
            }
        });
        match row {
            Ok(row) => {
                rows.push(row);
                raws.push(raw);
            }
            Err(reason) => refused.push(Refusal { line, reason, record: raw }),
        }
        if rows.len() >= BATCH {
            batch(client, &mut rows, &mut raws, opts, &mut totals, &mut refused)
                .await
                .map_err(|e| format!("database error: {e}"))?;
            refused.sort_by_key(|r| r.line);
            write_refusals(&mut report, &mut refused, &mut totals)?;
            progress.update(count.load(std::sync::atomic::Ordering::Relaxed), &totals);
        }
    }
    batch(client, &mut rows, &mut raws, opts, &mut totals, &mut refused)
        .await
        .map_err(|e| format!("database error: {e}"))?;
    refused.sort_by_key(|r| r.line);
    write_refusals(&mut report, &mut refused, &mut totals)?;
    report.flush().map_err(|e| format!("writing the report: {e}"))?;
    progress.finish();
    Ok(totals)
}

/// Creates a file only its owner can read (it holds password hashes).
fn create_private(path: &Path) -> Result<std::fs::File, String> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// One exported account: every column but the lookup keys (computed again on import).
#[derive(serde::Serialize)]
struct ExportRow {
    id: Uuid,
    username: String,
    email: String,
    full_name: Option<String>,
    password_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    password_changed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    last_login_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    disabled_at: Option<OffsetDateTime>,
}

/// Writes every account as JSON Lines (with its hash) to `out`, through a cursor, so memory
/// holds one fetch; returns how many.
pub async fn export(client: &mut Client, out: &mut dyn Write) -> Result<u64, String> {
    let db = |e: auth_shared::tokio_postgres::Error| format!("database error: {e}");
    let tx = client.transaction().await.map_err(db)?;
    tx.batch_execute(
        "DECLARE export NO SCROLL CURSOR FOR SELECT id, username, email, full_name, password_hash,
                created_at, password_changed_at, last_login_at, disabled_at
           FROM users ORDER BY created_at, id",
    )
    .await
    .map_err(db)?;
    let mut n = 0;
    loop {
        let rows = tx.query("FETCH 10000 FROM export", &[]).await.map_err(db)?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let row = ExportRow {
                id: r.get(0),
                username: r.get(1),
                email: r.get(2),
                full_name: r.get(3),
                password_hash: r.get(4),
                created_at: r.get(5),
                password_changed_at: r.get(6),
                last_login_at: r.get(7),
                disabled_at: r.get(8),
            };
            let line = serde_json::to_string(&row).map_err(|e| e.to_string())?;
            writeln!(out, "{line}").map_err(|e| format!("writing: {e}"))?;
            n += 1;
        }
    }
    tx.commit().await.map_err(db)?;
    out.flush().map_err(|e| format!("writing: {e}"))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(bytes: &[u8], csv_format: bool) -> Vec<Result<Row, String>> {
        let Ok(mut r) = Reader::new(bytes, csv_format) else { return Vec::new() };
        let mut out = Vec::new();
        while let Some((line, fields, _)) = r.next_record() {
            out.push(fields.and_then(|f| check(line, f)));
        }
        out
    }

    #[test]
    fn both_formats_read_the_same_row() {
        let h = "pbkdf2_sha256$10000$seasalt$FQCNpiZpTb0zub+HBsH6TOwyRxJ19FwvjbweatNmK/Y=";
        let csv = format!(
            "username,email,full_name,password_hash,created_at\nAlice,Alice@Example.com,\"A, A\",{h},2024-01-02 03:04:05+00\n"
        );
        let jsonl = format!(
            "{{\"username\":\"Alice\",\"email\":\"Alice@Example.com\",\"full_name\":\"A, A\",\"password_hash\":\"{h}\",\"created_at\":\"2024-01-02T03:04:05Z\"}}\n"
        );
        let (a, b) = (read_all(csv.as_bytes(), true), read_all(jsonl.as_bytes(), false));
        let (a, b) = (a[0].clone().unwrap(), b[0].clone().unwrap());
        assert_eq!((a.line, b.line), (2, 1));
        assert_eq!((a.username_key.as_str(), a.email_key.as_str()), ("alice", "alice@example.com"));
        assert_eq!(a.created_at, b.created_at);
        assert_eq!((a.full_name, a.password_hash), (b.full_name, b.password_hash));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any bytes, as CSV or JSON Lines: rows or refusals, never a panic.
        #[test]
        fn the_row_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000), csv_format: bool) {
            let _ = read_all(&bytes, csv_format);
        }

        /// Rows built from arbitrary field values: accepted only if every rule holds.
        #[test]
        fn checked_rows_follow_the_rules(
            username in ".{0,12}", email in ".{0,8}@?.{0,8}", created in prop_oneof![Just(String::new()), ".{0,25}", Just("2024-02-03T04:05:06Z".to_owned())],
            id in prop_oneof![Just(String::new()), ".{0,36}", Just(Uuid::nil().to_string())],
        ) {
            let h = "pbkdf2_sha256$10000$seasalt$FQCNpiZpTb0zub+HBsH6TOwyRxJ19FwvjbweatNmK/Y=";
            let f = Fields {
                username: Some(username.clone()), email: Some(email), full_name: None,
                password_hash: Some(h.into()), created_at: Some(created), id: Some(id), ..Fields::default()
            };
            if let Ok(row) = check(7, f) {
                prop_assert!(!row.username_key.contains('@'));
                prop_assert!(row.email_key.contains('@'));
                prop_assert_eq!(row.username_key, identifier::key(&username));
            }
        }
    }
}
