//! Operational events as the store emits them: in the transaction of the change that causes
//! them (an endpoint written, an attempt recorded, a task finished), as a message of the
//! reserved operational application fanned out to the operational endpoints that subscribe to
//! its type. The rules here are the backends' shared part; each backend only runs the SQL.
//!
//! Nothing about the operational application itself raises an event, so operational
//! deliveries never feed on their own failures.

use bytes::Bytes;
use time::OffsetDateTime;
use webhookd_core::model::{BackgroundTask, Endpoint, Message, TaskStatus};
use webhookd_core::operational::{
    DisableTrigger, EndpointChange, OperationalEvent, is_operational, operational_app,
};
use webhookd_core::{AppId, EndpointId, MessageId};

use crate::db::{Db, by_backend, params};
use crate::{AttemptRecord, DeliveryUpdate, EndpointHealth, Result, Taken};

/// The message that carries an event to the operational endpoints. Its `eventId` is the
/// event's idempotency key, so that emitting it twice stores it once.
pub(crate) fn message(
    event: &OperationalEvent,
    app_uid: Option<&str>,
    now: OffsetDateTime,
) -> Message {
    let payload = serde_json::to_vec(&event.payload(app_uid)).unwrap_or_default();
    Message {
        id: MessageId::new(),
        app_id: operational_app(),
        event_type: event.event_type().to_owned(),
        event_id: event.idempotency_key(),
        payload: Bytes::from(payload),
        channels: Vec::new(),
        tags: Vec::new(),
        created_at: now,
        deliver_at: None,
        retain_payload_until: None,
    }
}

/// The event of an endpoint's change, unless it is an operational endpoint.
pub(crate) fn endpoint_event(
    change: EndpointChange,
    app_id: &AppId,
    endpoint_id: &EndpointId,
    endpoint_uid: Option<String>,
) -> Option<OperationalEvent> {
    (!is_operational(app_id)).then(|| OperationalEvent::Endpoint {
        change,
        app_id: app_id.clone(),
        endpoint_id: endpoint_id.clone(),
        endpoint_uid,
    })
}

/// `endpoint.created`.
pub(crate) fn created_event(endpoint: &Endpoint) -> Option<OperationalEvent> {
    endpoint_event(
        EndpointChange::Created,
        &endpoint.app_id,
        &endpoint.id,
        endpoint.uid.clone(),
    )
}

/// The events of an operator's update: `endpoint.updated`, and `endpoint.disabled`
/// (`manual`) or `endpoint.enabled` when the update flips `disabled`.
pub(crate) fn update_events(was_disabled: bool, endpoint: &Endpoint) -> Vec<OperationalEvent> {
    let mut changes = vec![EndpointChange::Updated];
    match (was_disabled, endpoint.disabled) {
        (false, true) => changes.push(EndpointChange::Disabled {
            trigger: DisableTrigger::Manual,
            fail_since: endpoint.failing_since,
        }),
        (true, false) => changes.push(EndpointChange::Enabled),
        _ => {}
    }
    changes
        .into_iter()
        .filter_map(|change| {
            endpoint_event(change, &endpoint.app_id, &endpoint.id, endpoint.uid.clone())
        })
        .collect()
}

/// `endpoint.disabled` (`automatic`) for an endpoint the engine disabled.
pub(crate) fn auto_disabled_event(
    app_id: &AppId,
    endpoint_id: &EndpointId,
    endpoint_uid: Option<String>,
    fail_since: Option<OffsetDateTime>,
) -> Option<OperationalEvent> {
    let change = EndpointChange::Disabled {
        trigger: DisableTrigger::Automatic,
        fail_since,
    };
    endpoint_event(change, app_id, endpoint_id, endpoint_uid)
}

/// `background_task.finished` once a task is finished or failed.
pub(crate) fn task_event(task: &BackgroundTask) -> Option<OperationalEvent> {
    (task.status != TaskStatus::Running).then(|| OperationalEvent::TaskFinished {
        task_id: task.id.clone(),
        task: task.kind.clone(),
        status: task.status.text().to_owned(),
        data: task.data.clone(),
    })
}

