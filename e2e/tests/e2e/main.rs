//! End-to-end checks across the whole service, in one test binary (one link, not fourteen):
//! independent clients (Python's PyJWT and requests, schemathesis, headless Chromium) against
//! `auth-local` and the function binaries, the template and its arm64 build, and what a
//! database, Secrets Manager or a malformed event can do to a running function. Each module
//! is one concern; `cargo nextest run -p e2e -E 'test(/^template::/)'` runs one of them.

mod accounts;
mod cors_browser;
mod database;
mod jwt_attacks;
mod malformed_events;
mod mfa;
mod passkeys;
mod public_keys;
mod python_client;
mod rotation;
mod schemathesis;
mod secrets;
mod session_page;
mod sessions;
mod silent_database;
mod template;
mod unicode_and_tokens;
