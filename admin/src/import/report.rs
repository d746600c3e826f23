//! The report of refused rows (written aside, renamed into place at the end) and progress on
//! stderr.

use super::*;

/// The report file, written under a temporary name beside it and renamed over it only when
/// the run gets to the end: a run that stops early leaves an earlier report as it was.
pub(super) struct Report {
    pub(super) partial: PathBuf,
    pub(super) path: PathBuf,
    pub(super) kept: bool,
}

impl Report {
    /// Checks that `path` is not the input file (a rename would replace it) and creates the
    /// partial file (so an unwritable place is found before anything is written), returned
    /// open for writing.
    pub(super) fn create(input: &Path, path: &Path) -> Result<(Self, std::fs::File), ImportError> {
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

    pub(super) fn keep(mut self) -> Result<(), String> {
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

/// Creates a file only its owner can read (it holds password hashes).
pub(super) fn create_private(path: &Path) -> Result<std::fs::File, String> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Progress on stderr: a bar with rows/s on a terminal, a plain line every few seconds
/// otherwise. `len` is in bytes while reading, rows while writing.
pub(super) struct Progress {
    pub(super) bar: Option<indicatif::ProgressBar>,
    pub(super) what: &'static str,
    pub(super) started: Instant,
    pub(super) last: Instant,
}

impl Progress {
    pub(super) fn new(what: &'static str, len: u64) -> Self {
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
    pub(super) fn update(&mut self, position: u64, rows: u64, refused: u64) {
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

    pub(super) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
