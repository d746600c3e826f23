"""An independent client of the auth service, written from the contract (openapi.yaml and docs/) alone:
urllib for HTTP and PyJWT to verify the tokens with the shared key.

usage: client_test.py BASE_URL SIGNING_KEY [REFRESH_REUSE_INTERVAL_SECONDS]
The third argument is the server's REFRESH_REUSE_INTERVAL_SECONDS (default 10);
run the server with a short one (2) so the client can wait it out.

Expects these accounts, all with the password "correct horse battery staple":
alice / alice@example.com, carol (disabled), and one account per session scenario, so that no
scenario sees another's sessions: lifecycle, reuse, refusals, logout, password, race_refresh,
race_logout, race_password (each with email <name>@example.com).
Exits non-zero with a message on the first broken promise.
"""
import base64
import collections
import json
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import jwt

BASE, KEY = sys.argv[1], sys.argv[2]
REUSE_INTERVAL = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
PW = "correct horse battery staple"
NEW_PW = "a violet kettle hums at dawn 73"
J = {"content-type": "application/json"}
BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
MAX_REFRESH_EXPIRES_IN = 2592000  # SESSION_TTL_SECONDS' default, 30 days


# --- HTTP and checks -----------------------------------------------------------------------------

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


def is_uuid(text):
    try:
        uuid.UUID(text)
        return True
    except (TypeError, ValueError, AttributeError):
        return False


def bearer(access, extra=None):
    return {"Authorization": "Bearer " + access, **(extra or {})}


# --- Tokens --------------------------------------------------------------------------------------

# One login body (from /login, /refresh or /password) with its verified access token.
Tokens = collections.namedtuple("Tokens", "access refresh claims expires_in refresh_expires_in")


def verify(access, what):
    """The access token as PyJWT sees it with the key: HS256 only, every claim the contract names."""
    hdr = jwt.get_unverified_header(access)
    expect(hdr.get("alg") == "HS256" and hdr.get("typ") == "JWT" and hdr.get("kid"), f"{what}: JWT header {hdr}")
    try:
        claims = jwt.decode(access, KEY, algorithms=["HS256"], audience="auth-service", issuer="auth-service",
                            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "sid"]})
    except jwt.PyJWTError as e:
        sys.exit(f"FAILED: {what}: PyJWT refuses the access token: {e}")
    expect(is_uuid(claims["sub"]), f"{what}: sub is not a user id: {claims}")
    expect(is_uuid(claims["sid"]), f"{what}: sid is not a session id (uuid): {claims}")
    expect(isinstance(claims["jti"], str) and claims["jti"], f"{what}: jti {claims}")
    expect(abs(claims["iat"] - time.time()) < 60, f"{what}: iat is not now: {claims}")
    return claims


def token_response(status, h, body, what, prev=None, carried_on=False):
    """Checks a 200 login body; with `prev`, that it continues prev's session with a new pair
    (with `carried_on`, as a password change does: under a new sid, never a longer life)."""
    expect(status == 200, f"{what}: status {status}: {body!r}")
    expect((header(h, "content-type") or "").startswith("application/json"), f"{what}: content-type {header(h, 'content-type')}")
    expect(header(h, "x-content-type-options") == "nosniff", f"{what}: nosniff")
    doc = json.loads(body)
    expect(doc.get("token_type") == "Bearer", f"{what}: token_type in {doc}")
    expect(isinstance(doc.get("expires_in"), int) and doc["expires_in"] > 0, f"{what}: expires_in in {doc}")
    rt = doc.get("refresh_token")
    expect(isinstance(rt, str) and BASE64URL.fullmatch(rt) and len(rt) >= 43,
           f"{what}: refresh_token is not 256 bits or more of base64url: {rt!r}")
    expect(len(base64.urlsafe_b64decode(rt + "=" * (-len(rt) % 4))) >= 32, f"{what}: refresh_token under 256 bits")
    rex = doc.get("refresh_expires_in")
    expect(isinstance(rex, int) and 0 < rex <= MAX_REFRESH_EXPIRES_IN, f"{what}: refresh_expires_in {rex!r}")
    claims = verify(doc.get("access_token"), what)
    expect(claims["exp"] - claims["iat"] == doc["expires_in"],
           f"{what}: exp - iat = {claims['exp'] - claims['iat']}, expires_in = {doc['expires_in']}")
    tokens = Tokens(doc["access_token"], rt, claims, doc["expires_in"], rex)
    if prev is not None:
        if carried_on:
            expect(claims["sid"] != prev.claims["sid"], f"{what}: the session kept its sid {claims['sid']}")
        else:
            expect(claims["sid"] == prev.claims["sid"], f"{what}: sid changed from {prev.claims['sid']} to {claims['sid']}")
        expect(claims["sub"] == prev.claims["sub"], f"{what}: sub changed")
        expect(claims["jti"] != prev.claims["jti"], f"{what}: the new access token reuses jti {claims['jti']}")
        expect(rt != prev.refresh, f"{what}: the refresh token was not rotated")
        expect(rex <= prev.refresh_expires_in, f"{what}: the session got longer: {rex} > {prev.refresh_expires_in}")
    return tokens


