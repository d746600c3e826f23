//! `auth-admin import FILE` and `auth-admin export`: moving a whole users table in or out.
//!
//! An import file is CSV with a header row, or JSON Lines (by extension: `.csv`, or `.jsonl`,
//! `.ndjson`, `.json`; otherwise by its first byte), with the columns `username`, `email`,
//! `password_hash` and optionally `full_name`, `created_at`, `id`, and (as `export` writes
//! them) `password_changed_at`, `last_login_at`, `disabled_at`. Every row is checked as the
//! service would check it: the identifiers' lookup keys (computed here, as `users::create`
//! does), no '@' in a username key, no duplicate key within the file or against another
//! account in the database, a hash in a format the service verifies (`password::parse`), valid
//! UTF-8, every required column and no more fields than the header names, RFC 3339 dates, no
//! line break inside a CSV field (an unterminated quote would otherwise take in the rows after
//! it). A refused row is written, with its line number (the physical line, as an editor counts
//! it, empty lines included) and reason, to the report file; none is dropped silently. A UTF-8
//! byte order mark at the start of either format is skipped. A file that cannot be read as a
//! whole (empty, UTF-16, a header without the required columns) stops the run first
//! ([`ImportError::Input`]). The report is written under a temporary name and renamed into
//! place at the end, so a run that stops early leaves an earlier report alone.
//!
//! Every record is checked here and streamed with one binary COPY into a staging table (an
//! unlogged table of the run's own, `auth_import_rows_<backend pid>`); duplicates within the
//! file and accounts already present are found by one set-wise pass in the database; the good
//! rows are then written in batches of 5,000, each in one transaction, by two connections at
//! once, so a run that is killed leaves whole batches; a re-run skips the accounts already
//! present (`--on-conflict skip`, by both keys matching one account) or overwrites their name,
//! hash and dates (`update`), so it ends with every good row imported exactly once. This
//! process's memory is flat in the file's size (one record, the COPY buffer, one fetch of the
//! report); the staging tables cost the database about the file's size on disk for the run and
//! are dropped at its end (a killed run's are dropped by the next run).
//!
//! Concurrency, and what each step locks: staging and planning touch only the run's own
//! tables; a batch inserts (row locks on new index entries) and, with `update`, updates the
//! accounts it names, in one transaction. The plan is made before the writes, so an account
//! another session creates in between meets the unique keys: the batch fails as a whole, is
//! run again with `ON CONFLICT DO NOTHING`, and such a row is refused with that reason (never
//! counted as imported). Two imports of overlapping files at once therefore create each
//! account once and lose no row silently; the two writers of one run take disjoint ranges.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use auth_shared::account::NewAccount;
use auth_shared::db::Db;
use auth_shared::password;
use auth_shared::tokio_postgres::Client;
use auth_shared::tokio_postgres::binary_copy::BinaryCopyInWriter;
use auth_shared::tokio_postgres::error::SqlState;
use auth_shared::tokio_postgres::types::Type;
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

