//! Accounts people make and recover themselves, through the real handlers, the real mailer
//! (writing `.eml` files, parsed back) and PostgreSQL: sign-up, verification, reset, the
//! enumeration rules, the limits, bad input of every kind, and the races the locks settle.

use auth_shared::accounts::{AccountConfig, SignupMode};
use serde_json::{Value, json};
use testkit::accounts::Accounts;

const PASSWORD: &str = "correct horse battery staple";

async fn post(
    handle: impl AsyncFnOnce(
        auth_shared::lambda_http::Request,
    ) -> auth_shared::lambda_http::Response<auth_shared::lambda_http::Body>,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let req =
        testkit::request("POST", path, &[("content-type", "application/json")], &body.to_string());
    let (status, headers, body) = testkit::read(handle(req).await);
    if status == 429 {
        assert!(headers.contains_key("retry-after"), "{body}");
    }
    (status, body)
}

async fn signup(a: &Accounts, body: Value) -> (u16, Value) {
    post(async |r| signup::handle(&a.account, r).await, "/signup", &body).await
}

async fn verify(a: &Accounts, body: Value) -> (u16, Value) {
    post(async |r| verify_email::handle(&a.code, r).await, "/verify-email", &body).await
}

async fn forgot(a: &Accounts, body: Value) -> (u16, Value) {
    post(async |r| forgot_password::handle(&a.account, r).await, "/password/forgot", &body).await
}

async fn reset(a: &Accounts, body: Value) -> (u16, Value) {
    post(async |r| reset_password::handle(&a.code, r).await, "/password/reset", &body).await
}

async fn resend(a: &Accounts, body: Value) -> (u16, Value) {
    post(async |r| resend_verification::handle(&a.account, r).await, "/verify-email/resend", &body)
        .await
}

async fn login(a: &Accounts, username: &str, password: &str) -> (u16, Value) {
    let body = json!({"username": username, "password": password});
    post(async |r| login::handle(&a.login, r).await, "/login", &body).await
}

fn new_user(name: &str) -> Value {
    json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD})
}

