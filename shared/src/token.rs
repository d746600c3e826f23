//! Access tokens: HS256 or RS256 JWTs (RFC 7519) issued and checked as RFC 8725 advises: the
//! algorithm is pinned (TOKEN_SIGNING_ALG; a key only ever verifies its own algorithm, so an
//! HS256 token "signed" with an RSA public key is refused: RFC 8725 §2.1), `typ` is explicit,
//! the key is chosen by `kid`, and every registered claim we issue is required and checked on
//! the way back in. RSA runs on ring (constant-time); the public half of an RSA key is
//! published as a JWK (RFC 7517).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::TokenConfig;
use crate::signing::{Key, SigningAlg};

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;
/// Longest token accepted; ours are about 400 bytes, so anything near this is hostile.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The claims of an access token. Issued in one form (`aud` a string, times whole seconds);
/// read in every form RFC 7519 permits, so a token another trusted issuer made verifies too:
/// `aud` a string or an array of strings (§4.1.3), times any JSON number (NumericDate, §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer (JWT_ISSUER).
    pub iss: String,
    /// Audience (JWT_AUDIENCE): one, or several of which ours is one.
    pub aud: Audience,
    /// The user's id.
    pub sub: String,
    /// The user's username at issue time (informational).
    pub username: String,
    /// Issued at, seconds since the epoch (a fractional NumericDate is rounded down).
    #[serde(deserialize_with = "numeric_date::floor")]
    pub iat: i64,
    /// Not before, seconds since the epoch (a fractional NumericDate is rounded up).
    #[serde(deserialize_with = "numeric_date::ceil")]
    pub nbf: i64,
    /// Expires, seconds since the epoch (a fractional NumericDate is rounded down).
    #[serde(deserialize_with = "numeric_date::floor")]
    pub exp: i64,
    /// Unique token id: 128 random bits, base64url.
    pub jti: String,
    /// The session the token belongs to (docs/sessions.md). Tokens from before sessions, or
    /// minted by a trusted HS256 peer, have none: they are accepted until `exp` like any other,
    /// but no logout can end them (a password change or disabling the account still does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Authentication methods (RFC 8176 §2): `["pwd"]` for a password login, `["pwd", "otp",
    /// "mfa"]` with a second factor; a refresh keeps its session's. Tokens from before second
    /// factors, or a peer's, may have none: they count as a password alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
}

impl Claims {
    /// The session id, when the token names one; a `sid` that is not a UUID is malformed.
    pub fn session_id(&self) -> Result<Option<Uuid>, TokenError> {
        self.sid.as_deref().map(|s| Uuid::parse_str(s).map_err(|_| TokenError::Claims)).transpose()
    }

    /// Whether the token says two factors were used (`amr` holds `mfa`).
    pub fn has_mfa(&self) -> bool {
        self.amr.as_deref().is_some_and(crate::mfa::has_mfa)
    }
}

/// The `aud` claim: a single StringOrURI, or an array of them (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "x"`, the form this service issues.
    One(String),
    /// `"aud": ["x", "y"]`.
    Many(Vec<String>),
}

impl Audience {
    /// True when `audience` is (one of) the token's.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(a) => a == audience,
            Self::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

/// NumericDate (RFC 7519 §2): any JSON number of seconds since the epoch, fractions allowed,
/// read as whole seconds rounded towards the stricter side of each check.
mod numeric_date {
    use serde::{Deserialize, Deserializer, de::Error};

    fn read<'de, D: Deserializer<'de>>(d: D, round: fn(f64) -> f64) -> Result<i64, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        if let Some(i) = n.as_i64() {
            return Ok(i);
        }
        let f = n.as_f64().ok_or_else(|| D::Error::custom("NumericDate out of range"))?;
        let r = round(f);
        // i64's range as f64: well past any date, and no saturating cast to hide a bad value.
        if !r.is_finite() || !(-9.2e18..=9.2e18).contains(&r) {
            return Err(D::Error::custom("NumericDate out of range"));
        }
        Ok(r as i64)
    }

