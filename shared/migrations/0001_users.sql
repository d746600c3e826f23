-- Accounts. Usernames and emails are unique regardless of case (login matches on lower()),
-- and a username may not contain '@', so an identifier with '@' is always an email.
CREATE TABLE users (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    username            text        NOT NULL
        CONSTRAINT users_username_shape CHECK (char_length(username) BETWEEN 1 AND 320
                                               AND strpos(username, '@') = 0),
    email               text        NOT NULL
        CONSTRAINT users_email_shape CHECK (char_length(email) BETWEEN 3 AND 320
                                            AND strpos(email, '@') > 1),
    password_hash       text        NOT NULL,
    full_name           text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    last_login_at       timestamptz,
    disabled_at         timestamptz
);

CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
