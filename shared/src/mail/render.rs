//! The wording of each mail: one list of blocks (paragraphs, a code, a link) per [`Kind`],
//! written out twice, as the text part and as the HTML part, so the two cannot say different
//! things.
//!
//! Every value put into the HTML (the app name, the user's name, the new address, codes,
//! links) goes through [`escape`]; the fixed wording holds no markup, so each paragraph is
//! escaped whole. The user's name is the one value the caller has not vetted: its control
//! characters (CR, LF, tab, ...) become spaces, so it cannot start a line of its own that
//! looks like ours, and it is wrapped in a bidi isolate (U+2068 ... U+2069 in text, `<bdi>` in
//! HTML, Unicode UAX #9) so right-to-left marks in it cannot reorder the sentence around it.
//! Links are shown as a link and as their plain text (for clients that strip links); codes
//! are set large on a line of their own.

use super::{Kind, Mail, Notice, Rendered, Sender};

/// One piece of a paragraph.
enum Seg {
    /// Fixed wording or a configured or caller-vetted value (app name, new address).
    Text(String),
    /// The user's name as typed.
    Name(String),
}

/// One block of a mail.
enum Block {
    /// A paragraph.
    Para(Vec<Seg>),
    /// A code to type, shown large.
    Code(String),
    /// A link: the words on its button, then the URL.
    Link { label: &'static str, url: String },
}

fn para(text: impl Into<String>) -> Block {
    Block::Para(vec![Seg::Text(text.into())])
}

impl Sender {
    /// Renders `mail`: its subject (which names the app, never the user or an address), its
    /// text part and its HTML part, carrying the same content. Never fails: every input is
    /// escaped or blanked as the module doc says.
    pub fn render(&self, mail: &Mail) -> Rendered {
        let app = self.app_name.as_str();
        let (subject, body) = wording(app, &mail.kind);
        let mut blocks = Vec::with_capacity(body.len() + 1);
        blocks.push(greeting(mail.name.as_deref()));
        blocks.extend(body);
        let footer = format!("This is an automated message from {app}; replies are not read.");
        Rendered {
            text: text(app, &blocks, &footer),
            html: html(app, &subject, &blocks, &footer),
            subject,
        }
    }
}

fn greeting(name: Option<&str>) -> Block {
    let name = name.map(blank_controls);
    match name {
        Some(name) if !name.trim().is_empty() => Block::Para(vec![
            Seg::Text("Hello ".into()),
            Seg::Name(name.trim().to_owned()),
            Seg::Text(",".into()),
        ]),
        _ => para("Hello,"),
    }
}

/// `s` with every control character (C0, DEL, C1: CR, LF, tab, ...) turned into a space.
fn blank_controls(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn hours(n: u64) -> String {
    if n == 1 { "1 hour".to_owned() } else { format!("{n} hours") }
}

/// The subject and the blocks after the greeting.
fn wording(app: &str, kind: &Kind) -> (String, Vec<Block>) {
    const IGNORE: &str = "If you did not ask for this, you can ignore this email: nothing changes \
                          without the code or the link.";
    match kind {
        Kind::VerifySignup { code, link } => (
            format!("Confirm your email for {app}"),
            vec![
                para(format!("Welcome to {app}. To confirm your email address, enter this code:")),
                Block::Code(code.clone()),
                para("Or open this link:"),
                Block::Link { label: "Confirm my email", url: link.clone() },
                para(format!(
                    "If you did not sign up for {app}, you can ignore this email: no account \
                     is confirmed without the code or the link."
                )),
            ],
        ),
        Kind::AccountExists { forgot_link } => (
            format!("You already have an account at {app}"),
            vec![
                para(format!(
                    "Someone, maybe you, tried to sign up for {app} with this email address, \
                     but it already belongs to an account. No new account was created."
                )),
                para(
                    "If it was you, sign in instead. If you forgot your password, you can \
                     reset it here:",
                ),
                Block::Link { label: "Reset my password", url: forgot_link.clone() },
                para("If it was not you, you can ignore this email: nothing has changed."),
            ],
        ),
        Kind::ResetPassword { code, link } => (
            format!("Reset your {app} password"),
            vec![
                para(format!(
                    "Someone asked to reset the password of your account at {app}. To choose a \
                     new password, enter this code:"
                )),
                Block::Code(code.clone()),
                para("Or open this link:"),
                Block::Link { label: "Reset my password", url: link.clone() },
                para(IGNORE),
            ],
        ),
        Kind::VerifyNewEmail { code, link } => (
            format!("Confirm your new email for {app}"),
            vec![
                para(format!(
                    "Someone asked to make this address the email of an account at {app}. To \
                     confirm it, enter this code:"
                )),
                Block::Code(code.clone()),
                para("Or open this link:"),
                Block::Link { label: "Confirm my new email", url: link.clone() },
                para(IGNORE),
            ],
        ),
        Kind::NewEmailInUse => (
            format!("Email change request for {app}"),
            vec![
                para(format!(
                    "Someone asked to move another account at {app} to this email address, but \
                     this address already belongs to an account at {app}. Nothing has changed."
                )),
                para(
                    "If it was you, sign in with this address instead. If it was not you, you \
                     can ignore this email.",
                ),
            ],
        ),
        Kind::EmailChangeNotice { new_email, revert_link, valid_hours } => {
            let mut blocks = vec![para(format!(
                "Someone asked to change the email address of your account at {app} to \
                 {new_email}. If it was you, there is nothing more to do."
            ))];
            match revert_link {
                Some(url) => {
                    blocks.push(para(format!(
                        "If it was not you, open this link within {} to undo the change and \
                         sign out every session, then reset your password:",
                        hours(*valid_hours)
                    )));
                    blocks.push(Block::Link { label: "Undo the change", url: url.clone() });
                }
                None => blocks.push(para(
                    "If it was not you: this address was itself set by a recent change, and the \
                     link mailed to the address before it undoes both. Reset your password now.",
                )),
            }
            (format!("Your {app} email address is being changed"), blocks)
        }
        Kind::Notice { what } => {
            let (subject, what_happened) = notice(app, *what);
            (
                subject,
                vec![
                    para(what_happened),
                    para(
                        "If it was you, there is nothing more to do. If it was not you, reset \
                         your password now and check your account's security settings.",
                    ),
                ],
            )
        }
    }
}

/// A notice's subject and first sentence.
fn notice(app: &str, what: Notice) -> (String, String) {
    match what {
        Notice::PasswordChanged => (
            format!("Your {app} password was changed"),
            format!("The password of your account at {app} was just changed."),
        ),
        Notice::PasswordReset => (
            format!("Your {app} password was reset"),
            format!("The password of your account at {app} was just reset with a reset code."),
        ),
        Notice::EmailChanged => (
            format!("Your {app} email address was changed"),
            format!("The email address of your account at {app} was just changed."),
        ),
        Notice::EmailChangeReverted => (
            format!("Your {app} email change was undone"),
            format!(
                "The change of your email address at {app} was undone, and every \
                 session was signed out."
            ),
        ),
        Notice::MfaEnabled => (
            format!("Two-step verification is on for your account at {app}"),
            format!("Two-step verification was just turned on for your account at {app}."),
        ),
        Notice::MfaDisabled => (
            format!("Two-step verification is off for your account at {app}"),
            format!("Two-step verification was just turned off for your account at {app}."),
        ),
        Notice::PasskeyAdded => (
            format!("A passkey was added to your account at {app}"),
            format!("A new passkey was just added to your account at {app}."),
        ),
        Notice::PasskeyRemoved => (
            format!("A passkey was removed from your account at {app}"),
            format!("A passkey was just removed from your account at {app}."),
        ),
    }
}

/// The text part: blocks separated by blank lines, a code indented on its own line, a link's
/// URL on its own line, then the signature.
fn text(app: &str, blocks: &[Block], footer: &str) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Para(segs) => {
                for seg in segs {
                    match seg {
                        Seg::Text(t) => out.push_str(t),
                        Seg::Name(n) => {
                            out.push('\u{2068}');
                            out.push_str(n);
                            out.push('\u{2069}');
                        }
                    }
                }
            }
            Block::Code(code) => {
                out.push_str("    ");
                out.push_str(code);
            }
            Block::Link { url, .. } => out.push_str(url),
        }
        out.push_str("\n\n");
    }
    // "-- " is the signature separator mail clients recognise (RFC 3676, section 4.3).
    out.push_str("-- \n");
    out.push_str(app);
    out.push('\n');
    out.push_str(footer);
    out.push('\n');
    out
}