impl Fields {
    /// Every field with its column name.
    fn named(&self) -> [(&'static str, Option<&str>); 9] {
        [
            ("username", self.username.as_deref()),
            ("email", self.email.as_deref()),
            ("full_name", self.full_name.as_deref()),
            ("password_hash", self.password_hash.as_deref()),
            ("created_at", self.created_at.as_deref()),
            ("id", self.id.as_deref()),
            ("password_changed_at", self.password_changed_at.as_deref()),
            ("last_login_at", self.last_login_at.as_deref()),
            ("disabled_at", self.disabled_at.as_deref()),
        ]
    }
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

/// Checks one record's fields (line `line`); the keys are computed here.
pub fn check(line: u64, f: Fields) -> Result<Row, String> {
    for (name, value) in f.named() {
        if value.is_some_and(|v| v.contains('\0')) {
            return Err(format!(
                "{name} contains a NUL character, which PostgreSQL text cannot hold"
            ));
        }
    }
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
    // The account rules, written once for every path that makes an account.
    let account =
        NewAccount::parse(&username, &email, f.full_name.as_deref()).map_err(|e| e.to_string())?;
    let (username_key, email_key) = (account.username.key(), account.email.key());
    let full_name = account.full_name.map(|n| n.as_str().to_owned());
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

/// Remembers where each line that is not blank starts (byte offset, 1-based line number) in
/// what the CSV parser has read and not yet passed, so a record's physical line follows from
/// the parser's byte position. A line ends at `\n`, `\r\n` or a lone `\r`, as for the csv
/// crate and editors. The csv crate's own line count leaves out the empty lines it skips, and
/// a record's position is where the parser began, before those lines (and before a CRLF's
/// `\n`): the record's first line is the first line with content at or after it. The memory is
/// the parser's read-ahead, not the file.
pub struct LineIndex<R> {
    inner: R,
    offset: u64,
    line: u64,
    /// The last byte read was a `\r` (a `\n` next completes the same line break).
    after_cr: bool,
    /// The start of the current line while nothing has been seen on it.
    pending: Option<u64>,
    starts: Rc<RefCell<VecDeque<(u64, u64)>>>,
}

impl<R: Read> Read for LineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        let mut starts = self.starts.borrow_mut();
        for (i, &b) in buf[..k].iter().enumerate() {
            let at = self.offset + i as u64;
            match b {
                b'\n' if self.after_cr => self.pending = Some(at + 1),
                b'\n' | b'\r' => {
                    self.line += 1;
                    self.pending = Some(at + 1);
                }
                _ => {
                    if let Some(start) = self.pending.take() {
                        starts.push_back((start, self.line));
                    }
                }
            }
            self.after_cr = b == b'\r';
        }
        self.offset += k as u64;
        Ok(k)
    }
}

/// Line breaks in `field`: `\n`, `\r\n` and lone `\r` count one each.
fn line_breaks(field: &[u8]) -> u64 {
    let lf = memchr::memchr_iter(b'\n', field).count();
    let lone_cr =
        memchr::memchr_iter(b'\r', field).filter(|&i| field.get(i + 1) != Some(&b'\n')).count();
    (lf + lone_cr) as u64
}

/// A CSV record as CSV again (quoted where it must be), for the report.
fn csv_text(rec: &csv::ByteRecord) -> String {
    let mut w =
        csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(vec![]);
    let text = w.write_byte_record(rec).ok().and_then(|()| w.into_inner().ok()).unwrap_or_default();
    String::from_utf8_lossy(&text).trim_end_matches('\n').to_owned()
}

/// Text the staging table can hold: PostgreSQL text has no NUL.
fn storable(raw: String) -> String {
    if raw.contains('\0') { raw.replace('\0', "\u{fffd}") } else { raw }
}

/// The UTF-8 byte order mark some editors and spreadsheet programs write at a file's start.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads records one at a time, CSV or JSON Lines, each with the physical line (1-based) it
/// starts on. A UTF-8 byte order mark at the start is skipped.
pub enum Reader<R: Read> {
    /// CSV with a header row (RFC 4180; fields may be quoted).
    Csv {
        /// The reader.
        reader: csv::Reader<LineIndex<R>>,
        /// Where the lines not yet passed start.
        starts: Rc<RefCell<VecDeque<(u64, u64)>>>,
        /// Column index of each known field.
        columns: HashMap<String, usize>,
        /// Fields in the header row: a record must have exactly as many.
        width: usize,
        /// The last line of the last record (an unreadable record is said to start on the next).
        last_line: u64,
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
    /// A CSV reader (the header row is read now; an error names what is wrong with it) or a
    /// JSON Lines one.
    pub fn new(input: R, csv_format: bool) -> Result<Self, String> {
        if !csv_format {
            return Ok(Self::Jsonl { reader: BufReader::new(input), n: 0 });
        }
        let starts = Rc::new(RefCell::new(VecDeque::new()));
        let input = LineIndex {
            inner: input,
            offset: 0,
            line: 1,
            after_cr: false,
            pending: Some(0),
            starts: starts.clone(),
        };
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
        let header = reader.byte_headers().map_err(|e| format!("reading the header: {e}"))?;
        let mut columns = HashMap::new();
        for (i, name) in header.iter().enumerate() {
            let name = name.strip_prefix(BOM).unwrap_or(name);
            let name = String::from_utf8_lossy(name).trim().to_lowercase();
            if !name.is_empty() && columns.insert(name.clone(), i).is_some() {
                return Err(format!("the header names the {name:?} column twice"));
            }
        }
        for need in ["username", "email", "password_hash"] {
            if !columns.contains_key(need) {
                return Err(format!(
                    "the header (the first line that is not empty, {:?}) has no {need:?} column",
                    csv_text(header)
                ));
            }
        }
        let known = [
            "username",
            "email",
            "full_name",
            "password_hash",
            "created_at",
            "id",
            "password_changed_at",
            "last_login_at",
            "disabled_at",
        ];
        let mut ignored: Vec<&str> =
            columns.keys().map(String::as_str).filter(|c| !known.contains(c)).collect();
        if !ignored.is_empty() {
            ignored.sort_unstable();
            // Not an error (exports carry columns of their own), but a misspelt one loses data.
            eprintln!("auth-admin: columns not imported (unknown names): {}", ignored.join(", "));
        }
        let width = header.len();
        let last_line = header.position().map_or(1, |p| p.line());
        Ok(Self::Csv { reader, starts, columns, width, last_line })
    }

    /// The next record, `None` at the end.
    pub fn next_record(&mut self) -> Option<Record> {
        match self {
            Self::Csv { reader, starts, columns, width, last_line } => {
                let mut rec = csv::ByteRecord::new();
                {
                    match reader.read_byte_record(&mut rec) {
                        Ok(false) => return None,
                        Ok(true) => {}
                        Err(e) => {
                            *last_line += 1;
                            return Some((
                                *last_line,
                                Err(format!("unreadable CSV: {e}")),
                                String::new(),
                            ));
                        }
                    }
                    let start = rec.position().map_or(0, |p| p.byte());
                    let mut at = starts.borrow_mut();
                    while at.front().is_some_and(|&(offset, _)| offset < start) {
                        at.pop_front();
                    }
                    // Strictly after the last record's lines, whatever the bytes say: the line
                    // is the staging table's key.
                    let line = at.front().map_or(0, |&(_, line)| line).max(*last_line + 1);
                    drop(at);
                    let breaks: u64 = rec.iter().map(line_breaks).sum();
                    *last_line = line + breaks;
                    let raw = csv_text(&rec);
                    if breaks > 0 {
                        return Some((
                            line,
                            Err(format!(
                                "a quoted field holds {breaks} line break(s), from line {line} on: no field \
                                 may hold a line break (an unterminated quote takes in the rows \
                                 after it)"
                            )),
                            raw,
                        ));
                    }
                    if rec.len() != *width {
                        let what =
                            if rec.len() < *width { "missing columns" } else { "extra fields" };
                        return Some((
                            line,
                            Err(format!("{what}: {} fields, the header has {width}", rec.len())),
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
                    Some((line, fields, raw))
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
                    let text = match buf.strip_prefix(BOM) {
                        Some(rest) if *n == 1 => rest,
                        _ => &buf[..],
                    };
                    if text.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let raw = String::from_utf8_lossy(text).trim_end().to_owned();
                    let fields = match std::str::from_utf8(text) {
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

/// The file's start: its first bytes up to and including the first one that is not white
/// space (or a byte order mark), however many blank lines come first.
fn head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let k = f.read(&mut chunk)?;
        head.extend_from_slice(&chunk[..k]);
        let body = head.strip_prefix(BOM).unwrap_or(&head);
        if k == 0 || body.iter().any(|b| !b.is_ascii_whitespace()) {
            return Ok(head);
        }
    }
}

/// CSV unless the name says JSON Lines or the file's start (`head`: its first bytes) is a
/// `{`, after any byte order mark and white space.
pub fn is_csv(path: &Path, head: &[u8]) -> bool {
    match path.extension().and_then(|e| e.to_str()).map(str::to_lowercase).as_deref() {
        Some("csv") => true,
        Some("jsonl" | "ndjson" | "json") => false,
        _ => {
            let head = head.strip_prefix(BOM).unwrap_or(head);
            head.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{')
        }
    }
}

/// Why a run stopped before its report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportError {
    /// The file (or the report's path) cannot be used as given: nothing was written. Exit 5.
    Input(String),
    /// Anything else (the database, the disk). Exit 1.
    Other(String),
}

impl From<String> for ImportError {
    fn from(m: String) -> Self {
        Self::Other(m)
    }
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Input(m) | Self::Other(m) => f.write_str(m),
        }
    }
}

/// A database error as the operator needs it: the server's message and detail, not only
/// "db error".
fn dberr(e: DbError) -> String {
    match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("database error: {} ({detail})", d.message()),
            None => format!("database error: {}", d.message()),
        },
        None => format!("database error: {e}"),
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

type DbError = auth_shared::tokio_postgres::Error;

/// Settings of each connection of a run: room for the plan's hash aggregations, and no JIT
/// (it costs tens of milliseconds a batch and gains nothing here).
const SESSION: &str = "SET work_mem = '128MB'; SET jit = off";

/// Drops the staging tables of runs whose connection is gone (a killed run's leftovers).
const SWEEP: &str = "
    DO $$
    DECLARE t regclass;
    BEGIN
      FOR t IN SELECT c.oid::regclass FROM pg_class c
                WHERE c.relkind = 'r' AND c.relname ~ '^auth_import_(rows|plan)_[0-9]+$'
                  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                                   WHERE a.pid = substring(c.relname from '[0-9]+$')::int)
      LOOP
        EXECUTE 'DROP TABLE IF EXISTS ' || t;
      END LOOP;
    END $$";

/// The run's staging table `{rows}` (`auth_import_rows_<backend pid>`): every record of the
/// file, in line order. A good row has its checked fields and no `reason`; a refused one has
/// its `reason` and `record` (the raw text). Unlogged (no WAL: it is rebuilt from the file if
/// lost) and a plain table rather than a temporary one, so that the run's second connection
/// can write from it; dropped at the end of the run, or by the next run if this one is killed.
const STAGING: &str = "
    CREATE UNLOGGED TABLE {rows} (
        line bigint PRIMARY KEY,
        reason text,
        record text,
        id uuid,
        username text,
        email text,
        full_name text,
        password_hash text,
        created_at timestamptz,
        password_changed_at timestamptz,
        last_login_at timestamptz,
        disabled_at timestamptz,
        username_key text,
        email_key text
    )";

/// Column types of the staging table, in order, for the binary COPY.
const STAGING_TYPES: [Type; 14] = [
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
];

/// A staged row as a JSON Lines record (export's field names).
const RECORD_JSON: &str = "json_strip_nulls(json_build_object(
        'id', r.id, 'username', r.username, 'email', r.email, 'full_name', r.full_name,
        'password_hash', r.password_hash, 'created_at', r.created_at,
        'password_changed_at', r.password_changed_at, 'last_login_at', r.last_login_at,
        'disabled_at', r.disabled_at))::text";

/// The plan of a run, one set-wise pass over the staged rows (hash joins and aggregations on
/// the database, not this process's memory), kept in `{plan}` for every good row that is
/// not simply new: a duplicate within the file (its username key, email key or id used by an
/// earlier line, refused or not, as a reader going down the file would see it; the first line
/// is named), the same account already present (`same`, with its id: both keys, and the id if
/// given, name one account), or a conflict with another account.
const PLAN: &str = "
    CREATE UNLOGGED TABLE {plan} AS
    WITH fu AS (SELECT username_key AS k, min(line) AS first FROM {rows}
                 WHERE reason IS NULL GROUP BY 1 HAVING count(*) > 1),
         fe AS (SELECT email_key AS k, min(line) AS first FROM {rows}
                 WHERE reason IS NULL GROUP BY 1 HAVING count(*) > 1),
         fi AS (SELECT id AS k, min(line) AS first FROM {rows}
                 WHERE reason IS NULL AND id IS NOT NULL GROUP BY 1 HAVING count(*) > 1),
         c AS (
           SELECT r.line, fu.first AS fu, fe.first AS fe, fi.first AS fi, u.id AS uid,
                  e.id AS eid, r.id,
                  r.id IS NOT NULL AND EXISTS (SELECT 1 FROM users x WHERE x.id = r.id)
                    AS id_taken
             FROM {rows} r
             LEFT JOIN fu ON fu.k = r.username_key
             LEFT JOIN fe ON fe.k = r.email_key
             LEFT JOIN fi ON fi.k = r.id
             LEFT JOIN users u ON u.username_key = r.username_key
             LEFT JOIN users e ON e.email_key = r.email_key
            WHERE r.reason IS NULL),
         s AS (
           SELECT line, uid,
                  CASE WHEN fu < line
                         THEN 'duplicate username (by its normalised key) of line ' || fu
                       WHEN fe < line
                         THEN 'duplicate email (by its normalised key) of line ' || fe
                       WHEN fi < line THEN 'duplicate id of line ' || fi
                       WHEN uid IS NULL AND eid IS NULL AND NOT id_taken THEN NULL
                       WHEN uid = eid AND (id IS NULL OR id = uid) THEN 'same'
                       WHEN uid IS NOT NULL AND uid IS DISTINCT FROM eid
                         THEN 'username belongs to another account'
                       WHEN eid IS NOT NULL AND uid IS DISTINCT FROM eid
                         THEN 'email belongs to another account'
                       ELSE 'id belongs to another account' END AS state
             FROM c)
    SELECT line, state, uid FROM s WHERE state IS NOT NULL;
    ALTER TABLE {plan} ADD PRIMARY KEY (line);
    ANALYZE {rows}, {plan}";

/// One batch, in one transaction: of the good rows with lines in (`$1`, `$2`] (a range of the
/// staging table's primary key holding [`BATCH`] good rows, so each batch reads only its own
/// rows), those that are new or (with `$3`, update) already present; the new ones inserted,
/// the present ones overwritten. `{ON}`
/// is empty on the fast path (a plain INSERT, about half the cost of a speculative one); when
/// another session created one of the accounts since the plan was made, that fails with a
/// unique violation and the batch is run again with `ON CONFLICT DO NOTHING`, where such a row
/// is refused, naming why, rather than counted (a re-run classifies it). Returns the batch's
/// last line and size, and the counts (new, inserted, same, updated, refused).
const BATCH_SQL: &str = "
    WITH range AS (SELECT * FROM {rows} WHERE line > $1 AND line <= $2 AND reason IS NULL),
         b AS (SELECT r.*, p.state, p.uid
                 FROM range r
                 LEFT JOIN LATERAL (SELECT state, uid FROM {plan} p WHERE p.line = r.line
                                    OFFSET 0) p
                   ON true
                WHERE p.state IS NULL OR (p.state = 'same' AND $3)),
         ins AS (
           INSERT INTO users (id, username, email, full_name, password_hash, created_at,
                              password_changed_at, last_login_at, disabled_at,
                              username_key, email_key)
           SELECT coalesce(id, gen_random_uuid()), username, email, full_name, password_hash,
                  coalesce(created_at, now()), coalesce(password_changed_at, created_at, now()),
                  last_login_at, disabled_at, username_key, email_key
             FROM b WHERE state IS NULL
               {ON}
           RETURNING username_key),
         lost AS (
           INSERT INTO {plan} (line, state)
           SELECT line, 'an account with this username, email or id was created by someone else '
                        || 'during the import: import again to classify this row'
             FROM b WHERE state IS NULL AND username_key NOT IN (SELECT username_key FROM ins)
           RETURNING 1),
         upd AS (
           UPDATE users u SET full_name = b.full_name, password_hash = b.password_hash,
                              created_at = coalesce(b.created_at, u.created_at)
             FROM b
            WHERE b.state = 'same' AND u.id = b.uid AND {CHANGED}
           RETURNING 1)
    SELECT (SELECT max(line) FROM range), (SELECT count(*) FROM range),
           count(*) FILTER (WHERE state IS NULL), (SELECT count(*) FROM ins),
           count(*) FILTER (WHERE state = 'same'), (SELECT count(*) FROM upd),
           (SELECT count(*) FROM lost)
      FROM b";

/// Whether `--on-conflict update` changes the present account `u` with the row `b`: the one
/// spelling for the write ([`BATCH_SQL`]) and the dry run's count.
const CHANGED: &str = "(u.full_name IS DISTINCT FROM b.full_name
                      OR u.password_hash <> b.password_hash
                      OR u.created_at <> coalesce(b.created_at, u.created_at))";

/// Progress on stderr: a bar with rows/s on a terminal, a plain line every few seconds
/// otherwise. `len` is in bytes while reading, rows while writing.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    what: &'static str,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(what: &'static str, len: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(len);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix:8} {bar:40} {percent:>3}% {msg} {elapsed_precise} (eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.set_prefix(what);
            b
        });
        Self { bar, what, started: Instant::now(), last: Instant::now() }
    }

    /// `position` in the bar's unit; `rows` done so far, `refused` of them refused.
    fn update(&mut self, position: u64, rows: u64, refused: u64) {
        let rate = rows as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        if let Some(b) = &self.bar {
            b.set_position(position);
            b.set_message(format!("{rows} rows, {rate:.0} rows/s, {refused} refused"));
        } else if self.last.elapsed() >= Duration::from_secs(5) {
            self.last = Instant::now();
            eprintln!(
                "auth-admin: {}: {rows} rows, {rate:.0} rows/s, {refused} refused",
                self.what
            );
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

/// Reads and checks every record of `path` into the staging table with one binary COPY, so
/// PostgreSQL stores rows while this process parses the next ones. Returns (records, refused).
async fn stage(client: &Client, t: &Tables, path: &Path) -> Result<(u64, u64), ImportError> {
    let db = dberr;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let head = head(path).map_err(|e| ImportError::Input(format!("{}: {e}", path.display())))?;
    if head.iter().all(u8::is_ascii_whitespace) || head == BOM {
        return Err(ImportError::Input(format!("{} is empty", path.display())));
    }
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        return Err(ImportError::Input(format!(
            "{} is UTF-16: save it as UTF-8 and import again",
            path.display()
        )));
    }
    let csv_format = is_csv(path, &head);
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let input = Counting { inner: file, n: count.clone() };
    let mut reader = Reader::new(std::io::BufReader::with_capacity(1 << 20, input), csv_format)
        .map_err(ImportError::Input)?;
    client.batch_execute(&t.sql(STAGING)).await.map_err(db)?;
    let sink = client
        .copy_in(&t.sql(
            "COPY {rows} (line, reason, record, id, username, email, full_name, password_hash,
                          created_at, password_changed_at, last_login_at, disabled_at,
                          username_key, email_key) FROM STDIN BINARY",
        ))
        .await
        .map_err(db)?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &STAGING_TYPES));
    let mut progress = Progress::new("reading", size);
    let (mut read, mut refused) = (0u64, 0u64);
    let none = None::<&str>;
    while let Some((line, fields, raw)) = reader.next_record() {
        read += 1;
        let line_i = i64::try_from(line).map_err(|_| "too many lines".to_owned())?;
        match fields.and_then(|f| check(line, f)) {
            Ok(r) => {
                writer
                    .as_mut()
                    .write(&[
                        &line_i,
                        &none,
                        &none,
                        &r.id,
                        &r.username,
                        &r.email,
                        &r.full_name,
                        &r.password_hash,
                        &r.created_at,
                        &r.password_changed_at,
                        &r.last_login_at,
                        &r.disabled_at,
                        &r.username_key,
                        &r.email_key,
                    ])
                    .await
            }
            Err(reason) => {
                refused += 1;
                let nothing = None::<OffsetDateTime>;
                writer
                    .as_mut()
                    .write(&[
                        &line_i,
                        &reason,
                        &storable(raw),
                        &None::<Uuid>,
                        &none,
                        &none,
                        &none,
                        &none,
                        &nothing,
                        &nothing,
                        &nothing,
                        &nothing,
                        &none,
                        &none,
                    ])
                    .await
            }
        }
        .map_err(db)?;
        if read % 4096 == 0 {
            progress.update(count.load(std::sync::atomic::Ordering::Relaxed), read, refused);
        }
    }
    writer.as_mut().finish().await.map_err(db)?;
    progress.finish();
    Ok((read, refused))
}

