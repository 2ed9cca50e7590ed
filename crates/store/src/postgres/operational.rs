//! Operational events on PostgreSQL: stored in the caller's transaction (see
//! `crate::operational`), and the nodes woken to deliver them.

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use webhookd_core::operational::OperationalEvent;
use webhookd_core::time::from_unix_ms;
use webhookd_core::{AppId, EndpointId};

use super::listen::notify_due;
use super::messages::insert_message_once;
use super::rows::get;
use super::sql::query_opt;
use crate::Result;
use crate::operational::{auto_disabled_event, message};

/// Stores each event as a message of the operational application, fanned out to the
/// operational endpoints that subscribe to its type. An event already stored (same
/// idempotency key) is skipped. Call inside a transaction.
pub(crate) async fn emit(
    c: &impl GenericClient,
    events: impl IntoIterator<Item = OperationalEvent>,
    at: OffsetDateTime,
) -> Result<()> {
    let mut fanned_out = false;
    for event in events {
        let app_uid = match event.app_id() {
            Some(app) => application_uid(c, app).await?,
            None => None,
        };
        let message = message(&event, app_uid.as_deref(), at);
        fanned_out |= !insert_message_once(c, &message).await?.is_empty();
    }
    if fanned_out {
        notify_due(c).await?;
    }
    Ok(())
}

async fn application_uid(c: &impl GenericClient, app: &AppId) -> Result<Option<String>> {
    let row = query_opt(
        c,
        "SELECT uid FROM applications WHERE id = $1",
        &[&app.as_str()],
    )
    .await?;
    Ok(row
        .map(|row| get::<Option<String>>(&row, 0))
        .transpose()?
        .flatten())
}

/// The endpoint's `disabled` and `uid` before a change, if it exists; the row stays locked
/// until the transaction ends, so two concurrent changes see each other's result.
pub(crate) async fn endpoint_before(
    c: &impl GenericClient,
    app: &AppId,
    id: &EndpointId,
) -> Result<Option<(bool, Option<String>)>> {
    let row = query_opt(
        c,
        "SELECT disabled, uid FROM endpoints WHERE app_id = $1 AND id = $2 FOR UPDATE",
        &[&app.as_str(), &id.as_str()],
    )
    .await?;
    row.map(|row| Ok((get(&row, 0)?, get(&row, 1)?)))
        .transpose()
}

/// The engine disables an endpoint (failing too long, or a 410): its pending deliveries are
/// canceled, and `endpoint.disabled` is emitted when this write is the one that disabled it.
/// Call inside a transaction.
pub(crate) async fn disable(c: &impl GenericClient, endpoint: &EndpointId, at: i64) -> Result<()> {
    let changed = query_opt(
        c,
        "UPDATE endpoints SET disabled = TRUE, updated_at = $1 WHERE id = $2 AND NOT disabled \
         RETURNING app_id, uid, failing_since",
        &[&at, &endpoint.as_str()],
    )
    .await?;
    super::db::execute(
        c,
        crate::resources::CANCEL_PENDING,
        &crate::db::params![at, endpoint.as_str()],
    )
    .await?;
    if let Some(row) = changed {
        let app = AppId::from_trusted(get::<String>(&row, 0)?);
        let uid: Option<String> = get(&row, 1)?;
        let failing_since: Option<i64> = get(&row, 2)?;
        let event = auto_disabled_event(&app, endpoint, uid, failing_since.map(from_unix_ms));
        emit(c, event, from_unix_ms(at)).await?;
    }
    Ok(())
}
