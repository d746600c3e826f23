//! Versioned schema migrations, safe to run against a live database: an advisory lock
//! serialises concurrent runs, each migration applies in its own transaction together with its
//! bookkeeping row, and a migration changed after it was applied is refused.
//!
//! (A small runner of our own rather than refinery: refinery takes no lock, and this keeps its
//! dependencies out of the crate every function links.)

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Applied in increasing order.
    pub version: i32,
    /// A short name.
    pub name: &'static str,
    /// The SQL, run in one transaction.
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "users", sql: include_str!("../migrations/0001_users.sql") },
    Migration {
        version: 2,
        name: "login_throttle",
        sql: include_str!("../migrations/0002_login_throttle.sql"),
    },
    Migration {
        version: 3,
        name: "identifier_keys",
        sql: include_str!("../migrations/0003_identifier_keys.sql"),
    },
    Migration {
        version: 4,
        name: "sessions",
        sql: include_str!("../migrations/0004_sessions.sql"),
    },
    Migration {
        version: 5,
        name: "session_functions",
        sql: include_str!("../migrations/0005_session_functions.sql"),
    },
    Migration {
        version: 6,
        name: "refresh_one_chain",
        sql: include_str!("../migrations/0006_refresh_one_chain.sql"),
    },
    Migration {
        version: 7,
        name: "password_costs",
        sql: include_str!("../migrations/0007_password_costs.sql"),
    },
    Migration {
        version: 8,
        name: "accounts",
        sql: include_str!("../migrations/0008_accounts.sql"),
    },
    Migration {
        version: 9,
        name: "second_factors",
        sql: include_str!("../migrations/0009_second_factors.sql"),
    },
    Migration {
        version: 10,
        name: "passkeys",
        sql: include_str!("../migrations/0010_passkeys.sql"),
    },
    Migration {
        version: 11,
        name: "refresh_amr",
        sql: include_str!("../migrations/0011_refresh_amr.sql"),
    },
];

/// The advisory lock key held while migrating ("authmigr").
const LOCK_KEY: i64 = 0x6175_7468_6d69_6772;

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Migrations applied by this run, as (version, name).
    pub applied: Vec<(i32, &'static str)>,
    /// Migrations that were already in place.
    pub already_applied: usize,
    /// Accounts whose identifier lookup keys this run filled in (see
    /// [`crate::users::fill_identifier_keys`]).
    pub keys_filled: u64,
}

/// Why migrating stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database refused a statement.
    #[error("migration failed: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// An applied migration's SQL differs from this build's.
    #[error("migration {version} ({name}) was changed after it was applied")]
    Changed {
        /// Its version.
        version: i32,
        /// Its name.
        name: String,
    },
    /// The database has a migration this build does not know: it is newer than this binary.
    #[error(
        "the database has migration {version} ({name}), which this build does not know; use a newer build"
    )]
    Unknown {
        /// Its version.
        version: i32,
        /// Its name.
        name: String,
    },
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Applies every pending migration, then fills in the identifier lookup keys of accounts that
/// lack them (rows copied in with plain SQL, say), which PostgreSQL cannot compute itself.
/// Running it again is a no-op.
pub async fn run(client: &mut Client) -> Result<Report, MigrateError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await?;
    let result = apply(client).await;
    // Unlocking can only fail if the connection is gone, which releases the lock anyway.
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]).await;
    result
}

async fn apply(client: &mut Client) -> Result<Report, MigrateError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer     PRIMARY KEY,
                 name       text        NOT NULL,
                 checksum   text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let rows = client.query("SELECT version, name, checksum FROM schema_migrations", &[]).await?;
    let mut done = Vec::new();
    for row in rows {
        let (version, name, sum): (i32, String, String) = (row.get(0), row.get(1), row.get(2));
        match MIGRATIONS.iter().find(|m| m.version == version) {
            None => return Err(MigrateError::Unknown { version, name }),
            Some(m) if checksum(m.sql) != sum => {
                return Err(MigrateError::Changed { version, name });
            }
            Some(_) => done.push(version),
        }
    }
    let mut report = Report { applied: Vec::new(), already_applied: done.len(), keys_filled: 0 };
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        let tx = client.transaction().await?;
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &checksum(m.sql)],
        )
        .await?;
        tx.commit().await?;
        report.applied.push((m.version, m.name));
    }
    let tx = client.transaction().await?;
    report.keys_filled = crate::users::fill_identifier_keys(&tx).await?;
    tx.commit().await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
    }
}
