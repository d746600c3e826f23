"""An independent client of the auth service, written from the contract (API.md) alone:
urllib for HTTP and PyJWT to verify the tokens with the shared key.

usage: client_test.py BASE_URL SIGNING_KEY
Expects these accounts: alice / alice@example.com and carol (disabled), both with the password
"correct horse battery staple". Exits non-zero with a message on the first broken promise.
"""
import json
import sys
import time
import urllib.error
import urllib.request
import uuid

import jwt

BASE, KEY = sys.argv[1], sys.argv[2]
PW = "correct horse battery staple"


def call(method, path, body=None, headers=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def header(h, name):
    return next((v for k, v in h.items() if k.lower() == name), None)


def expect(cond, what):
    if not cond:
        sys.exit(f"FAILED: {what}")


def problem(status, h, body, want_status, want_error, what):
    expect(status == want_status, f"{what}: status {status}, wanted {want_status}: {body!r}")
    expect(header(h, "content-type") == "application/problem+json", f"{what}: content-type {header(h, 'content-type')}")
    doc = json.loads(body)
    expect(doc.get("error") == want_error, f"{what}: error {doc.get('error')}, wanted {want_error}")
    expect(doc.get("type") == "about:blank" and doc.get("status") == want_status, f"{what}: {doc}")
    expect(isinstance(doc.get("title"), str) and isinstance(doc.get("detail"), str), f"{what}: {doc}")
    expect(header(h, "x-content-type-options") == "nosniff", f"{what}: nosniff")
    expect(header(h, "x-request-id"), f"{what}: x-request-id")
    return doc


J = {"content-type": "application/json"}

# Health and test-db.
s, h, b = call("GET", "/health")
expect(s == 200 and json.loads(b)["checks"]["database"]["status"] == "ok", f"health {s} {b!r}")
s, h, b = call("GET", "/test-db")
expect(s == 200 and "timestamp" in json.loads(b), f"test-db {s} {b!r}")

# Login by username and by email; tokens verified by PyJWT with the key, HS256 only.
tokens = []
for body in ({"username": "alice", "password": PW}, {"email": "ALICE@example.com", "password": PW}):
    s, h, b = call("POST", "/login", body, J)
    expect(s == 200, f"login {body.keys()}: {s} {b!r}")
    expect(header(h, "cache-control") == "no-store", "login cache-control")
    doc = json.loads(b)
    expect(doc["token_type"] == "Bearer" and doc["expires_in"] == 3600, f"login body {doc}")
    tok = doc["access_token"]
    hdr = jwt.get_unverified_header(tok)
    expect(hdr["alg"] == "HS256" and hdr["typ"] == "JWT" and hdr["kid"], f"header {hdr}")
    claims = jwt.decode(tok, KEY, algorithms=["HS256"], audience="auth-service", issuer="auth-service",
                        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]})
    expect(claims["username"] == "alice" and uuid.UUID(claims["sub"]), f"claims {claims}")
    expect(claims["exp"] - claims["iat"] == 3600 and abs(claims["iat"] - time.time()) < 60, f"times {claims}")
    tokens.append(tok)
expect(jwt.decode(tokens[0], KEY, algorithms=["HS256"], audience="auth-service")["jti"]
       != jwt.decode(tokens[1], KEY, algorithms=["HS256"], audience="auth-service")["jti"], "jti differs")

# Profile.
s, h, b = call("GET", "/profile", headers={"Authorization": "Bearer " + tokens[0]})
expect(s == 200, f"profile {s} {b!r}")
p = json.loads(b)
expect(set(p) == {"id", "username", "email", "full_name", "created_at", "last_login_at"}, f"profile keys {p}")
expect(p["username"] == "alice" and p["email"] == "alice@example.com" and p["last_login_at"], f"profile {p}")
expect(header(h, "cache-control") == "no-store", "profile cache-control")

# Every login failure looks the same.
seen = []
for body in ({"username": "alice", "password": "wrong"}, {"username": "nobody", "password": PW},
             {"username": "carol", "password": PW}):
    s, h, b = call("POST", "/login", body, J)
    doc = problem(s, h, b, 401, "invalid_credentials", f"login failure {body['username']}")
    expect(header(h, "www-authenticate") == 'Bearer realm="auth"', f"challenge {header(h, 'www-authenticate')}")
    seen.append(b)
expect(len(set(seen)) == 1, f"failures differ: {seen}")

# Malformed logins.
for what, raw, headers, st, err in [
    ("no content-type", b'{"username":"alice","password":"x"}', {}, 415, "unsupported_media_type"),
    ("form body", b"username=alice", {"content-type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
    ("empty", b"", J, 400, "invalid_json"),
    ("not json", b"{nope", J, 400, "invalid_json"),
    ("array", b"[]", J, 400, "invalid_request"),
    ("missing password", b'{"username":"alice"}', J, 400, "invalid_request"),
    ("both identifiers", b'{"username":"a","email":"a@b.c","password":"x"}', J, 400, "invalid_request"),
    ("number", b'{"username":5,"password":"x"}', J, 400, "invalid_request"),
    ("long identifier", json.dumps({"username": "a" * 321, "password": "x"}).encode(), J, 400, "invalid_request"),
    ("long password", json.dumps({"username": "a", "password": "x" * 1025}).encode(), J, 400, "invalid_request"),
    ("too large", json.dumps({"username": "a", "password": "x" * 9000}).encode(), J, 413, "payload_too_large"),
]:
    s, h, b = call("POST", "/login", raw=raw, headers=headers)
    problem(s, h, b, st, err, what)

# Tokens that must not pass.
forged_other_key = jwt.encode({"sub": p["id"], "iss": "auth-service", "aud": "auth-service", "iat": int(time.time()),
                               "nbf": int(time.time()), "exp": int(time.time()) + 60, "jti": "x"},
                              "a-different-key-of-sufficient-length!!", algorithm="HS256", headers={"kid": hdr["kid"]})
expired = jwt.encode({"sub": p["id"], "iss": "auth-service", "aud": "auth-service", "iat": int(time.time()) - 7200,
                      "nbf": int(time.time()) - 7200, "exp": int(time.time()) - 3600, "jti": "y", "username": "alice"},
                     KEY, algorithm="HS256", headers={"kid": hdr["kid"]})
s, h, b = call("GET", "/profile")
problem(s, h, b, 401, "invalid_token", "no token")
expect(header(h, "www-authenticate") == 'Bearer realm="auth"', "challenge without error= for a missing token")
for what, tok in [("garbage", "not-a-token"), ("other key", forged_other_key), ("expired", expired)]:
    s, h, b = call("GET", "/profile", headers={"Authorization": "Bearer " + tok})
    problem(s, h, b, 401, "invalid_token", what)
    expect(header(h, "www-authenticate") == 'Bearer realm="auth", error="invalid_token"', f"{what}: challenge")

# Methods.
s, h, b = call("GET", "/login")
problem(s, h, b, 405, "method_not_allowed", "GET /login")
expect(header(h, "allow") == "POST", "Allow")

# Our own token, minted by PyJWT with the key, is accepted (the Flask-era services' direction).
own = jwt.encode({"sub": p["id"], "iss": "auth-service", "aud": "auth-service", "iat": int(time.time()),
                  "nbf": int(time.time()), "exp": int(time.time()) + 60, "jti": uuid.uuid4().hex, "username": "alice"},
                 KEY, algorithm="HS256", headers={"kid": hdr["kid"]})
s, h, b = call("GET", "/profile", headers={"Authorization": "Bearer " + own})
expect(s == 200, f"a PyJWT token with the key: {s} {b!r}")
print("client_test: all promises kept")
