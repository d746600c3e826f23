//! Staging every record (one binary COPY) and writing the planned rows in batches, two
//! connections at once.

use super::*;

/// Reads and checks every record of `path` into the staging table with one binary COPY, so
/// PostgreSQL stores rows while this process parses the next ones. Returns (records, refused).
pub(super) async fn stage(
    client: &Client,
    t: &Tables,
    path: &Path,
) -> Result<(u64, u64), ImportError> {
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
    client.batch_execute(&t.sql(STAGING)).await?;
    let sink = client
        .copy_in(&t.sql(
            "COPY {rows} (line, reason, record, id, username, email, full_name, password_hash,
                          created_at, password_changed_at, last_login_at, disabled_at,
                          username_key, email_key, email_verified) FROM STDIN BINARY",
        ))
        .await?;
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
                        &Some(r.email_verified),
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
                        &None::<bool>,
                    ])
                    .await
            }
        }?;
        if read % 4096 == 0 {
            progress.update(count.load(std::sync::atomic::Ordering::Relaxed), read, refused);
        }
    }
    writer.as_mut().finish().await?;
    progress.finish();
    Ok((read, refused))
}

/// Runs one batch of `sql` ([`BATCH_SQL`]) for lines in (`after`, `upto`] in its own
/// transaction.
pub(super) async fn batch(
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
pub(super) struct Writing {
    pub(super) ranges: Vec<(i64, i64)>,
    pub(super) next: std::cell::Cell<usize>,
    pub(super) totals: std::cell::RefCell<(Totals, u64, u64)>,
    pub(super) progress: std::cell::RefCell<Progress>,
}

/// One writer: takes ranges until none is left, each in one transaction. A unique violation
/// (an account created by another session since the plan) or a deadlock with another import
/// rolls the batch back, and it is run again with `ON CONFLICT DO NOTHING`.
pub(super) async fn writer(
    client: &mut Client,
    t: &Tables,
    w: &Writing,
    update: bool,
) -> Result<(), DbError> {
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