def login(username, password=PW):
    s, h, b = call("POST", "/login", {"username": username, "password": password}, J)
    expect(header(h, "cache-control") == "no-store", f"login {username}: cache-control {header(h, 'cache-control')}")
    return token_response(s, h, b, f"login {username}")


def refresh(refresh_token):
    return call("POST", "/refresh", {"refresh_token": refresh_token}, J)


def refresh_ok(tokens, what):
    return token_response(*refresh(tokens.refresh), what, prev=tokens)


# Every refresh refusal seen in this run: the contract promises one body for every reason, so each is
# compared with the first as it comes.
REFUSALS = []


def refused_grant(refresh_token, what):
    s, h, b = refresh(refresh_token)
    problem(s, h, b, 401, "invalid_grant", f"refresh refused ({what})")
    challenge = header(h, "www-authenticate") or ""
    expect(challenge.startswith('Bearer realm="auth"'), f"refresh refused ({what}): WWW-Authenticate {challenge!r}")
    if REFUSALS:
        first_what, first_body, first_challenge = REFUSALS[0]
        expect(b == first_body, f"refresh refused ({what}): body {b!r} differs from ({first_what}): {first_body!r}")
        expect(challenge == first_challenge,
               f"refresh refused ({what}): WWW-Authenticate {challenge!r} differs from ({first_what}): {first_challenge!r}")
    REFUSALS.append((what, b, challenge))
    return b


def profile_ok(access, what):
    s, h, b = call("GET", "/profile", headers=bearer(access))
    expect(s == 200, f"{what}: /profile {s} {b!r}")
    return json.loads(b)


def profile_refused(access, what):
    s, h, b = call("GET", "/profile", headers=bearer(access))
    problem(s, h, b, 401, "invalid_token", f"{what}: /profile")
    expect(header(h, "www-authenticate") == 'Bearer realm="auth", error="invalid_token"',
           f"{what}: challenge {header(h, 'www-authenticate')!r}")


def logout_ok(what, access=None, body=None):
    headers = {**(bearer(access) if access else {}), **(J if body is not None else {})}
    s, h, b = call("POST", "/logout", body, headers)
    expect(s == 204 and b == b"", f"{what}: /logout {s} {b!r}")
    expect(header(h, "x-content-type-options") == "nosniff", f"{what}: nosniff")


def change_password(access, current, new):
    return call("POST", "/password", {"current_password": current, "new_password": new}, bearer(access, J))


def concurrently(*jobs):
    """Runs the jobs on threads released together; returns their results in order."""
    gate = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def run(i, job):
        gate.wait()
        try:
            results[i] = job()
        except Exception as e:  # a dropped connection is a broken promise too, reported below
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in enumerate(results):
        expect(not isinstance(r, Exception), f"concurrent request {i} failed: {r!r}")
    return results


def wait_out_reuse_interval(since):
    """Sleeps until the reuse interval that started at `since` (time.monotonic()) is well over."""
    time.sleep(max(0.0, since + REUSE_INTERVAL + 1.5 - time.monotonic()))


# --- The Flask service's four routes ------------------------------------------------------------

def health_and_test_db():
    s, h, b = call("GET", "/health")
    expect(s == 200 and json.loads(b)["checks"]["database"]["status"] == "ok", f"health {s} {b!r}")
    s, h, b = call("GET", "/test-db")
    expect(s == 200 and "timestamp" in json.loads(b), f"test-db {s} {b!r}")


