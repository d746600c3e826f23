"""Forges attack tokens with PyJWT and cryptography, independently of the service's own JWT
code. Prints JSON: [{"name": ..., "token": ..., "ok": bool}]; only the control tokens are
valid.

usage: forge_tokens.py SIGNING_KEY USER_ID KID
"""
import base64
import hashlib
import hmac
import json
import sys
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

KEY, SUB, KID = sys.argv[1], sys.argv[2], sys.argv[3]
now = int(time.time())


def claims(**over):
    c = {"iss": "auth-service", "aud": "auth-service", "sub": SUB, "username": "alice",
         "iat": now, "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw(header, payload, sign_with=KEY, alg=hashlib.sha256):
    h = b64(json.dumps(header).encode())
    p = b64(json.dumps(payload).encode())
    sig = b64(hmac.new(sign_with.encode(), f"{h}.{p}".encode(), alg).digest()) if sign_with is not None else ""
    return f"{h}.{p}.{sig}"


hdr = {"kid": KID}
good = jwt.encode(claims(), KEY, algorithm="HS256", headers=hdr)
gh, gp, gs = good.split(".")
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ec_key = ec.generate_private_key(ec.SECP256R1())
other = "another-key-that-is-long-enough-to-sign-with"

tokens = [
    ("control: PyJWT HS256 with the key", good, True),
    ("control: PyJWT HS256 with typ omitted", raw({"alg": "HS256", "kid": KID}, claims()), True),
    ("alg none", raw({"alg": "none", "typ": "JWT", "kid": KID}, claims(), sign_with=None), False),
    ("alg None", raw({"alg": "None", "typ": "JWT", "kid": KID}, claims(), sign_with=None), False),
    ("alg NONE with a signature", raw({"alg": "NONE", "typ": "JWT", "kid": KID}, claims()), False),
    ("alg none, signature of the real token kept", raw({"alg": "none", "kid": KID}, claims(), sign_with=None) + gs, False),
    ("HS256 with another key", jwt.encode(claims(), other, algorithm="HS256", headers=hdr), False),
    ("HS384 with the right key", jwt.encode(claims(), KEY, algorithm="HS384", headers=hdr), False),
    ("HS512 with the right key", jwt.encode(claims(), KEY, algorithm="HS512", headers=hdr), False),
    ("RS256 with an RSA key", jwt.encode(claims(), rsa_key, algorithm="RS256", headers=hdr), False),
    ("ES256 with an EC key", jwt.encode(claims(), ec_key, algorithm="ES256", headers=hdr), False),
    ("PS256 with an RSA key", jwt.encode(claims(), rsa_key, algorithm="PS256", headers=hdr), False),
    ("key confusion: RS256 header, HMAC signature with the key", raw({"alg": "RS256", "typ": "JWT", "kid": KID}, claims()), False),
    ("key confusion: ES256 header, HMAC signature with the key", raw({"alg": "ES256", "typ": "JWT", "kid": KID}, claims()), False),
    ("tampered payload (sub)", f"{gh}.{b64(json.dumps(claims(sub=str(uuid.uuid4()))).encode())}.{gs}", False),
    ("tampered payload (exp)", f"{gh}.{b64(json.dumps(claims(exp=now + 10**8)).encode())}.{gs}", False),
    ("tampered header (kid)", f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': 'other'}).encode())}.{gp}.{gs}", False),
    ("tampered signature", f"{gh}.{gp}.{gs[:-2]}AA", False),
    ("expired", jwt.encode(claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600), KEY, algorithm="HS256", headers=hdr), False),
    ("nbf in the future", jwt.encode(claims(nbf=now + 300), KEY, algorithm="HS256", headers=hdr), False),
    ("iat in the future", jwt.encode(claims(iat=now + 300, nbf=now), KEY, algorithm="HS256", headers=hdr), False),
    ("wrong issuer", jwt.encode(claims(iss="https://evil.example"), KEY, algorithm="HS256", headers=hdr), False),
    ("wrong audience", jwt.encode(claims(aud="another-service"), KEY, algorithm="HS256", headers=hdr), False),
    ("audience list without ours", jwt.encode(claims(aud=["x", "y"]), KEY, algorithm="HS256", headers=hdr), False),
    ("missing exp", jwt.encode(claims(exp=None), KEY, algorithm="HS256", headers=hdr), False),
    ("missing sub", jwt.encode(claims(sub=None), KEY, algorithm="HS256", headers=hdr), False),
    ("missing nbf", jwt.encode(claims(nbf=None), KEY, algorithm="HS256", headers=hdr), False),
    ("missing iss", jwt.encode(claims(iss=None), KEY, algorithm="HS256", headers=hdr), False),
    ("missing aud", jwt.encode(claims(aud=None), KEY, algorithm="HS256", headers=hdr), False),
    ("missing jti", jwt.encode(claims(jti=None), KEY, algorithm="HS256", headers=hdr), False),
    ("sub not a user id", jwt.encode(claims(sub="admin"), KEY, algorithm="HS256", headers=hdr), False),
    ("exp as a string", jwt.encode(claims(exp=str(now + 600)), KEY, algorithm="HS256", headers=hdr), False),
    ("no kid", jwt.encode(claims(), KEY, algorithm="HS256"), False),
    ("unknown kid", jwt.encode(claims(), KEY, algorithm="HS256", headers={"kid": "no-such-version"}), False),
    ("typ not JWT", jwt.encode(claims(), KEY, algorithm="HS256", headers={"kid": KID, "typ": "at+jwt+evil"}), False),
    ("huge header", jwt.encode(claims(), KEY, algorithm="HS256", headers={"kid": KID, "x": "A" * 20000}), False),
    ("non-base64 segments", "abc!.d$ef.gh*i", False),
    ("extra segment", good + ".extra", False),
    ("two segments", f"{gh}.{gp}", False),
    ("empty signature", f"{gh}.{gp}.", False),
    ("header not JSON", f"{b64(b'not json')}.{gp}.{gs}", False),
    ("payload not JSON", f"{gh}.{b64(b'[1,2')}.{gs}", False),
]
print(json.dumps([{"name": n, "token": t, "ok": ok} for n, t, ok in tokens]))
