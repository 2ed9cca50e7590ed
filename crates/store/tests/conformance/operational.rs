//! Operational events: stored as messages of the reserved operational application in the
//! transaction of their cause, fanned out to the operational endpoints that subscribe to their
//! type, each once.

use serde_json::Value;
use webhookd_core::AttemptId;
use webhookd_core::model::{BackgroundTask, TaskStatus};
use webhookd_core::operational::{AttemptEvent, LastAttempt, OperationalEvent, operational_app};
use webhookd_core::time::now;
use webhookd_core::{MessageId, TaskId};
use webhookd_store::{DeliveryUpdate, EndpointHealth, MessageFilter, PageRequest, Store};

use crate::support::{application, attempt_record, endpoint, message};

/// The operational events stored so far: (type, payload), and whether the subscribed
/// operational endpoint has a delivery of each.
async fn emitted(store: &dyn Store, ops: &webhookd_core::EndpointId) -> Vec<(String, Value, bool)> {
    let page = PageRequest {
        limit: 250,
        ..PageRequest::default()
    };
    let messages = store
        .list_messages(&operational_app(), &MessageFilter::default(), &page)
        .await
        .unwrap()
        .items;
    let mut events = Vec::new();
    for message in messages {
        let delivered = store
            .get_delivery(&message.id, ops)
            .await
            .unwrap()
            .is_some();
        let payload: Value = serde_json::from_slice(&message.payload).unwrap();
        events.push((message.event_type, payload, delivered));
    }
    events.sort_by(|a, b| a.0.cmp(&b.0));
    events
}

fn of_type<'a>(events: &'a [(String, Value, bool)], kind: &str) -> Vec<&'a (String, Value, bool)> {
    events
        .iter()
        .filter(|(event, _, _)| event == kind)
        .collect()
}

pub(crate) async fn operational_events_are_stored_with_their_cause(store: &dyn Store) {
    let mut ops = endpoint(&operational_app(), None);
    ops.event_types = [
        "endpoint.created",
        "endpoint.disabled",
        "message.attempt.failing",
    ]
    .map(str::to_owned)
    .to_vec();
    store.create_endpoint(&ops, None).await.unwrap();
    assert!(
        emitted(store, &ops.id).await.is_empty(),
        "operational endpoints raise no events"
    );

    let app = application(Some("acme"));
    store.create_application(&app, None).await.unwrap();
    let mut hook = endpoint(&app.id, Some("hook"));
    store.create_endpoint(&hook, None).await.unwrap();
    let events = emitted(store, &ops.id).await;
    let created = of_type(&events, "endpoint.created");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].1["data"]["appUid"], "acme");
    assert_eq!(created[0].1["data"]["endpointUid"], "hook");
    assert_eq!(created[0].1["data"]["endpointId"], hook.id.as_str());
    assert!(created[0].2, "the subscribed operational endpoint gets it");

    hook.disabled = true;
    hook.updated_at = now();
    store.update_endpoint(&hook).await.unwrap();
    store.update_endpoint(&hook).await.unwrap();
    let events = emitted(store, &ops.id).await;
    let updated = of_type(&events, "endpoint.updated");
    assert_eq!(updated.len(), 2);
    assert!(!updated[0].2, "endpoint.updated is not subscribed");
    let disabled = of_type(&events, "endpoint.disabled");
    assert_eq!(disabled.len(), 1, "only the update that disabled it");
    assert_eq!(disabled[0].1["data"]["trigger"], "manual");

    // The engine disables another endpoint from two attempts at once: one event.
    let other = endpoint(&app.id, None);
    store.create_endpoint(&other, None).await.unwrap();
    let msg = message(&app.id, "a");
    store.create_message(&msg, None, None).await.unwrap();
    let gone = || {
        let mut record = attempt_record(&app.id, &msg.id, &other.id, DeliveryUpdate::Failed, "n");
        record.endpoint_health = Some(EndpointHealth::Disable);
        record
    };
    store.record_attempts(&[gone(), gone()]).await.unwrap();
    let events = emitted(store, &ops.id).await;
    let automatic: Vec<_> = of_type(&events, "endpoint.disabled")
        .into_iter()
        .filter(|(_, payload, _)| payload["data"]["trigger"] == "automatic")
        .collect();
    assert_eq!(automatic.len(), 1);
    assert_eq!(automatic[0].1["data"]["endpointId"], other.id.as_str());

    // An attempt event recorded twice (a retried write) is stored once.
    let failing = OperationalEvent::Attempt {
        event: AttemptEvent::Failing,
        app_id: app.id.clone(),
        msg_id: MessageId::new(),
        msg_event_id: None,
        endpoint_id: other.id.clone(),
        last_attempt: LastAttempt {
            id: AttemptId::new(),
            response_status_code: 503,
            timestamp: now(),
        },
    };
    for _ in 0..2 {
        let mut record = attempt_record(&app.id, &msg.id, &other.id, DeliveryUpdate::Failed, "n");
        record.events = vec![failing.clone()];
        store.record_attempts(&[record]).await.unwrap();
    }
    let events = emitted(store, &ops.id).await;
    let failing = of_type(&events, "message.attempt.failing");
    assert_eq!(failing.len(), 1);
    assert_eq!(
        failing[0].1["data"]["lastAttempt"]["responseStatusCode"],
        503
    );
    assert_eq!(failing[0].1["data"]["appUid"], "acme");

    // A task is finished once, however often it is written.
    let mut task = BackgroundTask {
        id: TaskId::new(),
        kind: "endpoint.recover".into(),
        status: TaskStatus::Running,
        data: serde_json::json!({}),
        updated_at: now(),
    };
    store.put_task(&task, None).await.unwrap();
    task.status = TaskStatus::Finished;
    store.put_task(&task, None).await.unwrap();
    store.put_task(&task, None).await.unwrap();
    let events = emitted(store, &ops.id).await;
    let finished = of_type(&events, "background_task.finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].1["data"]["taskId"], task.id.as_str());
    assert_eq!(finished[0].1["data"]["status"], "finished");

    assert!(
        store
            .delete_endpoint(&app.id, &hook.id, now())
            .await
            .unwrap()
    );
    let events = emitted(store, &ops.id).await;
    assert_eq!(of_type(&events, "endpoint.deleted").len(), 1);
}
