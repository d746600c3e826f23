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
    /// REQUIRE_VERIFIED_EMAIL: an unverified account's right password fails as a wrong one.
    pub require_verified_email: bool,
    /// MAIL_QUEUE_URL, when set: login mails an unverified account's verification again.
    pub mail: Option<crate::mail::Queue>,
    /// MFA_POLICY and MFA_TOKEN_TTL_SECONDS: when a right password leads to a second step.
    pub mfa: crate::mfa::MfaConfig,
}

impl HashState {
    /// Builds the state from the environment: [`TokenState::from_env`] and PBKDF2_ITERATIONS.
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let policy = Policy::from_env(env)?;
        let require = crate::accounts::AccountConfig::from_env(env)?.require_verified;
        let mfa = crate::mfa::MfaConfig::from_env(env)?;
        let token = TokenState::from_env(env).await?;
        let mut state =
            Self::with_token_state(token, policy).requiring_verified_email(require).with_mfa(mfa);
        if let Some(url) = env.optional("MAIL_QUEUE_URL")? {
            state.mail = Some(crate::mail::Queue::sqs(url).await);
        }
        Ok(state)
    }

    /// The same state, with `queue` for the verification mails login sends again.
    pub fn with_mail(mut self, queue: crate::mail::Queue) -> Self {
        self.mail = Some(queue);
        self
    }

    /// The same state with other second-factor settings.
    pub fn with_mfa(mut self, mfa: crate::mfa::MfaConfig) -> Self {
        self.mfa = mfa;
        self
    }

    /// The same state with REQUIRE_VERIFIED_EMAIL set to `require`.
    pub fn requiring_verified_email(mut self, require: bool) -> Self {
        self.require_verified_email = require;
        self
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
            require_verified_email: true,
            mail: None,
            mfa: crate::mfa::MfaConfig::default(),
        }
    }
}

/// The state of the account routes that mail but check no code (sign-up, resend, forgot): the
/// pool, the account settings, the mail queue, and the hashing slots (sign-up hashes the new
/// password; its deadline is one statement's).
#[derive(Clone)]
pub struct AccountState {
    /// The pool.
    pub db: Arc<Db>,
    /// SIGNUP_MODE, REQUIRE_VERIFIED_EMAIL, the TTLs, APP_NAME, EMAIL_LINK_BASE_URL.
    pub accounts: crate::accounts::AccountConfig,
    /// MAIL_QUEUE_URL (auth-local: the in-process mailer's channel).
    pub queue: crate::mail::Queue,
    /// The hashing slots, deadline and policy.
    pub hashing: crate::accounts::confirm::Hashing,
}

impl AccountState {
    /// Builds the state from the environment: the database, the account settings,
    /// PBKDF2_ITERATIONS and MAIL_QUEUE_URL (required).
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let accounts = crate::accounts::AccountConfig::from_env(env)?;
        let policy = Policy::from_env(env)?;
        let url = env.optional("MAIL_QUEUE_URL")?.ok_or_else(|| {
            crate::config::ConfigError::new("MAIL_QUEUE_URL", "is not set (the mailer's SQS queue)")
        })?;
        let queue = crate::mail::Queue::sqs(url).await;
        let db = DbState::from_env(env).await?.db;
        Ok(Self::new(db, accounts, queue, policy))
    }

    /// Builds the state from existing parts (local server, tests).
    pub fn new(
        db: Arc<Db>,
        accounts: crate::accounts::AccountConfig,
        queue: crate::mail::Queue,
        policy: Policy,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let hashing = crate::accounts::confirm::Hashing {
            slots: Arc::new(Semaphore::new(cores)),
            deadline: db.config().statement_timeout,
            policy,
        };
        Self { db, accounts, queue, hashing }
    }
}

/// The state of the account routes that check a mailed code or link (verify-email, reset):
/// [`AccountState`] and the data key the codes are hashed under.
#[derive(Clone)]
pub struct CodeState {
    /// The pool, settings, queue and hashing.
    pub account: AccountState,
    /// DATA_KEY_SECRET_ARN (auth-local: DATA_KEY, or a random key per run).
    pub keys: Arc<crate::data_key::DataKey>,
}

impl CodeState {
    /// Builds the state from the environment: [`AccountState::from_env`] and the data key,
    /// read now (an unreadable one stops the start-up).
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let source = crate::data_key::DataKeySource::require_from_env(env)?;
        let keys = Arc::new(crate::data_key::DataKey::new(source).await);
        keys.current().await?;
        Ok(Self { account: AccountState::from_env(env).await?, keys })
    }

    /// Builds the state from existing parts (local server, tests).
    pub fn new(account: AccountState, keys: Arc<crate::data_key::DataKey>) -> Self {
        Self { account, keys }
    }
}

/// The state of the second-factor routes (`/mfa/...`, `/login/mfa`): [`HashState`] (the
/// password that adds a first factor is checked as at `/password`), the data key the TOTP
/// secrets are sealed and the recovery codes hashed under, and APP_NAME (the otpauth issuer).
#[derive(Clone)]
pub struct MfaState {
    /// Database, keys, token and session settings, hashing, MFA_POLICY.
    pub hash: HashState,
    /// DATA_KEY_SECRET_ARN (auth-local: DATA_KEY, or a random key per run).
    pub keys: Arc<crate::data_key::DataKey>,
    /// APP_NAME: the issuer an authenticator app shows.
    pub app_name: String,
}

