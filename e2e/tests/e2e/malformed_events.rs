//! Events lambda_http cannot turn into a request as they come (once, a request the handler
//! never read could end the whole process), sent to the real function binaries of `cases` through the
//! Runtime API in each event form: API Gateway HTTP API (payload 2.0), Lambda Function URL, ALB
//! with single and with multi-value headers. Each gets the function's normal answer (the
//! functions route by API Gateway's route, never by the raw query, path or host), a body that
//! cannot be decoded gets 400, and the same process answers the clean event that follows.

use std::path::Path;

use serde_json::{Value, json};
use testkit::events::{self, SAMPLE_USER, TEST_KEY, response_body};
use testkit::runtime_api::{Function, Outcome};

/// Raw query strings with characters `http::Uri` refuses, and lone or short `%` escapes.
const BAD_QUERIES: &[&str] = &[
    "x=\"1\"",
    "a b=c",
    "x={1}",
    "x=a|b",
    "x=a^b",
    "x=`id`",
    "name=Jos\u{e9}",
    "x=%",
    "x=%4",
    "x=%zz",
    "x=<script>",
    "x=a\\b",
    "x=[1]",
    "a=1#frag",
    "x=\u{1}",
];

/// Host values `url` or `http` refuse: a port out of range, spaces, empty, user info, junk.
const BAD_HOSTS: &[&str] = &[
    "auth.example.com:99999",
    "auth.example.com:-1",
    "auth example.com",
    "",
    " ",
    "user@auth.example.com",
    "[::1",
    "auth.example.com:80:80",
    "a/b",
    "\u{e9}x\u{e4}mple.com:70000",
];

/// The event forms, each a function of (method, path, headers, body).
type Form = fn(&str, &str, &[(&str, &str)], Option<&str>) -> Value;

fn forms() -> Vec<(&'static str, Form)> {
    vec![
        ("apigw", events::apigw),
        ("function-url", events::function_url),
        ("alb", |m, p, h, b| events::alb(m, p, h, b, false)),
        ("alb-multi", |m, p, h, b| events::alb(m, p, h, b, true)),
    ]
}

fn is_alb(form: &str) -> bool {
    form.starts_with("alb")
}

/// Sets a header in whichever header map the event has.
fn set_header(event: &mut Value, name: &str, value: Value) {
    if event["multiValueHeaders"].is_object() {
        event["multiValueHeaders"][name] = json!([value]);
    } else {
        event["headers"][name] = value;
    }
}

/// One function under test: its binary, route, a request that succeeds, and its status.
struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
    status: u64,
}

fn cases(token: &str) -> Vec<Case> {
    let (username, _, password) = SAMPLE_USER;
    let json = ("content-type", "application/json".to_owned());
    vec![
        Case {
            name: "health",
            method: "GET",
            path: "/health",
            headers: vec![],
            body: None,
            status: 200,
        },
        Case {
            name: "test-db",
            method: "GET",
            path: "/test-db",
            headers: vec![],
            body: None,
            status: 200,
        },
        Case {
            name: "login",
            method: "POST",
            path: "/login",
            headers: vec![json],
            body: Some(json!({"username": username, "password": password}).to_string()),
            status: 200,
        },
        Case {
            name: "profile",
            method: "GET",
            path: "/profile",
            headers: vec![("authorization", format!("Bearer {token}"))],
            body: None,
            status: 200,
        },
    ]
}

/// Every malformed variant of `case`'s request in `form`, named.
fn variants(case: &Case, form_name: &str, form: Form) -> Vec<(String, Value)> {
    let headers: Vec<(&str, &str)> = case.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let base = || form(case.method, case.path, &headers, case.body.as_deref());
    let mut out = Vec::new();
    let path_field = if is_alb(form_name) { "path" } else { "rawPath" };
    for q in BAD_QUERIES {
        if is_alb(form_name) {
            // ALB hands the query over as parameters; lambda_http re-encodes them itself.
            let mut e = base();
            let (k, v) = q.split_once('=').unwrap_or((q, ""));
            if e["multiValueQueryStringParameters"].is_object() {
                e["multiValueQueryStringParameters"][k] = json!([v]);
            } else {
                e["queryStringParameters"][k] = json!(v);
            }
            out.push((format!("query param {q:?}"), e));
        } else {
            let mut e = base();
            e["rawQueryString"] = json!(q);
            out.push((format!("rawQueryString {q:?}"), e));
        }
        let mut e = base();
        e[path_field] = json!(format!("{}{}", case.path, q.replace('=', "")));
        out.push((format!("{path_field} with {q:?}"), e));
    }
    for p in [":99999", "health", "", "//evil.example.com", "/a/../..", "\u{7f}"] {
        let mut e = base();
        e[path_field] = json!(p);
        out.push((format!("{path_field} {p:?}"), e));
    }
    for h in BAD_HOSTS {
        let mut e = base();
        set_header(&mut e, "host", json!(h));
        out.push((format!("host {h:?}"), e));
        if !is_alb(form_name) {
            let mut e = base();
            e["requestContext"]["domainName"] = json!(h);
            e["headers"].as_object_mut().map(|m| m.remove("host"));
            out.push((format!("domainName {h:?}"), e));
        }
    }
    for proto in ["ht tp", "", "javascript:"] {
        let mut e = base();
        set_header(&mut e, "host", json!("auth.example.com"));
        set_header(&mut e, "x-forwarded-proto", json!(proto));
        out.push((format!("x-forwarded-proto {proto:?}"), e));
    }
    for (name, value) in [
        ("x-bad-value", json!("a\u{0}b")),
        ("x-bad-value", json!("line\nbreak")),
        ("bad header name", json!("x")),
        ("x-number", json!(42)),
        ("x-null", Value::Null),
    ] {
        let mut e = base();
        set_header(&mut e, name, value.clone());
        out.push((format!("header {name:?}: {value}"), e));
    }
    if !is_alb(form_name) {
        let mut e = base();
        e["requestContext"]["stage"] = json!("st age/x");
        out.push(("stage \"st age/x\"".into(), e));
        let mut e = base();
        e["cookies"] = json!(["a=\u{1}", "b=2"]);
        out.push(("cookie with a control character".into(), e));
    }
    out
}