def login_and_profile():
    """Login by username and by email; tokens verified by PyJWT with the key, HS256 only."""
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

    s, h, b = call("GET", "/profile", headers=bearer(tokens[0]))
    expect(s == 200, f"profile {s} {b!r}")
    p = json.loads(b)
    expect(set(p) == {"id", "username", "email", "full_name", "created_at", "last_login_at", "email_verified"}, f"profile keys {p}")
    expect(p["username"] == "alice" and p["email"] == "alice@example.com" and p["last_login_at"]
           and p["email_verified"] is True, f"profile {p}")
    expect(header(h, "cache-control") == "no-store", "profile cache-control")
    return p, jwt.get_unverified_header(tokens[0])["kid"]


def login_failures_look_alike():
    seen = []
    for body in ({"username": "alice", "password": "wrong"}, {"username": "nobody", "password": PW},
                 {"username": "carol", "password": PW}):
        s, h, b = call("POST", "/login", body, J)
        problem(s, h, b, 401, "invalid_credentials", f"login failure {body['username']}")
        expect(header(h, "www-authenticate") == 'Bearer realm="auth"', f"challenge {header(h, 'www-authenticate')}")
        seen.append(b)
    expect(len(set(seen)) == 1, f"failures differ: {seen}")


def malformed_logins():
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


def refused_access_tokens(p, kid):
    now = int(time.time())
    forged_other_key = jwt.encode({"sub": p["id"], "iss": "auth-service", "aud": "auth-service", "iat": now,
                                   "nbf": now, "exp": now + 60, "jti": "x"},
                                  "a-different-key-of-sufficient-length!!", algorithm="HS256", headers={"kid": kid})
    expired = jwt.encode({"sub": p["id"], "iss": "auth-service", "aud": "auth-service", "iat": now - 7200,
                          "nbf": now - 7200, "exp": now - 3600, "jti": "y", "username": "alice"},
                         KEY, algorithm="HS256", headers={"kid": kid})
    s, h, b = call("GET", "/profile")
    problem(s, h, b, 401, "invalid_token", "no token")
    expect(header(h, "www-authenticate") == 'Bearer realm="auth"', "challenge without error= for a missing token")
    for what, tok in [("garbage", "not-a-token"), ("other key", forged_other_key), ("expired", expired)]:
        s, h, b = call("GET", "/profile", headers=bearer(tok))
        problem(s, h, b, 401, "invalid_token", what)
        expect(header(h, "www-authenticate") == 'Bearer realm="auth", error="invalid_token"', f"{what}: challenge")


def methods():
    for path in ("/login", "/refresh", "/logout", "/password"):
        s, h, b = call("GET", path)
        problem(s, h, b, 405, "method_not_allowed", f"GET {path}")
        expect(header(h, "allow") == "POST", f"GET {path}: Allow {header(h, 'allow')!r}")


def own_pyjwt_token(p, kid):
    """Our own token, minted by PyJWT with the key, is accepted (the Flask-era services' direction)."""
    now = int(time.time())
    own = jwt.encode({"sub": p["id"], "iss": "auth-service", "aud": "auth-service", "iat": now,
                      "nbf": now, "exp": now + 60, "jti": uuid.uuid4().hex, "username": "alice"},
                     KEY, algorithm="HS256", headers={"kid": kid})
    s, h, b = call("GET", "/profile", headers=bearer(own))
    expect(s == 200, f"a PyJWT token with the key: {s} {b!r}")


# --- Sessions ------------------------------------------------------------------------------------

def session_lifecycle():
    """login -> profile -> refresh -> profile: each refresh is a new pair for the same session."""
    first = login("lifecycle")
    me = profile_ok(first.access, "lifecycle: login's access token")
    expect(first.claims["sub"] == me["id"] and first.claims["username"] == "lifecycle", f"lifecycle: claims {first.claims}")
    s, h, b = refresh(first.refresh)
    second = token_response(s, h, b, "lifecycle: refresh", prev=first)
    expect(header(h, "cache-control") == "no-store", f"lifecycle: refresh cache-control {header(h, 'cache-control')!r}")
    expect(profile_ok(second.access, "lifecycle: refreshed access token")["id"] == me["id"], "lifecycle: same user")
    third = refresh_ok(second, "lifecycle: second refresh")
    profile_ok(third.access, "lifecycle: twice-refreshed access token")
    another = login("lifecycle")
    expect(another.claims["sid"] != first.claims["sid"], "lifecycle: a second login opened no new session")


