//! Mailed codes and link tokens (sign-up, password reset, email change and its revert): how
//! they are made, stored and checked. The table is `account_codes` (migration 8).
//!
//! - A code is 6 decimal digits, uniformly random (rejection sampling, no modulo bias); a link
//!   token is `<selector>.<secret>`, a 96-bit selector that finds the row and a 256-bit secret,
//!   both base64url. Only keyed hashes are stored: HMAC-SHA-256 under the data key
//!   ([`crate::data_key`]), the code's bound to its account and purpose, so a copy of the
//!   database alone recovers neither.
//! - One row per account and purpose: minting replaces the code and link before it, so only
//!   the latest works.
//! - A code dies after 5 wrong tries, and every code of the purpose after 10 wrong tries on the
//!   account within a code's life (the count survives a new code); a used code is deleted.
//! - Checking locks the row (`FOR UPDATE`) in the caller's transaction, from reading the
//!   counts to consuming it or counting the wrong try: of two checks of one code, one
//!   consumes it and the other finds nothing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use tokio_postgres::{Error, GenericClient, Row};
use uuid::Uuid;

use crate::data_key::{DataKey, KeyVersion};

/// Wrong tries one code takes before it dies.
pub const MAX_CODE_TRIES: i32 = 5;
/// Wrong tries an account takes, per purpose, within a code's life, before every code of the
/// purpose dies.
pub const MAX_ACCOUNT_TRIES: i32 = 10;
/// Digits in a code.
pub const CODE_DIGITS: usize = 6;

/// What a code is for; each has its own row per account and its own life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirming a sign-up's address.
    Signup,
    /// Confirming a new address.
    EmailChange,
    /// Resetting a forgotten password.
    Reset,
    /// Undoing an email change, from the old address.
    Revert,
}

impl Purpose {
    /// The purpose a stored name names.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Signup, Self::EmailChange, Self::Reset, Self::Revert]
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    /// The name stored in `account_codes.purpose`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::EmailChange => "email_change",
            Self::Reset => "reset",
            Self::Revert => "revert",
        }
    }
}

/// A freshly made code and link token, in clear: they go into one mail and nowhere else.
pub struct Minted {
    /// The 6-digit code.
    pub code: secrecy::SecretString,
    /// The link token, `<selector>.<secret>`.
    pub token: secrecy::SecretString,
}

