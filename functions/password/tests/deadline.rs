//! A current password whose check the deadline cuts off counts in the login throttle like any
//! wrong one, and answers like one: a slow stored hash cannot be guessed against without limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_shared::db::{ConnectSettings, Db};
use auth_shared::password as hashes;
use serde_json::json;
use testkit::app::Parts;

#[tokio::test]
async fn wrong_current_passwords_the_deadline_cuts_off_are_counted() {
    let p = Parts::new(2).await;
    let settings = ConnectSettings::from_url(&p.test_db.url).unwrap();
    let mut cfg = testkit::pg::db_config(settings.clone(), 2);
    cfg.statement_timeout = Duration::from_secs(1);
    let db = Arc::new(Db::with_settings(settings, cfg).unwrap());
    let state = password::State::new(db, p.keys.clone(), p.tokens.clone(), p.policy);
    // passlib's pbkdf2_sha512 at its cap: about a second a try, two for a text not in NFKC.
    let capped = format!(
        "$pbkdf2-sha512${}$c2FsdHNhbHRzYWx0c2FsdA${}",
        hashes::MAX_ITERATIONS_SHA512,
        "A".repeat(86)
    );
    let id = p.test_db.create_user_with_hash("slow", "slow@example.com", &capped).await;
    // Tokens issued in the second of the account's last password change are refused.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (access, _) = testkit::events::session_tokens(&p.test_db, id, "slow").await;
    let change = |current: String| {
        let body = json!({"current_password": current, "new_password": "a long new passphrase"});
        testkit::request(
            "POST",
            "/password",
            &[("content-type", "application/json"), ("authorization", &format!("Bearer {access}"))],
            &body.to_string(),
        )
    };
    for i in 0..auth_shared::throttle::FREE_FAILURES {
        let started = Instant::now();
        let (status, _, doc) =
            testkit::read(password::handle(&state, change(format!("ﬁ {i}"))).await);
        assert_eq!((status, doc["error"].as_str()), (401, Some("invalid_credentials")), "{doc}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    }
    let (status, _, doc) = testkit::read(password::handle(&state, change("ﬁ again".into())).await);
    assert_eq!((status, doc["error"].as_str()), (429, Some("too_many_attempts")), "{doc}");
}
