//! The two limits on mail, written once here with their numbers.
//!
//! - **Per source** (the routes that mail): each source address may make
//!   [`SOURCE_REQUESTS_PER_HOUR`] requests an hour to them, every request counted whatever it
//!   sent; then 429 with `Retry-After` until the oldest of the hour's requests is an hour old.
//!   Refused requests are not counted, so a source that waits gets in again. The source is API
//!   Gateway's `requestContext.http.sourceIp` (auth-local: the TCP peer).
//! - **Per address** (the mailer): at most one mail per address per
//!   [`ADDRESS_MIN_GAP_SECONDS`] and [`ADDRESS_MAILS_PER_HOUR`] an hour; over that the mail is
//!   not sent and no code is minted (audit `mail_suppressed`), and the request that asked for it
//!   answered as usual long before. The address is kept as its keyed hash only.
//!
//! Each check and its count run under a transaction-scoped advisory lock on the source (or the
//! address), so twenty requests at once cannot all slip under the limit: they are counted one
//! after the other.

use tokio_postgres::types::Type;
use tokio_postgres::{Error, GenericClient};
use uuid::Uuid;

/// Requests an hour one source may make to the routes that mail.
pub const SOURCE_REQUESTS_PER_HOUR: i64 = 30;
/// The shortest gap between two mails to one address, in seconds.
pub const ADDRESS_MIN_GAP_SECONDS: f64 = 60.0;
/// Mails an hour to one address.
pub const ADDRESS_MAILS_PER_HOUR: i64 = 5;

async fn lock(c: &impl GenericClient, key: &str) -> Result<(), Error> {
    c.query_typed_one(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::text",
        &[(&key, Type::TEXT)],
    )
    .await?;
    Ok(())
}

/// Counts one request from `source` to a route that mails, unless the source is over its
/// limit: then returns the whole seconds (at least 1) until it may try again. Runs in its own
/// transaction (the caller passes a client, not a transaction), and removes the source's
/// counts older than an hour on the way.
///
/// # Errors
/// The database's.
pub async fn count_source(
    c: &mut tokio_postgres::Client,
    source: &str,
) -> Result<Option<u64>, Error> {
    let tx = c.transaction().await?;
    lock(&tx, &format!("mail source:{source}")).await?;
    tx.execute_typed(
        "DELETE FROM mail_requests WHERE source = $1 AND at < now() - interval '1 hour'",
        &[(&source, Type::TEXT)],
    )
    .await?;
    let row = tx
        .query_typed_one(
            "SELECT count(*), extract(epoch FROM min(at) + interval '1 hour' - clock_timestamp())::float8
               FROM mail_requests WHERE source = $1",
            &[(&source, Type::TEXT)],
        )
        .await?;
    let (n, wait): (i64, Option<f64>) = (row.try_get(0)?, row.try_get(1)?);
    if n >= SOURCE_REQUESTS_PER_HOUR {
        tx.commit().await?;
        return Ok(Some(wait.unwrap_or(1.0).ceil().clamp(1.0, 3600.0) as u64));
    }
    tx.execute_typed("INSERT INTO mail_requests (source) VALUES ($1)", &[(&source, Type::TEXT)])
        .await?;
    tx.commit().await?;
    Ok(None)
}

/// What the per-address limit says of one mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressLimit {
    /// Send it; the mail is now counted.
    Send,
    /// This job already counted a mail to this address (a retry after a failed send): send
    /// again, uncounted.
    Retry,
    /// Over the limit: send nothing, mint nothing.
    Suppressed,
}

/// Checks and counts one mail of job `job` to the address whose keyed hash is `address_hash`,
/// in the caller's transaction (which it locks on the address until commit).
///
/// # Errors
/// The database's.
pub async fn count_address(
    c: &impl GenericClient,
    address_hash: &[u8],
    job: Uuid,
) -> Result<AddressLimit, Error> {
    lock(c, &format!("mail address:{}", hex::encode(address_hash))).await?;
    let row = c
        .query_typed_one(
            "SELECT count(*) FILTER (WHERE job = $2),
                    count(*) FILTER (WHERE sent_at > now() - make_interval(secs => $3)),
                    count(*) FILTER (WHERE sent_at > now() - interval '1 hour')
               FROM mail_log WHERE address_hash = $1",
            &[
                (&address_hash, Type::BYTEA),
                (&job, Type::UUID),
                (&ADDRESS_MIN_GAP_SECONDS, Type::FLOAT8),
            ],
        )
        .await?;
    let (mine, recent, hour): (i64, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if mine > 0 {
        return Ok(AddressLimit::Retry);
    }
    if recent > 0 || hour >= ADDRESS_MAILS_PER_HOUR {
        return Ok(AddressLimit::Suppressed);
    }
    c.execute_typed(
        "INSERT INTO mail_log (address_hash, job) VALUES ($1, $2)",
        &[(&address_hash, Type::BYTEA), (&job, Type::UUID)],
    )
    .await?;
    // Counts older than the hour are of no use; a few go with each mail.
    c.execute_typed(
        "DELETE FROM mail_log WHERE ctid IN (SELECT ctid FROM mail_log
                                             WHERE sent_at < now() - interval '1 hour' LIMIT 100)",
        &[],
    )
    .await?;
    Ok(AddressLimit::Send)
}

/// The per-source limit as a route applies it: counts the request from its
/// [`crate::http::source_ip`] (one shared key for events that carry none), and refuses it with
/// 429 `too_many_attempts` and `Retry-After` once the source is over the limit.
///
/// # Errors
/// [`crate::http::ApiError::TooManyAttempts`], or the database's as 503/500.
pub async fn guard_source(
    db: &crate::db::Db,
    req: &lambda_http::Request,
) -> Result<(), crate::http::ApiError> {
    let source = crate::http::source_ip(req).unwrap_or_else(|| "(none)".to_owned());
    let deadline = db.config().statement_timeout;
    let refused = db
        .run_within(deadline, move |c| {
            let source = source.clone();
            Box::pin(async move { count_source(c, &source).await })
        })
        .await?;
    match refused {
        Some(retry_after) => Err(crate::http::ApiError::TooManyAttempts { retry_after }),
        None => Ok(()),
    }
}