def refresh_token_reuse():
    """A consumed token works again within the interval; later it ends the whole session."""
    first = login("reuse")
    consumed_at = time.monotonic()
    rotated = refresh_ok(first, "reuse: first refresh")
    retried = refresh_ok(first, "reuse: the consumed token again, within the interval")
    expect(time.monotonic() - consumed_at < REUSE_INTERVAL,
           f"reuse: the retry came after the {REUSE_INTERVAL} s interval; cannot test it")
    profile_ok(rotated.access, "reuse: access token of the first refresh")
    profile_ok(retried.access, "reuse: access token of the retry")
    latest = refresh_ok(retried, "reuse: the session goes on after the retry")
    profile_ok(latest.access, "reuse: latest access token")

    wait_out_reuse_interval(consumed_at)
    refused_grant(first.refresh, "reuse: consumed token after the interval")
    refused_grant(latest.refresh, "reuse: the owner's latest refresh token, after the reuse")
    profile_refused(latest.access, "reuse: the owner's latest access token, after the reuse")
    profile_refused(rotated.access, "reuse: an earlier access token of the session, after the reuse")


def refresh_refusals_look_alike():
    """Unknown, garbage, consumed and logged-out tokens get one and the same problem."""
    consumed = login("refusals")
    consumed_at = time.monotonic()
    refresh_ok(consumed, "refusals: consuming a token")
    logged_out = login("refusals")
    logout_ok("refusals: logout by refresh token", body={"refresh_token": logged_out.refresh})
    wait_out_reuse_interval(consumed_at)
    cases = [
        ("unknown", secrets.token_urlsafe(32)),
        ("garbage", "not a refresh token!"),
        ("consumed", consumed.refresh),
        ("after logout", logged_out.refresh),
    ]
    bodies = {what: refused_grant(tok, f"refusals: {what}") for what, tok in cases}
    expect(len(set(bodies.values())) == 1, f"refusals: the bodies differ: {bodies}")


def logout_scopes():
    """Bearer logout ends this session (local), the others, or all (global); a refresh token
    body ends its session and answers 204 whatever the token."""
    me = "logout"
    # Default scope: only this session.
    a, b = login(me), login(me)
    logout_ok("logout local (no body)", access=a.access)
    profile_refused(a.access, "logout local: the ended session's access token")
    refused_grant(a.refresh, "logout local: the ended session's refresh token")
    profile_ok(b.access, "logout local: another session of the same user")
    b = refresh_ok(b, "logout local: another session still refreshes")

    # Explicit local scope in a body.
    c = login(me)
    logout_ok("logout scope local", access=c.access, body={"scope": "local"})
    profile_refused(c.access, "logout scope local: the ended session")
    profile_ok(b.access, "logout scope local: another session")

    # Others: every other session, not this one.
    d, e = login(me), login(me)
    logout_ok("logout scope others", access=d.access, body={"scope": "others"})
    profile_ok(d.access, "logout scope others: this session's access token")
    d = refresh_ok(d, "logout scope others: this session still refreshes")
    for what, t in (("b", b), ("e", e)):
        profile_refused(t.access, f"logout scope others: other session {what}'s access token")
        refused_grant(t.refresh, f"logout scope others: other session {what}'s refresh token")

    # Global: all of them.
    f = login(me)
    logout_ok("logout scope global", access=f.access, body={"scope": "global"})
    for what, t in (("this", f), ("other", d)):
        profile_refused(t.access, f"logout scope global: {what} session's access token")
        refused_grant(t.refresh, f"logout scope global: {what} session's refresh token")
    s, h, body = call("POST", "/logout", headers=bearer(f.access))
    problem(s, h, body, 401, "invalid_token", "logout with an ended session's access token")

    # By refresh token, without Authorization: 204 whether or not the token is valid.
    g, other = login(me), login(me)
    logout_ok("logout by refresh token", body={"refresh_token": g.refresh})
    profile_refused(g.access, "logout by refresh token: that session's access token")
    refused_grant(g.refresh, "logout by refresh token: that refresh token afterwards")
    profile_ok(other.access, "logout by refresh token: another session")
    logout_ok("logout with an unknown refresh token", body={"refresh_token": secrets.token_urlsafe(32)})
    logout_ok("logout with a garbage refresh token", body={"refresh_token": "not a refresh token!"})
    logout_ok("logout with an already used refresh token", body={"refresh_token": g.refresh})


