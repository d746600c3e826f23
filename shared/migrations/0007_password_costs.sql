-- What a failed login costs against each kind of stored hash, so that every failure can take
-- as long as the costliest one (shared/src/failure_floor.rs). A row per cost class (a format
-- and its work factors, e.g. `bcrypt cost=12`) present among the accounts' hashes: `ratio`
-- is a failed verification's time against it over one current-policy hash, measured by
-- `auth-admin migrate` and `auth-admin import` on the machine they run on. Hashes at the
-- policy's own function and cost (every hash this service writes) need no row.
CREATE TABLE password_costs (
    class       text        PRIMARY KEY,
    ratio       float8      NOT NULL CHECK (ratio > 0),
    measured_at timestamptz NOT NULL DEFAULT now()
);
