//! The real passkey-login-options binary under the Lambda Runtime API: a relying party that
//! does not hold together (an origin outside WEBAUTHN_RP_ID, a variable missing, an RP ID that
//! is no domain name) stops it at start-up with exactly one log line naming the variable; a
//! good one keeps it running.

use std::path::Path;

use testkit::events::TEST_DATA_KEY;
use testkit::runtime_api::assert_start_up;

const BIN: &str = env!("CARGO_BIN_EXE_passkey-login-options");

#[tokio::test]
async fn a_relying_party_that_does_not_hold_together_stops_start_up_with_one_line() {
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("WEBAUTHN_RP_ID", "example.com"), ("WEBAUTHN_ORIGINS", "https://evil.com")],
            "\"https://evil.com\" does not belong to WEBAUTHN_RP_ID \"example.com\"",
        ),
        (
            vec![
                ("WEBAUTHN_RP_ID", "example.com"),
                ("WEBAUTHN_ORIGINS", "https://app.example.com,https://example.com.evil.net"),
            ],
            "does not belong to WEBAUTHN_RP_ID",
        ),
        (
            vec![("WEBAUTHN_RP_ID", "example.com"), ("WEBAUTHN_ORIGINS", "http://app.example.com")],
            "must be https",
        ),
        (vec![("WEBAUTHN_ORIGINS", "https://example.com")], "WEBAUTHN_RP_ID is not set"),
        (vec![("WEBAUTHN_RP_ID", "example.com")], "WEBAUTHN_ORIGINS is not set"),
        (
            vec![
                ("WEBAUTHN_RP_ID", "https://example.com"),
                ("WEBAUTHN_ORIGINS", "https://example.com"),
            ],
            "WEBAUTHN_RP_ID must be a lower-case domain name",
        ),
        (
            vec![
                ("WEBAUTHN_RP_ID", "example.com"),
                ("WEBAUTHN_ORIGINS", "https://app.example.com"),
            ],
            "",
        ),
    ];
    for (mut env, want) in cases {
        env.push(("DATA_KEY", TEST_DATA_KEY));
        assert_start_up(Path::new(BIN), &env, want, &[TEST_DATA_KEY]).await;
    }
}
