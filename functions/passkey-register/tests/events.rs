//! Every `events/` sample for this function, sent to the real binary through the Lambda
//! Runtime API, gets the status `events/README.md` promises.

#[tokio::test]
async fn sample_events_get_their_promised_status() {
    testkit::events::check_samples("passkey-register", env!("CARGO_BIN_EXE_passkey-register"))
        .await;
}
