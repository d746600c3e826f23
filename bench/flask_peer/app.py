"""The original Flask auth service, reconstructed from its README
(the Flask service this project grew from, docs/benchmarks.md): Flask, Flask-SQLAlchemy, PyJWT, PBKDF2
with hashlib, SECRET_KEY and DATABASE_URL from the environment, CORS "commented but
pre-configured". Same four routes. It is the baseline the benchmarks compare against, so it is
written the way that README describes the service: simply, not tuned.
"""
import datetime
import hashlib
import hmac
import os
import secrets
from functools import wraps

import jwt
from dotenv import load_dotenv
from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

# from flask_cors import CORS

load_dotenv()

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = os.environ.get("SQLALCHEMY_TRACK_MODIFICATIONS", "False") == "True"
app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
ITERATIONS = int(os.environ.get("PBKDF2_ITERATIONS", "600000"))
db = SQLAlchemy(app)
# CORS(app)


class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(80), unique=True, nullable=False)
    email = db.Column(db.String(120), unique=True, nullable=False)
    password_hash = db.Column(db.String(256), nullable=False)
    full_name = db.Column(db.String(120))
    created_at = db.Column(db.DateTime, default=datetime.datetime.utcnow)
    last_login = db.Column(db.DateTime)


def hash_password(password, salt=None):
    """PBKDF2-HMAC-SHA256 with hashlib, stored as salt$hash (hex)."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), ITERATIONS)
    return f"{salt}${digest.hex()}"


def verify_password(password, stored):
    salt, _ = stored.split("$", 1)
    return hmac.compare_digest(hash_password(password, salt), stored)


def token_required(f):
    @wraps(f)
    def decorated(*args, **kwargs):
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return jsonify({"message": "Token is missing"}), 401
        try:
            data = jwt.decode(auth[7:], app.config["SECRET_KEY"], algorithms=["HS256"])
            user = db.session.get(User, data["user_id"])
        except Exception:
            return jsonify({"message": "Token is invalid"}), 401
        if user is None:
            return jsonify({"message": "Token is invalid"}), 401
        return f(user, *args, **kwargs)

    return decorated


@app.route("/health", methods=["GET"])
def health():
    try:
        db.session.execute(text("SELECT 1"))
        return jsonify({"status": "healthy", "database": "connected"}), 200
    except Exception as e:
        return jsonify({"status": "unhealthy", "database": str(e)}), 503


@app.route("/test-db", methods=["GET"])
def test_db():
    try:
        now = db.session.execute(text("SELECT now()")).scalar()
        return jsonify({"status": "success", "timestamp": now.isoformat()}), 200
    except Exception as e:
        return jsonify({"status": "error", "message": str(e)}), 500


@app.route("/login", methods=["POST"])
def login():
    data = request.get_json(silent=True) or {}
    identifier = data.get("username") or data.get("email")
    password = data.get("password")
    if not identifier or not password:
        return jsonify({"message": "Missing credentials"}), 400
    user = User.query.filter((User.username == identifier) | (User.email == identifier)).first()
    if not user or not verify_password(password, user.password_hash):
        return jsonify({"message": "Invalid credentials"}), 401
    user.last_login = datetime.datetime.utcnow()
    db.session.commit()
    token = jwt.encode(
        {"user_id": user.id, "exp": datetime.datetime.utcnow() + datetime.timedelta(hours=1)},
        app.config["SECRET_KEY"],
        algorithm="HS256",
    )
    return jsonify({"token": token}), 200


@app.route("/profile", methods=["GET"])
@token_required
def profile(user):
    return jsonify({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "full_name": user.full_name,
        "created_at": user.created_at.isoformat() if user.created_at else None,
        "last_login": user.last_login.isoformat() if user.last_login else None,
    })


with app.app_context():
    db.create_all()

if __name__ == "__main__":
    app.run()