/// The run's two tables, named after its first connection's backend process id (unique
/// among live sessions, which is how [`SWEEP`] tells a killed run's leftovers).
struct Tables {
    rows: String,
    plan: String,
}

impl Tables {
    /// `sql` with `{rows}` and `{plan}` named.
    fn sql(&self, sql: &str) -> String {
        sql.replace("{rows}", &self.rows).replace("{plan}", &self.plan)
    }
}

/// Runs one batch of `sql` ([`BATCH_SQL`]) for lines in (`after`, `upto`] in its own
/// transaction.
async fn batch(
    client: &mut Client,
    sql: &str,
    (after, upto): (i64, i64),
    update: bool,
) -> Result<auth_shared::tokio_postgres::Row, DbError> {
    let tx = client.transaction().await?;
    let r = tx.query_one(sql, &[&after, &upto, &update]).await?;
    tx.commit().await?;
    Ok(r)
}

/// What the writers share: the next range to take, and the running counts.
struct Writing {
    ranges: Vec<(i64, i64)>,
    next: std::cell::Cell<usize>,
    totals: std::cell::RefCell<(Totals, u64, u64)>,
    progress: std::cell::RefCell<Progress>,
}

/// One writer: takes ranges until none is left, each in one transaction. A unique violation
/// (an account created by another session since the plan) or a deadlock with another import
/// rolls the batch back, and it is run again with `ON CONFLICT DO NOTHING`.
async fn writer(client: &mut Client, t: &Tables, w: &Writing, update: bool) -> Result<(), DbError> {
    client.batch_execute(SESSION).await?;
    let sql = BATCH_SQL.replace("{CHANGED}", CHANGED);
    let fast = t.sql(&sql.replace("{ON}", ""));
    let careful = t.sql(&sql.replace("{ON}", "ON CONFLICT DO NOTHING"));
    loop {
        let i = w.next.get();
        let Some(&range) = w.ranges.get(i) else { return Ok(()) };
        w.next.set(i + 1);
        let (mut sql, mut tries) = (&fast, 0);
        let r = loop {
            match batch(client, sql, range, update).await {
                Err(e)
                    if tries < 5
                        && [SqlState::UNIQUE_VIOLATION, SqlState::T_R_DEADLOCK_DETECTED]
                            .iter()
                            .any(|c| e.code() == Some(c)) =>
                {
                    (sql, tries) = (&careful, tries + 1);
                }
                other => break other?,
            }
        };
        let n = |i: usize| r.get::<_, i64>(i) as u64;
        let mut guard = w.totals.borrow_mut();
        let (totals, done, lost) = &mut *guard;
        totals.inserted += n(3);
        totals.updated += n(5);
        *lost += n(6);
        *done += n(1);
        w.progress.borrow_mut().update(*done, *done, *lost);
    }
}

