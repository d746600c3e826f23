//! Unit tests of reading and checking records.

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
    assert!(got[0].1.as_ref().unwrap_err().contains("extra fields: 4 fields, the header has 3"));
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
