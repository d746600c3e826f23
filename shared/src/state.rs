//! What each function keeps between invocations, built once per container: the database pool
//! alone ([`DbState`]: health, test-db), plus the token keys and settings ([`TokenState`]:
//! profile, refresh, logout), plus the hashing policy and its one-hash-per-core limit
//! ([`HashState`]: login, password); the token settings and public keys alone
//! ([`PublicKeysState`]: jwks); nothing ([`NoState`]: a route that answers from the request
//! alone). Each has `from_env` for the Lambda binaries; all but `NoState` have `new` for the
//! local server and the tests.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::{Env, TokenConfig};
use crate::db::{Db, DbConfig};
use crate::failure_floor::FailureFloor;
use crate::lambda::StartupError;
use crate::password::Policy;
use crate::sessions::SessionConfig;
use crate::signing::keys::Keys;
use crate::signing::public_keys::{PublicKeySource, PublicKeys};
use crate::signing::{KeySource, SigningAlg, SigningConfig};

/// The pool size inside Lambda: one request at a time per container.
const LAMBDA_POOL_SIZE: usize = 1;

/// The state of a function that needs no part at all (neither the database nor a key): its
/// handler answers from the request alone. `from_env` reads nothing and cannot fail.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoState;

impl NoState {
    /// Builds the (empty) state; the same signature as the other states', so a function's
    /// `main.rs` is the same glue whatever its state.
    pub async fn from_env(_env: &Env) -> Result<Self, StartupError> {
        Ok(Self)
    }
}

/// The state of a function that needs only the database (health, test-db): the pool, built
/// once per container, its first connection opened during init.
#[derive(Clone)]
pub struct DbState {
    /// The pool.
    pub db: Arc<Db>,
}

impl DbState {
    /// Builds the state from the environment (database settings only; no signing key).
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let db = Arc::new(Db::connect(DbConfig::from_env(env, LAMBDA_POOL_SIZE)?).await?);
        db.warm_up();
        Ok(Self::new(db))
    }

    /// Builds the state around an existing pool (local server, tests).
    pub fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// The state of a function that checks or issues access tokens: the pool, the signing keys,
/// the token settings (issuer, audience, lifetime) and the session lifetimes.
#[derive(Clone)]
pub struct TokenState {
    /// The pool.
    pub db: Arc<Db>,
    /// The signing and verification keys.
    pub keys: Arc<Keys>,
    /// JWT_ISSUER, JWT_AUDIENCE, TOKEN_TTL_SECONDS.
    pub tokens: TokenConfig,
    /// SESSION_TTL_SECONDS, SESSION_IDLE_TIMEOUT_SECONDS, REFRESH_REUSE_INTERVAL_SECONDS.
    pub sessions: SessionConfig,
}

impl TokenState {
    /// Builds the state from the environment: the database, the keys (read now from Secrets
    /// Manager when SECRET_ARN is set) and the token settings. Every variable is checked
    /// before anything is fetched, so a typo stops the start without a network call.
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let db_cfg = DbConfig::from_env(env, LAMBDA_POOL_SIZE)?;
        let tokens = TokenConfig::from_env(env)?;
        let sessions = SessionConfig::from_env(env)?;
        let signing = SigningConfig::from_env(env)?;
        let source = KeySource::require_from_env(env)?;
        let db = Arc::new(Db::connect(db_cfg).await?);
        // The first connection opens while the key is read.
        db.warm_up();
        let keys = Keys::load(&source, &signing).await?;
        Ok(Self::new(db, Arc::new(keys), tokens).with_sessions(sessions))
    }

    /// Builds the state from existing parts (local server, tests), with the default session
    /// lifetimes.
    pub fn new(db: Arc<Db>, keys: Arc<Keys>, tokens: TokenConfig) -> Self {
        Self { db, keys, tokens, sessions: SessionConfig::default() }
    }

    /// The same state with other session lifetimes.
    pub fn with_sessions(mut self, sessions: SessionConfig) -> Self {
        self.sessions = sessions;
        self
    }
}

/// The state of the jwks function: the token settings (the issuer, for discovery) and, with
/// RS256, the public keys it publishes, read from the public keys' secret
/// (SIGNING_PUBLIC_SECRET_ARN), never from the signing secret. No database. With HS256 it
/// holds no key and reads no secret: there is nothing public to publish.
#[derive(Clone)]
pub struct PublicKeysState {
    /// JWT_ISSUER (and the rest of the token settings).
    pub tokens: TokenConfig,
    /// TOKEN_SIGNING_ALG.
    pub alg: SigningAlg,
    /// The public keys (RS256 only).
    pub keys: Option<Arc<PublicKeys>>,
}

impl PublicKeysState {
    /// Builds the state from the environment: the token settings, TOKEN_SIGNING_ALG and, with
    /// RS256, the public keys (read now from SIGNING_PUBLIC_SECRET_ARN).
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let tokens = TokenConfig::from_env(env)?;
        let signing = SigningConfig::from_env(env)?;
        let keys = match signing.alg {
            SigningAlg::Hs256 => None,
            SigningAlg::Rs256 => {
                let source = PublicKeySource::from_env(env)?;
                Some(Arc::new(PublicKeys::load(&source).await?))
            }
        };
        Ok(Self { tokens, alg: signing.alg, keys })
    }

    /// Builds the state from existing parts (local server, tests): the public halves of the
    /// keys are published when they are RS256 keys.
    pub fn new(tokens: TokenConfig, keys: Arc<Keys>) -> Self {
        let alg = keys.alg();
        let keys = (alg == SigningAlg::Rs256).then(|| Arc::new(PublicKeys::in_process(keys)));
        Self { tokens, alg, keys }
    }
}

/// The state of a function that hashes passwords (login): [`TokenState`] plus the hashing
/// policy and one hashing slot per core.
#[derive(Clone)]
pub struct HashState {
    /// Database, keys and token settings.
    pub token: TokenState,
    /// PBKDF2_ITERATIONS for new hashes.
    pub policy: Policy,
    /// One permit per core: more hashes at once than cores only adds switching and latency.
    pub hash_slots: Arc<Semaphore>,
    /// How long a failed login takes at least (see [`crate::failure_floor`]).
    pub floor: Arc<FailureFloor>,
}

impl HashState {
    /// Builds the state from the environment: [`TokenState::from_env`] and PBKDF2_ITERATIONS.
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let policy = Policy::from_env(env)?;
        let token = TokenState::from_env(env).await?;
        Ok(Self::with_token_state(token, policy))
    }

    /// Builds the state from existing parts (local server, tests).
    pub fn new(db: Arc<Db>, keys: Arc<Keys>, tokens: TokenConfig, policy: Policy) -> Self {
        Self::with_token_state(TokenState::new(db, keys, tokens), policy)
    }

    /// The same state with other session lifetimes.
    pub fn with_sessions(mut self, sessions: SessionConfig) -> Self {
        self.token.sessions = sessions;
        self
    }

    fn with_token_state(token: TokenState, policy: Policy) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            token,
            policy,
            hash_slots: Arc::new(Semaphore::new(cores)),
            floor: Arc::new(FailureFloor::default()),
        }
    }
}