def password_change():
    """Wrong current password, weak new ones, then a change that keeps only this session."""
    me = "password"
    this, other = login(me), login(me)

    s, h, b = call("POST", "/password", {"current_password": PW, "new_password": NEW_PW}, J)
    problem(s, h, b, 401, "invalid_token", "password change without a token")

    s, h, b = change_password(this.access, "not my password", NEW_PW)
    problem(s, h, b, 401, "invalid_credentials", "password change with a wrong current password")
    expect(header(h, "www-authenticate") == 'Bearer realm="auth"',
           f"wrong current password: challenge {header(h, 'www-authenticate')!r}")

    details = {}
    for what, weak in [("too short", "seven77"), ("common", "password"), ("common digits", "12345678"),
                       ("same as current", PW)]:
        s, h, b = change_password(this.access, PW, weak)
        doc = problem(s, h, b, 400, "weak_password", f"new password {what} ({weak!r})")
        expect(doc["detail"].strip(), f"new password {what}: the detail names no rule: {doc}")
        details[what] = doc["detail"]
    expect("8" in details["too short"], f"the length rule's detail does not say 8: {details['too short']!r}")
    expect(len({details["too short"], details["common"], details["same as current"]}) == 3,
           f"weak_password details do not name the rule broken: {details}")
    profile_ok(this.access, "refused password changes left the session alone")

    s, h, b = change_password(this.access, PW, NEW_PW)
    expect(PW.encode() not in b and NEW_PW.encode() not in b, f"the password response contains a password: {b!r}")
    changed = token_response(s, h, b, "password change", prev=this, carried_on=True)
    profile_ok(changed.access, "password change: the new access token")
    profile_refused(this.access, "password change: this session's old access token")
    profile_refused(other.access, "password change: another session's access token")
    refused_grant(other.refresh, "password change: another session's refresh token")
    changed = refresh_ok(changed, "password change: the new refresh token")
    profile_ok(changed.access, "password change: the session goes on")

    s, h, b = call("POST", "/login", {"username": me, "password": PW}, J)
    problem(s, h, b, 401, "invalid_credentials", "login with the old password")
    login(me, NEW_PW)
    # Last, as it may end this session: the refresh token from before the change is dead.
    refused_grant(this.refresh, "password change: this session's refresh token from before the change")


def race_refreshes():
    """20 concurrent refreshes with one token, within the interval: all 200, one session."""
    first = login("race_refresh")
    started = time.monotonic()
    results = concurrently(*[lambda: refresh(first.refresh)] * 20)
    elapsed = time.monotonic() - started
    statuses = collections.Counter(s for s, _, _ in results)
    expect(set(statuses) == {200},
           f"race_refresh: 20 concurrent refreshes of one token in {elapsed:.2f} s (interval {REUSE_INTERVAL} s): "
           f"statuses {dict(statuses)}; first refusal: {next((b for s, _, b in results if s != 200), None)!r}")
    pairs = [token_response(*r, f"race_refresh: concurrent refresh {i}", prev=first) for i, r in enumerate(results)]
    for i, p in enumerate(pairs):
        profile_ok(p.access, f"race_refresh: access token of concurrent refresh {i}")
    after = refresh_ok(pairs[0], "race_refresh: refresh after the race")
    profile_ok(after.access, "race_refresh: the session works after the race")
    wait_out_reuse_interval(started)
    after = refresh_ok(after, "race_refresh: refresh once the interval is over")
    profile_ok(after.access, "race_refresh: the session still works once the interval is over")


def race_refresh_and_logout(rounds=8):
    """A refresh racing a logout of the same session leaves nothing alive, whoever wins."""
    outcomes = collections.Counter()
    for i in range(rounds):
        t = login("race_logout")
        if i % 2 == 0:
            how, do_logout = "refresh token", lambda t=t: call("POST", "/logout", {"refresh_token": t.refresh}, J)
        else:
            how, do_logout = "bearer", lambda t=t: call("POST", "/logout", headers=bearer(t.access))
        what = f"race_logout round {i} (logout by {how})"
        (rs, rh, rb), (ls, lh, lb) = concurrently(lambda t=t: refresh(t.refresh), do_logout)
        expect(ls == 204, f"{what}: logout {ls} {lb!r}")
        refused_grant(t.refresh, f"{what}: the raced refresh token")
        profile_refused(t.access, f"{what}: the session's access token")
        if rs == 200:
            won = token_response(rs, rh, rb, f"{what}: refresh", prev=t)
            refused_grant(won.refresh, f"{what}: the refresh token the refresh returned")
            profile_refused(won.access, f"{what}: the access token the refresh returned")
        else:
            problem(rs, rh, rb, 401, "invalid_grant", f"{what}: refresh that lost")
        outcomes[rs] += 1
    print(f"race_logout: refresh statuses over {rounds} rounds: {dict(outcomes)}")


