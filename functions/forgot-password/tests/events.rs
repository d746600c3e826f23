//! Every `events/` sample for this function, sent to the real binary through the Lambda
//! Runtime API (with a mail queue in moto), gets the status `events/README.md` promises.

#[tokio::test]
async fn sample_events_get_their_promised_status() {
    testkit::events::check_samples("forgot-password", env!("CARGO_BIN_EXE_forgot-password")).await;
}
