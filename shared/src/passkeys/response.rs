//! What a client sends back from `navigator.credentials.create()` / `.get()` (WebAuthn Level 3
//! `RegistrationResponseJSON` / `AuthenticationResponseJSON`), checked before the library sees
//! it: every binary member strict base64url (RFC 4648 §5, no padding: WebAuthn §5.1's JSON
//! encoding), `id` the same credential as `rawId`, `type` `public-key`. The CBOR inside is the
//! library's to parse; only `clientDataJSON`'s challenge is read here (it is JSON), to find the
//! ceremony it answers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde_json::Value;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

/// Why a credential response was not even handed to the library (400 `invalid_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn malformed(s: impl Into<String>) -> Malformed {
    Malformed(s.into())
}

/// Decodes strict base64url without padding; `None` for anything else (`+`, `/`, `=`, spaces).
pub fn decode(s: &str) -> Option<Vec<u8>> {
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return None;
    }
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// Encodes base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn binary(obj: &Value, at: &str, member: &str, required: bool) -> Result<(), Malformed> {
    match obj.get(member) {
        Some(Value::String(s)) => match decode(s) {
            Some(bytes) if !bytes.is_empty() => Ok(()),
            _ => {
                Err(malformed(format!("{at}{member} must be non-empty base64url without padding.")))
            }
        },
        None | Some(Value::Null) if !required => Ok(()),
        None => Err(malformed(format!("{at}{member} is missing."))),
        Some(_) => Err(malformed(format!("{at}{member} must be a base64url string."))),
    }
}

fn common(v: &Value, inner: &[(&str, bool)]) -> Result<(), Malformed> {
    if !v.is_object() {
        return Err(malformed("credential must be a JSON object."));
    }
    binary(v, "credential.", "id", true)?;
    binary(v, "credential.", "rawId", true)?;
    if v.get("id") != v.get("rawId") {
        return Err(malformed("credential.id and credential.rawId must name the same credential."));
    }
    if v.get("type").and_then(Value::as_str) != Some("public-key") {
        return Err(malformed(r#"credential.type must be "public-key"."#));
    }
    let response = v
        .get("response")
        .filter(|r| r.is_object())
        .ok_or_else(|| malformed("credential.response must be a JSON object."))?;
    for (member, required) in inner {
        binary(response, "credential.response.", member, *required)?;
    }
    Ok(())
}

fn parse<T: DeserializeOwned>(v: &Value) -> Result<T, Malformed> {
    serde_json::from_value(v.clone())
        .map_err(|_| malformed("credential is not a WebAuthn credential response."))
}

/// A registration response (`RegistrationResponseJSON`).
///
/// # Errors
/// [`Malformed`], naming the member.
pub fn registration(v: &Value) -> Result<RegisterPublicKeyCredential, Malformed> {
    common(v, &[("clientDataJSON", true), ("attestationObject", true)])?;
    parse(v)
}

/// An authentication response (`AuthenticationResponseJSON`); `userHandle` is required, as a
/// discoverable credential always returns one.
///
/// # Errors
/// [`Malformed`], naming the member.
pub fn authentication(v: &Value) -> Result<PublicKeyCredential, Malformed> {
    common(
        v,
        &[
            ("clientDataJSON", true),
            ("authenticatorData", true),
            ("signature", true),
            ("userHandle", true),
        ],
    )?;
    parse(v)
}

/// The challenge `clientDataJSON` names (its `challenge` member, base64url), or `None` when it
/// is not JSON or names none: then the library could not match it either.
pub fn challenge_of(client_data_json: &[u8]) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct ClientData {
        challenge: String,
    }
    let cd: ClientData = serde_json::from_slice(client_data_json).ok()?;
    decode(&cd.challenge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assertion() -> Value {
        let client =
            encode(br#"{"type":"webauthn.get","challenge":"AAEC","origin":"http://localhost"}"#);
        json!({
            "id": "AQIDBA", "rawId": "AQIDBA", "type": "public-key",
            "response": {
                "clientDataJSON": client, "authenticatorData": "AAAA",
                "signature": "AAAA", "userHandle": "AAAAAAAAAAAAAAAAAAAAAA"
            },
            "clientExtensionResults": {}
        })
    }

    #[test]
    fn strict_base64url_only() {
        assert_eq!(decode("AQIDBA"), Some(vec![1, 2, 3, 4]));
        for bad in ["AQIDBA==", "AQ+/", "AQ ID", "AQIDB", "€"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_well_formed_assertion_parses_and_its_challenge_is_read() {
        let a = authentication(&assertion()).unwrap();
        assert_eq!(challenge_of(&a.response.client_data_json), Some(vec![0, 1, 2]));
        assert_eq!(challenge_of(b"not json"), None);
        assert_eq!(challenge_of(br#"{"challenge":"AA=="}"#), None);
    }

    type Change = Box<dyn Fn(&mut Value)>;

    #[test]
    fn each_malformed_member_is_named() {
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|v| v["rawId"] = json!("AQIDBA==")), "rawId"),
            (Box::new(|v| v["id"] = json!("AQIDBQ")), "same credential"),
            (Box::new(|v| v["id"] = json!(5)), "id"),
            (Box::new(|v| v["type"] = json!("password")), "type"),
            (Box::new(|v| v["response"] = json!("x")), "response"),
            (Box::new(|v| v["response"]["signature"] = json!("a+b/")), "signature"),
            (Box::new(|v| v["response"]["userHandle"] = Value::Null), "userHandle"),
            (Box::new(|v| v["response"]["authenticatorData"] = json!("")), "authenticatorData"),
            (
                Box::new(|v| {
                    v["response"]
                        .as_object_mut()
                        .unwrap()
                        .remove("clientDataJSON")
                        .map(drop)
                        .unwrap_or(())
                }),
                "clientDataJSON",
            ),
            (Box::new(|v| *v = json!([1])), "object"),
        ];
        for (change, named) in cases {
            let mut v = assertion();
            change(&mut v);
            let e = authentication(&v).unwrap_err();
            assert!(e.0.contains(named), "{named}: {e}");
        }
        let e = registration(&assertion()).unwrap_err();
        assert!(e.0.contains("attestationObject"), "{e}");
    }
}
