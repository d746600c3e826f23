//! `auth-admin export`: every account as JSON Lines, hashes included, in the form `import` reads.
//! Second factors are not part of it: a TOTP secret or a recovery code never leaves the
//! database (sealed or hashed under the data key, they would be of no use elsewhere anyway),
//! and `import` leaves the factors of the accounts it touches alone.

use std::io::Write;

use auth_shared::tokio_postgres::Client;
use time::OffsetDateTime;
use uuid::Uuid;

/// One exported account: every column but the lookup keys (computed again on import).
#[derive(serde::Serialize)]
struct ExportRow {
    id: Uuid,
    username: String,
    email: String,
    full_name: Option<String>,
    password_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    password_changed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    last_login_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    disabled_at: Option<OffsetDateTime>,
    email_verified: bool,
}

/// Writes every account as JSON Lines (with its hash) to `out`, through a cursor, so memory
/// holds one fetch; returns how many.
pub async fn export(client: &mut Client, out: &mut dyn Write) -> Result<u64, String> {
    let db = |e: auth_shared::tokio_postgres::Error| format!("database error: {e}");
    let tx = client.transaction().await.map_err(db)?;
    tx.batch_execute(
        "DECLARE export NO SCROLL CURSOR FOR SELECT id, username, email, full_name, password_hash,
                created_at, password_changed_at, last_login_at, disabled_at,
                email_verified
           FROM users ORDER BY created_at, id",
    )
    .await
    .map_err(db)?;
    let mut n = 0;
    loop {
        let rows = tx.query("FETCH 10000 FROM export", &[]).await.map_err(db)?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let row = ExportRow {
                id: r.get(0),
                username: r.get(1),
                email: r.get(2),
                full_name: r.get(3),
                password_hash: r.get(4),
                created_at: r.get(5),
                password_changed_at: r.get(6),
                last_login_at: r.get(7),
                disabled_at: r.get(8),
                email_verified: r.get(9),
            };
            let line = serde_json::to_string(&row).map_err(|e| e.to_string())?;
            writeln!(out, "{line}").map_err(|e| format!("writing: {e}"))?;
            n += 1;
        }
    }
    tx.commit().await.map_err(db)?;
    out.flush().map_err(|e| format!("writing: {e}"))?;
    Ok(n)
}
