-- What a failed login costs against each kind of stored hash, so that every failure can take
-- as long as the costliest one (shared/src/failure_floor.rs). A row per cost class (a format
-- and its work factors, e.g. `bcrypt cost=12`) present among the accounts' hashes: `ratio`
-- is a failed verification's time against it over one policy hash of `policy_iterations`
-- PBKDF2-SHA256 iterations, measured by `auth-admin migrate` and `auth-admin import` on the
-- machine they run on. A function under another PBKDF2_ITERATIONS rescales it (a policy hash
-- costs in proportion to its iterations). Hashes at the policy's own function and cost (every
-- hash this service writes) need no row.
CREATE TABLE password_costs (
    class             text        PRIMARY KEY,
    ratio             float8      NOT NULL CHECK (ratio > 0),
    policy_iterations integer     NOT NULL CHECK (policy_iterations > 0),
    measured_at       timestamptz NOT NULL DEFAULT now()
);
