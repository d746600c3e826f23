"""Prints, as JSON, password hashes made by the real libraries an existing users table may
hold: Werkzeug (Flask's generate_password_hash), Django and passlib. The auth service must
verify every one of them and upgrade it at the next login.
"""
import json

import django
from django.conf import settings

settings.configure(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"])
django.setup()

from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password  # noqa: E402
from passlib.hash import pbkdf2_sha256  # noqa: E402
from werkzeug.security import check_password_hash, generate_password_hash  # noqa: E402

PASSWORDS = ["correct horse battery staple", "pässwörd with ünïcode", "🔑" * 40, "x" * 100, "a"]
out = []
for pw in PASSWORDS:
    for n in (1000, 260000, 600000):
        h = generate_password_hash(pw, method=f"pbkdf2:sha256:{n}")
        assert check_password_hash(h, pw)
        out.append({"library": f"werkzeug pbkdf2:sha256:{n}", "password": pw, "hash": h})
    out.append({"library": "django default", "password": pw, "hash": make_password(pw)})
    out.append({"library": "django 20000", "password": pw,
                "hash": PBKDF2PasswordHasher().encode(pw, PBKDF2PasswordHasher().salt(), iterations=20000)})
    out.append({"library": "passlib default", "password": pw, "hash": pbkdf2_sha256.hash(pw)})
    out.append({"library": "passlib 1000 rounds, 16-byte salt", "password": pw,
                "hash": pbkdf2_sha256.using(rounds=1000, salt_size=16).hash(pw)})
print(json.dumps(out))
