-- Second factors: TOTP (RFC 6238) with recovery codes, the login's second step, and the
-- authentication methods (RFC 8176 `amr`) each session was opened with. What each operation
-- locks is written down in shared/src/mfa/mod.rs.

-- How the session's login was made: 'pwd'; with a second factor also 'otp' and 'mfa'. Refresh
-- keeps it; the verify of a new factor raises the current session's to 'mfa'.
ALTER TABLE sessions ADD COLUMN amr text[] NOT NULL DEFAULT '{pwd}';

-- A TOTP factor: its 160-bit secret sealed with AES-256-GCM under the data key version
-- `key_version` (12-byte nonce || ciphertext || 16-byte tag, the user id as associated data),
-- never in clear. At most one active and one pending (enrolled, not yet confirmed) factor per
-- account. `last_step` is the highest 30 s step a code was accepted for: no step at or below
-- it is accepted again (replay).
CREATE TABLE totp_factors (
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    pending      boolean     NOT NULL,
    secret       bytea       NOT NULL,
    key_version  text        NOT NULL,
    last_step    bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz,
    PRIMARY KEY (user_id, pending)
);

-- Recovery codes: keyed hashes (HMAC-SHA-256 under the data key, over the user id and the
-- code) of ten single-use codes; a used one keeps its row with `used_at` until the set is
-- replaced, so the count of those left is exact.
CREATE TABLE recovery_codes (
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash    bytea       NOT NULL,
    key_version  text        NOT NULL,
    used_at      timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- The login's second step: an mfa_token (256 random bits; only its SHA-256 is stored) handed
-- out by a right password. Dead once used, after `expires_at`, after 5 wrong codes, or once the
-- account's password changes after `created_at`.
CREATE TABLE mfa_tokens (
    token_hash   bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose      text        NOT NULL CONSTRAINT mfa_tokens_purpose CHECK (purpose IN ('login', 'enroll')),
    failures     integer     NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX mfa_tokens_user_id ON mfa_tokens (user_id);
CREATE INDEX mfa_tokens_expires_at ON mfa_tokens (expires_at);

-- Wrong second-factor codes per account since `since`: 10 within 24 hours lock the second
-- step until `since` + 24 hours, an operator's mfa-reset or a recovery code.
CREATE TABLE mfa_failures (
    user_id      uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    failures     integer     NOT NULL,
    since        timestamptz NOT NULL
);
