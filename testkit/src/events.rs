//! Building Lambda events (API Gateway HTTP API payload 2.0, ALB) and reading the sample
//! events of `events/` together with the statuses `events/README.md` promises for them.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// The repository's `events/` directory.
pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// One row of the table in `events/README.md`.
#[derive(Debug, Clone)]
pub struct Sample {
    /// File name inside `events/`.
    pub file: String,
    /// The function it is for.
    pub function: String,
    /// The status the README promises.
    pub status: u16,
}

/// The rows of the table in `events/README.md` (`| file | function | status | ... |`).
pub fn samples() -> Vec<Sample> {
    let readme = std::fs::read_to_string(events_dir().join("README.md")).expect("events/README.md");
    readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> =
                line.trim().trim_matches('|').split('|').map(str::trim).collect();
            let file = cells.first()?.trim_matches('`');
            if !file.ends_with(".json") {
                return None;
            }
            Some(Sample {
                file: file.to_owned(),
                function: cells.get(1)?.trim_matches('`').to_owned(),
                status: cells.get(2)?.parse().ok()?,
            })
        })
        .collect()
}

/// Reads a sample event.
pub fn load(file: &str) -> Value {
    let text =
        std::fs::read_to_string(events_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// An API Gateway HTTP API (payload 2.0) event.
pub fn apigw(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Value {
    let mut h = Map::new();
    for (k, v) in headers {
        h.insert(k.to_ascii_lowercase(), Value::String((*v).to_owned()));
    }
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": h,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api-id",
            "domainName": "api-id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "api-id",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "curl/8.5.0"
            },
            "requestId": "req-id",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "28/Nov/2026:18:36:21 +0000",
            "timeEpoch": 1795804581000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// A Lambda Function URL event (payload 2.0, like the HTTP API's, from a `lambda-url` domain).
pub fn function_url(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Value {
    let mut event = apigw(method, path, headers, body);
    event["routeKey"] = json!("$default");
    let ctx = &mut event["requestContext"];
    ctx["routeKey"] = json!("$default");
    ctx["domainName"] = json!("abcdefghijklmnop.lambda-url.us-east-1.on.aws");
    ctx["domainPrefix"] = json!("abcdefghijklmnop");
    ctx["apiId"] = json!("abcdefghijklmnop");
    event["headers"]["host"] = json!("abcdefghijklmnop.lambda-url.us-east-1.on.aws");
    event
}

/// An ALB event (Lambda target) for any route, with or without multi-value headers.
pub fn alb(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    multi_value: bool,
) -> Value {
    let mut event = json!({
        "requestContext": {
            "elb": { "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/auth/0123456789abcdef" }
        },
        "httpMethod": method,
        "path": path,
        "body": body.unwrap_or_default(),
        "isBase64Encoded": false
    });
    let mut h = Map::new();
    for (k, v) in headers {
        let v = Value::String((*v).to_owned());
        h.insert(k.to_ascii_lowercase(), if multi_value { Value::Array(vec![v]) } else { v });
    }
    if multi_value {
        event["multiValueHeaders"] = Value::Object(h);
        event["multiValueQueryStringParameters"] = json!({});
    } else {
        event["headers"] = Value::Object(h);
        event["queryStringParameters"] = json!({});
    }
    event
}

/// An ALB health-check event (no Host header), with or without multi-value headers.
pub fn alb_health(method: &str, multi_value: bool) -> Value {
    let mut event = json!({
        "requestContext": {
            "elb": { "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/auth-health/0123456789abcdef" }
        },
        "httpMethod": method,
        "path": "/health",
        "body": "",
        "isBase64Encoded": false
    });
    if multi_value {
        event["multiValueHeaders"] = json!({ "user-agent": ["ELB-HealthChecker/2.0"] });
        event["multiValueQueryStringParameters"] = json!({});
    } else {
        event["headers"] = json!({ "user-agent": "ELB-HealthChecker/2.0" });
        event["queryStringParameters"] = json!({});
    }
    event
}

/// Decodes the body of a Lambda HTTP response document (base64 when so marked).
pub fn response_body(resp: &Value) -> String {
    use base64::Engine;
    let body = resp["body"].as_str().unwrap_or_default();
    if resp["isBase64Encoded"].as_bool() == Some(true) {
        let bytes = base64::engine::general_purpose::STANDARD.decode(body).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        body.to_owned()
    }
}

/// A response header, looked up case-insensitively in `headers` and `multiValueHeaders`.
pub fn response_header(resp: &Value, name: &str) -> Option<String> {
    let find = |obj: &Value| {
        obj.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    };
    if let Some(v) = find(&resp["headers"]) {
        return v.as_str().map(str::to_owned);
    }
    find(&resp["multiValueHeaders"])?.as_array()?.first()?.as_str().map(str::to_owned)
}

/// The signing key the end-to-end tests give the function binaries (SECRET_KEY).
pub const TEST_KEY: &str = "test-signing-key-0123456789abcdef-not-for-production";
/// The sample account the login and profile events expect.
pub const SAMPLE_USER: (&str, &str, &str) =
    ("alice", "alice@example.com", "correct horse battery staple");

/// A token for `user_id` signed with [`TEST_KEY`] under the default token settings.
pub fn fresh_token(user_id: uuid::Uuid, username: &str) -> String {
    let cfg = auth_shared::config::TokenConfig {
        issuer: "auth-service".into(),
        audience: "auth-service".into(),
        ttl_seconds: 3600,
    };
    let key = auth_shared::signing::Key::new("local", TEST_KEY.as_bytes()).expect("test key");
    auth_shared::token::issue(&cfg, &key, user_id, username, None, auth_shared::token::now())
        .expect("token")
}

/// Opens a session for the account in the database itself, as a login would, and returns an
/// access token of it (signed with [`TEST_KEY`]) and its refresh token.
pub async fn session_tokens(
    db: &crate::TestDb,
    user_id: uuid::Uuid,
    username: &str,
) -> (String, String) {
    use auth_shared::sessions::{self, SessionConfig};
    let c = db.client().await;
    let grant =
        sessions::open(&c, user_id, &SessionConfig::default()).await.expect("opening a session");
    let cfg = crate::app::token_config();
    let key = auth_shared::signing::Key::new("local", TEST_KEY.as_bytes()).expect("test key");
    let now = auth_shared::token::now();
    let access =
        auth_shared::token::issue(&cfg, &key, user_id, username, Some(grant.session_id), now)
            .expect("token");
    (access, grant.refresh_token)
}

/// A refresh token that has been rotated once (consumed) in a fresh session of the account.
pub async fn consumed_refresh_token(
    db: &crate::TestDb,
    user_id: uuid::Uuid,
    username: &str,
) -> String {
    use auth_shared::sessions::{self, Refresh, SessionConfig};
    let (_, token) = session_tokens(db, user_id, username).await;
    let mut c = db.client().await;
    let tx = c.transaction().await.expect("transaction");
    let hash = sessions::refresh_token_hash(&token).expect("our token");
    let rotated =
        sessions::refresh(&tx, &token, &hash, &SessionConfig::default()).await.expect("rotation");
    assert!(matches!(rotated, Refresh::Rotated { .. }), "{rotated:?}");
    tx.commit().await.expect("commit");
    token
}

/// Replaces the placeholders the sample events carry with live tokens of `user_id`'s sessions.
async fn fill_placeholders(
    event: Value,
    db: &crate::TestDb,
    user_id: uuid::Uuid,
    username: &str,
) -> Value {
    let mut text = event.to_string();
    if text.contains("REPLACE_WITH_ACCESS_TOKEN_FROM_LOGIN")
        || text.contains("REPLACE_WITH_REFRESH_TOKEN_FROM_LOGIN")
    {
        let (access, refresh) = session_tokens(db, user_id, username).await;
        text = text
            .replace("REPLACE_WITH_ACCESS_TOKEN_FROM_LOGIN", &access)
            .replace("REPLACE_WITH_REFRESH_TOKEN_FROM_LOGIN", &refresh);
    }
    if text.contains("REPLACE_WITH_CONSUMED_REFRESH_TOKEN") {
        let consumed = consumed_refresh_token(db, user_id, username).await;
        text = text.replace("REPLACE_WITH_CONSUMED_REFRESH_TOKEN", &consumed);
    }
    serde_json::from_str(&text).expect("the event stays JSON")
}

/// The environment the sample events are sent with: `db`, the test signing key and hashing
/// policy, and a consumed refresh token counted as reuse at once (the consumed-token sample's
/// case).
pub fn sample_env(db: &crate::TestDb) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.url.clone()),
        ("SECRET_KEY", TEST_KEY.to_owned()),
        ("PBKDF2_ITERATIONS", crate::pg::TEST_POLICY.iterations.to_string()),
        ("REFRESH_REUSE_INTERVAL_SECONDS", "0".to_owned()),
        // The account and second-factor functions key their hashes and seal their secrets
        // with it (accepted outside Lambda; the Runtime API emulator does not set
        // AWS_LAMBDA_INITIALIZATION_TYPE).
        ("DATA_KEY", TEST_DATA_KEY.to_owned()),
        // The passkey functions' relying party.
        ("WEBAUTHN_RP_ID", "localhost".to_owned()),
        ("WEBAUTHN_ORIGINS", "http://localhost:3000".to_owned()),
    ]
}

/// Sends every sample event of `function` to its real binary through the Runtime API emulator
/// and checks each response against the status `events/README.md` promises, plus the headers
/// every response carries.
pub async fn check_samples(function: &str, binary: &str) {
    check_program_samples(function, &crate::runtime_api::Program::native(Path::new(binary))).await;
}

/// The functions that put mail jobs on the queue (MAIL_QUEUE_URL, required): their samples are
/// sent with a real SQS queue in moto, and a data key.
pub const ACCOUNT_FUNCTIONS: [&str; 6] = [
    "signup",
    "verify-email",
    "resend-verification",
    "forgot-password",
    "reset-password",
    "change-email",
];

/// The data key the account functions get (DATA_KEY: accepted outside Lambda, and the Runtime
/// API emulator does not set AWS_LAMBDA_INITIALIZATION_TYPE).
pub const TEST_DATA_KEY: &str = "test-data-key-0123456789abcdef-not-for-production";

/// [`check_samples`] for a binary started some other way: an arm64 bootstrap under qemu.
pub async fn check_program_samples(function: &str, program: &crate::runtime_api::Program) {
    let db = crate::TestDb::new().await;
    let (username, email, password) = SAMPLE_USER;
    let user_id = db.create_user(username, email, password).await;
    let mut env = sample_env(&db);
    // The account functions: a queue in moto (kept running while the samples are sent) and
    // moto's credentials and SQS endpoint.
    let mut mail = None;
    if ACCOUNT_FUNCTIONS.contains(&function) {
        let moto = crate::moto::Moto::start().await;
        let url = moto.create_queue("mail").await;
        env.extend(crate::moto::AWS_ENV.iter().map(|(k, v)| (*k, (*v).to_owned())));
        env.push(("AWS_ENDPOINT_URL_SQS", moto.endpoint.clone()));
        env.push(("MAIL_QUEUE_URL", url.clone()));
        mail = Some((moto, url));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let f = crate::runtime_api::Function::launch(program, &env).await;
    let samples: Vec<Sample> = samples().into_iter().filter(|s| s.function == function).collect();
    assert!(!samples.is_empty(), "events/README.md lists no event for {function}");
    for sample in samples {
        let event = fill_placeholders(load(&sample.file), &db, user_id, username).await;
        let resp = f.invoke(event).await.response();
        let status = resp["statusCode"].as_u64().unwrap_or_default();
        assert_eq!(
            status,
            u64::from(sample.status),
            "{} ({}): got {resp}\nfunction output:\n{}",
            sample.file,
            program.name,
            f.output()
        );
        assert_eq!(
            response_header(&resp, "x-content-type-options").as_deref(),
            Some("nosniff"),
            "{}",
            sample.file
        );
        assert!(
            response_header(&resp, "x-request-id").is_some_and(|v| !v.is_empty()),
            "{}",
            sample.file
        );
        // A request the account routes accept for mailing (202) puts exactly one job on the
        // queue; a refused one puts none.
        if let Some((moto, url)) = &mail {
            let jobs = moto.receive_messages(url).await;
            if status == 202 || status >= 400 {
                let expected = usize::from(status == 202);
                assert_eq!(jobs.len(), expected, "{}: jobs on the queue: {jobs:?}", sample.file);
            }
        }
        let body = response_body(&resp);
        if sample.file.contains("head") || status == 204 {
            assert!(body.is_empty(), "{}: answered with a body", sample.file);
        } else {
            let doc: Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{}: {e}: {body}", sample.file));
            if status >= 400 {
                assert_eq!(doc["status"].as_u64(), Some(status), "{}: {doc}", sample.file);
                assert!(doc["error"].is_string(), "{}: {doc}", sample.file);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The table is the contract the binaries are checked against: an event file without a
    /// row would never be sent, a row without a file would fail every function's check.
    #[test]
    fn every_event_file_has_a_row_and_every_row_a_file() {
        let files: BTreeSet<String> = std::fs::read_dir(super::events_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        let rows: Vec<String> = super::samples().into_iter().map(|s| s.file).collect();
        let listed: BTreeSet<String> = rows.iter().cloned().collect();
        assert_eq!(rows.len(), listed.len(), "a file listed twice in events/README.md");
        let unlisted: Vec<&String> = files.difference(&listed).collect();
        let missing: Vec<&String> = listed.difference(&files).collect();
        assert!(unlisted.is_empty(), "events without a row in events/README.md: {unlisted:?}");
        assert!(missing.is_empty(), "rows in events/README.md without a file: {missing:?}");
    }
}
