-- Passkeys (WebAuthn discoverable credentials with user verification). What each operation
-- locks is written down in shared/src/passkeys/mod.rs.

-- A registered passkey. `credential_id` is the authenticator's credential id (unique across
-- every account: the same credential cannot be registered twice); `credential` is the
-- relying-party library's stored form of it (public key, signature counter, backup flags),
-- public data only. The user handle the authenticator stores is the account id.
CREATE TABLE passkeys (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id bytea       NOT NULL UNIQUE CHECK (length(credential_id) BETWEEN 16 AND 1023),
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    credential    jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);
CREATE INDEX passkeys_user_id ON passkeys (user_id);

-- A registration waiting for its answer: the challenge (32 random bytes), the account it is
-- bound to, and the library's ceremony state. Single use (the answer deletes it) and dead after
-- `expires_at` (300 s).
CREATE TABLE passkey_registrations (
    challenge   bytea       PRIMARY KEY CHECK (length(challenge) = 32),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state       jsonb       NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX passkey_registrations_user_id ON passkey_registrations (user_id);
CREATE INDEX passkey_registrations_expires_at ON passkey_registrations (expires_at);

-- Login challenges are stateless (signed with the data key, carrying their expiry); only the
-- ones an answer has used are kept here, by SHA-256, until they expire, so none is taken twice.
CREATE TABLE passkey_challenges_used (
    challenge_hash bytea       PRIMARY KEY CHECK (length(challenge_hash) = 32),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX passkey_challenges_used_expires_at ON passkey_challenges_used (expires_at);
