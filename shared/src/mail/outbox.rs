//! Mails as RFC 5322 messages, and the local outbox that keeps them as `.eml` files: a local
//! run writes each mail it would send as `1.eml`, `2.eml`, ... in a folder, where a person
//! opens it in a mail client and a test reads it back.
//!
//! The message (lettre's builder, RFC 5322 and the MIME RFCs 2045-2049): `From`, `To`,
//! `Subject` (RFC 2047-encoded when not ASCII), `Date`, `Message-ID`, `MIME-Version` and a
//! `multipart/alternative` body of a `text/plain; charset=utf-8` and a `text/html;
//! charset=utf-8` part, each quoted-printable or base64 as lettre finds shorter. The user's
//! name is in the body only.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

use super::{Mail, MailError, Sender, check_address};

impl Sender {
    /// `mail` as an RFC 5322 message (CRLF line ends), ready for a `.eml` file or a raw send.
    /// The Message-ID is `<32 random hex digits@the From domain>` (RFC 5322 section 3.6.4).
    ///
    /// Errors: [`MailError::Build`] when `mail.to` is not printable ASCII without spaces with
    /// exactly one `@` (the message names the address), or lettre refuses it.
    pub fn to_eml(&self, mail: &Mail) -> Result<Vec<u8>, MailError> {
        check_address(&mail.to)
            .map_err(|why| MailError::Build(format!("recipient {:?} {why}", mail.to)))?;
        let to: lettre::Address = mail
            .to
            .parse()
            .map_err(|e| MailError::Build(format!("recipient {:?}: {e}", mail.to)))?;
        let rendered = self.render(mail);
        let id =
            format!("<{}@{}>", hex::encode(crate::random::bytes::<16>()), self.from.email.domain());
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(rendered.subject)
            .date_now()
            .message_id(Some(id))
            .multipart(
                MultiPart::alternative()
                    .singlepart(plain_part(rendered.text))
                    .singlepart(SinglePart::html(rendered.html)),
            )
            .map_err(|e| MailError::Build(e.to_string()))?;
        Ok(message.formatted())
    }
}

/// The text part as 8bit UTF-8 (RFC 6152), so the code and the link read as they are in the
/// file: quoted-printable would split the link and spell its `=` as `=3D`, base64 would hide
/// both. lettre offers 8bit only for text it would not rather encode, so the body is handed to
/// it pre-encoded after the checks 8bit asks for: CRLF line ends, no line over 998 octets, no
/// NUL. Text that fails them goes in the encoding lettre chooses.
fn plain_part(text: String) -> SinglePart {
    let crlf = text.replace("\r\n", "\n").replace('\r', "\n").replace('\n', "\r\n");
    let fits = !crlf.contains('\0') && crlf.split("\r\n").all(|l| l.len() <= 998);
    let body = if fits {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::EightBit)
    } else {
        Body::new(text)
    };
    SinglePart::builder().header(ContentType::TEXT_PLAIN).body(body)
}

/// Writes `<n>.eml` files (n = 1, 2, ... continuing after the highest existing number) into a
/// folder, created if missing; safe for concurrent writers in one process (a Mutex around the
/// counter; each file is written under a temporary name, `.<n>.eml.tmp`, then renamed, so a
/// reader never sees half a file). Two processes sharing a folder are not coordinated: a
/// number one of them took after the other opened is skipped, not overwritten, unless both
/// take it at the same instant.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    /// The number the next file gets.
    next: Mutex<u64>,
}

impl Outbox {
    /// Opens (creating it and its parents if missing) the folder `dir`; the first file
    /// written is one past the highest `<n>.eml` already there.
    ///
    /// Errors: [`MailError::Io`] when the folder cannot be created or listed.
    pub fn open(dir: PathBuf) -> Result<Self, MailError> {
        fs::create_dir_all(&dir)?;
        let mut highest = 0;
        for entry in fs::read_dir(&dir)? {
            if let Some(n) = number_of(&entry?.file_name().to_string_lossy()) {
                highest = highest.max(n);
            }
        }
        Ok(Self { dir, next: Mutex::new(highest + 1) })
    }

    /// The folder written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `eml` (a whole message, as [`Sender::to_eml`] makes) as the next `<n>.eml` and
    /// returns its path. On an error the number is not used up and no file is left.
    ///
    /// Errors: [`MailError::Io`] when the file cannot be written or renamed.
    pub fn write(&self, eml: &[u8]) -> Result<PathBuf, MailError> {
        // The lock is held across the write: numbers are handed out in order with no gaps,
        // and a writer that fails gives its number back. Outbox writes are a local run's,
        // a few a second at most.
        let mut next = self.next.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut n = *next;
        // A file another process wrote since `open` is kept, not replaced.
        while self.dir.join(format!("{n}.eml")).exists() {
            n += 1;
        }
        let tmp = self.dir.join(format!(".{n}.eml.tmp"));
        let path = self.dir.join(format!("{n}.eml"));
        let written = (|| {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(eml)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        *next = n + 1;
        Ok(path)
    }
}

/// `n` for a file named `<n>.eml` (digits only, no sign, no leading `+`), else `None`.
fn number_of(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".eml")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