/// Imports (or checks) `path`; returns the totals, with every refused row in the report file.
///
/// Four steps, so this process's memory stays flat in the file's size: every record is
/// checked and staged (one binary COPY into an unlogged table); one set-wise pass plans every
/// row ([`PLAN`]: duplicates within the file, accounts present, conflicts); the rows to write
/// go in transactions of [`BATCH`] good rows, by two connections at once (PostgreSQL
/// maintains the three unique indexes on two cores); the report is written last, in line
/// order, through a cursor. A run that is killed leaves whole batches; a re-run finds them
/// present. A dry run stops after the plan, which is why it refuses exactly the rows a real
/// run would. `db` needs room for two connections.
pub async fn run(db: &Db, path: &Path, opts: &Options) -> Result<Totals, ImportError> {
    let (report, report_file) = Report::create(path, &opts.report)?;
    let mut main = db.checkout().await.map_err(|e| e.to_string())?;
    main.batch_execute(SESSION).await.map_err(dberr)?;
    main.batch_execute(SWEEP).await.map_err(dberr)?;
    let pid: i32 = main.query_one("SELECT pg_backend_pid()", &[]).await.map_err(dberr)?.get(0);
    let t =
        Tables { rows: format!("auth_import_rows_{pid}"), plan: format!("auth_import_plan_{pid}") };
    let result = steps(db, &mut main, &t, path, opts, report_file).await;
    // Whatever happened, the run's tables go (a run killed here is swept by the next). A
    // killed run's server process outlives its client until its statement ends, so its
    // tables may have been too young to sweep at the start: sweep again at the end.
    let _ = main.batch_execute(&t.sql("DROP TABLE IF EXISTS {rows}, {plan}")).await;
    let _ = main.batch_execute(SWEEP).await;
    let totals = result?;
    report.keep()?;
    Ok(totals)
}

