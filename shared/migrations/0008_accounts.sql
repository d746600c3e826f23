-- Self-service accounts: sign-up with a verified address, password reset and email change by
-- mailed codes and links, and the limits on the mail they send.

-- Whether the address has been proven. Accounts that exist before this migration, and those an
-- operator makes or imports, are verified unless told otherwise.
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT true;
-- A sign-up not yet confirmed: until when it holds its username and address. After that a new
-- sign-up may take either (so an abandoned or squatted sign-up does not hold a name for ever);
-- NULL for every other account (an imported unverified account is not claimable).
ALTER TABLE users ADD COLUMN signup_expires_at timestamptz;
ALTER TABLE users ADD CONSTRAINT users_signup_unverified
    CHECK (signup_expires_at IS NULL OR NOT email_verified);

-- The latest code and link of each account and purpose (only the latest works), stored as keyed
-- hashes (HMAC-SHA-256 under the data key version `key_version`), never in clear. A link token
-- is `<selector>.<secret>`: the selector finds the row, the secret's keyed hash is compared in
-- constant time. `tries` counts wrong tries against every code of the purpose since
-- `tries_since` (10 per account and purpose within the code's life); `code_tries` those
-- against this code (5).
CREATE TABLE account_codes (
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose      text        NOT NULL
        CONSTRAINT account_codes_purpose CHECK (purpose IN ('signup', 'email_change', 'reset', 'revert')),
    code_hash    bytea       NOT NULL,
    selector     text        NOT NULL,
    token_hash   bytea       NOT NULL,
    key_version  text        NOT NULL,
    -- email_change: the address being proven (and its lookup key); revert: the address to restore.
    email        text,
    email_key    text,
    code_tries   integer     NOT NULL DEFAULT 0,
    tries        integer     NOT NULL DEFAULT 0,
    tries_since  timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, purpose)
);
CREATE UNIQUE INDEX account_codes_selector ON account_codes (selector);
CREATE INDEX account_codes_email_key ON account_codes (email_key) WHERE email_key IS NOT NULL;

-- Usernames held by recent sign-ups (also those for an address that already had an account, so
-- that no answer depends on whether the address was known), until `expires_at`.
CREATE TABLE username_reservations (
    username_key text        PRIMARY KEY,
    email_key    text        NOT NULL,
    expires_at   timestamptz NOT NULL
);

-- Mail sent per address (its keyed hash, never in clear), for the per-address limits; `job` is
-- the queued job that sent it, so a retried job is not counted twice.
CREATE TABLE mail_log (
    address_hash bytea       NOT NULL,
    job          uuid        NOT NULL,
    sent_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (address_hash, job)
);
CREATE INDEX mail_log_sent_at ON mail_log (address_hash, sent_at);

-- Requests to the routes that mail, per source address, for the per-source limit.
CREATE TABLE mail_requests (
    source       text        NOT NULL,
    at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX mail_requests_source_at ON mail_requests (source, at);