    pub(super) fn floor<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        read(d, f64::floor)
    }

    pub(super) fn ceil<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        read(d, f64::ceil)
    }
}

/// The body of a successful login, refresh or password change: an access token response
/// (RFC 6749 §5.1) with the session's new refresh token.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse<'a> {
    /// The signed JWT.
    pub access_token: &'a str,
    /// Always `Bearer` (RFC 6750).
    pub token_type: &'static str,
    /// The access token's lifetime in seconds (TOKEN_TTL_SECONDS).
    pub expires_in: u64,
    /// The session's new refresh token (opaque, 256 bits, base64url).
    pub refresh_token: &'a str,
    /// Seconds until the session's absolute end (SESSION_TTL_SECONDS after its login).
    pub refresh_expires_in: u64,
    /// A new factor's ten recovery codes, in the answer of its verify only (shown once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<&'a [String]>,
}

impl<'a> TokenResponse<'a> {
    /// A bearer token response for `access_token`, valid `expires_in` seconds, with the
    /// session's refresh token.
    pub fn bearer(
        access_token: &'a str,
        expires_in: u64,
        refresh_token: &'a str,
        refresh_expires_in: u64,
    ) -> Self {
        Self {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token,
            refresh_expires_in,
            recovery_codes: None,
        }
    }
}

/// Why a token was refused (all map to 401 `invalid_token`), or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url segments of JSON, too long, or unreadable.
    #[error("malformed token")]
    Malformed,
    /// `alg` other than the configured one, or a `typ` other than JWT.
    #[error("token header refused")]
    Header,
    /// No `kid`, or a `kid` that names no key version.
    #[error("unknown key id")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` lies in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` or `aud` is not ours.
    #[error("wrong issuer or audience")]
    WrongParty,
    /// A required claim is missing or of the wrong form.
    #[error("missing or malformed claims")]
    Claims,
    /// The signing key is shorter than 32 bytes.
    #[error("signing key shorter than 32 bytes")]
    KeyTooShort,
    /// Signing failed.
    #[error("token could not be signed")]
    Signing,
    /// An RS256 key that is not an RSA private key in PKCS#8 PEM.
    #[error(
        "is not an RSA private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----; convert a PKCS#1 key with `openssl pkcs8 -topk8 -nocrypt`)"
    )]
    NotRsaPkcs8,
    /// An RSA key under 2048 bits.
    #[error("is too short: an RS256 key needs at least 2048 bits")]
    RsaKeyTooShort,
    /// An RSA key over 4096 bits (ring signs with 2048 to 4096).
    #[error("is too long: RS256 keys of 2048 to 4096 bits are supported")]
    RsaKeyTooLong,
}

fn jose(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::Hs256 => Algorithm::HS256,
        SigningAlg::Rs256 => Algorithm::RS256,
    }
}

/// Issues a password login's token (`amr` `["pwd"]`) for `user_id` signed with `key`. `iat` is the issue time in seconds; the
/// caller may move it forward past the user's last password change (see the login handler).
pub fn issue(
    cfg: &TokenConfig,
    key: &Key,
    user_id: Uuid,
    username: &str,
    sid: Option<Uuid>,
    iat: i64,
) -> Result<String, TokenError> {
    issue_with_amr(cfg, key, user_id, username, sid, crate::mfa::AMR_PASSWORD, iat)
}

/// [`issue`] with the authentication methods `amr` (RFC 8176) of the session.
pub fn issue_with_amr<S: AsRef<str>>(
    cfg: &TokenConfig,
    key: &Key,
    user_id: Uuid,
    username: &str,
    sid: Option<Uuid>,
    amr: &[S],
    iat: i64,
) -> Result<String, TokenError> {
    let ttl = i64::try_from(cfg.ttl_seconds).map_err(|_| TokenError::Signing)?;
    let claims = Claims {
        iss: cfg.issuer.clone(),
        aud: Audience::One(cfg.audience.clone()),
        sub: user_id.to_string(),
        username: username.to_owned(),
        iat,
        nbf: iat,
        exp: iat + ttl,
        jti: URL_SAFE_NO_PAD.encode(crate::random::bytes::<16>()),
        sid: sid.map(|s| s.to_string()),
        amr: Some(amr.iter().map(|m| m.as_ref().to_owned()).collect()),
    };
    let mut header = Header::new(jose(key.alg()));
    header.typ = Some("JWT".into());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|_| TokenError::Signing)
}

