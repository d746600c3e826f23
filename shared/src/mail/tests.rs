//! Unit tests of rendering, the `.eml` messages (parsed back with mailparse), the sender's
//! settings, the outbox and the local queue. SES and SQS are exercised against moto by the
//! integration tests (testkit), not here.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::render::escape;
use super::*;

const CODE: &str = "482913";
const LINK: &str = "https://auth.example.com/confirm?email=a%40example.com&token=tok-SECRET-123";
const TO: &str = "alice@example.com";
const HOSTILE: &str = "<script>alert(1)</script>\"&'";

fn sender() -> Sender {
    Sender::new("Acme", "Acme Accounts <no-reply@mail.example.com>").unwrap()
}

fn all_notices() -> Vec<Notice> {
    let all = vec![
        Notice::PasswordChanged,
        Notice::PasswordReset,
        Notice::EmailChanged,
        Notice::EmailChangeReverted,
        Notice::MfaEnabled,
        Notice::MfaDisabled,
        Notice::PasskeyAdded,
        Notice::PasskeyRemoved,
    ];
    // Stops compiling when a variant is added: add it to the list above too.
    for n in &all {
        match n {
            Notice::PasswordChanged
            | Notice::PasswordReset
            | Notice::EmailChanged
            | Notice::EmailChangeReverted
            | Notice::MfaEnabled
            | Notice::MfaDisabled
            | Notice::PasskeyAdded
            | Notice::PasskeyRemoved => {}
        }
    }
    all
}

/// Every kind, each notice once; the secrets each one carries.
fn all_kinds() -> Vec<(Kind, Vec<&'static str>)> {
    let mut kinds = vec![
        (Kind::VerifySignup { code: CODE.into(), link: LINK.into() }, vec![CODE, LINK]),
        (Kind::AccountExists { forgot_link: LINK.into() }, vec![LINK]),
        (Kind::ResetPassword { code: CODE.into(), link: LINK.into() }, vec![CODE, LINK]),
        (Kind::VerifyNewEmail { code: CODE.into(), link: LINK.into() }, vec![CODE, LINK]),
        (Kind::NewEmailInUse, vec![]),
        (
            Kind::EmailChangeNotice {
                new_email: "bob@example.org".into(),
                revert_link: Some(LINK.into()),
                valid_hours: 72,
            },
            vec![LINK],
        ),
    ];
    for what in all_notices() {
        kinds.push((Kind::Notice { what }, vec![]));
    }
    // Stops compiling when a kind is added: add it to the list above too.
    for (kind, _) in &kinds {
        match kind {
            Kind::VerifySignup { .. }
            | Kind::AccountExists { .. }
            | Kind::ResetPassword { .. }
            | Kind::VerifyNewEmail { .. }
            | Kind::NewEmailInUse
            | Kind::EmailChangeNotice { .. }
            | Kind::Notice { .. } => {}
        }
    }
    kinds
}

fn mail(kind: Kind, name: Option<&str>) -> Mail {
    Mail { to: TO.into(), name: name.map(str::to_owned), kind }
}

