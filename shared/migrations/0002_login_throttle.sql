-- Consecutive failed logins per account ('u:' || user id) or, for identifiers that match no
-- account, per hashed lower-cased identifier ('i:' || sha256 hex). The lock is derived:
-- after failure n >= 5 the key is refused until last_failure_at + 2^(n-5) s (at most 900 s).
CREATE TABLE login_throttle (
    key             text        PRIMARY KEY,
    failures        integer     NOT NULL CHECK (failures > 0),
    last_failure_at timestamptz NOT NULL
);

-- Expired rows (no failure for 15 minutes) are found through this index and removed.
CREATE INDEX login_throttle_last_failure_at ON login_throttle (last_failure_at);
