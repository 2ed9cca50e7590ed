//! Numbers for the lines of ordered endpoints on PostgreSQL (see `crate::ordered`): the insert
//! trigger of migration V10 numbers fresh deliveries (and serializes the inserts of one ordered
//! endpoint); `number` draws numbers for deliveries made pending again, in one statement.

use super::sql::Connection;
use const_format::formatcp;
use webhookd_core::EndpointId;

use super::rows::get;
use super::sql::{execute, query_opt};
use crate::Result;
use crate::status::PENDING;

/// Turns on the insert trigger that numbers deliveries, before an endpoint becomes ordered.
/// Until an endpoint of the database is ordered the trigger is off (migration V10 leaves it
/// so), and ingest pays nothing for ordering. Turning it on is transactional DDL: it waits for
/// the transactions inserting deliveries to end and holds new ones back until this transaction
/// commits, so every pending delivery of the endpoint is either committed already (and
/// numbered by `reorder`) or inserted after, through the trigger. It stays on once on.
pub(crate) async fn enable_numbering(c: &impl Connection) -> Result<()> {
    let enabled = query_opt(
        c,
        "SELECT tgenabled <> 'D' FROM pg_trigger \
         WHERE tgrelid = 'deliveries'::regclass AND tgname = 'deliveries_sequence'",
        &[],
    )
    .await?;
    if let Some(row) = enabled
        && !get::<bool>(&row, 0)?
    {
        execute(
            c,
            "ALTER TABLE deliveries ENABLE TRIGGER deliveries_sequence",
            &[],
        )
        .await?;
    }
    Ok(())
}

/// Numbers these pending deliveries of the endpoint, in the order given, after its line,
/// when the endpoint is ordered.
pub(crate) async fn number(
    c: &impl Connection,
    endpoint: &EndpointId,
    msgs: &[String],
) -> Result<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let count = i64::try_from(msgs.len()).unwrap_or(i64::MAX);
    execute(
        c,
        formatcp!(
            "WITH drawn AS ( \
               UPDATE endpoints SET last_seq = last_seq + $2 WHERE id = $1 AND ordered \
               RETURNING last_seq - $2 AS base) \
             UPDATE deliveries d SET seq = drawn.base + k.n \
             FROM drawn, unnest($3::text[]) WITH ORDINALITY AS k(msg_id, n) \
             WHERE d.endpoint_id = $1 AND d.msg_id = k.msg_id AND d.status = {PENDING}"
        ),
        &[&endpoint.as_str(), &count, &msgs],
    )
    .await?;
    Ok(())
}