/// Stores each event as a message of the operational application, fanned out to the
/// operational endpoints that subscribe to its type. An event already stored (same
/// idempotency key) is skipped. Call inside the transaction of the change that causes them;
/// the nodes are woken to deliver them.
pub(crate) async fn emit(
    db: &mut Db<'_>,
    events: impl IntoIterator<Item = OperationalEvent>,
    at: OffsetDateTime,
) -> Result<()> {
    let mut fanned_out = false;
    for event in events {
        let app_uid = match event.app_id() {
            Some(app) => application_uid(db, app).await?,
            None => None,
        };
        let message = message(&event, app_uid.as_deref(), at);
        fanned_out |= insert_once(db, &message).await?;
    }
    if fanned_out {
        notify_due(db).await?;
    }
    Ok(())
}

/// Stores an event's message unless its `eventId` is taken; whether it fanned out.
async fn insert_once(db: &mut Db<'_>, message: &Message) -> Result<bool> {
    by_backend!(db,
        c => match crate::sqlite::messages::create_message(c, message, None) {
            Ok(endpoints) => Ok(!endpoints.is_empty()),
            Err(error) if error.is_taken(Taken::EventId) => Ok(false),
            Err(error) => Err(error),
        },
        c => Ok(!crate::postgres::messages::insert_message_once(*c, message)
            .await?
            .is_empty()))
}

/// Wakes the other nodes to claim what became due (PostgreSQL; SQLite serves one node).
pub(crate) async fn notify_due(db: &mut Db<'_>) -> Result<()> {
    by_backend!(db,
        _c => Ok(()),
        c => crate::postgres::listen::notify_due(*c).await)
}

async fn application_uid(db: &mut Db<'_>, app: &AppId) -> Result<Option<String>> {
    let uid = db
        .query_opt(
            "SELECT uid FROM applications WHERE id = $1",
            &params![app.as_str()],
            |row| row.get::<Option<String>>(0),
        )
        .await?;
    Ok(uid.flatten())
}

/// The endpoint's `disabled` and `uid` before a change, if it exists. On PostgreSQL the row
/// stays locked until the transaction ends, so two concurrent changes see each other's result.
pub(crate) async fn endpoint_before(
    db: &mut Db<'_>,
    app: &AppId,
    id: &EndpointId,
) -> Result<Option<(bool, Option<String>)>> {
    let sql = format!(
        "SELECT disabled, uid FROM endpoints WHERE app_id = $1 AND id = $2{}",
        db.lock(" FOR UPDATE")
    );
    db.query_opt(&sql, &params![app.as_str(), id.as_str()], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })
    .await
}

/// The engine disables an endpoint (failing too long, or a 410): its pending deliveries are
/// canceled, and `endpoint.disabled` is emitted when this write is the one that disabled it.
pub(crate) async fn disable(
    db: &mut Db<'_>,
    endpoint: &EndpointId,
    at: OffsetDateTime,
) -> Result<()> {
    let changed = db
        .query_opt(
            "UPDATE endpoints SET disabled = TRUE, updated_at = $1 \
             WHERE id = $2 AND NOT disabled RETURNING app_id, uid, failing_since",
            &params![at, endpoint.as_str()],
            |row| {
                Ok((
                    AppId::from_trusted(row.get(0)?),
                    row.get::<Option<String>>(1)?,
                    row.get::<Option<OffsetDateTime>>(2)?,
                ))
            },
        )
        .await?;
    crate::resources::cancel_pending(db, endpoint, at).await?;
    if let Some((app, uid, failing_since)) = changed {
        emit(
            db,
            auto_disabled_event(&app, endpoint, uid, failing_since),
            at,
        )
        .await?;
    }
    Ok(())
}

/// What follows the record of a batch of attempts, in its transaction: endpoints disabled,
/// operational events stored, and the nodes woken when a line of an ordered endpoint moved (its
/// next delivery may go, on any node).
pub(crate) async fn after_attempts(db: &mut Db<'_>, records: &[AttemptRecord]) -> Result<()> {
    for record in records {
        let attempt = &record.attempt;
        if record.endpoint_health == Some(EndpointHealth::Disable) {
            disable(db, &attempt.endpoint_id, attempt.created_at).await?;
        }
        emit(db, record.events.iter().cloned(), attempt.created_at).await?;
    }
    let line_moves = records.iter().any(|record| {
        record.ordered
            && matches!(
                record.delivery,
                DeliveryUpdate::Delivered | DeliveryUpdate::Failed
            )
    });
    if line_moves {
        notify_due(db).await?;
    }
    Ok(())
}
