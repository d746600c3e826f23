//! `POST /login`: username or email plus password in, a signed access token out.
//!
//! The steps, and why they are in this order:
//! 1. parse and check the body (415, 413, 400) before touching the database;
//! 2. in one transaction, take the advisory lock on the attempt's throttle key, then read the
//!    account and the key's count under it; a locked key gets 429 without its password being
//!    checked;
//! 3. verify the password on a blocking thread (one current-policy hash whether or not the
//!    account exists, so neither the answer nor its timing tells them apart);
//! 4. still in that transaction, on success one statement writes `last_login_at`, the hash
//!    upgrade if due and the throttle reset, all only if the hash is still the one verified; on
//!    failure the count goes up. Then the transaction commits and, on success, the token is
//!    signed.

use std::sync::Arc;

use auth_shared::config::{DbConfig, Env, KeySource, TokenConfig, pbkdf2_iterations};
use auth_shared::db::Db;
use auth_shared::http::{self, ApiError};
use auth_shared::keys::Keys;
use auth_shared::lambda::StartupError;
use auth_shared::password::{self, MAX_PASSWORD_CHARS, Policy, Verdict};
use auth_shared::route::Route;
use auth_shared::throttle;
use auth_shared::token;
use auth_shared::users::{self, LoginRecord, User};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Deserializer};
use serde_json::json;

/// Longest identifier, in Unicode scalar values (the longest email address).
pub const MAX_IDENTIFIER_CHARS: usize = 320;

/// What the login function keeps between invocations.
pub struct State {
    db: Arc<Db>,
    keys: Arc<Keys>,
    tokens: TokenConfig,
    policy: Policy,
    /// One permit per core: more hashes at once than cores only adds switching and latency.
    hash_slots: Arc<tokio::sync::Semaphore>,
}

impl State {
    /// Builds the state from the environment: database, signing key (read now from Secrets
    /// Manager when SECRET_ARN is set), token settings and hashing policy.
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let db_cfg = DbConfig::from_env(env, 1)?;
        let tokens = TokenConfig::from_env(env)?;
        let policy = Policy { iterations: pbkdf2_iterations(env)? };
        let source = KeySource::require_from_env(env)?;
        let db = Arc::new(Db::connect(db_cfg).await?);
        // The first connection opens while the key is read.
        db.warm_up();
        let keys = Keys::load(&source).await?;
        Ok(Self::new(db, Arc::new(keys), tokens, policy))
    }

    /// Builds the state from existing parts (local server, tests).
    pub fn new(db: Arc<Db>, keys: Arc<Keys>, tokens: TokenConfig, policy: Policy) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let hash_slots = Arc::new(tokio::sync::Semaphore::new(cores));
        Self { db, keys, tokens, policy, hash_slots }
    }
}

/// The route this function serves: its path, its methods, its handler.
pub const ROUTE: Route<State> =
    Route { path: "/login", methods: &[Method::POST], handle: |s, r| Box::pin(handle(s, r)) };

/// The handler.
pub async fn handle(state: &State, req: Request) -> Response<Body> {
    http::respond(ROUTE.path, &req, ROUTE.methods, login(state, &req)).await
}

/// A string member that must be a string when present (null is a wrong type, not absence).
fn present_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// The body; unknown members are ignored.
#[derive(Deserialize)]
struct LoginBody {
    #[serde(default, deserialize_with = "present_string")]
    username: Option<String>,
    #[serde(default, deserialize_with = "present_string")]
    email: Option<String>,
    #[serde(default, deserialize_with = "present_string")]
    password: Option<String>,
}

const SHAPE: &str = r#"a JSON object {"username" or "email": string, "password": string}"#;

/// Checks the body's shape and lengths; returns (identifier, password).
fn credentials(body: LoginBody) -> Result<(String, String), ApiError> {
    let invalid = |why: &str| ApiError::InvalidRequest(why.to_owned());
    let identifier = match (body.username, body.email) {
        (Some(i), None) | (None, Some(i)) => i,
        (Some(_), Some(_)) => {
            return Err(invalid("Give exactly one of username or email, not both."));
        }
        (None, None) => return Err(invalid("Give exactly one of username or email.")),
    };
    let password = body.password.ok_or_else(|| invalid("The password member is missing."))?;
    let n = identifier.chars().count();
    if n == 0 || n > MAX_IDENTIFIER_CHARS {
        return Err(invalid("The username or email must be 1 to 320 characters."));
    }
    if identifier.contains('\0') {
        return Err(invalid("The username or email must not contain NUL characters."));
    }
    let n = password.chars().count();
    if n == 0 || n > MAX_PASSWORD_CHARS {
        return Err(invalid("The password must be 1 to 1024 characters."));
    }
    Ok((identifier, password))
}

