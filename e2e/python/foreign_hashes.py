"""Prints, as JSON, password hashes in the non-PBKDF2-SHA256 formats other systems store, made
by the real libraries: Werkzeug (scrypt, pbkdf2:sha512), bcrypt ($2a$, $2b$, $2y$), argon2-cffi
($argon2id$, $argon2i$), Django's hashers (argon2, bcrypt_sha256, bcrypt, scrypt, pbkdf2_sha1)
and passlib ($pbkdf2-sha512$, $pbkdf2$, $bcrypt-sha256$ v1 and v2, $scrypt$), plus the PHC
`$pbkdf2-sha512$i=` form RustCrypto writes (made here with hashlib).

Each entry: library, format (the service's Scheme name), password, hash, and `default`: true
when the hash is at the library's own default work factor (slow formats are also made at a low
cost, so the login tests stay quick).

  python foreign_hashes.py [--defaults-only | --cheap-only]
  (FOREIGN_HASHES_PASSWORD=... for one password of your own)
"""
import base64
import hashlib
import json
import logging
import os
import sys

import django
from django.conf import settings

# passlib warns that bcrypt 4 has no __about__ module; harmless.
logging.getLogger("passlib").setLevel(logging.ERROR)

settings.configure(
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.BCryptPasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    ]
)
django.setup()

import argon2  # noqa: E402
import bcrypt  # noqa: E402
from django.contrib.auth import hashers as dj  # noqa: E402
from passlib import hash as ph  # noqa: E402
from werkzeug.security import check_password_hash, generate_password_hash  # noqa: E402


class CheapArgon2(dj.Argon2PasswordHasher):
    time_cost, memory_cost, parallelism = 1, 1024, 1


class CheapBCryptSHA256(dj.BCryptSHA256PasswordHasher):
    rounds = 5


class CheapBCrypt(dj.BCryptPasswordHasher):
    rounds = 5


class CheapScrypt(dj.ScryptPasswordHasher):
    work_factor, parallelism = 2**10, 1


class CheapPBKDF2SHA1(dj.PBKDF2SHA1PasswordHasher):
    iterations = 1000


def b64(b):
    return base64.b64encode(b).decode().rstrip("=")


def phc_pbkdf2_sha512(pw, n):
    salt = os.urandom(16)
    dk = hashlib.pbkdf2_hmac("sha512", pw.encode(), salt, n)
    return f"$pbkdf2-sha512$i={n},l=64${b64(salt)}${b64(dk)}"


def bcrypt_variant(pw, rounds, prefix):
    h = bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=rounds, prefix=b"2b")).decode()
    # $2a$ and $2y$ differ from $2b$ only in the prefix for passwords under 255 bytes (PHP's
    # password_hash writes $2y$, older libraries and Supabase/GoTrue $2a$).
    h = prefix + h[4:]
    assert bcrypt.checkpw(pw.encode(), ("$2b$" + h[4:]).encode())
    return h


