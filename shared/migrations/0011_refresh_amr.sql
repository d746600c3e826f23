-- auth_refresh answers the session's `amr` itself, read under the session's row lock, and is
-- declared to return one row (ROWS 1).
--
-- Its callers used to join `sessions` again for the `amr` beside the function's row. The
-- planner, told by default that a set-returning function gives 1,000 rows, planned that join
-- as a hash join over a sequential scan of `sessions` whenever the table was small, and
-- planned it afresh for every refresh: under a refresh load about a quarter of PostgreSQL's
-- CPU went to that statement's parsing, planning and scan. Now the caller's statement is a
-- bare function scan, and the `amr` is the one the lock holder left (a new factor's verify
-- raises it under the same lock), not one read after the lock is released.
--
-- The body is otherwise that of 0006_refresh_one_chain.sql. A function still running the
-- older query (with its join) gets the same answers from this one: the new column is simply
-- not selected.
DROP FUNCTION auth_refresh(bytea, bytea, bytea, float8, float8);

-- Rotates the refresh token whose SHA-256 is p_hash. The first presentation consumes it,
-- records p_salt as its successor's salt and inserts the successor p_new_hash (which the
-- caller derived from the token and p_salt). A presentation within p_reuse_seconds of the
-- first inserts nothing and answers the salt recorded then, from which the caller derives the
-- same successor. One row: outcome is 'rotated' (with every other column, the session's `amr`
-- among them), 'reused' (a consumed token after the reuse interval: the session is now ended;
-- session and user set), 'session_ended' or 'unknown' (nothing written).
CREATE FUNCTION auth_refresh(
    p_hash bytea, p_salt bytea, p_new_hash bytea, p_reuse_seconds float8, p_idle_seconds float8
) RETURNS TABLE (
    outcome text, session_id uuid, user_id uuid, username text, expires_in float8,
    db_now timestamptz, created_at timestamptz, password_changed_at timestamptz,
    successor_salt bytea, amr text[]
) LANGUAGE plpgsql VOLATILE ROWS 1 AS $$
#variable_conflict use_column
DECLARE
    sid uuid;
    uid uuid;
    uname text;
    ucreated timestamptz;
    uchanged timestamptz;
    usable boolean;
    consumed timestamptz;
    salt bytea;
    samr text[];
BEGIN
    -- The session's lock, with the session's and the account's columns. A statement that
    -- waited for the lock reads the locked row as its holder left it (the session's end and
    -- last refresh are current); ending a session, disabling its account and changing its
    -- password all write the session row, so they are seen here, and so is a new factor's
    -- raised `amr`.
    SELECT s.id, s.user_id, u.username, u.created_at, u.password_changed_at,
           auth_session_usable(s.ended_at, s.expires_at, s.refreshed_at, u.disabled_at,
                               p_idle_seconds), s.amr
      INTO sid, uid, uname, ucreated, uchanged, usable, samr
      FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.id = (SELECT t.session_id FROM refresh_tokens t WHERE t.token_hash = p_hash)
       FOR UPDATE OF s;
    IF NOT FOUND THEN
        outcome := 'unknown';
        RETURN NEXT;
        RETURN;
    END IF;
    -- The token, in a statement of its own: it sees what the lock's previous holder committed
    -- (a refresh that consumed it, a password change that replaced the session's tokens).
    SELECT t.consumed_at, t.successor_salt INTO consumed, salt
      FROM refresh_tokens t WHERE t.token_hash = p_hash;
    IF NOT FOUND THEN
        outcome := 'unknown';
        RETURN NEXT;
        RETURN;
    END IF;
    session_id := sid;
    user_id := uid;
    IF NOT usable THEN
        outcome := 'session_ended';
    ELSIF consumed IS NOT NULL
          AND consumed <= now() - make_interval(secs => p_reuse_seconds) THEN
        UPDATE sessions SET ended_at = now(), end_reason = 'refresh_token_reused'
         WHERE id = sid AND ended_at IS NULL;
        outcome := 'reused';
    ELSIF consumed IS NOT NULL AND salt IS NULL THEN
        -- Consumed before this migration, so its successor cannot be derived again: refused,
        -- with nothing written (at most one reuse interval after the upgrade).
        outcome := 'unknown';
    ELSE
        IF consumed IS NULL THEN
            -- The first presentation: consume it, add its successor, move the session's last
            -- refresh.
            WITH spent AS (
                UPDATE refresh_tokens SET consumed_at = now(), successor_salt = p_salt
                 WHERE token_hash = p_hash
            ), successor AS (
                INSERT INTO refresh_tokens (token_hash, session_id) VALUES (p_new_hash, sid)
            )
            UPDATE sessions SET refreshed_at = now() WHERE id = sid
            RETURNING extract(epoch FROM expires_at - now())::float8 INTO expires_in;
            salt := p_salt;
        ELSE
            -- A replay within the interval: the same successor, nothing new.
            SELECT extract(epoch FROM s.expires_at - now())::float8 INTO expires_in
              FROM sessions s WHERE s.id = sid;
        END IF;
        outcome := 'rotated';
        username := uname;
        db_now := now();
        created_at := ucreated;
        password_changed_at := uchanged;
        successor_salt := salt;
        amr := samr;
    END IF;
    RETURN NEXT;
END
$$;