const P: &str = "margin:0 0 16px;font-size:16px;line-height:1.5";

/// The HTML part: a whole document with inline styles only (many mail clients drop `<style>`).
fn html(app: &str, subject: &str, blocks: &[Block], footer: &str) -> String {
    let mut body = String::new();
    for block in blocks {
        match block {
            Block::Para(segs) => {
                body.push_str(&format!("<p style=\"{P}\">"));
                for seg in segs {
                    match seg {
                        Seg::Text(t) => body.push_str(&escape(t)),
                        Seg::Name(n) => {
                            body.push_str("<bdi>");
                            body.push_str(&escape(n));
                            body.push_str("</bdi>");
                        }
                    }
                }
                body.push_str("</p>\n");
            }
            Block::Code(code) => body.push_str(&format!(
                "<p style=\"margin:0 0 16px;font-family:Menlo,Consolas,monospace;\
                 font-size:32px;font-weight:bold;letter-spacing:6px\">{}</p>\n",
                escape(code)
            )),
            Block::Link { label, url } => {
                let url = escape(url);
                body.push_str(&format!(
                    "<p style=\"{P}\"><a href=\"{url}\" style=\"display:inline-block;\
                     padding:12px 20px;background:#2563eb;color:#ffffff;border-radius:6px;\
                     text-decoration:none;font-weight:bold\">{}</a></p>\n\
                     <p style=\"margin:0 0 16px;font-size:13px;line-height:1.5;color:#52525b\">\
                     If the button does not work, copy this link into your browser:<br>\
                     <span style=\"word-break:break-all\">{url}</span></p>\n",
                    escape(label)
                ));
            }
        }
    }
    let app = escape(app);
    format!(
        "<!DOCTYPE html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n\
         </head>\n\
         <body style=\"margin:0;padding:24px;background:#f4f4f5;color:#18181b;\
         font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif\">\n\
         <div style=\"max-width:560px;margin:0 auto;padding:32px;background:#ffffff;\
         border-radius:8px\">\n\
         <p style=\"margin:0 0 24px;font-size:20px;font-weight:bold\">{app}</p>\n\
         {body}\
         <p style=\"margin:24px 0 0;font-size:12px;line-height:1.5;color:#71717a\">{}</p>\n\
         </div>\n\
         </body>\n\
         </html>\n",
        escape(subject),
        escape(footer),
    )
}

/// `s` with the five characters that are markup in HTML text and in quoted attribute values
/// replaced by character references (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;`), as OWASP's
/// XSS prevention cheat sheet (rule 1 and 2) asks.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