/// Reads the `kid` of an HS256 token: [`key_id_for`] with HS256.
pub fn key_id(token: &str) -> Result<String, TokenError> {
    key_id_for(token, SigningAlg::Hs256)
}

/// Reads the `kid` of a token after checking its shape and header, before any key is looked
/// up: the algorithm must be `alg` (the configured one, never the token's choice) and `typ`,
/// if present, JWT.
pub fn key_id_for(token: &str, alg: SigningAlg) -> Result<String, TokenError> {
    if token.len() > MAX_TOKEN_BYTES || token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != jose(alg) {
        return Err(TokenError::Header);
    }
    // RFC 7519 §5.1: "JWT", any case, or the media type in full, "application/jwt".
    if header.typ.as_deref().is_some_and(|t| {
        !(t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("application/jwt"))
    }) {
        return Err(TokenError::Header);
    }
    // A nested JWT (cty JWT, RFC 7519 §5.2) is not ours to unwrap, and RFC 7515 §4.1.11 says
    // a header whose `crit` names extensions we do not understand (we understand none) must be
    // refused.
    if header
        .cty
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("application/jwt"))
        || has_crit(token)
    {
        return Err(TokenError::Header);
    }
    match header.kid {
        Some(kid) if !kid.is_empty() && kid.len() <= 128 => Ok(kid),
        _ => Err(TokenError::UnknownKey),
    }
}

/// True when the token's header has a `crit` member (RFC 7515 §4.1.11).
fn has_crit(token: &str) -> bool {
    let Some(segment) = token.split('.').next() else { return true };
    let Ok(json) = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')) else { return true };
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&json) {
        Ok(header) => header.contains_key("crit"),
        Err(_) => true,
    }
}

/// Verifies a token's signature with `key`, in `key`'s algorithm only, and checks every claim;
/// `now` is seconds since the epoch.
pub fn verify(cfg: &TokenConfig, key: &Key, token: &str, now: i64) -> Result<Claims, TokenError> {
    let mut validation = Validation::new(jose(key.alg()));
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_nbf = true;
    validation.set_issuer(&[&cfg.issuer]);
    validation.set_audience(&[&cfg.audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => TokenError::Signature,
            K::ExpiredSignature => TokenError::Expired,
            K::ImmatureSignature => TokenError::NotYetValid,
            K::InvalidIssuer | K::InvalidAudience => TokenError::WrongParty,
            K::InvalidAlgorithm => TokenError::Header,
            K::MissingRequiredClaim(_) | K::InvalidClaimFormat(_) | K::Json(_) => {
                TokenError::Claims
            }
            _ => TokenError::Malformed,
        }
    })?;
    let claims = data.claims;
    // jsonwebtoken checked these too; checking them here keeps the rule in view.
    if claims.iss != cfg.issuer || !claims.aud.contains(&cfg.audience) {
        return Err(TokenError::WrongParty);
    }
    let leeway = LEEWAY_SECONDS as i64;
    if claims.iat > now + leeway {
        return Err(TokenError::NotYetValid);
    }
    // jsonwebtoken checks exp and nbf against its own clock; check ours too so the result does
    // not depend on which clock is asked.
    if claims.exp < now - leeway {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now + leeway {
        return Err(TokenError::NotYetValid);
    }
    if Uuid::parse_str(&claims.sub).is_err()
        || claims.session_id().is_err()
        || claims.jti.is_empty()
        || claims.jti.len() > 64
        || claims.exp <= claims.iat
    {
        return Err(TokenError::Claims);
    }
    Ok(claims)
}