/// Ages every mail sent so far past the per-address gap, so a test can mail one address twice
/// without waiting a minute.
async fn age_mail_log(a: &Accounts) {
    a.parts
        .test_db
        .client()
        .await
        .execute("UPDATE mail_log SET sent_at = sent_at - interval '2 minutes'", &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn sign_up_mail_verify_then_log_in() {
    let a = Accounts::new(AccountConfig::default()).await;
    let (status, body) = signup(&a, new_user("ann")).await;
    assert_eq!((status, body), (202, json!({"status": "verification_sent"})));
    // Unverified: the right password answers exactly as a wrong one.
    let (s1, b1) = login(&a, "ann", PASSWORD).await;
    let (s2, b2) = login(&a, "ann", "not the password").await;
    assert_eq!((s1, &b1), (s2, &b2), "an unverified login looks like a wrong password");
    assert_eq!(s1, 401);
    assert_eq!(b1["error"], "invalid_credentials");
    // The signup's job, and the login's resend (held back: one mail a minute).
    assert_eq!(a.deliver().await, 2);
    let mails = a.mails_to("ann@example.com");
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    let (code, token) = (m.code().unwrap(), m.token().unwrap());
    assert!(m.html.contains(&code) && m.html.contains(&token), "both parts carry them");
    assert!(m.text.contains("https://app.example/?action=verify-email#token="), "{}", m.text);
    assert!(!m.subject.contains("ann@"), "no address in the subject");
    // The sign-up's name was typed by whoever typed the address: the mail greets nobody.
    assert!(m.text.contains("Hello,"), "{}", m.text);

    // The code needs the sign-up's password; a wrong one is the one refusal.
    let wrong = json!({"email": "ann@example.com", "code": code, "password": "not the password"});
    assert_eq!(verify(&a, wrong).await.1["error"], "invalid_code");
    let ok = json!({"email": "ANN@example.com", "code": code, "password": PASSWORD});
    let (status, body) = verify(&a, ok.clone()).await;
    assert_eq!((status, body), (200, json!({"status": "verified", "email": "ann@example.com"})));
    // Used up: the code and the link alike.
    assert_eq!(verify(&a, ok).await.0, 400);
    assert_eq!(verify(&a, json!({"token": token, "password": PASSWORD})).await.0, 400);
    let (status, body) = login(&a, "ann", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let req =
        testkit::request("GET", "/profile", &[("authorization", &format!("Bearer {token}"))], "");
    let state = auth_shared::state::TokenState::new(
        a.parts.db.clone(),
        a.parts.keys.clone(),
        a.parts.tokens.clone(),
    );
    let (_, _, profile) = testkit::read(profile::handle(&state, req).await);
    assert_eq!(profile["email_verified"], true, "{profile}");
}

#[tokio::test]
async fn a_link_token_verifies_with_the_sign_ups_password() {
    let a = Accounts::new(AccountConfig::default()).await;
    signup(&a, new_user("bob")).await;
    a.deliver().await;
    let token = a.mails_to("bob@example.com")[0].token().unwrap();
    // Without the password the sign-up's link does nothing.
    assert_eq!(verify(&a, json!({"token": token})).await.1["error"], "invalid_code");
    let (status, _) = verify(&a, json!({"token": token, "password": PASSWORD})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_taken_address_answers_as_a_new_one_and_changes_nothing() {
    let a = Accounts::new(AccountConfig::default()).await;
    a.parts.test_db.create_user("owner", "owner@example.com", PASSWORD).await;
    let body = json!({"username": "intruder", "email": "owner@example.com", "password": "a different password 7"});
    let (status, got) = signup(&a, body).await;
    let (status2, got2) = signup(&a, new_user("fresh")).await;
    assert_eq!((status, &got), (status2, &got2), "the same answer for a taken and a new address");
    a.deliver().await;
    let mails = a.mails_to("owner@example.com");
    assert_eq!(mails.len(), 1);
    assert!(mails[0].code().is_none(), "no code for an account that exists: {}", mails[0].text);
    assert!(mails[0].text.contains("?action=forgot-password"), "{}", mails[0].text);
    // The owner's account is untouched, and the intruder's password opens nothing.
    assert_eq!(login(&a, "owner", PASSWORD).await.0, 200);
    assert_eq!(login(&a, "owner", "a different password 7").await.0, 401);
    // The username the intruder asked for is reserved all the same.
    let again = json!({"username": "intruder", "email": "other@example.com", "password": PASSWORD});
    assert_eq!(signup(&a, again).await, (409, signup_problem_409()));
}

fn signup_problem_409() -> Value {
    json!({
        "type": "about:blank", "title": "Conflict", "status": 409,
        "detail": "This username is taken; choose another.", "error": "username_taken"
    })
}

#[tokio::test]
async fn a_second_sign_up_replaces_the_pending_password() {
    let a = Accounts::new(AccountConfig::default()).await;
    // Someone types the owner's address first, with a password of their own.
    let squatter =
        json!({"username": "squat", "email": "own@example.com", "password": "squatter password 1"});
    assert_eq!(signup(&a, squatter).await.0, 202);
    a.deliver().await;
    let code = a.mails_to("own@example.com")[0].code().unwrap();
    // The owner signs up too: the pending account now has the owner's name and password.
    assert_eq!(signup(&a, new_user("own")).await.0, 202);
    let stale =
        json!({"email": "own@example.com", "code": code, "password": "squatter password 1"});
    assert_eq!(verify(&a, stale).await.0, 400, "the first password can no longer confirm");
    let fine = json!({"email": "own@example.com", "code": code, "password": PASSWORD});
    assert_eq!(verify(&a, fine).await.0, 200);
    assert_eq!(login(&a, "own", PASSWORD).await.0, 200);
    assert_eq!(login(&a, "squat", "squatter password 1").await.0, 401);
}

#[tokio::test]
async fn usernames_in_use_are_409_and_sign_up_modes_are_403() {
    let a = Accounts::new(AccountConfig::default()).await;
    a.parts.test_db.create_user("taken", "taken@example.com", PASSWORD).await;
    let body = json!({"username": "TAKEN", "email": "new@example.com", "password": PASSWORD});
    assert_eq!(signup(&a, body).await, (409, signup_problem_409()));

    let closed =
        Accounts::new(AccountConfig { signup: SignupMode::Closed, ..Default::default() }).await;
    let (status, body) = signup(&closed, new_user("x")).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("signup_disabled")));
    let only = AccountConfig {
        signup: SignupMode::Domains(vec!["corp.example".into()]),
        ..Default::default()
    };
    let d = Accounts::new(only).await;
    assert_eq!(signup(&d, new_user("y")).await.0, 403);
    let inside = json!({"username": "z", "email": "z@CORP.example", "password": PASSWORD});
    assert_eq!(signup(&d, inside).await.0, 202);
}

#[tokio::test]
async fn forgot_and_reset_by_code_and_by_link() {
    let a = Accounts::new(AccountConfig::default()).await;
    a.parts.test_db.create_user("cat", "cat@example.com", PASSWORD).await;
    let (s1, b1) = forgot(&a, json!({"email": "cat@example.com"})).await;
    let (s2, b2) = forgot(&a, json!({"email": "nobody@example.com"})).await;
    assert_eq!((s1, &b1), (s2, &b2), "known and unknown addresses get one answer");
    assert_eq!((s1, b1), (202, json!({"status": "reset_sent"})));
    a.deliver().await;
    assert!(a.mails_to("nobody@example.com").is_empty(), "nothing for an unknown address");
    let m = &a.mails_to("cat@example.com")[0];
    let code = m.code().unwrap();
    // A weak password spends nothing.
    let weak = json!({"email": "cat@example.com", "code": code, "new_password": "password"});
    assert_eq!(reset(&a, weak).await.1["error"], "weak_password");
    let (_, old_session) = login(&a, "cat", PASSWORD).await;
    let good =
        json!({"email": "cat@example.com", "code": code, "new_password": "a brand new password 2"});
    assert_eq!(reset(&a, good.clone()).await.0, 204);
    assert_eq!(reset(&a, good).await.0, 400, "a used code");
    assert_eq!(login(&a, "cat", PASSWORD).await.0, 401);
    assert_eq!(login(&a, "cat", "a brand new password 2").await.0, 200);
    // The session from before the reset is over.
    let refresh = json!({"refresh_token": old_session["refresh_token"]});
    let state = auth_shared::state::TokenState::new(
        a.parts.db.clone(),
        a.parts.keys.clone(),
        a.parts.tokens.clone(),
    );
    let (status, _) = post(async |r| refresh::handle(&state, r).await, "/refresh", &refresh).await;
    assert_eq!(status, 401);

    // By username, and by the link.
    age_mail_log(&a).await;
    assert_eq!(forgot(&a, json!({"username": "CAT"})).await.0, 202);
    a.deliver().await;
    let mails = a.mails_to("cat@example.com");
    let token = mails.iter().rev().find_map(|m| m.token()).unwrap();
    let by_link = json!({"token": token, "new_password": "a third fine password 3"});
    assert_eq!(reset(&a, by_link).await.0, 204);
    assert_eq!(login(&a, "cat", "a third fine password 3").await.0, 200);
    // The reset's security notice went to the address.
    assert!(
        mails
            .iter()
            .chain(a.mails_to("cat@example.com").iter())
            .any(|m| m.subject.contains("password was reset")),
        "{:?}",
        a.mails_to("cat@example.com").iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn codes_die_after_five_wrong_tries_and_only_the_latest_works() {
    let a = Accounts::new(AccountConfig::default()).await;
    a.parts.test_db.create_user("dan", "dan@example.com", PASSWORD).await;
    forgot(&a, json!({"email": "dan@example.com"})).await;
    a.deliver().await;
    let first = a.mails_to("dan@example.com")[0].code().unwrap();
    age_mail_log(&a).await;
    forgot(&a, json!({"email": "dan@example.com"})).await;
    a.deliver().await;
    let second = a.mails_to("dan@example.com")[1].code().unwrap();
    let try_code = |code: String| json!({"email": "dan@example.com", "code": code, "new_password": "another fine password 4"});
    if first != second {
        assert_eq!(reset(&a, try_code(first)).await.0, 400, "a replaced code is dead");
    }
    let wrong = if second == "000000" { "000001" } else { "000000" };
    // One try was spent above (when the codes differed); spend the rest of five.
    let spent = a
        .parts
        .test_db
        .client()
        .await
        .query_one("SELECT code_tries FROM account_codes", &[])
        .await
        .unwrap()
        .get::<_, i32>(0);
    for _ in spent..5 {
        assert_eq!(reset(&a, try_code(wrong.into())).await.0, 400);
    }
    assert_eq!(reset(&a, try_code(second)).await.0, 400, "the right code, after five wrong tries");
    assert_eq!(login(&a, "dan", PASSWORD).await.0, 200, "the password did not change");
}

#[tokio::test]
async fn malformed_bodies_and_fields_are_400_of_their_kind() {
    let a = Accounts::new(AccountConfig::default()).await;
    let long_local = format!("{}@example.com", "a".repeat(250));
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"username": "u", "email": "u@example.com\r\nBcc: x@evil.com", "password": PASSWORD}),
            "invalid_request",
        ),
        (json!({"username": "u", "email": long_local, "password": PASSWORD}), "invalid_request"),
        (json!({"username": "u", "email": "no-at-sign", "password": PASSWORD}), "invalid_request"),
        (
            json!({"username": "u", "email": "u@p\u{0430}ypal.com", "password": PASSWORD}),
            "invalid_request",
        ),
        (
            json!({"username": "u", "email": "\u{0430}nn@example.com", "password": PASSWORD}),
            "invalid_request",
        ),
        (
            json!({"username": "u", "email": "u@exa\u{200B}mple.com", "password": PASSWORD}),
            "invalid_request",
        ),
        (
            json!({"username": "has space", "email": "u@example.com", "password": PASSWORD}),
            "invalid_request",
        ),
        (
            json!({"username": "a@b", "email": "u@example.com", "password": PASSWORD}),
            "invalid_request",
        ),
        (
            json!({"username": "ali\u{202E}ce", "email": "u@example.com", "password": PASSWORD}),
            "invalid_request",
        ),
        (
            json!({"username": "u", "email": "u@example.com", "password": PASSWORD, "full_name": "A\u{7}B"}),
            "invalid_request",
        ),
        (
            json!({"username": "u", "email": "u@example.com", "password": PASSWORD, "full_name": "x".repeat(201)}),
            "invalid_request",
        ),
        (json!({"username": "u", "email": "u@example.com", "password": "short"}), "weak_password"),
        (json!({"username": "u", "email": "u@example.com"}), "invalid_request"),
        (json!({"username": 7, "email": "u@example.com", "password": PASSWORD}), "invalid_request"),
        (json!([1, 2]), "invalid_request"),
    ];
    for (body, error) in cases {
        let (status, got) = signup(&a, body.clone()).await;
        assert_eq!((status, got["error"].as_str()), (400, Some(error)), "{body}: {got}");
        assert!(!got.to_string().contains("evil.com"), "the value is not echoed: {got}");
    }
    // A name of 10,000 characters makes the body too large to read at all.
    let huge = json!({"username": "u", "email": "u@example.com", "password": PASSWORD, "full_name": "x".repeat(10_000)});
    assert_eq!(signup(&a, huge).await.1["error"], "payload_too_large");
    let req =
        testkit::request("POST", "/signup", &[("content-type", "application/json")], "{not json");
    assert_eq!(testkit::read(signup::handle(&a.account, req).await).0, 400);
    for code in ["abcdef", "1234567", "", "12345", " 12345", "١٢٣٤٥٦"] {
        let body = json!({"email": "x@example.com", "code": code, "password": PASSWORD});
        let (status, got) = verify(&a, body).await;
        assert_eq!((status, got["error"].as_str()), (400, Some("invalid_code")), "{code:?}: {got}");
        let body = json!({"email": "x@example.com", "code": code, "new_password": "a fine new password 5"});
        assert_eq!(reset(&a, body).await.1["error"], "invalid_code", "{code:?}");
    }
    for token in [
        "",
        "x",
        "a.b",
        &"t".repeat(5000),
        "AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let (status, got) = verify(&a, json!({"token": token, "password": PASSWORD})).await;
        assert_eq!((status, got["error"].as_str()), (400, Some("invalid_code")), "{got}");
    }
    for body in [
        json!({"token": "t", "code": "123456", "email": "x@example.com"}),
        json!({"code": "123456"}),
        json!({}),
        json!({"email": 5}),
    ] {
        assert_eq!(verify(&a, body.clone()).await.1["error"], "invalid_request", "{body}");
    }
    for body in
        [json!({}), json!({"email": "a@example.com", "username": "a"}), json!({"email": "a\nb"})]
    {
        assert_eq!(forgot(&a, body.clone()).await.1["error"], "invalid_request", "{body}");
    }
    assert_eq!(resend(&a, json!({"email": ""})).await.1["error"], "invalid_request");
    // Nothing malformed reached the queue.
    assert_eq!(a.deliver().await, 0);
}

#[tokio::test]
async fn each_source_makes_thirty_mailing_requests_an_hour() {
    let a = Accounts::new(AccountConfig::default()).await;
    for i in 0..30 {
        let (status, _) = forgot(&a, json!({"email": format!("n{i}@example.com")})).await;
        assert_eq!(status, 202, "request {i}");
    }
    let (status, body) = forgot(&a, json!({"email": "n30@example.com"})).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("too_many_attempts")));
    let (status, _) = resend(&a, json!({"email": "n31@example.com"})).await;
    assert_eq!(status, 429, "the count is shared by the routes that mail");
}

