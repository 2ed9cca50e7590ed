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
