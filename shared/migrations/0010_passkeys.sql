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

-- What an endpoint taking an access token reads of the account now includes whether its
-- address is verified (passkeys are added to verified accounts only; /profile shows it): the
-- function of 0005 with `email_verified` before `session_usable`.
DROP FUNCTION auth_find_user(uuid, uuid, float8);
CREATE FUNCTION auth_find_user(p_user uuid, p_sid uuid, p_idle_seconds float8)
RETURNS TABLE (
    id uuid, username text, email text, full_name text, password_hash text,
    created_at timestamptz, password_changed_at timestamptz, last_login_at timestamptz,
    disabled_at timestamptz, email_verified boolean, session_usable boolean
) LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT u.id, u.username, u.email, u.full_name, u.password_hash, u.created_at,
           u.password_changed_at, u.last_login_at, u.disabled_at, u.email_verified,
           p_sid IS NULL OR EXISTS (
               SELECT 1 FROM sessions s
                WHERE s.id = p_sid AND s.user_id = u.id
                  AND auth_session_usable(s.ended_at, s.expires_at, s.refreshed_at,
                                          u.disabled_at, p_idle_seconds))
      FROM users u WHERE u.id = p_user;
END
$$;
