//! `auth-admin import FILE`: moving a whole users table in (`crate::export` writes one out in
//! the form read here).
//!
//! One step a module: [`read`](mod@read) (CSV or JSON Lines into records), [`check`](mod@check) (one record against
//! the account rules), `sql` (the staging table, the set-wise plan, the batch write), `write`
//! (the COPY into staging and the two batch writers), `report` (refused rows, progress); this
//! file runs them in order ([`run`]) and says why a run stopped ([`ImportError`]).
//!
//! An import file is CSV with a header row, or JSON Lines (by extension: `.csv`, or `.jsonl`,
//! `.ndjson`, `.json`; otherwise by its first byte), with the columns `username`, `email`,
//! `password_hash` and optionally `full_name`, `created_at`, `id`, and (as `export` writes
//! them) `password_changed_at`, `last_login_at`, `disabled_at`, `email_verified` (a boolean;
//! rows without it are verified). Every row is checked as the
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

mod check;
mod read;
mod report;
mod sql;
mod write;

pub use check::*;
pub use read::*;
use report::*;
use sql::*;
use write::*;

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

/// Why a run stopped before its report. `auth-admin` exits 5 for [`ImportError::Input`] (nothing
/// was written) and 1 for the others.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file (or the report's path) cannot be used as given: empty, UTF-16, a header
    /// without the required columns, unreadable, or the report would replace the input.
    #[error("{0}")]
    Input(String),
    /// The database refused or lost a statement: its message and detail, not only "db error".
    #[error("{}", describe(.0))]
    Database(#[from] DbError),
    /// This machine: a connection that could not be had, the file past its start, the report.
    #[error("{0}")]
    Local(String),
}

impl From<String> for ImportError {
    fn from(m: String) -> Self {
        Self::Local(m)
    }
}

/// A database error as the operator needs it: the server's message and detail.
fn describe(e: &DbError) -> String {
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
    main.batch_execute(SESSION).await?;
    main.batch_execute(SWEEP).await?;
    let pid: i32 = main.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
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
    main.batch_execute(&t.sql(PLAN)).await?;
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
        .await?;
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
                .await?;
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
            .await?;
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
                tokio::try_join!(writer(main, t, &w, update), writer(&mut second, t, &w, update))?;
            }
            _ => writer(main, t, &w, update).await?,
        }
        w.progress.borrow().finish();
        let (written, _, _) = w.totals.into_inner();
        totals.inserted = written.inserted;
        totals.updated = written.updated;
        totals.skipped = same - written.updated;
    }
    let t3 = Instant::now();
    let tx = main.transaction().await?;
    tx.batch_execute(&t.sql(&format!(
        "DECLARE refused NO SCROLL CURSOR FOR
           SELECT r.line, coalesce(r.reason, p.state), coalesce(r.record, {RECORD_JSON})
             FROM {{rows}} r LEFT JOIN {{plan}} p USING (line)
            WHERE r.reason IS NOT NULL OR p.state <> 'same'
            ORDER BY r.line"
    )))
    .await?;
    loop {
        let rows = tx.query("FETCH 10000 FROM refused", &[]).await?;
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
    tx.batch_execute("CLOSE refused").await?;
    tx.commit().await?;
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

#[cfg(test)]
mod tests;
