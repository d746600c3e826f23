-- The two requests every client makes most, each in one round trip with a cached plan:
-- a refresh (auth_refresh) and the account-and-session read of every endpoint that takes an
-- access token (auth_find_user: /profile, /logout, /password).
--
-- A refresh (shared/src/sessions.rs, `refresh`) used to be six round trips: BEGIN, the
-- session's lock, the read, the rotation, the account's times, COMMIT. Each waited for the
-- last, and a refresh cost four times a /profile read. Here the same statements run, in the
-- same order and with the same locks, inside one function the client calls alone (its own
-- transaction). The locking argument is unchanged: see sessions.rs.
--
-- Why a function keeps the two-statement lock-then-read: PostgreSQL gives each statement in a
-- VOLATILE function a new snapshot under READ COMMITTED (docs, "Function Volatility
-- Categories"), so the read after the lock sees what the lock's previous holder committed,
-- exactly as a second statement from the client did.
--
-- Why functions at all, rather than the same SQL sent as it was: the statements are sent
-- without named prepared statements (so they pass through RDS Proxy without pinning), so
-- PostgreSQL parsed and planned each one at every request; the account-and-session read spent
-- more time being planned than run (pgbench, one client: 4,000 reads/s sent as SQL against
-- 6,800/s through the function). PL/pgSQL keeps its statements' plans for the connection.

-- Whether a session can still be used: not ended, before its absolute end, refreshed within
-- the idle timeout (0: no limit, in seconds), its account not disabled. The one spelling of the
-- rule: refresh, /profile, logout and password change all call it. A STABLE SQL function is
-- inlined into the statements that call it.
CREATE FUNCTION auth_session_usable(
    ended_at timestamptz, expires_at timestamptz, refreshed_at timestamptz,
    disabled_at timestamptz, idle_seconds float8
) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT ended_at IS NULL AND expires_at > now()
       AND (idle_seconds = 0 OR refreshed_at > now() - make_interval(secs => idle_seconds))
       AND disabled_at IS NULL
$$;

-- Rotates the refresh token whose SHA-256 is p_hash, giving the session the token p_new_hash.
-- One row: outcome is 'rotated' (with every other column), 'reused' (a consumed token after
-- the reuse interval: the session is now ended; session and user set), 'session_ended' or
-- 'unknown' (nothing written).
CREATE FUNCTION auth_refresh(
    p_hash bytea, p_new_hash bytea, p_reuse_seconds float8, p_idle_seconds float8
) RETURNS TABLE (
    outcome text, session_id uuid, user_id uuid, username text, expires_in float8,
    db_now timestamptz, created_at timestamptz, password_changed_at timestamptz
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    sid uuid;
    uid uuid;
    uname text;
    ucreated timestamptz;
    uchanged timestamptz;
    usable boolean;
    consumed timestamptz;
BEGIN
    -- The session's lock, with the session's and the account's columns. A statement that
    -- waited for the lock reads the locked row as its holder left it (the session's end and
    -- last refresh are current); ending a session, disabling its account and changing its
    -- password all write the session row, so they are seen here.
    SELECT s.id, s.user_id, u.username, u.created_at, u.password_changed_at,
           auth_session_usable(s.ended_at, s.expires_at, s.refreshed_at, u.disabled_at,
                               p_idle_seconds)
      INTO sid, uid, uname, ucreated, uchanged, usable
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
    SELECT t.consumed_at INTO consumed FROM refresh_tokens t WHERE t.token_hash = p_hash;
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
    ELSE
        -- Consume it (a retry within the interval keeps its first time), add its successor,
        -- move the session's last refresh: one statement.
        WITH spent AS (
            UPDATE refresh_tokens SET consumed_at = coalesce(consumed_at, now())
             WHERE token_hash = p_hash
        ), successor AS (
            INSERT INTO refresh_tokens (token_hash, session_id) VALUES (p_new_hash, sid)
        )
        UPDATE sessions SET refreshed_at = now() WHERE id = sid
        RETURNING extract(epoch FROM expires_at - now())::float8 INTO expires_in;
        outcome := 'rotated';
        username := uname;
        db_now := now();
        created_at := ucreated;
        password_changed_at := uchanged;
    END IF;
    RETURN NEXT;
END
$$;

-- The account `p_user` (no row when it does not exist) and whether its session `p_sid` is
-- still usable (true when p_sid is NULL: a token without a session); what an endpoint taking
-- an access token reads.
CREATE FUNCTION auth_find_user(p_user uuid, p_sid uuid, p_idle_seconds float8)
RETURNS TABLE (
    id uuid, username text, email text, full_name text, password_hash text,
    created_at timestamptz, password_changed_at timestamptz, last_login_at timestamptz,
    disabled_at timestamptz, session_usable boolean
) LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT u.id, u.username, u.email, u.full_name, u.password_hash, u.created_at,
           u.password_changed_at, u.last_login_at, u.disabled_at,
           p_sid IS NULL OR EXISTS (
               SELECT 1 FROM sessions s
                WHERE s.id = p_sid AND s.user_id = u.id
                  AND auth_session_usable(s.ended_at, s.expires_at, s.refreshed_at,
                                          u.disabled_at, p_idle_seconds))
      FROM users u WHERE u.id = p_user;
END
$$;
