-- Sessions (one per successful login) and their refresh tokens, of which only a SHA-256 is
-- stored. Locking, so that rotation, reuse detection, logout and password changes cannot race
-- (see shared/src/sessions.rs): every operation on a session takes its row's lock
-- (SELECT ... FOR UPDATE, or the UPDATE that ends it) before reading or writing its tokens.
CREATE TABLE sessions (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    -- created_at + SESSION_TTL_SECONDS: the absolute end.
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    -- logout, refresh_token_reused, password_changed, disabled, signed_out
    end_reason   text
);

CREATE INDEX sessions_user_id ON sessions (user_id);
-- Sessions that are over (ended, or past their absolute end) are found through this and removed.
CREATE INDEX sessions_over_at ON sessions ((coalesce(ended_at, expires_at)));

CREATE TABLE refresh_tokens (
    token_hash  bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id  uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    consumed_at timestamptz
);

CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
