//! What the auth functions share: configuration, database access (pool, TLS, migrations),
//! secrets, passwords, tokens, the users and throttle SQL, and the HTTP plumbing. Each function
//! crate is a thin handler over these pieces.

pub mod access;
pub mod account;
pub mod accounts;
pub mod aws;
pub mod codes;
pub mod config;
pub mod data_key;
pub mod db;
pub mod event;
pub mod failure_floor;
pub mod hashing;
pub mod http;
pub mod identifier;
pub use kdf_cross::kdf;
pub mod lambda;
pub mod mail;
pub mod mfa;
pub mod migrate;
pub mod passkeys;
pub mod password;
pub mod random;
pub mod route;
pub mod secrets;
pub mod sessions;
pub mod signing;
pub mod state;
pub mod telemetry;
pub mod throttle;
pub mod tls;
pub mod token;
pub mod users;

pub use lambda_http;
pub use tokio_postgres;
