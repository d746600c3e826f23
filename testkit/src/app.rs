//! The handlers' states over a test database, built the way the local server builds them.

use std::sync::Arc;

use auth_shared::config::TokenConfig;
use auth_shared::db::Db;
use auth_shared::password::Policy;
use auth_shared::signing::keys::Keys;

use crate::events::TEST_KEY;
use crate::pg::{TEST_POLICY, TestDb};

/// The default token settings (issuer and audience `auth-service`, one hour).
pub fn token_config() -> TokenConfig {
    TokenConfig {
        issuer: "auth-service".into(),
        audience: "auth-service".into(),
        ttl_seconds: 3600,
    }
}

/// A test database plus the parts the handlers are built from.
pub struct Parts {
    /// The database.
    pub test_db: TestDb,
    /// Its pool.
    pub db: Arc<Db>,
    /// Keys from [`TEST_KEY`] (kid `local`).
    pub keys: Arc<Keys>,
    /// Token settings.
    pub tokens: TokenConfig,
    /// The hashing policy.
    pub policy: Policy,
}

impl Parts {
    /// A fresh database, a pool of `pool` connections, the test key and policy.
    pub async fn new(pool: usize) -> Self {
        let test_db = TestDb::new().await;
        let db = test_db.db(pool);
        Self {
            test_db,
            db,
            keys: Arc::new(Keys::local(TEST_KEY.as_bytes()).expect("test key")),
            tokens: token_config(),
            policy: TEST_POLICY,
        }
    }
}
