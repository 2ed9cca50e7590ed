//! Numbers for the lines of ordered endpoints on SQLite (see `crate::ordered`): drawn from the
//! endpoint's `last_seq`, one statement per delivery (one writer, so nothing waits).

use const_format::formatcp;
use rusqlite::{Connection, OptionalExtension, params};
use webhookd_core::EndpointId;

use super::map_error;
use crate::Result;
use crate::status::PENDING;

/// Numbers these pending deliveries of the endpoint, in the order given, after its line,
/// when the endpoint is ordered.
pub(crate) fn number(c: &Connection, endpoint: &EndpointId, msgs: &[String]) -> Result<()> {
    let count = i64::try_from(msgs.len()).unwrap_or(i64::MAX);
    let last: Option<i64> = c
        .prepare_cached(
            "UPDATE endpoints SET last_seq = last_seq + ? WHERE id = ? AND ordered \
             RETURNING last_seq",
        )
        .and_then(|mut update| {
            update
                .query_row(params![count, endpoint.as_str()], |row| row.get(0))
                .optional()
        })
        .map_err(map_error)?;
    let Some(last) = last else {
        return Ok(());
    };
    let mut number = c
        .prepare_cached(formatcp!(
            "UPDATE deliveries SET seq = ? \
             WHERE msg_id = ? AND endpoint_id = ? AND status = {PENDING}"
        ))
        .map_err(map_error)?;
    for (seq, msg) in (last - count + 1..).zip(msgs) {
        number
            .execute(params![seq, msg, endpoint.as_str()])
            .map_err(map_error)?;
    }
    Ok(())
}