/// A uniformly random code of [`CODE_DIGITS`] digits.
pub fn new_code() -> String {
    // 4,294,000,000 is the largest multiple of 10^6 below 2^32: values at or above it are
    // drawn again, so every code is equally likely.
    const LIMIT: u32 = 4_294_000_000;
    loop {
        let n = u32::from_be_bytes(crate::random::bytes::<4>());
        if n < LIMIT {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// Whether `s` has the shape of a code (exactly [`CODE_DIGITS`] ASCII digits).
pub fn is_code(s: &str) -> bool {
    s.len() == CODE_DIGITS && s.bytes().all(|b| b.is_ascii_digit())
}

/// Splits a link token into its selector and secret, `None` when it has not the shape
/// [`mint`] gives (16 and 43 base64url characters around one dot).
pub fn split_token(token: &str) -> Option<(&str, Vec<u8>)> {
    let (selector, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !ok(selector, 16) || !ok(secret, 43) {
        return None;
    }
    let secret = URL_SAFE_NO_PAD.decode(secret).ok()?;
    Some((selector, secret))
}

fn code_mac(key: &KeyVersion, purpose: Purpose, user_id: Uuid, code: &str) -> [u8; 32] {
    key.mac("account code", &[purpose.as_str().as_bytes(), user_id.as_bytes(), code.as_bytes()])
}

fn token_parts<'a>(purpose: Purpose, selector: &'a str, secret: &'a [u8]) -> [&'a [u8]; 3] {
    [purpose.as_str().as_bytes(), selector.as_bytes(), secret]
}

/// Makes the account's code and link for `purpose`, replacing any before them, valid for
/// `ttl_seconds`; `email` is the address it proves (an email change) or restores (a revert),
/// with its lookup key. The count of wrong tries carries over unless the last one is older
/// than `ttl_seconds`.
///
/// # Errors
/// The database's.
pub async fn mint(
    c: &impl GenericClient,
    key: &KeyVersion,
    user_id: Uuid,
    purpose: Purpose,
    email: Option<&str>,
    ttl_seconds: u64,
) -> Result<Minted, Error> {
    const SQL: &str = "
        INSERT INTO account_codes AS a (user_id, purpose, code_hash, selector, token_hash,
                                        key_version, email, email_key, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))
        ON CONFLICT (user_id, purpose) DO UPDATE
           SET code_hash = excluded.code_hash, selector = excluded.selector,
               token_hash = excluded.token_hash, key_version = excluded.key_version,
               email = excluded.email, email_key = excluded.email_key, code_tries = 0,
               tries = CASE WHEN a.tries_since < now() - make_interval(secs => $9) THEN 0
                            ELSE a.tries END,
               tries_since = CASE WHEN a.tries_since < now() - make_interval(secs => $9)
                                  THEN now() ELSE a.tries_since END,
               created_at = now(), expires_at = excluded.expires_at";
    let code = new_code();
    let selector = URL_SAFE_NO_PAD.encode(crate::random::bytes::<12>());
    let secret = crate::random::bytes::<32>();
    let code_hash = code_mac(key, purpose, user_id, &code).to_vec();
    let token_hash = key.mac("account link", &token_parts(purpose, &selector, &secret)).to_vec();
    let email_key = email.map(crate::identifier::key);
    let ttl = ttl_seconds as f64;
    c.execute_typed(
        SQL,
        &[
            (&user_id, Type::UUID),
            (&purpose.as_str(), Type::TEXT),
            (&code_hash, Type::BYTEA),
            (&selector, Type::TEXT),
            (&token_hash, Type::BYTEA),
            (&key.id, Type::TEXT),
            (&email, Type::TEXT),
            (&email_key, Type::TEXT),
            (&ttl, Type::FLOAT8),
        ],
    )
    .await?;
    let token = format!("{selector}.{}", URL_SAFE_NO_PAD.encode(secret));
    Ok(Minted { code: code.into(), token: token.into() })
}

/// A code or link as a request presents it.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    /// A code typed from the mail, for the account the address names.
    Code(&'a str),
    /// A link token.
    Token(&'a str),
}

/// A locked row of `account_codes`.
#[derive(Debug, Clone)]
pub struct Held {
    /// The account.
    pub user_id: Uuid,
    /// What it is for.
    pub purpose: Purpose,
    /// The address an email change proves or a revert restores.
    pub email: Option<String>,
    code_hash: Vec<u8>,
    selector: String,
    token_hash: Vec<u8>,
    key_version: String,
    alive: bool,
}

/// The columns [`held`] reads; `$n` and `$n+1` are [`MAX_CODE_TRIES`] and
/// [`MAX_ACCOUNT_TRIES`].
fn select(n: usize) -> String {
    format!(
        "SELECT user_id, code_hash, selector, token_hash, key_version, email,
                expires_at > now() AND code_tries < ${n} AND tries < ${}, purpose
           FROM account_codes",
        n + 1
    )
}

fn held(row: &Row) -> Result<Held, Error> {
    let purpose: String = row.try_get(7)?;
    Ok(Held {
        user_id: row.try_get(0)?,
        // The table's CHECK allows only the names `Purpose` has.
        purpose: Purpose::parse(&purpose).unwrap_or(Purpose::Revert),
        code_hash: row.try_get(1)?,
        selector: row.try_get(2)?,
        token_hash: row.try_get(3)?,
        key_version: row.try_get(4)?,
        email: row.try_get(5)?,
        alive: row.try_get(6)?,
    })
}

/// Locks and reads the row a link token's selector names, whatever its purpose (the token
/// says which); `None` for a token of another shape or an unknown selector.
///
/// # Errors
/// The database's.
pub async fn lock_token(c: &impl GenericClient, token: &str) -> Result<Option<Held>, Error> {
    let Some((selector, _)) = split_token(token) else { return Ok(None) };
    let sql = format!("{} WHERE selector = $1 FOR UPDATE", select(2));
    c.query_typed_opt(
        &sql,
        &[(&selector, Type::TEXT), (&MAX_CODE_TRIES, Type::INT4), (&MAX_ACCOUNT_TRIES, Type::INT4)],
    )
    .await?
    .as_ref()
    .map(held)
    .transpose()
}

/// Locks and reads the rows a presented code or link may match: for a token, the one its
/// selector names (if it is for `purpose`); for a code, the account's (`user_id`) or, for an
/// email change, every row proving `email_key` (several accounts may be asking for one
/// address).
///
/// # Errors
/// The database's.
pub async fn lock(
    c: &impl GenericClient,
    purpose: Purpose,
    presented: Presented<'_>,
    user_id: Option<Uuid>,
    email_key: Option<&str>,
) -> Result<Vec<Held>, Error> {
    let selector = match presented {
        Presented::Token(t) => match split_token(t) {
            Some((selector, _)) => Some(selector.to_owned()),
            None => return Ok(Vec::new()),
        },
        Presented::Code(_) => None,
    };
    if selector.is_none() && user_id.is_none() && email_key.is_none() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "{} WHERE purpose = $1
            AND ($2::text IS NULL OR selector = $2)
            AND ($3::uuid IS NULL OR user_id = $3)
            AND ($4::text IS NULL OR email_key = $4)
          ORDER BY user_id FOR UPDATE",
        select(5)
    );
    let rows = c
        .query_typed(
            &sql,
            &[
                (&purpose.as_str(), Type::TEXT),
                (&selector, Type::TEXT),
                (&if selector.is_some() { None } else { user_id }, Type::UUID),
                (&if selector.is_some() { None } else { email_key }, Type::TEXT),
                (&MAX_CODE_TRIES, Type::INT4),
                (&MAX_ACCOUNT_TRIES, Type::INT4),
            ],
        )
        .await?;
    rows.iter().map(held).collect()
}

impl Held {
    /// Whether `presented` matches this row and the row is still alive (not expired, fewer
    /// than the allowed wrong tries), compared in constant time under the version the row was
    /// made with.
    pub async fn matches(&self, keys: &DataKey, presented: Presented<'_>) -> bool {
        let Some(key) = keys.version(&self.key_version).await else { return false };
        let ok = match presented {
            Presented::Code(code) => {
                is_code(code)
                    && key.verify(
                        "account code",
                        &[
                            self.purpose.as_str().as_bytes(),
                            self.user_id.as_bytes(),
                            code.as_bytes(),
                        ],
                        &self.code_hash,
                    )
            }
            Presented::Token(token) => match split_token(token) {
                Some((selector, secret)) => {
                    selector == self.selector
                        && key.verify(
                            "account link",
                            &token_parts(self.purpose, selector, &secret),
                            &self.token_hash,
                        )
                }
                None => false,
            },
        };
        ok && self.alive
    }
}

/// Counts a wrong try against the account's `purpose` (the row stays locked by the caller).
///
/// # Errors
/// The database's.
pub async fn record_wrong(c: &impl GenericClient, held: &Held) -> Result<(), Error> {
    c.execute_typed(
        "UPDATE account_codes SET code_tries = code_tries + 1, tries = tries + 1
          WHERE user_id = $1 AND purpose = $2",
        &[(&held.user_id, Type::UUID), (&held.purpose.as_str(), Type::TEXT)],
    )
    .await?;
    Ok(())
}

/// Uses up the account's code and link for `purpose`.
///
/// # Errors
/// The database's.
pub async fn consume(c: &impl GenericClient, user_id: Uuid, purpose: Purpose) -> Result<(), Error> {
    c.execute_typed(
        "DELETE FROM account_codes WHERE user_id = $1 AND purpose = $2",
        &[(&user_id, Type::UUID), (&purpose.as_str(), Type::TEXT)],
    )
    .await?;
    Ok(())
}

/// Voids every open code and link of the account (a change of password or email), but for
/// `keep` (the revert link of the email change being made, which must outlive it).
///
/// # Errors
/// The database's.
pub async fn void_all(
    c: &impl GenericClient,
    user_id: Uuid,
    keep: Option<Purpose>,
) -> Result<u64, Error> {
    let keep = keep.map(Purpose::as_str);
    c.execute_typed(
        "DELETE FROM account_codes WHERE user_id = $1 AND purpose IS DISTINCT FROM $2",
        &[(&user_id, Type::UUID), (&keep, Type::TEXT)],
    )
    .await
}

/// When the account's code for `purpose` expires, if it has one (tests and `auth-admin`).
///
/// # Errors
/// The database's.
pub async fn expires_at(
    c: &impl GenericClient,
    user_id: Uuid,
    purpose: Purpose,
) -> Result<Option<OffsetDateTime>, Error> {
    Ok(c.query_typed_opt(
        "SELECT expires_at FROM account_codes WHERE user_id = $1 AND purpose = $2",
        &[(&user_id, Type::UUID), (&purpose.as_str(), Type::TEXT)],
    )
    .await?
    .map(|r| r.get(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_spread_evenly() {
        let mut first = [0u32; 10];
        for _ in 0..20_000 {
            let c = new_code();
            assert!(is_code(&c), "{c}");
            first[usize::from(c.as_bytes()[0] - b'0')] += 1;
        }
        // 2,000 expected per leading digit; a modulo-biased or constant generator misses.
        assert!(first.iter().all(|&n| (1_700..2_300).contains(&n)), "{first:?}");
        for bad in ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", " 23456", "+12345"] {
            assert!(!is_code(bad), "{bad:?}");
        }
    }

    #[test]
    fn tokens_have_one_shape() {
        let selector = URL_SAFE_NO_PAD.encode([1u8; 12]);
        let secret = URL_SAFE_NO_PAD.encode([2u8; 32]);
        let good = format!("{selector}.{secret}");
        assert_eq!(
            split_token(&good).map(|(s, k)| (s.to_owned(), k)),
            Some((selector.clone(), vec![2; 32]))
        );
        for bad in [
            String::new(),
            ".".into(),
            selector.clone(),
            format!("{selector}.{secret}="),
            format!("{selector}.{secret}.x"),
            format!("{selector}x.{secret}"),
            format!("{selector}.{}", &secret[1..]),
            format!("{selector}.{}+", &secret[1..]),
            format!("{selector} .{secret}"),
            "é".repeat(30),
        ] {
            assert!(split_token(&bad).is_none(), "{bad:?}");
        }
    }
}