async fn start(name: &str, db: &testkit::TestDb) -> Function {
    let iterations = testkit::pg::TEST_POLICY.iterations.to_string();
    let binary = testkit::binary(name);
    Function::start(
        Path::new(&binary),
        &[("DATABASE_URL", &db.url), ("SECRET_KEY", TEST_KEY), ("PBKDF2_ITERATIONS", &iterations)],
    )
    .await
}

fn status_of(outcome: Outcome, what: &str, f: &Function) -> (u64, Value) {
    match outcome {
        Outcome::Response(r) => (r["statusCode"].as_u64().unwrap_or_default(), r),
        Outcome::Error { body, .. } => {
            panic!("{what}: an invocation error instead of an answer: {body}\n{}", f.output())
        }
    }
}

#[tokio::test]
async fn unconvertible_parts_get_the_normal_answer_and_the_process_lives_on() {
    let db = testkit::TestDb::new().await;
    let (username, email, password) = SAMPLE_USER;
    let user_id = db.create_user(username, email, password).await;
    let token = events::fresh_token(user_id, username);
    for case in cases(&token) {
        let f = start(case.name, &db).await;
        let pid = f.pid();
        let mut tried = 0;
        for (form_name, form) in forms() {
            for (what, event) in variants(&case, form_name, form) {
                let what = format!("{} {form_name} {what}", case.name);
                let (status, resp) = status_of(f.invoke(event).await, &what, &f);
                assert_eq!(status, case.status, "{what}: {resp}");
                tried += 1;
            }
            // The clean request, after all the bad ones, on the same process.
            let headers: Vec<(&str, &str)> =
                case.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let clean = form(case.method, case.path, &headers, case.body.as_deref());
            let (status, _) = status_of(f.invoke(clean).await, case.name, &f);
            assert_eq!(status, case.status);
        }
        assert!(tried > 100, "{}: only {tried} variants", case.name);
        assert_eq!(f.pid(), pid, "{}: the process was replaced", case.name);
        assert!(!f.output().contains("panic"), "{}: {}", case.name, f.output());
    }
}

#[tokio::test]
async fn a_body_marked_base64_that_is_not_gets_400_and_health_still_200() {
    let db = testkit::TestDb::new().await;
    let login = start("login", &db).await;
    for (form_name, form) in forms() {
        for body in ["not base64!", "%%%", "YWJj=", "\u{e9}"] {
            let mut e = form("POST", "/login", &[("content-type", "application/json")], Some(body));
            e["isBase64Encoded"] = json!(true);
            let (status, resp) = status_of(login.invoke(e).await, form_name, &login);
            assert_eq!(status, 400, "{form_name} {body:?}: {resp}");
            let doc: Value = serde_json::from_str(&response_body(&resp)).unwrap();
            assert_eq!(doc["error"], "invalid_json", "{doc}");
        }
        let mut e = form("POST", "/login", &[("content-type", "application/json")], None);
        e["body"] = json!(12);
        let (status, _) = status_of(login.invoke(e).await, form_name, &login);
        assert_eq!(status, 400, "{form_name}: a body that is not a string");
    }
    let health = start("health", &db).await;
    for (form_name, form) in forms() {
        let mut e = form("GET", "/health", &[], Some("***"));
        e["isBase64Encoded"] = json!(true);
        let (status, _) = status_of(health.invoke(e).await, form_name, &health);
        assert_eq!(status, 200, "{form_name}");
    }
}