def entries(pw):
    """(library, format, hash, default) for one password."""
    cheap = [
        ("werkzeug scrypt:1024:8:1", "werkzeug-scrypt",
         generate_password_hash(pw, method="scrypt:1024:8:1")),
        ("werkzeug pbkdf2:sha512:1000", "werkzeug-pbkdf2",
         generate_password_hash(pw, method="pbkdf2:sha512:1000")),
        ("bcrypt $2b$ cost 4", "bcrypt", bcrypt_variant(pw, 4, "$2b$")),
        ("bcrypt $2a$ cost 4", "bcrypt", bcrypt_variant(pw, 4, "$2a$")),
        ("bcrypt $2y$ cost 4", "bcrypt", bcrypt_variant(pw, 4, "$2y$")),
        ("argon2-cffi argon2id t=1 m=1024 p=1", "phc-argon2",
         argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(pw)),
        ("argon2-cffi argon2i t=2 m=1024 p=2", "phc-argon2",
         argon2.PasswordHasher(time_cost=2, memory_cost=1024, parallelism=2,
                               type=argon2.Type.I).hash(pw)),
        ("django argon2 cheap", "django-argon2", CheapArgon2().encode(pw, CheapArgon2().salt())),
        ("django bcrypt_sha256 rounds 5", "django-bcrypt_sha256",
         CheapBCryptSHA256().encode(pw, CheapBCryptSHA256().salt())),
        ("django bcrypt rounds 5", "django-bcrypt", CheapBCrypt().encode(pw, CheapBCrypt().salt())),
        ("django scrypt n=1024 p=1", "django-scrypt", CheapScrypt().encode(pw, CheapScrypt().salt())),
        ("django pbkdf2_sha1 1000", "django-pbkdf2_sha1",
         CheapPBKDF2SHA1().encode(pw, CheapPBKDF2SHA1().salt())),
        ("passlib pbkdf2_sha512 1000", "passlib-pbkdf2", ph.pbkdf2_sha512.using(rounds=1000).hash(pw)),
        ("passlib pbkdf2_sha1 1000", "passlib-pbkdf2", ph.pbkdf2_sha1.using(rounds=1000).hash(pw)),
        ("passlib bcrypt_sha256 v2 rounds 5", "passlib-bcrypt_sha256",
         ph.bcrypt_sha256.using(rounds=5).hash(pw)),
        ("passlib bcrypt_sha256 v1 rounds 5", "passlib-bcrypt_sha256",
         ph.bcrypt_sha256.using(rounds=5, version=1).hash(pw)),
        ("passlib scrypt ln=10", "phc-scrypt", ph.scrypt.using(rounds=10).hash(pw)),
        ("hashlib PHC pbkdf2-sha512 1000", "phc-pbkdf2", phc_pbkdf2_sha512(pw, 1000)),
    ]
    defaults = [
        ("werkzeug default (scrypt:32768:8:1)", "werkzeug-scrypt", generate_password_hash(pw)),
        ("werkzeug pbkdf2:sha512 default", "werkzeug-pbkdf2",
         generate_password_hash(pw, method="pbkdf2:sha512")),
        ("bcrypt default (cost 12)", "bcrypt", bcrypt.hashpw(pw.encode(), bcrypt.gensalt()).decode()),
        ("argon2-cffi default argon2id", "phc-argon2", argon2.PasswordHasher().hash(pw)),
        ("django argon2 default", "django-argon2", dj.make_password(pw, hasher="argon2")),
        ("django bcrypt_sha256 default", "django-bcrypt_sha256",
         dj.make_password(pw, hasher="bcrypt_sha256")),
        ("django scrypt default", "django-scrypt", dj.make_password(pw, hasher="scrypt")),
        ("django pbkdf2_sha1 default", "django-pbkdf2_sha1", dj.make_password(pw, hasher="pbkdf2_sha1")),
        ("passlib pbkdf2_sha512 default", "passlib-pbkdf2", ph.pbkdf2_sha512.hash(pw)),
        ("passlib pbkdf2_sha1 default", "passlib-pbkdf2", ph.pbkdf2_sha1.hash(pw)),
        ("passlib bcrypt_sha256 default", "passlib-bcrypt_sha256", ph.bcrypt_sha256.hash(pw)),
        ("passlib scrypt default", "phc-scrypt", ph.scrypt.hash(pw)),
    ]
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    chosen = []
    if mode != "--defaults-only":
        chosen += [(lib, fmt, h, False) for lib, fmt, h in cheap]
    if mode != "--cheap-only":
        chosen += [(lib, fmt, h, True) for lib, fmt, h in defaults]
    return chosen


PASSWORDS = ["correct horse battery staple", "pässwörd with ünïcode", "🔑" * 20]
if os.environ.get("FOREIGN_HASHES_PASSWORD"):
    PASSWORDS = [os.environ["FOREIGN_HASHES_PASSWORD"]]
mode = sys.argv[1] if len(sys.argv) > 1 else ""
out = []
for i, pw in enumerate(PASSWORDS):
    for lib, fmt, h, default in entries(pw):
        if default and i > 0 and mode != "--defaults-only":
            continue  # the slow defaults once, with the first password
        if lib.startswith("werkzeug"):
            assert check_password_hash(h, pw)
        elif lib.startswith("django"):
            assert dj.check_password(pw, h), lib
        out.append({"library": lib, "format": fmt, "password": pw, "hash": h, "default": default})
print(json.dumps(out))