impl MfaState {
    /// Builds the state from the environment: [`HashState::from_env`], APP_NAME and the data
    /// key, read now (an unreadable one stops the start-up).
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let app_name = crate::accounts::AccountConfig::from_env(env)?.app_name;
        let source = crate::data_key::DataKeySource::require_from_env(env)?;
        let keys = Arc::new(crate::data_key::DataKey::new(source).await);
        let (hash, key) = tokio::join!(HashState::from_env(env), keys.current());
        key?;
        Ok(Self { hash: hash?, keys, app_name })
    }

    /// Builds the state from existing parts (local server, tests).
    pub fn new(hash: HashState, keys: Arc<crate::data_key::DataKey>, app_name: String) -> Self {
        Self { hash, keys, app_name }
    }
}

/// The state of `/email`: it takes an access token ([`TokenState`]), checks the password
/// under the login throttle and mails ([`AccountState`], sharing the token state's pool).
#[derive(Clone)]
pub struct EmailState {
    /// The pool, keys, token and session settings.
    pub token: TokenState,
    /// The account settings, queue and hashing.
    pub account: AccountState,
}

impl EmailState {
    /// Builds the state from the environment: [`TokenState::from_env`], the account settings,
    /// PBKDF2_ITERATIONS and MAIL_QUEUE_URL (required).
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let accounts = crate::accounts::AccountConfig::from_env(env)?;
        let policy = Policy::from_env(env)?;
        let url = env.optional("MAIL_QUEUE_URL")?.ok_or_else(|| {
            crate::config::ConfigError::new("MAIL_QUEUE_URL", "is not set (the mailer's SQS queue)")
        })?;
        // The queue's client is built while the signing key is read.
        let (queue, token) = tokio::join!(crate::mail::Queue::sqs(url), TokenState::from_env(env));
        let token = token?;
        let account = AccountState::new(token.db.clone(), accounts, queue, policy);
        Ok(Self { token, account })
    }

    /// Builds the state from existing parts (local server, tests).
    pub fn new(token: TokenState, account: AccountState) -> Self {
        Self { token, account }
    }
}

/// The state of the passkey registration routes (`/passkeys/register/options`,
/// `/passkeys/register`): [`HashState`] (registration may be confirmed with the password, as at
/// `/password`; the security notice goes on its mail queue) and the WebAuthn relying party
/// (WEBAUTHN_RP_ID, WEBAUTHN_ORIGINS, APP_NAME).
#[derive(Clone)]
pub struct PasskeyState {
    /// Database, keys, token and session settings, hashing, the mail queue.
    pub hash: HashState,
    /// The relying party.
    pub rp: Arc<webauthn_rs::Webauthn>,
}

impl PasskeyState {
    /// Builds the state from the environment: the relying party (a bad WEBAUTHN_RP_ID or
    /// WEBAUTHN_ORIGINS stops the start-up) and [`HashState::from_env`].
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let rp = Arc::new(crate::passkeys::RelyingPartyConfig::from_env(env)?.relying_party()?);
        Ok(Self { hash: HashState::from_env(env).await?, rp })
    }

    /// Builds the state from existing parts (local server, tests).
    pub fn new(hash: HashState, rp: Arc<webauthn_rs::Webauthn>) -> Self {
        Self { hash, rp }
    }
}

/// The state of `/passkeys/login`: [`TokenState`] (it opens a session and signs its tokens),
/// the data key its challenges are signed with, and the relying party.
#[derive(Clone)]
pub struct PasskeyLoginState {
    /// Database, keys, token and session settings.
    pub token: TokenState,
    /// DATA_KEY_SECRET_ARN (auth-local: DATA_KEY, or a random key per run).
    pub keys: Arc<crate::data_key::DataKey>,
    /// The relying party.
    pub rp: Arc<webauthn_rs::Webauthn>,
}

impl PasskeyLoginState {
    /// Builds the state from the environment: the relying party, [`TokenState::from_env`] and
    /// the data key, read now (an unreadable one stops the start-up).
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let rp = Arc::new(crate::passkeys::RelyingPartyConfig::from_env(env)?.relying_party()?);
        let source = crate::data_key::DataKeySource::require_from_env(env)?;
        let keys = Arc::new(crate::data_key::DataKey::new(source).await);
        let (token, key) = tokio::join!(TokenState::from_env(env), keys.current());
        key?;
        Ok(Self { token: token?, keys, rp })
    }

    /// Builds the state from existing parts (local server, tests).
    pub fn new(
        token: TokenState,
        keys: Arc<crate::data_key::DataKey>,
        rp: Arc<webauthn_rs::Webauthn>,
    ) -> Self {
        Self { token, keys, rp }
    }
}

/// The state of `/passkeys/login/options`: the data key that signs its challenge and the
/// relying party. No database: an unauthenticated caller writes nothing.
#[derive(Clone)]
pub struct ChallengeState {
    /// DATA_KEY_SECRET_ARN (auth-local: DATA_KEY, or a random key per run).
    pub keys: Arc<crate::data_key::DataKey>,
    /// The relying party.
    pub rp: Arc<webauthn_rs::Webauthn>,
}

impl ChallengeState {
    /// Builds the state from the environment: the relying party and the data key, read now.
    pub async fn from_env(env: &Env) -> Result<Self, StartupError> {
        let rp = Arc::new(crate::passkeys::RelyingPartyConfig::from_env(env)?.relying_party()?);
        let source = crate::data_key::DataKeySource::require_from_env(env)?;
        let keys = Arc::new(crate::data_key::DataKey::new(source).await);
        keys.current().await?;
        Ok(Self { keys, rp })
    }

    /// Builds the state from existing parts (local server, tests).
    pub fn new(keys: Arc<crate::data_key::DataKey>, rp: Arc<webauthn_rs::Webauthn>) -> Self {
        Self { keys, rp }
    }
}
