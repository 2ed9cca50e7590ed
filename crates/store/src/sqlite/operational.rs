//! Operational events on SQLite: stored in the caller's transaction (see `crate::operational`).

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;
use webhookd_core::operational::OperationalEvent;
use webhookd_core::time::from_unix_ms;
use webhookd_core::{AppId, EndpointId};

use super::map_error;
use super::messages::create_message;
use crate::operational::{auto_disabled_event, message};
use crate::{Result, Taken};

/// Stores each event as a message of the operational application, fanned out to the
/// operational endpoints that subscribe to its type. An event already stored (same
/// idempotency key) is skipped.
pub(crate) fn emit(
    c: &Connection,
    events: impl IntoIterator<Item = OperationalEvent>,
    at: OffsetDateTime,
) -> Result<()> {
    for event in events {
        let app_uid = match event.app_id() {
            Some(app) => application_uid(c, app)?,
            None => None,
        };
        match create_message(c, &message(&event, app_uid.as_deref(), at), None) {
            Ok(_) => {}
            Err(error) if error.is_taken(Taken::EventId) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

fn application_uid(c: &Connection, app: &AppId) -> Result<Option<String>> {
    c.prepare_cached("SELECT uid FROM applications WHERE id = ?")
        .and_then(|mut select| {
            select
                .query_row([app.as_str()], |row| row.get(0))
                .optional()
        })
        .map(Option::flatten)
        .map_err(map_error)
}

/// The endpoint's `disabled` and `uid` before a change, if it exists.
pub(crate) fn endpoint_before(
    c: &Connection,
    app: &AppId,
    id: &EndpointId,
) -> Result<Option<(bool, Option<String>)>> {
    c.prepare_cached("SELECT disabled, uid FROM endpoints WHERE app_id = ? AND id = ?")
        .and_then(|mut select| {
            select
                .query_row([app.as_str(), id.as_str()], |row| {
                    Ok((row.get::<_, i64>(0)? != 0, row.get(1)?))
                })
                .optional()
        })
        .map_err(map_error)
}

/// The engine disables an endpoint (failing too long, or a 410): its pending deliveries are
/// canceled, and `endpoint.disabled` is emitted when this write is the one that disabled it.
pub(crate) fn disable(c: &Connection, endpoint: &EndpointId, at: i64) -> Result<()> {
    let changed: Option<(String, Option<String>, Option<i64>)> = c
        .prepare_cached(
            "UPDATE endpoints SET disabled = 1, updated_at = ? WHERE id = ? AND disabled = 0 \
             RETURNING app_id, uid, failing_since",
        )
        .and_then(|mut update| {
            update
                .query_row(params![at, endpoint.as_str()], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()
        })
        .map_err(map_error)?;
    super::db::execute(
        c,
        crate::resources::CANCEL_PENDING,
        &crate::db::params![at, endpoint.as_str()],
    )?;
    if let Some((app, uid, failing_since)) = changed {
        let app = AppId::from_trusted(app);
        emit(
            c,
            auto_disabled_event(&app, endpoint, uid, failing_since.map(from_unix_ms)),
            from_unix_ms(at),
        )?;
    }
    Ok(())
}
