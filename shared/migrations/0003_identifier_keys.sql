-- Lookup keys computed by the service (NFKC, Unicode lower case, NFKC: see
-- shared/src/identifier.rs), so that matching an identifier depends neither on the database's
-- locale (lower() folds only ASCII under C) nor on the Unicode form it was typed in. They
-- replace the lower() indexes as the uniqueness rule. Existing rows are filled in by the
-- migration runner right after this SQL (PostgreSQL cannot compute the keys itself), in the
-- same transaction, and every new account is written with its keys.
ALTER TABLE users ADD COLUMN username_key text, ADD COLUMN email_key text;

CREATE UNIQUE INDEX users_username_key ON users (username_key);
CREATE UNIQUE INDEX users_email_key ON users (email_key);

DROP INDEX users_username_lower_key;
DROP INDEX users_email_lower_key;

-- The email-or-username rule holds on the keys too: a username whose key has '@' (a full-width
-- '＠' becomes '@' under NFKC) could never be matched as a username.
ALTER TABLE users
    ADD CONSTRAINT users_username_key_shape CHECK (strpos(username_key, '@') = 0),
    ADD CONSTRAINT users_email_key_shape CHECK (strpos(email_key, '@') > 1);