/// What one attempt came to.
enum Attempt {
    /// The key is locked; the password was not checked.
    Locked { key: String, retry_after: u64, user: Option<User> },
    /// Logged in.
    Succeeded { user: User, record: LoginRecord },
    /// Refused; `failures` is the key's count after this attempt.
    Failed { key: String, reason: &'static str, failures: i32, user: Option<User> },
}

async fn login(state: &State, req: &Request) -> Result<Response<Body>, ApiError> {
    let (identifier, password) = credentials(http::json_body(req, SHAPE)?)?;
    let policy = state.policy;
    // The transaction holds the key's lock across the password check, so it gets a deadline of
    // its own: the hash plus any attempts queued before it on the same account.
    let deadline = state.db.config().statement_timeout * 3;
    let slots = state.hash_slots.clone();
    let attempt = state
        .db
        .run_within(deadline, move |c| {
            let (identifier, password, slots) =
                (identifier.clone(), password.clone(), slots.clone());
            Box::pin(async move { attempt(c, &identifier, password, policy, &slots).await })
        })
        .await?;
    match attempt {
        Attempt::Succeeded { user, record } => issue(state, &user, record).await,
        Attempt::Locked { key, retry_after, user } => {
            let user_id = user.map(|u| u.id.to_string());
            tracing::warn!(event = "login_throttled", user_id, throttle_key = %key, retry_after, "login_throttled");
            Err(ApiError::TooManyAttempts { retry_after })
        }
        Attempt::Failed { key, reason, failures, user } => {
            // Expired counts are removed outside the attempt's transaction and lock.
            let purge = state.db.run(|c| Box::pin(async move { throttle::purge_expired(c).await }));
            if let Err(e) = purge.await {
                tracing::warn!(error = %e, "expired throttle rows could not be removed");
            }
            let user_id = user.map(|u| u.id.to_string());
            tracing::warn!(
                event = "login_failed",
                user_id,
                throttle_key = %key,
                reason,
                failures,
                locked_for_s = throttle::lock_seconds(failures),
                "login_failed"
            );
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// One attempt, in one transaction that holds the key's lock from reading its count to writing
/// the outcome.
async fn attempt(
    c: &mut auth_shared::tokio_postgres::Client,
    identifier: &str,
    password: String,
    policy: Policy,
    hash_slots: &tokio::sync::Semaphore,
) -> Result<Attempt, auth_shared::tokio_postgres::Error> {
    let tx = c.transaction().await?;
    // The account is read under the lock, so a hash another attempt upgraded meanwhile is the
    // one checked; known and unknown identifiers run the same statements.
    let key = throttle::lock_key(&tx, identifier).await?;
    let user = users::find_by_identifier(&tx, identifier).await?;
    if let throttle::Status::Locked { retry_after } = throttle::status(&tx, &key).await? {
        return Ok(Attempt::Locked { key, retry_after, user });
    }
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    // The semaphore is never closed, so acquiring cannot fail; if it somehow did, the check
    // would just run without a slot.
    let _slot = hash_slots.acquire().await.ok();
    // Hashing runs on a blocking thread so it cannot stall other requests on this runtime.
    let checked = tokio::task::spawn_blocking(move || {
        let verdict = match &stored {
            Some(hash) => password::verify(&password, hash, policy),
            None => password::verify_dummy(&password, policy),
        };
        let upgraded = match verdict {
            Verdict::Match { needs_upgrade: true } => Some(password::hash(&password, policy)),
            _ => None,
        };
        (verdict, upgraded)
    })
    .await;
    // A check that did not complete counts as a wrong password: fail closed.
    let (verdict, upgraded) = checked.unwrap_or((Verdict::Mismatch, None));
    let reason = match (&user, verdict) {
        (None, _) => "unknown_identifier",
        (Some(u), Verdict::Match { .. }) if u.is_active() => {
            match users::record_login(&tx, u.id, &u.password_hash, upgraded.as_deref()).await? {
                Some(record) => {
                    tx.commit().await?;
                    return Ok(Attempt::Succeeded { user: u.clone(), record });
                }
                None => "changed_concurrently",
            }
        }
        (Some(_), Verdict::Match { .. }) => "disabled",
        (Some(_), Verdict::Mismatch) => "wrong_password",
    };
    let failures = throttle::record_failure(&tx, &key).await?;
    tx.commit().await?;
    Ok(Attempt::Failed { key, reason, failures, user })
}

async fn issue(state: &State, u: &User, record: LoginRecord) -> Result<Response<Body>, ApiError> {
    // `iat` comes from the database's clock, the clock password_changed_at was set by. Tokens
    // issued in or before the second of the last password change are refused (a whole-second
    // `iat` cannot tell the two halves of that second apart), so a login in that same second
    // waits for the next one rather than issue a token that would not work, or one dated in
    // the future that strict verifiers refuse.
    let mut iat = record.now.unix_timestamp();
    if let Some(valid_from) = record.tokens_valid_from()
        && iat < valid_from
    {
        let wait = (time::OffsetDateTime::from_unix_timestamp(valid_from).unwrap_or(record.now)
            - record.now)
            .clamp(time::Duration::ZERO, time::Duration::seconds(3));
        tokio::time::sleep(wait.unsigned_abs()).await;
        iat = valid_from;
    }
    let keys = state.keys.current().await;
    let access_token = token::issue(&state.tokens, &keys.current, u.id, &u.username, iat)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tracing::info!(event = "login_succeeded", user_id = %u.id, kid = %keys.current.kid, "login_succeeded");
    Ok(http::json(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": state.tokens.ttl_seconds,
        }),
    ))
}

/// Property-based fuzzing of the login body parser as the handler runs it: `json_body` into
/// [`LoginBody`], then [`credentials`]. `auth-shared`'s fuzz test covers `json_body` on its
/// own; this one covers the login rules on top (null is a wrong type, exactly one identifier,
/// length limits, NUL). A longer run:
///   PROPTEST_CASES=100000 cargo test --release -p login --lib
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    fn parse(content_type: Option<&str>, body: Vec<u8>) -> Result<(String, String), ApiError> {
        let mut b = lambda_http::http::Request::builder().method("POST").uri(ROUTE.path);
        if let Some(ct) = content_type
            && let Ok(v) = lambda_http::http::HeaderValue::from_str(ct)
        {
            b = b.header("content-type", v);
        }
        credentials(http::json_body(&b.body(Body::Binary(body)).unwrap(), SHAPE)?)
    }

    /// The contract's rules for a JSON document, written independently of the parser.
    fn acceptable(doc: &Value) -> Option<(String, String)> {
        let o: &Map<String, Value> = doc.as_object()?;
        let string = |k: &str| match o.get(k) {
            None => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => None,
        };
        let identifier = match (string("username")?, string("email")?) {
            (Some(i), None) | (None, Some(i)) => i,
            _ => return None,
        };
        let password = string("password")??;
        let ok = (1..=320).contains(&identifier.chars().count())
            && !identifier.contains('\0')
            && (1..=1024).contains(&password.chars().count());
        ok.then_some((identifier, password))
    }

    /// Strings around every limit the parser checks.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![".{0,12}", "[a-z]{0,4}\u{0}[a-z]{0,4}", "\\PC{318,322}", "[a-zé]{1022,1026}",]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("username".to_owned()),
                        Just("email".to_owned()),
                        Just("password".to_owned()),
                        "[a-z]{0,6}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Objects with each of username, email and password absent, a string, null or another
    /// value, beside unrelated members: most documents a client would actually send.
    fn login_shaped() -> impl Strategy<Value = Value> {
        let member = || {
            prop_oneof![
                2 => Just(None),
                4 => text().prop_map(|t| Some(Value::String(t))),
                1 => Just(Some(Value::Null)),
                1 => json_value().prop_map(Some),
            ]
        };
        let extra = prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..3);
        (member(), member(), member(), extra).prop_map(|(username, email, password, extra)| {
            let mut o: Map<String, Value> = extra.into_iter().collect();
            for (k, v) in [("username", username), ("email", email), ("password", password)] {
                match v {
                    Some(v) => o.insert(k.to_owned(), v),
                    None => o.remove(k),
                };
            }
            Value::Object(o)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Any bytes under any content type: credentials, or a 400, 413 or 415 problem.
        #[test]
        fn any_bytes_get_credentials_or_a_client_error(
            body in prop::collection::vec(any::<u8>(), 0..10_000),
            ct in prop::option::of(prop_oneof![Just("application/json".to_owned()), ".{0,30}"]),
        ) {
            if let Err(e) = parse(ct.as_deref(), body) {
                prop_assert!([400, 413, 415].contains(&e.status().as_u16()), "{e:?}");
            }
        }

        /// Any JSON document: accepted exactly when the contract's rules accept it, with the
        /// same identifier and password; otherwise 400 (or 413 when over the size limit).
        #[test]
        fn json_documents_follow_the_contract(doc in prop_oneof![1 => json_value(), 4 => login_shaped()]) {
            let text = doc.to_string();
            let got = parse(Some("application/json"), text.clone().into_bytes());
            if text.len() > http::MAX_BODY_BYTES {
                prop_assert!(matches!(got, Err(ApiError::PayloadTooLarge)), "{got:?}");
                return Ok(());
            }
            match (got, acceptable(&doc)) {
                (Ok(got), Some(want)) => prop_assert_eq!(got, want),
                (Err(e), None) => prop_assert_eq!(e.status().as_u16(), 400, "{:?}", e),
                (got, want) => prop_assert!(false, "{text}: parsed {got:?}, contract says {want:?}"),
            }
        }
    }
}
