//! Sending through Amazon SES v2 `SendEmail` (API reference: "SendEmail", Amazon SES API v2),
//! with Simple content: SES builds the MIME message from the subject and the two parts, all
//! UTF-8. The client comes from [`crate::aws::sdk_config`] (so `AWS_ENDPOINT_URL_SESV2`
//! points it at a local emulator, and every call has that module's deadlines; SendEmail
//! answers in well under its one-second attempt timeout).

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use base64::Engine;
use lettre::message::Mailbox;

use super::{Mail, MailError, Sender, check_address};

/// An SES v2 client for this container, built from [`crate::aws::sdk_config`] (standard
/// chain for region and credentials, rustls on ring, the deadlines of [`crate::aws`]).
pub async fn ses_client() -> aws_sdk_sesv2::Client {
    aws_sdk_sesv2::Client::new(&crate::aws::sdk_config().await)
}

/// SES v2 SendEmail with Simple content (Subject, Body.Text and Body.Html, charset UTF-8),
/// FromEmailAddress = the Sender's from, Destination.ToAddresses = [mail.to]. Returns SES's
/// MessageId.
///
/// Errors: [`MailError::Build`] when `mail.to` is not printable ASCII with exactly one `@`
/// (nothing is sent); [`MailError::Ses`] when SES refuses or cannot be reached (the AWS error
/// code and message, e.g. `MessageRejected: Email address is not verified ...`, which may
/// name an address; or the transport's error chain), or answers without a MessageId.
pub async fn send_ses(
    client: &aws_sdk_sesv2::Client,
    sender: &Sender,
    mail: &Mail,
) -> Result<String, MailError> {
    check_address(&mail.to)
        .map_err(|why| MailError::Build(format!("recipient {:?} {why}", mail.to)))?;
    let rendered = sender.render(mail);
    let content = |data: String| {
        // `data` is the only required field, so this never fails.
        Content::builder()
            .data(data)
            .charset("UTF-8")
            .build()
            .map_err(|e| MailError::Ses(format!("building the request: {e}")))
    };
    let message = Message::builder()
        .subject(content(rendered.subject)?)
        .body(Body::builder().text(content(rendered.text)?).html(content(rendered.html)?).build())
        .build();
    let out = client
        .send_email()
        .from_email_address(&sender.from_ses)
        .destination(Destination::builder().to_addresses(&mail.to).build())
        .content(EmailContent::builder().simple(message).build())
        .send()
        .await
        .map_err(|e| MailError::Ses(super::describe(e)))?;
    out.message_id.ok_or_else(|| MailError::Ses("SES answered without a MessageId".into()))
}

/// `mailbox` as SES's FromEmailAddress takes it: `addr`, or `Name <addr>` with the name as
/// an RFC 5322 atom or quoted string when it is printable ASCII, else as RFC 2047
/// encoded-words (`=?UTF-8?B?...?=`, each at most 75 characters), as the SendEmail reference
/// asks of non-ASCII display names.
pub(crate) fn from_address(mailbox: &Mailbox) -> String {
    let name = mailbox.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return mailbox.email.to_string();
    }
    if name.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        // lettre's Display quotes (and escapes) a name that is not a plain atom.
        return mailbox.to_string();
    }
    // 45 bytes of UTF-8 are 60 base64 characters: with `=?UTF-8?B?` and `?=`, 72 of the 75
    // an encoded-word may have (RFC 2047 section 2). A word never splits a character.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in name.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    let engine = base64::engine::general_purpose::STANDARD;
    let words: Vec<String> =
        words.iter().map(|w| format!("=?UTF-8?B?{}?=", engine.encode(w))).collect();
    format!("{} <{}>", words.join(" "), mailbox.email)
}
