//! The run's SQL: the staging table, the set-wise plan, the batch write, the sweep of a killed
//! run's tables; each with the tables it names filled in by [`Tables::sql`]

use super::*;

/// Settings of each connection of a run: room for the plan's hash aggregations, and no JIT
/// (it costs tens of milliseconds a batch and gains nothing here).
pub(super) const SESSION: &str = "SET work_mem = '128MB'; SET jit = off";

/// Drops the staging tables of runs whose connection is gone (a killed run's leftovers).
pub(super) const SWEEP: &str = "
    DO $$
    DECLARE t regclass;
    BEGIN
      FOR t IN SELECT c.oid::regclass FROM pg_class c
                WHERE c.relkind = 'r' AND c.relname ~ '^auth_import_(rows|plan)_[0-9]+$'
                  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                                   WHERE a.pid = substring(c.relname from '[0-9]+$')::int)
      LOOP
        EXECUTE 'DROP TABLE IF EXISTS ' || t;
      END LOOP;
    END $$";

/// The run's staging table `{rows}` (`auth_import_rows_<backend pid>`): every record of the
/// file, in line order. A good row has its checked fields and no `reason`; a refused one has
/// its `reason` and `record` (the raw text). Unlogged (no WAL: it is rebuilt from the file if
/// lost) and a plain table rather than a temporary one, so that the run's second connection
/// can write from it; dropped at the end of the run, or by the next run if this one is killed.
pub(super) const STAGING: &str = "
    CREATE UNLOGGED TABLE {rows} (
        line bigint PRIMARY KEY,
        reason text,
        record text,
        id uuid,
        username text,
        email text,
        full_name text,
        password_hash text,
        created_at timestamptz,
        password_changed_at timestamptz,
        last_login_at timestamptz,
        disabled_at timestamptz,
        username_key text,
        email_key text,
        email_verified boolean
    )";

/// Column types of the staging table, in order, for the binary COPY.
pub(super) const STAGING_TYPES: [Type; 15] = [
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::BOOL,
];

/// A staged row as a JSON Lines record (export's field names).
pub(super) const RECORD_JSON: &str = "json_strip_nulls(json_build_object(
        'id', r.id, 'username', r.username, 'email', r.email, 'full_name', r.full_name,
        'password_hash', r.password_hash, 'created_at', r.created_at,
        'password_changed_at', r.password_changed_at, 'last_login_at', r.last_login_at,
        'disabled_at', r.disabled_at, 'email_verified', r.email_verified))::text";

/// The plan of a run, one set-wise pass over the staged rows (hash joins and aggregations on
/// the database, not this process's memory), kept in `{plan}` for every good row that is
/// not simply new: a duplicate within the file (its username key, email key or id used by an
/// earlier line, refused or not, as a reader going down the file would see it; the first line
/// is named), the same account already present (`same`, with its id: both keys, and the id if
/// given, name one account), or a conflict with another account.
pub(super) const PLAN: &str = "
    CREATE UNLOGGED TABLE {plan} AS
    WITH fu AS (SELECT username_key AS k, min(line) AS first FROM {rows}
                 WHERE reason IS NULL GROUP BY 1 HAVING count(*) > 1),
         fe AS (SELECT email_key AS k, min(line) AS first FROM {rows}
                 WHERE reason IS NULL GROUP BY 1 HAVING count(*) > 1),
         fi AS (SELECT id AS k, min(line) AS first FROM {rows}
                 WHERE reason IS NULL AND id IS NOT NULL GROUP BY 1 HAVING count(*) > 1),
         c AS (
           SELECT r.line, fu.first AS fu, fe.first AS fe, fi.first AS fi, u.id AS uid,
                  e.id AS eid, r.id,
                  r.id IS NOT NULL AND EXISTS (SELECT 1 FROM users x WHERE x.id = r.id)
                    AS id_taken
             FROM {rows} r
             LEFT JOIN fu ON fu.k = r.username_key
             LEFT JOIN fe ON fe.k = r.email_key
             LEFT JOIN fi ON fi.k = r.id
             LEFT JOIN users u ON u.username_key = r.username_key
             LEFT JOIN users e ON e.email_key = r.email_key
            WHERE r.reason IS NULL),
         s AS (
           SELECT line, uid,
                  CASE WHEN fu < line
                         THEN 'duplicate username (by its normalised key) of line ' || fu
                       WHEN fe < line
                         THEN 'duplicate email (by its normalised key) of line ' || fe
                       WHEN fi < line THEN 'duplicate id of line ' || fi
                       WHEN uid IS NULL AND eid IS NULL AND NOT id_taken THEN NULL
                       WHEN uid = eid AND (id IS NULL OR id = uid) THEN 'same'
                       WHEN uid IS NOT NULL AND uid IS DISTINCT FROM eid
                         THEN 'username belongs to another account'
                       WHEN eid IS NOT NULL AND uid IS DISTINCT FROM eid
                         THEN 'email belongs to another account'
                       ELSE 'id belongs to another account' END AS state
             FROM c)
    SELECT line, state, uid FROM s WHERE state IS NOT NULL;
    ALTER TABLE {plan} ADD PRIMARY KEY (line);
    ANALYZE {rows}, {plan}";