#[tokio::test]
async fn twenty_resends_at_once_send_one_mail() {
    let a = Arc::new(Accounts::new(AccountConfig::default()).await);
    signup(&a, new_user("eve")).await;
    age_mail_log(&a).await;
    let all: Vec<_> = (0..20)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { resend(&a, json!({"email": "eve@example.com"})).await.0 })
        })
        .collect();
    for t in all {
        assert_eq!(t.await.unwrap(), 202);
    }
    assert_eq!(a.deliver().await, 21, "every request queued its job");
    let mails = a.mails_to("eve@example.com");
    assert_eq!(mails.len(), 1, "the limit holds: one mail, one code");
    let code = mails[0].code().unwrap();
    let ok = json!({"email": "eve@example.com", "code": code, "password": PASSWORD});
    assert_eq!(verify(&a, ok).await.0, 200, "and its code is the one that works");
}

use std::sync::Arc;

#[tokio::test]
async fn two_verifications_with_one_code_succeed_once() {
    let a = Arc::new(Accounts::new(AccountConfig::default()).await);
    signup(&a, new_user("fay")).await;
    a.deliver().await;
    let code = a.mails_to("fay@example.com")[0].code().unwrap();
    let body = json!({"email": "fay@example.com", "code": code, "password": PASSWORD});
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (a, body) = (a.clone(), body.clone());
            tokio::spawn(async move { verify(&a, body).await.0 })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    got.sort();
    assert_eq!(got, [200, 400]);
}