/// The report file, written under a temporary name beside it and renamed over it only when
/// the run gets to the end: a run that stops early leaves an earlier report as it was.
struct Report {
    partial: PathBuf,
    path: PathBuf,
    kept: bool,
}

impl Report {
    /// Checks that `path` is not the input file (a rename would replace it) and creates the
    /// partial file (so an unwritable place is found before anything is written), returned
    /// open for writing.
    fn create(input: &Path, path: &Path) -> Result<(Self, std::fs::File), ImportError> {
        if let Err(e) = std::fs::File::open(input) {
            return Err(ImportError::Input(format!("{}: {e}", input.display())));
        }
        if path.is_dir() {
            return Err(ImportError::Input(format!(
                "the report {} is a directory: name a file",
                path.display()
            )));
        }
        if let (Ok(a), Ok(b)) = (std::fs::canonicalize(input), std::fs::canonicalize(path))
            && a == b
        {
            return Err(ImportError::Input(format!(
                "the report {} is the input file: choose another --report",
                path.display()
            )));
        }
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".partial-{}", std::process::id()));
        let partial = path.with_file_name(name);
        let file = create_private(&partial).map_err(ImportError::Input)?;
        Ok((Self { partial, path: path.to_owned(), kept: false }, file))
    }

    fn keep(mut self) -> Result<(), String> {
        std::fs::rename(&self.partial, &self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

async fn steps(
    db: &Db,
    main: &mut Client,
    t: &Tables,
    path: &Path,
    opts: &Options,
    report: std::fs::File,
) -> Result<Totals, ImportError> {
    let mut report = std::io::BufWriter::new(report);
    let t0 = Instant::now();
    let (read, _) = stage(main, t, path).await?;
    let t1 = Instant::now();
    main.batch_execute(&t.sql(PLAN)).await.map_err(dberr)?;
    let t2 = Instant::now();
    let counts = main
        .query_one(
            &t.sql(
                "SELECT (SELECT count(*) FROM {rows} WHERE reason IS NULL)
                      - (SELECT count(*) FROM {plan}),
                        (SELECT count(*) FROM {plan} WHERE state = 'same')",
            ),
            &[],
        )
        .await
        .map_err(dberr)?;
    let (new, same) = (counts.get::<_, i64>(0) as u64, counts.get::<_, i64>(1) as u64);
    let mut totals = Totals { read, ..Totals::default() };
    if opts.dry_run {
        totals.inserted = new;
        if opts.on_conflict == OnConflict::Update {
            let changed = main
                .query_one(
                    &t.sql(&format!(
                        "SELECT count(*) FROM {{plan}} p JOIN {{rows}} b USING (line)
                           JOIN users u ON u.id = p.uid
                          WHERE p.state = 'same' AND {CHANGED}"
                    )),
                    &[],
                )
                .await
                .map_err(dberr)?;
            totals.updated = changed.get::<_, i64>(0) as u64;
        }
        totals.skipped = same - totals.updated;
    } else {
        let update = opts.on_conflict == OnConflict::Update;
        // Ranges of the staging table's lines holding BATCH good rows each.
        let ends = main
            .query(
                &t.sql(
                    "SELECT line FROM (SELECT line, row_number() OVER (ORDER BY line) AS n
                                         FROM {rows} WHERE reason IS NULL) x
                      WHERE n % $1 = 0 ORDER BY line",
                ),
                &[&(BATCH as i64)],
            )
            .await
            .map_err(dberr)?;
        let mut ranges = Vec::with_capacity(ends.len() + 1);
        let mut after = 0i64;
        for r in &ends {
            let upto: i64 = r.get(0);
            ranges.push((after, upto));
            after = upto;
        }
        ranges.push((after, i64::MAX));
        let w = Writing {
            ranges,
            next: std::cell::Cell::new(0),
            totals: std::cell::RefCell::new((Totals::default(), 0, 0)),
            progress: std::cell::RefCell::new(Progress::new(
                "writing",
                new + if update { same } else { 0 },
            )),
        };
        // A second connection if the pool gives one soon (DB_POOL_MAX may say 1); else one
        // writer does it all.
        match tokio::time::timeout(Duration::from_secs(5), db.checkout()).await {
            Ok(Ok(mut second)) => {
                tokio::try_join!(writer(main, t, &w, update), writer(&mut second, t, &w, update))
                    .map_err(dberr)?;
            }
            _ => writer(main, t, &w, update).await.map_err(dberr)?,
        }
        w.progress.borrow().finish();
        let (written, _, _) = w.totals.into_inner();
        totals.inserted = written.inserted;
        totals.updated = written.updated;
        totals.skipped = same - written.updated;
    }
    let t3 = Instant::now();
    let tx = main.transaction().await.map_err(dberr)?;
    tx.batch_execute(&t.sql(&format!(
        "DECLARE refused NO SCROLL CURSOR FOR
           SELECT r.line, coalesce(r.reason, p.state), coalesce(r.record, {RECORD_JSON})
             FROM {{rows}} r LEFT JOIN {{plan}} p USING (line)
            WHERE r.reason IS NOT NULL OR p.state <> 'same'
            ORDER BY r.line"
    )))
    .await
    .map_err(dberr)?;
    loop {
        let rows = tx.query("FETCH 10000 FROM refused", &[]).await.map_err(dberr)?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let refusal = Refusal {
                line: r.get::<_, i64>(0) as u64,
                reason: r.get(1),
                record: r.get::<_, Option<String>>(2).unwrap_or_default(),
            };
            totals.refused += 1;
            let line = serde_json::to_string(&refusal).unwrap_or_default();
            writeln!(report, "{line}").map_err(|e| format!("writing the report: {e}"))?;
        }
    }
    tx.batch_execute("CLOSE refused").await.map_err(dberr)?;
    tx.commit().await.map_err(dberr)?;
    report.flush().map_err(|e| format!("writing the report: {e}"))?;
    let s = |a: Instant, b: Instant| (b - a).as_secs_f64();
    eprintln!(
        "auth-admin: read and checked in {:.1} s, planned in {:.1} s, written in {:.1} s, \
         reported in {:.1} s",
        s(t0, t1),
        s(t1, t2),
        s(t2, t3),
        s(t3, Instant::now())
    );
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

    /// (line, Ok(username) or Err(reason)) of every record.
    fn lines(bytes: &[u8], csv_format: bool) -> Vec<(u64, Result<String, String>)> {
        let mut r = Reader::new(bytes, csv_format).expect("a reader");
        let mut out = Vec::new();
        while let Some((line, fields, _)) = r.next_record() {
            out.push((line, fields.and_then(|f| check(line, f)).map(|row| row.username)));
        }
        out
    }

    const H: &str = "pbkdf2_sha256$10000$seasalt$FQCNpiZpTb0zub+HBsH6TOwyRxJ19FwvjbweatNmK/Y=";

    #[test]
    fn csv_records_carry_their_physical_line_past_empty_lines_crlf_and_quoted_newlines() {
        let csv = format!(
            "\u{feff}username,email,password_hash\r\nl2,l2@example.com,{H}\r\n\r\nl4,l4@example.com,{H}\n\n  \n\n\
             l9,l9@example.com,{H}\n\"l10\",\"l10@example.com\",{H}\nl11,l11@example.com,bad\n"
        );
        let got = lines(csv.as_bytes(), true);
        let at: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(at, [2, 4, 6, 8, 9, 10], "{got:?}");
        assert_eq!(got[0].1.as_deref(), Ok("l2"));
        assert!(got[2].1.as_ref().unwrap_err().contains("missing columns"), "{got:?}");
        assert!(got[5].1.is_err());
    }

    #[test]
    fn csv_records_wider_or_narrower_than_the_header_are_refused() {
        let csv = format!(
            "username,email,password_hash\na,a@example.com,{H},surplus\nb,b@example.com\nc,c@example.com,{H}\n"
        );
        let got = lines(csv.as_bytes(), true);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, 2);
        assert!(
            got[0].1.as_ref().unwrap_err().contains("extra fields: 4 fields, the header has 3")
        );
        assert!(got[1].1.as_ref().unwrap_err().contains("missing columns: 2 fields"));
        assert_eq!((got[2].0, got[2].1.as_deref()), (4, Ok("c")));
    }

    #[test]
    fn an_unterminated_quote_is_one_refused_record_naming_the_lines_it_took_in() {
        let csv = format!(
            "username,email,password_hash\nok,ok@example.com,{H}\nbad,\"bad@example.com,{H}\n\
             x,x@example.com,{H}\ny,y@example.com,{H}\n"
        );
        let got = lines(csv.as_bytes(), true);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!((got[0].0, got[0].1.as_deref()), (2, Ok("ok")));
        assert_eq!(got[1].0, 3);
        let why = got[1].1.as_ref().unwrap_err();
        assert!(why.contains("holds 3 line break(s), from line 3"), "{why}");
    }

    #[test]
    fn a_header_naming_a_column_twice_is_refused() {
        let err = Reader::new(&b"username,email,password_hash,Email\n"[..], true).err();
        assert!(err.expect("refused").contains("\"email\" column twice"));
    }

    #[test]
    fn a_byte_order_mark_is_skipped_in_json_lines_and_in_sniffing() {
        let jsonl = format!(
            "\u{feff}{{\"username\":\"b1\",\"email\":\"b1@example.com\",\"password_hash\":\"{H}\"}}\n\n\
             {{\"username\":\"b3\",\"email\":\"b3@example.com\",\"password_hash\":\"{H}\"}}\n"
        );
        assert!(!is_csv(Path::new("users"), jsonl.as_bytes()));
        assert!(!is_csv(Path::new("users.txt"), b" \n {\"username\""));
        assert!(is_csv(Path::new("users"), "\u{feff}username,email".as_bytes()));
        let got = lines(jsonl.as_bytes(), false);
        assert_eq!(got, [(1, Ok("b1".to_owned())), (3, Ok("b3".to_owned()))]);
    }

    #[test]
    fn lone_carriage_returns_end_lines_and_no_record_is_skipped() {
        let csv = format!(
            "username,email,password_hash\na,a@example.com,{H}\rb,b@example.com,{H}\r\n\"\"\n   \n\
             \"\n\n\"\nc,c@example.com,{H}\n\""
        );
        let got = lines(csv.as_bytes(), true);
        let at: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(at, [2, 3, 4, 5, 6, 9, 10], "{got:?}");
        assert_eq!((got[0].1.as_deref(), got[1].1.as_deref()), (Ok("a"), Ok("b")));
        assert!(got[2..5].iter().all(|(_, r)| r.is_err()), "{got:?}");
        assert!(got[4].1.as_ref().unwrap_err().contains("2 line break(s)"), "{got:?}");
        assert_eq!(got[5].1.as_deref(), Ok("c"));
    }

    #[test]
    fn refused_csv_records_are_reported_as_csv_and_nul_is_refused() {
        let csv = format!(
            "username,email,full_name,password_hash\nx,x@example.com,\"Doe, J\",bad\ny\0,y@example.com,,{H}\n"
        );
        let mut r = Reader::new(csv.as_bytes(), true).unwrap();
        let (_, _, raw) = r.next_record().unwrap();
        assert_eq!(raw, "x,x@example.com,\"Doe, J\",bad");
        let (line, fields, raw) = r.next_record().unwrap();
        assert!(check(line, fields.unwrap()).unwrap_err().contains("NUL"));
        assert!(!storable(raw).contains('\0'));
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
                prop_assert_eq!(row.username_key, auth_shared::identifier::key(&username));
            }
        }
    }
}
