//! Checking one record: the account rules (`auth_shared::account`), the hash format, the dates.

use super::*;

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
    /// Whether the address counts as proven (true when the column is absent or empty).
    pub email_verified: bool,
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
    /// `true`/`false` (also `t`/`f`, `1`/`0`, `yes`/`no`, any case; in JSON a boolean too, as
    /// `export` writes it); absent or empty: true.
    #[serde(default, deserialize_with = "bool_or_text")]
    pub email_verified: Option<String>,
}

/// A JSON boolean as its text, or a string (or null) as it is.
fn bool_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum BoolOrText {
        Bool(bool),
        Text(String),
    }
    Ok(<Option<BoolOrText> as serde::Deserialize>::deserialize(d)?.map(|v| match v {
        BoolOrText::Bool(b) => b.to_string(),
        BoolOrText::Text(s) => s,
    }))
}

impl Fields {
    /// Every field with its column name.
    pub(super) fn named(&self) -> [(&'static str, Option<&str>); 10] {
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
            ("email_verified", self.email_verified.as_deref()),
        ]
    }
}

pub(super) fn date(what: &str, s: Option<&str>) -> Result<Option<OffsetDateTime>, String> {
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

/// Reads a yes/no column the way PostgreSQL's `boolean` input does (`true`/`false`, `t`/`f`,
/// `yes`/`no`, `on`/`off`, `1`/`0`, any case); absent or empty is `default`.
pub(super) fn flag(what: &str, s: Option<&str>, default: bool) -> Result<bool, String> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(default) };
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "on" | "1" => Ok(true),
        "false" | "f" | "no" | "n" | "off" | "0" => Ok(false),
        _ => Err(format!("{what} is not true or false: {s:?}")),
    }
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
        email_verified: flag("email_verified", f.email_verified.as_deref(), true)?,
        username_key,
        email_key,
    })
}
