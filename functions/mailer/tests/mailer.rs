//! The mailer binary behind the Lambda Runtime API emulator, with SES v2 in moto: an SQS batch
//! is answered with a partial batch response (only the jobs that failed are reported, an
//! unreadable one is dropped, not retried), the mail goes out through SES from EMAIL_FROM, an
//! event that is not an SQS batch fails that invocation alone, and a job SES refuses is reported
//! by its message id.

use std::path::Path;

use serde_json::{Value, json};
use testkit::moto::Moto;
use testkit::runtime_api::{Function, Outcome};

const FROM: &str = "no-reply@example.com";

/// One SQS record with `body`, as Lambda's SQS polling delivers it.
fn record(message_id: &str, body: &str) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("receipt-{message_id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795804581000",
            "SenderId": "AROAEXAMPLE:signup",
            "ApproximateFirstReceiveTimestamp": "1795804581001"
        },
        "messageAttributes": {},
        "md5OfBody": "00000000000000000000000000000000",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:auth-service-MailQueue",
        "awsRegion": "us-east-1"
    })
}

/// A forgot-password job (`auth_shared::accounts::Job::Forgot`) for `identifier`.
fn forgot(id: &str, identifier: &str) -> String {
    json!({ "job": "forgot", "id": id, "identifier": identifier }).to_string()
}

/// The 6-digit runs of `text` (the code; a run of more digits is not one).
fn six_digit_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            current.push(c);
        } else {
            if current.len() == 6 {
                runs.push(current.clone());
            }
            current.clear();
        }
    }
    runs
}

/// The mail moto's SES holds for `to`.
fn mail_to(sent: &[Value], to: &str) -> Vec<Value> {
    sent.iter()
        .filter(|m| m["destinations"]["ToAddresses"].as_array().is_some_and(|a| a == &[json!(to)]))
        .cloned()
        .collect()
}

async fn invoke_ok(f: &Function, event: Value) -> Value {
    match f.invoke(event).await {
        Outcome::Response(v) => v,
        Outcome::Error { body, .. } => {
            panic!("the mailer failed the invocation: {body}\n{}", f.output())
        }
    }
}

#[tokio::test]
async fn sqs_batches_get_partial_batch_responses_and_mail_goes_out_through_ses() {
    let moto = Moto::start().await;
    moto.create_email_identity(FROM).await;
    let db = testkit::TestDb::new().await;
    let (username, email, password) = testkit::events::SAMPLE_USER;
    db.create_user(username, email, password).await;
    db.create_user("carol", "carol@example.com", password).await;
    db.create_user("dave", "dave@example.com", password).await;

    let mut env = moto.env();
    env.extend(
        [
            ("DATABASE_URL", db.url.as_str()),
            ("DATA_KEY", testkit::events::TEST_DATA_KEY),
            ("EMAIL_FROM", FROM),
            ("EMAIL_LINK_BASE_URL", "https://app.example/"),
            ("AWS_ENDPOINT_URL_SESV2", moto.endpoint.as_str()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let f = Function::start(Path::new(env!("CARGO_BIN_EXE_mailer")), &env).await;

    // One readable job and one unreadable body: the job is mailed; the unreadable one is logged
    // and dropped (a retry could never read it either), so nothing is reported for retry.
    let batch = json!({ "Records": [
        record("m-1", &forgot("6f1c1c52-4d1e-4c57-9a35-2b0b9d0c1a01", username)),
        record("m-2", "{\"job\": \"no such job\""),
    ]});
    let resp = invoke_ok(&f, batch).await;
    assert_eq!(resp, json!({ "batchItemFailures": [] }), "{}", f.output());
    let sent = moto.sent_mail().await;
    let to_alice = mail_to(&sent, email);
    assert_eq!(to_alice.len(), 1, "one mail to {email}: {sent:?}");
    assert_eq!(sent.len(), 1, "{sent:?}");
    let mail = &to_alice[0];
    assert!(mail["source"].as_str().is_some_and(|s| s.contains(FROM)), "{mail}");
    let body = mail["body"].as_str().unwrap_or_default();
    assert_eq!(six_digit_runs(body).len(), 1, "the mail shows one 6-digit code: {body}");
    assert!(body.contains("https://app.example/?action=reset-password#token="), "{body}");

    // Not an SQS batch: that invocation fails, the process keeps serving.
    match f.invoke(json!({ "hello": 1 })).await {
        Outcome::Error { body, .. } => {
            assert!(body.to_string().contains("not an SQS event"), "{body}");
        }
        Outcome::Response(v) => panic!("a non-SQS event answered {v}"),
    }
    let batch = json!({ "Records": [record("m-3", &forgot("6f1c1c52-4d1e-4c57-9a35-2b0b9d0c1a03", "carol"))] });
    let resp = invoke_ok(&f, batch).await;
    assert_eq!(resp, json!({ "batchItemFailures": [] }), "{}", f.output());
    let sent = moto.sent_mail().await;
    assert_eq!(mail_to(&sent, "carol@example.com").len(), 1, "{sent:?}");

    // SES refuses the sender now (its identity is gone): that job, and only it, is reported by
    // its message id, for SQS to retry alone.
    moto.ses_client()
        .await
        .delete_email_identity()
        .email_identity(FROM)
        .send()
        .await
        .expect("deleting the identity");
    let batch = json!({ "Records": [
        record("m-4", &forgot("6f1c1c52-4d1e-4c57-9a35-2b0b9d0c1a04", "dave")),
        record("m-5", &forgot("6f1c1c52-4d1e-4c57-9a35-2b0b9d0c1a05", "nobody-at-all")),
    ]});
    let resp = invoke_ok(&f, batch).await;
    assert_eq!(
        resp,
        json!({ "batchItemFailures": [{ "itemIdentifier": "m-4" }] }),
        "{}",
        f.output()
    );
    assert_eq!(moto.sent_mail().await.len(), 2, "nothing more was sent");
}
