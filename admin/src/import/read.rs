//! Reading an import file: CSV or JSON Lines, each record with its physical line number and raw
//! text, a byte order mark skipped, the format sniffed.

use super::*;

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
    pub(super) inner: R,
    pub(super) offset: u64,
    pub(super) line: u64,
    /// The last byte read was a `\r` (a `\n` next completes the same line break).
    pub(super) after_cr: bool,
    /// The start of the current line while nothing has been seen on it.
    pub(super) pending: Option<u64>,
    pub(super) starts: Rc<RefCell<VecDeque<(u64, u64)>>>,
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
pub(super) fn line_breaks(field: &[u8]) -> u64 {
    let lf = memchr::memchr_iter(b'\n', field).count();
    let lone_cr =
        memchr::memchr_iter(b'\r', field).filter(|&i| field.get(i + 1) != Some(&b'\n')).count();
    (lf + lone_cr) as u64
}

/// A CSV record as CSV again (quoted where it must be), for the report.
pub(super) fn csv_text(rec: &csv::ByteRecord) -> String {
    let mut w =
        csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(vec![]);
    let text = w.write_byte_record(rec).ok().and_then(|()| w.into_inner().ok()).unwrap_or_default();
    String::from_utf8_lossy(&text).trim_end_matches('\n').to_owned()
}

/// Text the staging table can hold: PostgreSQL text has no NUL.
pub(super) fn storable(raw: String) -> String {
    if raw.contains('\0') { raw.replace('\0', "\u{fffd}") } else { raw }
}

/// The UTF-8 byte order mark some editors and spreadsheet programs write at a file's start.
pub(super) const BOM: &[u8] = b"\xEF\xBB\xBF";

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
            "email_verified",
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
                            email_verified: get("email_verified")?,
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
pub(super) fn head(path: &Path) -> std::io::Result<Vec<u8>> {
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

/// Counts the bytes read, for the progress bar.
pub(super) struct Counting<R> {
    pub(super) inner: R,
    pub(super) n: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(k)
    }
}