/// One batch, in one transaction: of the good rows with lines in (`$1`, `$2`] (a range of the
/// staging table's primary key holding [`BATCH`] good rows, so each batch reads only its own
/// rows), those that are new or (with `$3`, update) already present; the new ones inserted,
/// the present ones overwritten. `{ON}`
/// is empty on the fast path (a plain INSERT, about half the cost of a speculative one); when
/// another session created one of the accounts since the plan was made, that fails with a
/// unique violation and the batch is run again with `ON CONFLICT DO NOTHING`, where such a row
/// is refused, naming why, rather than counted (a re-run classifies it). Returns the batch's
/// last line and size, and the counts (new, inserted, same, updated, refused).
pub(super) const BATCH_SQL: &str = "
    WITH range AS (SELECT * FROM {rows} WHERE line > $1 AND line <= $2 AND reason IS NULL),
         b AS (SELECT r.*, p.state, p.uid
                 FROM range r
                 LEFT JOIN LATERAL (SELECT state, uid FROM {plan} p WHERE p.line = r.line
                                    OFFSET 0) p
                   ON true
                WHERE p.state IS NULL OR (p.state = 'same' AND $3)),
         ins AS (
           INSERT INTO users (id, username, email, full_name, password_hash, created_at,
                              password_changed_at, last_login_at, disabled_at,
                              username_key, email_key, email_verified)
           SELECT coalesce(id, gen_random_uuid()), username, email, full_name, password_hash,
                  coalesce(created_at, now()), coalesce(password_changed_at, created_at, now()),
                  last_login_at, disabled_at, username_key, email_key,
                  coalesce(email_verified, true)
             FROM b WHERE state IS NULL
               {ON}
           RETURNING username_key),
         lost AS (
           INSERT INTO {plan} (line, state)
           SELECT line, 'an account with this username, email or id was created by someone else '
                        || 'during the import: import again to classify this row'
             FROM b WHERE state IS NULL AND username_key NOT IN (SELECT username_key FROM ins)
           RETURNING 1),
         upd AS (
           UPDATE users u SET full_name = b.full_name, password_hash = b.password_hash,
                              created_at = coalesce(b.created_at, u.created_at)
             FROM b
            WHERE b.state = 'same' AND u.id = b.uid AND {CHANGED}
           RETURNING 1)
    SELECT (SELECT max(line) FROM range), (SELECT count(*) FROM range),
           count(*) FILTER (WHERE state IS NULL), (SELECT count(*) FROM ins),
           count(*) FILTER (WHERE state = 'same'), (SELECT count(*) FROM upd),
           (SELECT count(*) FROM lost)
      FROM b";

/// Whether `--on-conflict update` changes the present account `u` with the row `b`: the one
/// spelling for the write ([`BATCH_SQL`]) and the dry run's count.
pub(super) const CHANGED: &str = "(u.full_name IS DISTINCT FROM b.full_name
                      OR u.password_hash <> b.password_hash
                      OR u.created_at <> coalesce(b.created_at, u.created_at))";

/// The run's two tables, named after its first connection's backend process id (unique
/// among live sessions, which is how [`SWEEP`] tells a killed run's leftovers).
pub(super) struct Tables {
    pub(super) rows: String,
    pub(super) plan: String,
}

impl Tables {
    /// `sql` with `{rows}` and `{plan}` named.
    pub(super) fn sql(&self, sql: &str) -> String {
        sql.replace("{rows}", &self.rows).replace("{plan}", &self.plan)
    }
}