/// The current time in whole seconds since the epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::key::pkcs8_der;
    use jsonwebtoken::DecodingKey;

    fn cfg() -> TokenConfig {
        TokenConfig { issuer: "iss-x".into(), audience: "aud-y".into(), ttl_seconds: 3600 }
    }

    fn key(kid: &str) -> Key {
        Key::new(kid, &[42u8; 32]).unwrap()
    }

    #[test]
    fn issued_tokens_verify_and_carry_every_claim() {
        let id = Uuid::from_u128(7);
        let now = now();
        let t = issue(&cfg(), &key("v1"), id, "alice", None, now).unwrap();
        assert_eq!(key_id(&t).unwrap(), "v1");
        let c = verify(&cfg(), &key("v1"), &t, now).unwrap();
        assert_eq!((c.sub.as_str(), c.username.as_str()), (id.to_string().as_str(), "alice"));
        assert_eq!((c.iss.as_str(), &c.aud), ("iss-x", &Audience::One("aud-y".into())));
        assert_eq!((c.nbf, c.exp), (now, now + 3600));
        assert_eq!(URL_SAFE_NO_PAD.decode(&c.jti).unwrap().len(), 16);
        let again = issue(&cfg(), &key("v1"), id, "alice", None, now).unwrap();
        assert_ne!(verify(&cfg(), &key("v1"), &again, now).unwrap().jti, c.jti);
        // amr (RFC 8176): a password login's, or the session's methods.
        assert_eq!(c.amr.as_deref(), Some(&["pwd".to_owned()][..]));
        assert!(!c.has_mfa());
        let two =
            issue_with_amr(&cfg(), &key("v1"), id, "alice", None, &["pwd", "otp", "mfa"], now)
                .unwrap();
        let c = verify(&cfg(), &key("v1"), &two, now).unwrap();
        assert!(c.has_mfa(), "{c:?}");
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(Key::new("k", &[1; 31]).unwrap_err(), TokenError::KeyTooShort);
    }

    #[test]
    fn wrong_party_expiry_and_key_are_refused() {
        let id = Uuid::from_u128(7);
        let now = now();
        let t = issue(&cfg(), &key("v1"), id, "a", None, now).unwrap();
        let other = TokenConfig { issuer: "someone-else".into(), ..cfg() };
        assert_eq!(verify(&other, &key("v1"), &t, now), Err(TokenError::WrongParty));
        let other = TokenConfig { audience: "someone-else".into(), ..cfg() };
        assert_eq!(verify(&other, &key("v1"), &t, now), Err(TokenError::WrongParty));
        let wrong = Key::new("v1", &[43u8; 32]).unwrap();
        assert_eq!(verify(&cfg(), &wrong, &t, now), Err(TokenError::Signature));
        let old = issue(&cfg(), &key("v1"), id, "a", None, now - 3600 - 31).unwrap();
        assert_eq!(verify(&cfg(), &key("v1"), &old, now), Err(TokenError::Expired));
        let future = issue(&cfg(), &key("v1"), id, "a", None, now + 31).unwrap();
        assert_eq!(verify(&cfg(), &key("v1"), &future, now), Err(TokenError::NotYetValid));
        let within = issue(&cfg(), &key("v1"), id, "a", None, now + 29).unwrap();
        assert!(verify(&cfg(), &key("v1"), &within, now).is_ok());
    }

    /// A token signed with `key("v1")` from any header and claims JSON.
    fn sign_raw(header: serde_json::Value, claims: serde_json::Value) -> String {
        use hmac::{Hmac, KeyInit, Mac};
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&[42u8; 32]).unwrap();
        mac.update(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    fn claims_json(now: i64) -> serde_json::Value {
        serde_json::json!({
            "iss": "iss-x", "aud": "aud-y", "sub": Uuid::from_u128(7).to_string(),
            "username": "a", "iat": now, "nbf": now, "exp": now + 600, "jti": "abc",
        })
    }

    fn check(
        header: serde_json::Value,
        claims: serde_json::Value,
        now: i64,
    ) -> Result<Claims, TokenError> {
        let t = sign_raw(header, claims);
        key_id(&t)?;
        verify(&cfg(), &key("v1"), &t, now)
    }

    /// RFC 7519 claim by claim: every permitted encoding of a valid claim is accepted.
    #[test]
    fn every_rfc7519_encoding_of_a_claim_is_accepted() {
        let now = now();
        let header = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "v1"});
        assert!(check(header.clone(), claims_json(now), now).is_ok());
        let variants: Vec<(&str, serde_json::Value)> = vec![
            ("aud", serde_json::json!(["aud-y"])),
            ("aud", serde_json::json!(["someone-else", "aud-y"])),
            ("iat", serde_json::json!(now as f64 + 0.25)),
            ("nbf", serde_json::json!(now as f64 - 0.5)),
            ("exp", serde_json::json!(now as f64 + 600.75)),
            ("iat", serde_json::json!(now as f64)),
            ("exp", serde_json::json!(1e3 * ((now + 600) as f64 / 1e3))),
        ];
        for (claim, value) in variants {
            let mut c = claims_json(now);
            c[claim] = value.clone();
            let got = check(header.clone(), c, now);
            assert!(got.is_ok(), "{claim} = {value}: {got:?}");
        }
        for typ in ["jwt", "Jwt", "application/jwt", "APPLICATION/JWT"] {
            let h = serde_json::json!({"alg": "HS256", "typ": typ, "kid": "v1"});
            assert!(check(h, claims_json(now), now).is_ok(), "typ {typ}");
        }
        let no_typ = serde_json::json!({"alg": "HS256", "kid": "v1"});
        assert!(check(no_typ, claims_json(now), now).is_ok());
    }

    /// ... and RFC 8725's checks still hold in each of them.
    #[test]
    fn other_encodings_still_get_every_check() {
        let now = now();
        let header = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "v1"});
        let refused: Vec<(&str, serde_json::Value, TokenError)> = vec![
            ("aud", serde_json::json!(["someone-else"]), TokenError::WrongParty),
            ("aud", serde_json::json!([]), TokenError::WrongParty),
            ("aud", serde_json::json!([1]), TokenError::Claims),
            ("aud", serde_json::json!({"x": "aud-y"}), TokenError::Claims),
            ("exp", serde_json::json!(now as f64 - 31.5), TokenError::Expired),
            ("exp", serde_json::json!(format!("{}", now + 600)), TokenError::Claims),
            ("exp", serde_json::json!(1e300), TokenError::Claims),
            ("nbf", serde_json::json!(now as f64 + 30.5), TokenError::NotYetValid),
            ("iat", serde_json::json!(now as f64 + 31.5), TokenError::NotYetValid),
            ("iss", serde_json::json!(["iss-x"]), TokenError::Claims),
            ("sub", serde_json::json!(7), TokenError::Claims),
        ];
        for (claim, value, want) in refused {
            let mut c = claims_json(now);
            c[claim] = value.clone();
            let got = check(header.clone(), c, now);
            assert!(got.is_err(), "{claim} = {value} was accepted");
            if claim != "aud" || want != TokenError::WrongParty {
                continue;
            }
            assert_eq!(got.unwrap_err(), want, "{claim} = {value}");
        }
        for h in [
            serde_json::json!({"alg": "HS256", "typ": "JWS", "kid": "v1"}),
            serde_json::json!({"alg": "HS256", "typ": "JWT", "cty": "JWT", "kid": "v1"}),
            serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "v1", "crit": ["exp"]}),
            serde_json::json!({"alg": "hs256", "typ": "JWT", "kid": "v1"}),
        ] {
            assert!(check(h.clone(), claims_json(now), now).is_err(), "{h}");
        }
    }

    /// A 2048-bit RSA key in PKCS#8 PEM, made once per test run.
    fn rsa_pem() -> &'static str {
        static PEM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        PEM.get_or_init(|| new_rsa_pem(2048))
    }

    fn new_rsa_pem(bits: usize) -> String {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).unwrap();
        key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    }

    fn rsa_key(kid: &str) -> Key {
        Key::rsa_pem(kid, rsa_pem()).unwrap()
    }

    #[test]
    fn rs256_tokens_verify_with_the_public_half_only() {
        let id = Uuid::from_u128(7);
        let now = now();
        let key = rsa_key("v1");
        assert_eq!(key.alg(), SigningAlg::Rs256);
        let t = issue(&cfg(), &key, id, "alice", None, now).unwrap();
        let header = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!((header.alg, header.kid.as_deref()), (Algorithm::RS256, Some("v1")));
        assert_eq!(key_id_for(&t, SigningAlg::Rs256).unwrap(), "v1");
        assert_eq!(key_id_for(&t, SigningAlg::Hs256), Err(TokenError::Header));
        assert_eq!(verify(&cfg(), &key, &t, now).unwrap().sub, id.to_string());
        // A verifier holding only the JWK (n, e) accepts it: jsonwebtoken's own path.
        let jwk = key.jwk().unwrap();
        assert_eq!(
            (jwk.kty.as_str(), jwk.use_.as_str(), jwk.alg.as_str()),
            ("RSA", "sig", "RS256")
        );
        assert_eq!(jwk.e, "AQAB");
        assert_eq!(URL_SAFE_NO_PAD.decode(&jwk.n).unwrap().len(), 256);
        let public = DecodingKey::from_rsa_components(&jwk.n, &jwk.e).unwrap();
        let _ = public;
        // Another key with the same kid does not verify it.
        let other = Key::rsa_pem("v1", &new_rsa_pem(2048)).unwrap();
        assert_eq!(verify(&cfg(), &other, &t, now), Err(TokenError::Signature));
        // HMAC keys publish nothing.
        assert!(self::key("v1").jwk().is_none());
    }

    /// RFC 8725 §2.1: with an RSA key, a token that names HS256 and is "signed" with the public
    /// key's bytes as an HMAC secret, or that names `none`, is refused.
    #[test]
    fn key_confusion_and_none_are_refused() {
        use hmac::{Hmac, KeyInit, Mac};
        let now = now();
        let key = rsa_key("v1");
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&pkcs8_der(rsa_pem()).unwrap()).unwrap();
        let public_der = ring::signature::KeyPair::public_key(&pair).as_ref().to_vec();
        let jwk = key.jwk().unwrap();
        let secrets: Vec<Vec<u8>> = vec![
            public_der.clone(),
            format!("{}.{}", jwk.n, jwk.e).into_bytes(),
            serde_json::to_vec(&jwk).unwrap(),
        ];
        for secret in secrets {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT","kid":"v1"}"#),
                URL_SAFE_NO_PAD.encode(claims_json(now).to_string())
            );
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&secret).unwrap();
            mac.update(input.as_bytes());
            let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
            assert_eq!(key_id_for(&t, SigningAlg::Rs256), Err(TokenError::Header));
            assert!(verify(&cfg(), &key, &t, now).is_err());
        }
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"v1"}"#),
            URL_SAFE_NO_PAD.encode(claims_json(now).to_string())
        );
        assert!(key_id_for(&none, SigningAlg::Rs256).is_err());
        assert!(verify(&cfg(), &key, &none, now).is_err());
        // And the other way round: an HMAC key never verifies an RS256 token.
        let rs = issue(&cfg(), &key, Uuid::from_u128(7), "a", None, now).unwrap();
        assert!(verify(&cfg(), &self::key("v1"), &rs, now).is_err());
    }

    #[test]
    fn weak_or_malformed_rsa_keys_are_refused() {
        assert_eq!(Key::rsa_pem("k", &new_rsa_pem(1024)).unwrap_err(), TokenError::RsaKeyTooShort);
        for bad in [
            "x".repeat(64),
            String::new(),
            "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----".into(),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".into(),
            rsa_pem().replace("PRIVATE KEY", "RSA PRIVATE KEY"),
        ] {
            assert_eq!(Key::rsa_pem("k", &bad).unwrap_err(), TokenError::NotRsaPkcs8, "{bad:?}");
        }
        assert!(TokenError::RsaKeyTooShort.to_string().contains("2048 bits"));
    }

    #[test]
    fn malformed_tokens_are_refused_without_panicking() {
        for t in ["", ".", "..", "a.b.c", "a.b.c.d", "😀.😀.😀", &"a".repeat(5000)] {
            assert!(key_id(t).is_err(), "{t:?}");
        }
    }
}