def race_refresh_and_password(rounds=16):
    """A refresh racing a password change: afterwards every pre-change refresh token is refused.
    The change verifies the current password and hashes the new one before it writes, so each
    round holds the refresh back a little longer, from 0 to 2 login times (a login is one hash),
    to land it before, during and after the write."""
    me = "race_password"
    passwords = [PW, NEW_PW]
    outcomes = collections.Counter()
    for i in range(rounds):
        current, new = passwords[i % 2], passwords[(i + 1) % 2]
        started = time.monotonic()
        t = login(me, current)
        delay = (time.monotonic() - started) * 2 * i / (rounds - 1)
        other = login(me, current)
        what = f"race_password round {i} (refresh sent {delay * 1000:.0f} ms after the change request)"
        (rs, rh, rb), (ps, ph, pb) = concurrently(lambda t=t, delay=delay: time.sleep(delay) or refresh(t.refresh),
                                                  lambda t=t, current=current, new=new: change_password(t.access, current, new))
        changed = token_response(ps, ph, pb, f"{what}: password change", prev=t, carried_on=True)
        profile_ok(changed.access, f"{what}: the changed session's new access token")
        changed = refresh_ok(changed, f"{what}: the changed session's new refresh token")
        pre_change = [("the raced", t.refresh), ("another session's", other.refresh)]
        if rs == 200:
            won = token_response(rs, rh, rb, f"{what}: refresh", prev=t)
            pre_change.append(("the raced refresh's returned", won.refresh))
            profile_refused(won.access, f"{what}: access token from the pre-change refresh")
        else:
            problem(rs, rh, rb, 401, "invalid_grant", f"{what}: refresh after the change")
        profile_refused(other.access, f"{what}: another session's access token")
        for which, tok in pre_change:
            refused_grant(tok, f"{what}: {which} refresh token, once both have answered")
        outcomes[rs] += 1
    login(me, passwords[rounds % 2])
    print(f"race_password: refresh statuses over {rounds} rounds: {dict(outcomes)}")


def malformed_refreshes():
    for what, raw, headers, st, err in [
        ("no body", None, J, 400, "invalid_json"),
        ("wrong content type", b'{"refresh_token":"x"}', {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        ("no content type", b'{"refresh_token":"x"}', {}, 415, "unsupported_media_type"),
        ("not json", b"{nope", J, 400, "invalid_json"),
        ("not an object", b'["x"]', J, 400, "invalid_request"),
        ("missing member", b"{}", J, 400, "invalid_request"),
        ("null member", b'{"refresh_token":null}', J, 400, "invalid_request"),
        ("number member", b'{"refresh_token":5}', J, 400, "invalid_request"),
        ("9 KB body", json.dumps({"refresh_token": "x" * 9000}).encode(), J, 413, "payload_too_large"),
    ]:
        s, h, b = call("POST", "/refresh", raw=raw, headers=headers)
        problem(s, h, b, st, err, f"refresh {what}")


def all_refusals_identical():
    bodies = {b for _, b, _ in REFUSALS}
    expect(len(bodies) == 1, "refresh refusals differ: " + "; ".join(f"{w}: {b!r}" for w, b, _ in REFUSALS))
    print(f"refresh refusals so far: {len(REFUSALS)}, all one body: {next(iter(bodies)).decode()}")


if __name__ == "__main__":
    health_and_test_db()
    profile, kid = login_and_profile()
    login_failures_look_alike()
    malformed_logins()
    refused_access_tokens(profile, kid)
    methods()
    own_pyjwt_token(profile, kid)

    session_lifecycle()
    refresh_token_reuse()
    refresh_refusals_look_alike()
    logout_scopes()
    password_change()
    race_refreshes()
    race_refresh_and_logout()
    malformed_refreshes()
    all_refusals_identical()
    race_refresh_and_password()  # last: a broken promise here must not hide the checks above
    print("client_test: all promises kept")