#[tokio::test]
async fn two_resets_of_one_account_succeed_once() {
    let a = Arc::new(Accounts::new(AccountConfig::default()).await);
    a.parts.test_db.create_user("gus", "gus@example.com", PASSWORD).await;
    forgot(&a, json!({"email": "gus@example.com"})).await;
    a.deliver().await;
    let code = a.mails_to("gus@example.com")[0].code().unwrap();
    let tasks: Vec<_> = ["first new password 1", "second new password 2"]
        .into_iter()
        .map(|p| {
            let a = a.clone();
            let body = json!({"email": "gus@example.com", "code": code, "new_password": p});
            tokio::spawn(async move { (p, reset(&a, body).await.0) })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        let (p, status) = t.await.unwrap();
        if status == 204 {
            won.push(p);
        } else {
            assert_eq!(status, 400);
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    assert_eq!(login(&a, "gus", won[0]).await.0, 200, "the winner's password is the one set");
}

async fn refresh(a: &Accounts, refresh_token: &str) -> (u16, Value) {
    let state = auth_shared::state::TokenState::new(
        a.parts.db.clone(),
        a.parts.keys.clone(),
        a.parts.tokens.clone(),
    );
    let body = json!({ "refresh_token": refresh_token });
    post(async |r| refresh::handle(&state, r).await, "/refresh", &body).await
}

/// A reset racing a refresh of a session opened before it, a login with the old password and
/// one with the new: whatever the order, once the reset has answered no session opened with
/// the old password lives on (a refresh that won hands out a token the reset then ends), the
/// old password opens nothing and the new one works. Five rounds, a user each, so the four
/// requests meet in different orders.
#[tokio::test]
async fn a_reset_racing_a_refresh_and_a_login_leaves_no_old_session_alive() {
    const NEW: &str = "the password after the reset 5";
    let a = Arc::new(Accounts::new(AccountConfig::default()).await);
    for round in 0..5 {
        let name = format!("rex{round}");
        let email = format!("{name}@example.com");
        a.parts.test_db.create_user(&name, &email, PASSWORD).await;
        let (status, before) = login(&a, &name, PASSWORD).await;
        assert_eq!(status, 200, "{before}");
        let old_refresh = before["refresh_token"].as_str().unwrap().to_owned();
        forgot(&a, json!({ "email": email })).await;
        a.deliver().await;
        let code = a.mails_to(&email)[0].code().unwrap();
        let body = json!({"email": email, "code": code, "new_password": NEW});
        let r = tokio::spawn({
            let a = a.clone();
            async move { reset(&a, body).await }
        });
        let f = tokio::spawn({
            let a = a.clone();
            async move { refresh(&a, &old_refresh).await }
        });
        let lo = tokio::spawn({
            let (a, name) = (a.clone(), name.clone());
            async move { login(&a, &name, PASSWORD).await }
        });
        let ln = tokio::spawn({
            let (a, name) = (a.clone(), name.clone());
            async move { login(&a, &name, NEW).await }
        });
        let (r, f, lo, ln) =
            (r.await.unwrap(), f.await.unwrap(), lo.await.unwrap(), ln.await.unwrap());
        assert_eq!(r.0, 204, "the reset: {}", r.1);
        assert!(matches!(f.0, 200 | 401), "the refresh: {f:?}");
        assert!(matches!(lo.0, 200 | 401), "the old password's login: {lo:?}");
        assert!(matches!(ln.0, 200 | 401), "the new password's login: {ln:?}");
        // What the refresh and the old password's login handed out is dead now.
        for (what, got) in [("refresh", &f), ("old password's login", &lo)] {
            if got.0 == 200 {
                let t = got.1["refresh_token"].as_str().unwrap();
                let (status, body) = refresh(&a, t).await;
                assert_eq!(
                    status, 401,
                    "round {round}: the {what}'s session outlived the reset: {body}"
                );
            }
        }
        // A login with the new password that came after the reset keeps its session.
        if ln.0 == 200 {
            let t = ln.1["refresh_token"].as_str().unwrap();
            assert_eq!(refresh(&a, t).await.0, 200, "round {round}: the new password's session");
        }
        assert_eq!(login(&a, &name, PASSWORD).await.0, 401, "round {round}");
        assert_eq!(login(&a, &name, NEW).await.0, 200, "round {round}");
    }
}

#[tokio::test]
async fn a_verification_racing_a_new_sign_up_for_the_address_is_one_or_the_other() {
    let a = Arc::new(Accounts::new(AccountConfig::default()).await);
    signup(&a, new_user("hal")).await;
    a.deliver().await;
    let code = a.mails_to("hal@example.com")[0].code().unwrap();
    let v = {
        let a = a.clone();
        let body = json!({"email": "hal@example.com", "code": code, "password": PASSWORD});
        tokio::spawn(async move { verify(&a, body).await.0 })
    };
    let s = {
        let a = a.clone();
        let body = json!({"username": "hal2", "email": "hal@example.com", "password": "another password 9"});
        tokio::spawn(async move { signup(&a, body).await.0 })
    };
    let (v, s) = (v.await.unwrap(), s.await.unwrap());
    assert_eq!(s, 202);
    // Either the verification came first (the account is hal's, verified, and the sign-up
    // changed nothing) or the sign-up did (hal2's password now confirms, hal's does not).
    let row = a
        .parts
        .test_db
        .client()
        .await
        .query_one(
            "SELECT username, email_verified FROM users WHERE email_key = 'hal@example.com'",
            &[],
        )
        .await
        .unwrap();
    let (name, verified): (String, bool) = (row.get(0), row.get(1));
    match v {
        200 => assert_eq!((name.as_str(), verified), ("hal", true)),
        400 => assert_eq!((name.as_str(), verified), ("hal2", false)),
        other => panic!("verification answered {other}"),
    }
}

async fn change_email(a: &Accounts, token: &str, body: Value) -> (u16, Value) {
    let req = testkit::request(
        "POST",
        "/email",
        &[("content-type", "application/json"), ("authorization", &format!("Bearer {token}"))],
        &body.to_string(),
    );
    let (status, _, body) = testkit::read(change_email::handle(&a.email, req).await);
    (status, body)
}

async fn access_token(a: &Accounts, username: &str, password: &str) -> (String, Value) {
    let (status, body) = login(a, username, password).await;
    assert_eq!(status, 200, "{body}");
    (body["access_token"].as_str().unwrap().to_owned(), body)
}

#[tokio::test]
async fn an_email_change_completes_with_the_new_code_and_the_old_address_can_revert_it() {
    let a = Accounts::new(AccountConfig::default()).await;
    a.parts.test_db.create_user("ivy", "ivy@example.com", PASSWORD).await;
    let (token, session) = access_token(&a, "ivy", PASSWORD).await;
    let wrong = json!({"new_email": "ivy@new.example", "password": "not it"});
    assert_eq!(change_email(&a, &token, wrong).await.1["error"], "invalid_credentials");
    let bad = json!({"new_email": "ivy@new.example\r\nBcc: x@evil.com", "password": PASSWORD});
    assert_eq!(change_email(&a, &token, bad).await.1["error"], "invalid_request");
    assert_eq!(
        change_email(&a, "garbage", json!({"new_email": "a@b.example", "password": PASSWORD}))
            .await
            .0,
        401
    );
    // Without a token no body is judged: a malformed one is 401 too.
    assert_eq!(change_email(&a, "garbage", json!(["not", "an", "object"])).await.0, 401);
    let ok = json!({"new_email": "ivy@new.example", "password": PASSWORD});
    assert_eq!(change_email(&a, &token, ok).await, (202, json!({"status": "verification_sent"})));
    a.deliver().await;
    let to_new = a.mails_to("ivy@new.example");
    let to_old = a.mails_to("ivy@example.com");
    assert_eq!(
        (to_new.len(), to_old.len()),
        (1, 1),
        "a code to the new address, a notice to the old"
    );
    assert!(
        to_old[0].code().is_none() && to_old[0].text.contains("ivy@new.example"),
        "{}",
        to_old[0].text
    );
    // Until the change completes, login keeps using the old address.
    assert_eq!(login(&a, "ivy@example.com", PASSWORD).await.0, 200);
    let code = to_new[0].code().unwrap();
    let (status, body) = verify(&a, json!({"email": "ivy@new.example", "code": code})).await;
    assert_eq!((status, body), (200, json!({"status": "verified", "email": "ivy@new.example"})));
    assert_eq!(login(&a, "ivy@new.example", PASSWORD).await.0, 200);
    assert_eq!(login(&a, "ivy@example.com", PASSWORD).await.0, 401);
    // The old address's link undoes it and ends every session.
    let revert = to_old[0].token().unwrap();
    let (status, body) = verify(&a, json!({"token": revert})).await;
    assert_eq!((status, body), (200, json!({"status": "verified", "email": "ivy@example.com"})));
    assert_eq!(login(&a, "ivy@example.com", PASSWORD).await.0, 200);
    let state = auth_shared::state::TokenState::new(
        a.parts.db.clone(),
        a.parts.keys.clone(),
        a.parts.tokens.clone(),
    );
    let refresh = json!({"refresh_token": session["refresh_token"]});
    assert_eq!(post(async |r| refresh::handle(&state, r).await, "/refresh", &refresh).await.0, 401);
}

#[tokio::test]
async fn an_email_change_to_a_taken_address_answers_the_same_and_says_so_there() {
    let a = Accounts::new(AccountConfig::default()).await;
    a.parts.test_db.create_user("jay", "jay@example.com", PASSWORD).await;
    a.parts.test_db.create_user("kim", "kim@example.com", PASSWORD).await;
    let (token, _) = access_token(&a, "jay", PASSWORD).await;
    let (status, body) =
        change_email(&a, &token, json!({"new_email": "KIM@example.com", "password": PASSWORD}))
            .await;
    assert_eq!((status, body), (202, json!({"status": "verification_sent"})));
    a.deliver().await;
    let to_kim = a.mails_to("kim@example.com");
    assert_eq!(to_kim.len(), 1);
    assert!(to_kim[0].code().is_none() && to_kim[0].token().is_none(), "{}", to_kim[0].text);
    assert!(
        !to_kim[0].text.contains("jay"),
        "no word of the requester's reaches kim: {}",
        to_kim[0].text
    );
    // The requester's own mailbox gets the notice a free address gets: it tells nothing of
    // whether the address had an account.
    let to_jay = a.mails_to("jay@example.com");
    assert_eq!(to_jay.len(), 1, "{to_jay:?}");
    assert!(
        to_jay[0].token().is_some() && to_jay[0].text.contains("KIM@example.com"),
        "{}",
        to_jay[0].text
    );
    let b = Accounts::new(AccountConfig::default()).await;
    b.parts.test_db.create_user("jay", "jay@example.com", PASSWORD).await;
    let (token, _) = access_token(&b, "jay", PASSWORD).await;
    change_email(&b, &token, json!({"new_email": "free@example.com", "password": PASSWORD})).await;
    b.deliver().await;
    let free = b.mails_to("jay@example.com");
    let shape = |t: &str, token: &str| {
        t.replace(token, "TOKEN").replace("KIM@example.com", "X").replace("free@example.com", "X")
    };
    assert_eq!(
        shape(&to_jay[0].text, &to_jay[0].token().unwrap()),
        shape(&free[0].text, &free[0].token().unwrap()),
        "one notice for a taken and a free address"
    );
}

/// Someone who knows the password moves the address, confirms it from their own mailbox, then
/// resets the password from there and moves the address once more: the owner's undo link, mailed
/// to the first address, still works through all of it, and restores that address. The notice
/// goes out although a reset mail went to the address a moment before (notices are not held
/// back by the per-address limit).
#[tokio::test]
async fn the_owners_undo_link_outlives_a_reset_and_a_second_change() {
    let a = Accounts::new(AccountConfig::default()).await;
    a.parts.test_db.create_user("lea", "lea@example.com", PASSWORD).await;
    let (token, _) = access_token(&a, "lea", PASSWORD).await;
    // A mail to the owner's address just before: the notice must not wait a minute behind it.
    forgot(&a, json!({"email": "lea@example.com"})).await;
    a.deliver().await;
    assert_eq!(a.mails_to("lea@example.com").len(), 1);
    change_email(&a, &token, json!({"new_email": "mallory@evil.example", "password": PASSWORD}))
        .await;
    a.deliver().await;
    let notices = a.mails_to("lea@example.com");
    assert_eq!(notices.len(), 2, "the notice is never held back: {notices:?}");
    let undo = notices[1].token().expect("an undo link");
    let code = a.mails_to("mallory@evil.example")[0].code().unwrap();
    assert_eq!(verify(&a, json!({"email": "mallory@evil.example", "code": code})).await.0, 200);
    // The reset, from the new address, voids every code but the undo link.
    age_mail_log(&a).await;
    forgot(&a, json!({"email": "mallory@evil.example"})).await;
    a.deliver().await;
    let mails = a.mails_to("mallory@evil.example");
    let reset_code = mails
        .iter()
        .find_map(|m| m.subject.starts_with("Reset").then(|| m.code()))
        .flatten()
        .unwrap();
    let body = json!({"email": "mallory@evil.example", "code": reset_code, "new_password": "mallory's own password 3"});
    assert_eq!(reset(&a, body).await.0, 204);
    // A second change: its notice, to mallory's address, carries no link of its own.
    let (token, _) = access_token(&a, "lea", "mallory's own password 3").await;
    age_mail_log(&a).await;
    let again =
        json!({"new_email": "mallory2@evil.example", "password": "mallory's own password 3"});
    assert_eq!(change_email(&a, &token, again).await.0, 202);
    a.deliver().await;
    // (The mailer sends the queued jobs at once, the reset's notice among them: found by subject.)
    let second = a.mails_to("mallory@evil.example");
    let notice = second.iter().find(|m| m.subject.contains("being changed")).expect("the notice");
    assert!(notice.token().is_none(), "{}", notice.text);
    // The owner's link restores the first address and ends every session.
    let (status, body) = verify(&a, json!({"token": undo})).await;
    assert_eq!((status, body), (200, json!({"status": "verified", "email": "lea@example.com"})));
    assert_eq!(login(&a, "lea@example.com", "mallory's own password 3").await.0, 200);
}

#[tokio::test]
async fn an_address_logs_in_with_its_domain_as_a_labels_or_in_unicode() {
    let a = Accounts::new(AccountConfig::default()).await;
    let body = json!({"username": "idn", "email": "idn@bücher.example", "password": PASSWORD});
    assert_eq!(signup(&a, body).await.0, 202);
    a.deliver().await;
    let code = a.mails_to("idn@xn--bcher-kva.example")[0].code().unwrap();
    let confirm = json!({"email": "idn@xn--bcher-kva.example", "code": code, "password": PASSWORD});
    assert_eq!(verify(&a, confirm).await.0, 200);
    for typed in [
        "idn@bücher.example",
        "IDN@BÜCHER.EXAMPLE",
        "idn@xn--bcher-kva.example",
        "IDN@XN--BCHER-KVA.example",
    ] {
        assert_eq!(login(&a, typed, PASSWORD).await.0, 200, "{typed}");
    }
}

#[tokio::test]
async fn an_email_change_racing_a_sign_up_to_the_new_address_ends_with_one_owner() {
    let a = Arc::new(Accounts::new(AccountConfig::default()).await);
    a.parts.test_db.create_user("lou", "lou@example.com", PASSWORD).await;
    let (token, _) = access_token(&a, "lou", PASSWORD).await;
    change_email(&a, &token, json!({"new_email": "spot@example.com", "password": PASSWORD})).await;
    a.deliver().await;
    let code = a.mails_to("spot@example.com")[0].code().unwrap();
    let v = {
        let a = a.clone();
        tokio::spawn(async move {
            verify(&a, json!({"email": "spot@example.com", "code": code})).await.0
        })
    };
    let s = {
        let a = a.clone();
        tokio::spawn(async move { signup(&a, new_user("spot")).await.0 })
    };
    let (v, s) = (v.await.unwrap(), s.await.unwrap());
    assert_eq!(s, 202);
    let owners: i64 = a
        .parts
        .test_db
        .client()
        .await
        .query_one("SELECT count(*) FROM users WHERE email_key = 'spot@example.com'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(owners, 1, "one account holds the address");
    let lou: String = a
        .parts
        .test_db
        .client()
        .await
        .query_one("SELECT email FROM users WHERE username = 'lou'", &[])
        .await
        .unwrap()
        .get(0);
    match v {
        200 => assert_eq!(lou, "spot@example.com"),
        400 => assert_eq!(lou, "lou@example.com", "the sign-up took the address first"),
        other => panic!("verification answered {other}"),
    }
}
