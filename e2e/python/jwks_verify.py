"""An independent verifier of RS256 tokens, from the contract alone: it reads auth-local's
OpenID discovery document, verifies a login's access token with PyJWT's PyJWKClient against
the published JWKS (no secret anywhere), then checks that forged tokens are refused by
/profile: HS256 "signed" with the public key (PEM, DER or JWK bytes as the HMAC secret: key
confusion, RFC 8725 §2.1), `alg: none`, and RS256 signed by another RSA key under our kid.

usage: jwks_verify.py BASE_URL USERNAME PASSWORD AUDIENCE
Prints "all promises kept" when every check passes; exits non-zero at the first that fails.
"""
import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

BASE, USERNAME, PASSWORD, AUDIENCE = sys.argv[1:5]


def call(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token is not None:
        req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    print("ok:", what)


# Discovery, as API Gateway's JWT authorizer and OIDC libraries read it.
status, headers, disco = call("GET", "/.well-known/openid-configuration")
check(status == 200, "discovery answers 200")
check(disco["issuer"] == BASE, f"issuer is the URL it is served under ({disco['issuer']})")
check(disco["jwks_uri"] == BASE + "/.well-known/jwks.json", "jwks_uri is issuer + /.well-known/jwks.json")
check(disco["id_token_signing_alg_values_supported"] == ["RS256"], "RS256 is the signing algorithm")
check(disco["subject_types_supported"] == ["public"], "subject types")
check(disco["response_types_supported"] == ["token"], "response types")

status, headers, jwks = call("GET", "/.well-known/jwks.json")
check(status == 200, "the JWKS answers 200")
lower = {k.lower(): v for k, v in headers.items()}
check(lower.get("cache-control", "").startswith("public, max-age="), "the JWKS is cacheable")
check(len(jwks["keys"]) >= 1, "the JWKS has a key")
for k in jwks["keys"]:
    check(k["kty"] == "RSA" and k["use"] == "sig" and k["alg"] == "RS256" and k["kid"], "JWK members")
    check(set(k) == {"kty", "use", "alg", "kid", "n", "e"}, "no private member in the JWK")

status, _, body = call("POST", "/login", {"username": USERNAME, "password": PASSWORD})
check(status == 200, "login answers 200")
token = body["access_token"]
header = jwt.get_unverified_header(token)
check(header["alg"] == "RS256" and header["typ"] == "JWT", "the token is an RS256 JWT")
check(header["kid"] in {k["kid"] for k in jwks["keys"]}, "its kid is in the JWKS")

# The verification a downstream service does: JWKS by URL, no secret.
client = jwt.PyJWKClient(disco["jwks_uri"])
signing_key = client.get_signing_key_from_jwt(token)
claims = jwt.decode(token, signing_key.key, algorithms=["RS256"], audience=AUDIENCE,
                    issuer=disco["issuer"],
                    options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]})
check(claims["username"] == USERNAME, "PyJWKClient verifies the token without the secret")
check(call("GET", "/profile", token=token)[0] == 200, "the real token passes /profile")

# Tampering breaks it for the independent verifier too.
h, p, s = token.split(".")
payload = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
payload["username"] = "mallory"
tampered = ".".join([h, base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode(), s])
try:
    jwt.decode(tampered, signing_key.key, algorithms=["RS256"], audience=AUDIENCE)
    check(False, "a tampered token is refused by PyJWT")
except jwt.InvalidSignatureError:
    check(True, "a tampered token is refused by PyJWT")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_hs256(secret, kid):
    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()) + "." + \
        b64(json.dumps(payload_for_forgery()).encode())
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(sig)


def payload_for_forgery():
    now = int(time.time())
    return {"iss": claims["iss"], "aud": claims["aud"], "sub": claims["sub"], "username": USERNAME,
            "iat": now, "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex}


public = signing_key.key
pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
pkcs1_pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
pkcs1_der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
jwk_json = json.dumps([k for k in jwks["keys"] if k["kid"] == header["kid"]][0]).encode()
kid = header["kid"]
forged = {
    "HS256 with the PEM public key as secret": forge_hs256(pem, kid),
    "HS256 with the PKCS#1 PEM public key as secret": forge_hs256(pkcs1_pem, kid),
    "HS256 with the DER public key as secret": forge_hs256(der, kid),
    "HS256 with the PKCS#1 DER public key as secret": forge_hs256(pkcs1_der, kid),
    "HS256 with the JWK as secret": forge_hs256(jwk_json, kid),
    "alg none": b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode()) + "." +
                b64(json.dumps(payload_for_forgery()).encode()) + ".",
    "alg None": b64(json.dumps({"alg": "None", "typ": "JWT", "kid": kid}).encode()) + "." +
                b64(json.dumps(payload_for_forgery()).encode()) + ".",
}
attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
forged["RS256 signed by another key under our kid"] = jwt.encode(
    payload_for_forgery(), attacker, algorithm="RS256", headers={"kid": kid})
forged["RS256 with the signature of another token"] = ".".join(
    jwt.encode(payload_for_forgery(), attacker, algorithm="RS256", headers={"kid": kid}).split(".")[:2] + [s])
for name, t in forged.items():
    status, headers, body = call("GET", "/profile", token=t)
    lower = {k.lower(): v for k, v in headers.items()}
    check(status == 401 and body["error"] == "invalid_token"
          and 'error="invalid_token"' in lower.get("www-authenticate", ""), f"/profile refuses: {name}")

print("all promises kept")