#[test]
fn every_kind_and_notice_renders_a_whole_mail() {
    let s = sender();
    let kinds = all_kinds();
    assert_eq!(kinds.len(), 6 + 8);
    let mut subjects = BTreeSet::new();
    for (kind, _) in kinds {
        let r = s.render(&mail(kind.clone(), Some("Alice")));
        assert!(!r.subject.is_empty() && !r.text.is_empty() && !r.html.is_empty(), "{kind:?}");
        assert!(r.subject.contains("Acme"), "{kind:?}: {}", r.subject);
        assert!(!r.subject.contains(['\r', '\n']), "{kind:?}");
        assert!(!r.subject.contains("Alice") && !r.subject.contains('@'), "{kind:?}");
        assert!(r.text.starts_with("Hello \u{2068}Alice\u{2069},\n\n"), "{kind:?}: {}", r.text);
        assert!(r.html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"), "{kind:?}");
        assert!(r.html.ends_with("</body>\n</html>\n"), "{kind:?}");
        assert!(r.html.contains("<bdi>Alice</bdi>"), "{kind:?}");
        assert!(r.html.contains(&format!("<title>{}</title>", escape(&r.subject))), "{kind:?}");
        // The same sentences in both parts: every paragraph of the text part is in the HTML.
        for line in r.text.lines().filter(|l| l.len() > 20 && !l.contains('\u{2068}')) {
            assert!(r.html.contains(&escape(line.trim())), "{kind:?}: {line:?} not in HTML");
        }
        subjects.insert(r.subject);
    }
    assert_eq!(subjects.len(), 6 + 8, "each kind and notice has its own subject");
}

#[test]
fn codes_and_links_appear_in_both_parts() {
    let s = sender();
    for (kind, secrets) in all_kinds() {
        let r = s.render(&mail(kind.clone(), None));
        assert!(r.text.starts_with("Hello,\n\n"), "{kind:?}");
        for secret in secrets {
            assert!(r.text.contains(secret), "{kind:?}: {secret} not in text");
            assert!(r.html.contains(&escape(secret)), "{kind:?}: {secret} not in HTML");
            assert!(!r.subject.contains(secret), "{kind:?}");
        }
        if r.text.contains(LINK) {
            // A link and its plain text; the `&` of the query escaped in both.
            let escaped = "https://auth.example.com/confirm?email=a%40example.com&amp;\
                           token=tok-SECRET-123";
            assert!(r.html.contains(&format!("<a href=\"{escaped}\"")), "{kind:?}");
            assert!(r.html.contains(&format!(">{escaped}</span>")), "{kind:?}");
            assert!(!r.html.contains(LINK), "{kind:?}: a raw & in the HTML");
            assert!(r.text.lines().any(|l| l == LINK), "{kind:?}: link not on its own line");
        }
        if r.text.contains(CODE) {
            assert!(r.text.lines().any(|l| l.trim() == CODE), "{kind:?}: code not on its own line");
            assert!(r.html.contains(&format!(
                "font-size:32px;font-weight:bold;letter-spacing:6px\">{CODE}</p>"
            )));
        }
    }
    // The hours of the revert link, in words.
    let notice = |h| Kind::EmailChangeNotice {
        new_email: "bob@example.org".into(),
        revert_link: Some(LINK.into()),
        valid_hours: h,
    };
    let r = s.render(&mail(notice(72), None));
    assert!(r.text.contains("within 72 hours") && r.html.contains("within 72 hours"));
    assert!(r.text.contains("bob@example.org") && r.html.contains("bob@example.org"));
    assert!(s.render(&mail(notice(1), None)).text.contains("within 1 hour "));
}

#[test]
fn a_hostile_name_is_escaped_in_html_and_never_raw() {
    let s = sender();
    for (kind, _) in all_kinds() {
        let r = s.render(&mail(kind.clone(), Some(HOSTILE)));
        assert!(
            r.html.contains("<bdi>&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;&#39;</bdi>"),
            "{kind:?}: {}",
            r.html
        );
        assert!(!r.html.contains("<script"), "{kind:?}");
        assert!(!r.html.contains("\"&'"), "{kind:?}");
        assert!(!r.subject.contains("script"), "{kind:?}");
        // The text part is not markup: the name as typed, isolated.
        assert!(r.text.contains(&format!("\u{2068}{HOSTILE}\u{2069}")), "{kind:?}");
    }
    // Hostile values from elsewhere are escaped too: the app name and the new address.
    let s = Sender::new("A&B <Co>", "no-reply@example.com").unwrap();
    let r = s.render(&mail(
        Kind::EmailChangeNotice {
            new_email: "\"><img src=x>@example.org".into(),
            revert_link: Some("https://x.example/r?a=\"'><b>".into()),
            valid_hours: 2,
        },
        None,
    ));
    assert!(r.html.contains("A&amp;B &lt;Co&gt;"));
    assert!(r.html.contains("&quot;&gt;&lt;img src=x&gt;@example.org"));
    assert!(r.html.contains("href=\"https://x.example/r?a=&quot;&#39;&gt;&lt;b&gt;\""));
    assert!(!r.html.contains("<Co>") && !r.html.contains("<img") && !r.html.contains("<b>"));
    assert_eq!(r.subject, "Your A&B <Co> email address is being changed");
}

#[test]
fn a_name_with_control_characters_stays_on_its_line() {
    let s = sender();
    let name = "Eve\r\nYour code is 000000\u{7}\u{202E}evil";
    let r =
        s.render(&mail(Kind::VerifySignup { code: CODE.into(), link: LINK.into() }, Some(name)));
    let first = r.text.lines().next().unwrap();
    assert_eq!(first, "Hello \u{2068}Eve  Your code is 000000 \u{202E}evil\u{2069},");
    assert!(!r.text.lines().any(|l| l.starts_with("Your code")));
    assert!(!r.html.contains(['\r', '\u{7}']));
}

/// The header names of a parsed message, in order.
fn header_names(m: &mailparse::ParsedMail<'_>) -> Vec<String> {
    m.headers.iter().map(|h| h.get_key()).collect()
}

#[test]
fn a_hostile_name_never_reaches_a_header_of_the_eml() {
    let s = sender();
    let name = "Eve\r\nBcc: x@evil.example\r\n\r\n<b>";
    let m = mail(Kind::ResetPassword { code: CODE.into(), link: LINK.into() }, Some(name));
    let eml = s.to_eml(&m).unwrap();
    let head_end = eml.windows(4).position(|w| w == b"\r\n\r\n").expect("a header section");
    let head = String::from_utf8(eml[..head_end].to_vec()).unwrap();
    assert!(!head.contains("evil") && !head.contains("Eve"), "{head}");
    assert!(!head.contains(CODE) && !head.contains("tok-SECRET"), "{head}");

    let parsed = mailparse::parse_mail(&eml).unwrap();
    let mut names = header_names(&parsed);
    names.sort();
    assert_eq!(
        names,
        ["Content-Type", "Date", "From", "MIME-Version", "Message-ID", "Subject", "To"],
        "{head}"
    );
    let get = |k: &str| parsed.headers.iter().find(|h| h.get_key() == k).unwrap().get_value();
    assert_eq!(get("From"), "\"Acme Accounts\" <no-reply@mail.example.com>");
    assert_eq!(get("To"), TO);
    assert_eq!(get("Subject"), "Reset your Acme password");
    assert_eq!(get("MIME-Version"), "1.0");
    let id = get("Message-ID");
    assert!(
        id.starts_with('<')
            && id.ends_with("@mail.example.com>")
            && id.len() == 1 + 32 + 1 + 16 + 1,
        "{id}"
    );
    // RFC 5322's date-time, as lettre writes it ("Tue, 1 Jul 2025 10:52:37 +0000").
    assert!(mailparse::dateparse(&get("Date")).is_ok(), "{}", get("Date"));
    assert_eq!(parsed.ctype.mimetype, "multipart/alternative");

    assert_eq!(parsed.subparts.len(), 2);
    let (plain, html) = (&parsed.subparts[0], &parsed.subparts[1]);
    assert_eq!(plain.ctype.mimetype, "text/plain");
    assert_eq!(plain.ctype.charset, "utf-8");
    assert_eq!(html.ctype.mimetype, "text/html");
    assert_eq!(html.ctype.charset, "utf-8");
    let text = plain.get_body().unwrap();
    let rendered = s.render(&m);
    assert!(text.contains(CODE) && text.contains(LINK), "{text}");
    assert!(text.contains("\u{2068}Eve  Bcc: x@evil.example    <b>\u{2069}"), "{text}");
    // The parts decode to what render made (lettre may turn `\n` into CRLF).
    assert_eq!(text.replace("\r\n", "\n"), rendered.text);
    assert_eq!(html.get_body().unwrap().replace("\r\n", "\n"), rendered.html);
    // Each message gets its own id.
    let eml2 = s.to_eml(&m).unwrap();
    let again = mailparse::parse_mail(&eml2).unwrap().headers;
    let id2 = again.iter().find(|h| h.get_key() == "Message-ID").unwrap().get_value();
    assert_ne!(id, id2);
}

#[test]
fn non_ascii_subject_and_name_survive_the_eml() {
    let s = Sender::new("Café Ünïcode", "Équipe Café <no-reply@example.com>").unwrap();
    let name = "שלום \u{202B}Zoë";
    let m = mail(Kind::Notice { what: Notice::PasskeyAdded }, Some(name));
    let eml = s.to_eml(&m).unwrap();
    let head = &eml[..eml.windows(4).position(|w| w == b"\r\n\r\n").unwrap()];
    assert!(head.is_ascii(), "headers without SMTPUTF8 are ASCII (the text part is 8bit)");
    let parsed = mailparse::parse_mail(&eml).unwrap();
    let get = |k: &str| parsed.headers.iter().find(|h| h.get_key() == k).unwrap().get_value();
    assert_eq!(get("Subject"), "A passkey was added to your account at Café Ünïcode");
    assert_eq!(get("From"), "Équipe Café <no-reply@example.com>");
    let text = parsed.subparts[0].get_body().unwrap();
    assert!(text.contains(&format!("\u{2068}{name}\u{2069}")), "{text}");
    assert!(parsed.subparts[1].get_body().unwrap().contains(&format!("<bdi>{name}</bdi>")));
}

#[test]
fn to_eml_refuses_a_recipient_that_is_not_a_plain_ascii_address() {
    let s = sender();
    for to in [
        "",
        "alice",
        "alice@",
        "@example.com",
        "a@b@example.com",
        "alice smith@example.com",
        "alice@example.com\r\nBcc: x@evil.example",
        "alice@example.com\n",
        "\u{e9}lise@example.com",
        "alice@b\u{fc}cher.example",
        "Alice <alice@example.com>",
        "alice@exa\tmple.com",
    ] {
        let m = Mail {
            to: to.into(),
            name: None,
            kind: Kind::VerifySignup { code: CODE.into(), link: LINK.into() },
        };
        match s.to_eml(&m) {
            Err(MailError::Build(why)) => {
                assert!(!why.contains(CODE) && !why.contains("tok-SECRET"), "{why}");
            }
            other => panic!("{to:?}: {:?}", other.map(String::from_utf8)),
        }
    }
}

#[test]
fn sender_new_refuses_bad_settings_and_takes_good_ones() {
    for app in ["", "  ", "Acme\r\nBcc: x@evil.example", "Acme\n", "Acme\r", "Ac\tme", "A\u{85}"] {
        assert!(
            matches!(Sender::new(app, "no-reply@example.com"), Err(MailError::InvalidSetting(_))),
            "{app:?}"
        );
    }
    for from in [
        "",
        "not an address",
        "no-reply",
        "no-reply@",
        "a@b.example, c@d.example",
        "Acme <no-reply@example.com> junk",
        "Acme <no-reply@example.com>, Other <o@example.com>",
        "Acme <no-reply@example.com",
        "Acme <no-reply@example.com>\r\nBcc: x@evil.example",
        "Acme <n\u{f6}-reply@example.com>",
    ] {
        assert!(
            matches!(Sender::new("Acme", from), Err(MailError::InvalidSetting(_))),
            "{from:?} was taken"
        );
    }
    let bare = Sender::new(" Acme ", " no-reply@example.com ").unwrap();
    assert_eq!(bare.app_name(), "Acme");
    assert_eq!(bare.from_address(), "no-reply@example.com");
    let named = Sender::new("Acme", "Acme Accounts <no-reply@example.com>").unwrap();
    assert_eq!(named.from_address(), "Acme Accounts <no-reply@example.com>");
    let quoted = Sender::new("Acme", "\"Acme, Inc.\" <no-reply@example.com>").unwrap();
    assert_eq!(quoted.from_address(), "\"Acme, Inc.\" <no-reply@example.com>");
}

#[test]
fn a_non_ascii_from_name_goes_to_ses_as_encoded_words() {
    use base64::Engine;
    let name = "Équipe Café de la Gare de Lyon — Service des comptes utilisateurs";
    let s = Sender::new("Acme", &format!("{name} <no-reply@example.com>")).unwrap();
    let from = s.from_address();
    let (words, addr) = from.rsplit_once(' ').unwrap();
    assert_eq!(addr, "<no-reply@example.com>");
    let mut decoded = Vec::new();
    let words: Vec<&str> = words.split(' ').collect();
    assert!(words.len() > 1, "{from}");
    for w in words {
        assert!(w.len() <= 75, "{w}");
        let b64 = w.strip_prefix("=?UTF-8?B?").and_then(|w| w.strip_suffix("?=")).unwrap();
        decoded.extend(base64::engine::general_purpose::STANDARD.decode(b64).unwrap());
    }
    assert_eq!(String::from_utf8(decoded).unwrap(), name);
}

#[test]
fn debug_output_never_shows_codes_or_links() {
    let s = sender();
    for (kind, _) in all_kinds() {
        let m = mail(kind, Some("Alice"));
        let shown = format!("{m:?} {:?}", s.render(&m));
        assert!(!shown.contains(CODE) && !shown.contains("tok-SECRET"), "{shown}");
        assert!(shown.contains(TO));
    }
}

#[test]
fn escape_replaces_the_five_markup_characters() {
    assert_eq!(escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
    assert_eq!(escape("plain é ✓"), "plain é ✓");
    assert_eq!(escape("&amp;"), "&amp;amp;");
}

/// A fresh folder under the system's temporary one, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir()
            .join(format!("auth-mail-test-{}", hex::encode(crate::random::bytes::<8>())));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The names in `dir`, sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn outbox_numbers_concurrent_writes_and_writes_whole_files() {
    let tmp = TempDir::new();
    let dir = tmp.0.join("nested").join("outbox");
    let outbox = Outbox::open(dir.clone()).unwrap();
    assert_eq!(outbox.dir(), dir);
    let s = sender();
    // Three different mails, each large enough that a torn write would show.
    let emls: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let link = format!("https://auth.example.com/r?t={}", "x".repeat(200_000 + i));
            s.to_eml(&mail(Kind::ResetPassword { code: format!("{i}{i}{i}"), link }, None)).unwrap()
        })
        .collect();
    let barrier = std::sync::Barrier::new(3);
    let paths: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = emls
            .iter()
            .map(|eml| {
                let (outbox, barrier) = (&outbox, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    outbox.write(eml).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(names_in(&dir), ["1.eml", "2.eml", "3.eml"], "no temporary file left");
    let mut seen = BTreeSet::new();
    for (eml, path) in emls.iter().zip(&paths) {
        assert_eq!(path.parent().unwrap(), dir);
        let on_disk = std::fs::read(path).unwrap();
        assert_eq!(&on_disk, eml, "{path:?} is not the mail written to it");
        mailparse::parse_mail(&on_disk).unwrap();
        seen.insert(path.file_name().unwrap().to_owned());
    }
    assert_eq!(seen.len(), 3);
}

#[test]
fn outbox_continues_after_the_highest_number() {
    let tmp = TempDir::new();
    std::fs::create_dir_all(&tmp.0).unwrap();
    for name in ["2.eml", "5.eml", "notes.txt", "07x.eml", "+9.eml", ".12.eml.tmp", "8.eml.bak"] {
        std::fs::write(tmp.0.join(name), b"old").unwrap();
    }
    let outbox = Outbox::open(tmp.0.clone()).unwrap();
    let eml = sender().to_eml(&mail(Kind::NewEmailInUse, None)).unwrap();
    assert_eq!(outbox.write(&eml).unwrap(), tmp.0.join("6.eml"));
    assert_eq!(std::fs::read(tmp.0.join("6.eml")).unwrap(), eml);
    assert_eq!(std::fs::read(tmp.0.join("5.eml")).unwrap(), b"old");
    // A file another writer made meanwhile is kept: the next number is skipped.
    std::fs::write(tmp.0.join("7.eml"), b"other").unwrap();
    assert_eq!(outbox.write(b"x").unwrap(), tmp.0.join("8.eml"));
    assert_eq!(std::fs::read(tmp.0.join("7.eml")).unwrap(), b"other");
    drop(outbox);
    let reopened = Outbox::open(tmp.0.clone()).unwrap();
    assert_eq!(reopened.write(b"y").unwrap(), tmp.0.join("9.eml"));
}

#[test]
fn outbox_refuses_a_path_that_is_a_file() {
    let tmp = TempDir::new();
    std::fs::create_dir_all(&tmp.0).unwrap();
    let file = tmp.0.join("plain");
    std::fs::write(&file, b"").unwrap();
    assert!(matches!(Outbox::open(file), Err(MailError::Io(_))));
}

#[tokio::test]
async fn the_local_queue_carries_each_job_as_json() {
    #[derive(serde::Serialize)]
    struct Job<'a> {
        kind: &'a str,
        user: u32,
    }
    let (queue, mut rx) = Queue::local();
    queue.send(&Job { kind: "verify", user: 7 }).await.unwrap();
    queue.send(&serde_json::json!({"kind": "notice"})).await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), r#"{"kind":"verify","user":7}"#);
    assert_eq!(rx.recv().await.unwrap(), r#"{"kind":"notice"}"#);
    // A job that is not JSON-able is refused before anything is queued.
    let mut bad = std::collections::HashMap::new();
    bad.insert((1, 2), "tuple keys are not JSON");
    assert!(matches!(queue.send(&bad).await, Err(MailError::Json(_))));
    drop(rx);
    assert!(matches!(queue.send(&1).await, Err(MailError::Sqs(_))));
}

#[test]
fn the_text_part_keeps_the_code_and_link_readable_in_the_file() {
    let link = "https://app.example/?action=verify-email#token=AAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    let m = mail(Kind::VerifySignup { code: "042137".into(), link: link.into() }, Some("Zoë"));
    let eml = String::from_utf8(sender().to_eml(&m).unwrap()).unwrap();
    // Read as a person (or a script) reads the file, without decoding quoted-printable.
    assert!(eml.contains(link), "the link whole, its '=' not spelled '=3D':\n{eml}");
    assert!(eml.contains("042137"), "{eml}");
    assert!(eml.contains("Content-Transfer-Encoding: 8bit"), "{eml}");
}
