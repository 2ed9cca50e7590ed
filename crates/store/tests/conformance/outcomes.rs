//! What recorded attempts do to deliveries and endpoints (and what they may not undo),
//! recovery, statistics and the queue's depth, and retention.

use time::{Duration, OffsetDateTime};
use webhookd_core::model::{DeliveryStatus, EndpointStats};
use webhookd_core::time::now;
use webhookd_core::{AttemptId, EndpointId, MessageId};
use webhookd_store::{
    AttemptScope, DeliveryUpdate, EndpointHealth, PageRequest, Store, StoreError,
};

use crate::support::{
    app_with_endpoints, attempt_record, claim, depth, endpoint, lease, message_at, minutes, status,
};

pub(crate) async fn recorded_attempts_move_deliveries(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 3).await;
    let (ok, retry, fail) = (&hooks[0].id, &hooks[1].id, &hooks[2].id);
    let t = now();
    let msg = message_at(&app.id, "user.created", t);
    store
        .create_message(&msg, Some(&lease("node-a", t + minutes(1))), None)
        .await
        .unwrap();
    let retry_at = t + minutes(5);
    let record = |endpoint: &EndpointId, update, owner| {
        attempt_record(&app.id, &msg.id, endpoint, update, owner)
    };
    store
        .record_attempts(&[
            record(ok, DeliveryUpdate::Delivered, "node-a"),
            record(retry, DeliveryUpdate::RetryAt(retry_at), "node-a"),
            record(fail, DeliveryUpdate::Failed, "node-a"),
        ])
        .await
        .unwrap();
    assert_eq!(
        status(store, &msg.id, ok).await,
        (DeliveryStatus::Success, 1, None)
    );
    assert_eq!(
        status(store, &msg.id, retry).await,
        (DeliveryStatus::Pending, 1, Some(retry_at))
    );
    assert_eq!(
        status(store, &msg.id, fail).await,
        (DeliveryStatus::Fail, 1, None)
    );
    // The retry is released: any node claims it when it is due.
    assert_eq!(store.queue_depth(t).await.unwrap(), depth(0, 1, 0));
    assert!(claim(store, "node-b", t, 10, &[]).await.is_empty());
    assert_eq!(
        claim(store, "node-b", retry_at, 10, &[]).await,
        vec![(msg.id.clone(), retry.clone())]
    );

    // A node that lost the claim cannot move the delivery any more.
    let stale = [
        record(retry, DeliveryUpdate::RetryAt(t + minutes(30)), "node-a"),
        record(retry, DeliveryUpdate::Failed, "node-a"),
    ];
    store.record_attempts(&stale).await.unwrap();
    assert_eq!(
        status(store, &msg.id, retry).await,
        (DeliveryStatus::Pending, 1, Some(retry_at))
    );
    store
        .record_attempts(&[record(retry, DeliveryUpdate::Failed, "node-b")])
        .await
        .unwrap();
    assert_eq!(
        status(store, &msg.id, retry).await,
        (DeliveryStatus::Fail, 2, None)
    );
    // Every attempt is kept, whatever it changed.
    let attempts = store
        .list_attempts(
            &app.id,
            &AttemptScope::Message(msg.id.clone()),
            &Default::default(),
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(attempts.items.len(), 6);
}

pub(crate) async fn canceled_stays_canceled(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 2).await;
    let hook = &hooks[0];
    let t = now();
    let msg = message_at(&app.id, "user.created", t);
    store
        .create_message(&msg, Some(&lease("node-a", t + minutes(1))), None)
        .await
        .unwrap();

    let mut disabled = hook.clone();
    disabled.disabled = true;
    disabled.updated_at = now();
    store.update_endpoint(&disabled).await.unwrap();
    assert_eq!(
        status(store, &msg.id, &hook.id).await,
        (DeliveryStatus::Canceled, 0, None)
    );
    let late = [
        attempt_record(
            &app.id,
            &msg.id,
            &hook.id,
            DeliveryUpdate::RetryAt(t + minutes(5)),
            "node-a",
        ),
        attempt_record(&app.id, &msg.id, &hook.id, DeliveryUpdate::Failed, "node-a"),
    ];
    store.record_attempts(&late).await.unwrap();
    assert_eq!(
        status(store, &msg.id, &hook.id).await,
        (DeliveryStatus::Canceled, 0, None)
    );

    // Deleting an endpoint cancels its pending deliveries too.
    let other = &hooks[1];
    assert!(
        store
            .delete_endpoint(&app.id, &other.id, now())
            .await
            .unwrap()
    );
    assert_eq!(
        status(store, &msg.id, &other.id).await.0,
        DeliveryStatus::Canceled
    );
    assert_eq!(
        store.queue_depth(t + minutes(10)).await.unwrap(),
        depth(0, 0, 0)
    );
    assert!(
        claim(store, "node-b", t + minutes(10), 10, &[])
            .await
            .is_empty()
    );
}

pub(crate) async fn manual_attempts_never_schedule(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 1).await;
    let hook = &hooks[0].id;
    let t = now();
    let msg = message_at(&app.id, "user.created", t);
    store.create_message(&msg, None, None).await.unwrap();
    let manual = |endpoint: &EndpointId, success| {
        attempt_record(
            &app.id,
            &msg.id,
            endpoint,
            DeliveryUpdate::Manual { success },
            "node-a",
        )
    };

    // A failed resend leaves a delivery pending on its own schedule alone.
    store.record_attempts(&[manual(hook, false)]).await.unwrap();
    assert_eq!(
        status(store, &msg.id, hook).await,
        (DeliveryStatus::Pending, 0, Some(t))
    );
    store.record_attempts(&[manual(hook, true)]).await.unwrap();
    assert_eq!(
        status(store, &msg.id, hook).await,
        (DeliveryStatus::Success, 0, None)
    );

    // A resend to an endpoint made after the message gives it a delivery.
    let late = endpoint(&app.id, None);
    store.create_endpoint(&late, None).await.unwrap();
    store
        .record_attempts(&[manual(&late.id, false)])
        .await
        .unwrap();
    assert_eq!(
        status(store, &msg.id, &late.id).await,
        (DeliveryStatus::Fail, 0, None)
    );
    store
        .record_attempts(&[manual(&late.id, true)])
        .await
        .unwrap();
    assert_eq!(
        status(store, &msg.id, &late.id).await,
        (DeliveryStatus::Success, 0, None)
    );
    assert_eq!(store.queue_depth(t).await.unwrap(), depth(0, 0, 0));
}

pub(crate) async fn endpoint_health_is_recorded(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 1).await;
    let hook = &hooks[0];
    let t = now();
    let (first, second) = (message_at(&app.id, "a", t), message_at(&app.id, "a", t));
    store.create_message(&first, None, None).await.unwrap();
    store.create_message(&second, None, None).await.unwrap();
    let health = |health| {
        let mut record = attempt_record(
            &app.id,
            &first.id,
            &hook.id,
            DeliveryUpdate::RetryAt(t + minutes(5)),
            "node-a",
        );
        record.endpoint_health = Some(health);
        record
    };
    let failing_since = || async {
        store
            .get_endpoint(&app.id, &hook.id.clone().into())
            .await
            .unwrap()
            .unwrap()
            .failing_since
    };

    let since = t - minutes(30);
    store
        .record_attempts(&[health(EndpointHealth::FailingSince(since))])
        .await
        .unwrap();
    assert_eq!(failing_since().await, Some(since));
    let counts = store.endpoint_health_counts().await.unwrap();
    assert_eq!((counts.failing, counts.disabled), (1, 0));
    // The run of failures keeps its start.
    store
        .record_attempts(&[health(EndpointHealth::FailingSince(t))])
        .await
        .unwrap();
    assert_eq!(failing_since().await, Some(since));
    store
        .record_attempts(&[health(EndpointHealth::Healthy)])
        .await
        .unwrap();
    assert_eq!(failing_since().await, None);
    let counts = store.endpoint_health_counts().await.unwrap();
    assert_eq!((counts.failing, counts.disabled), (0, 0));

    store
        .record_attempts(&[health(EndpointHealth::Disable)])
        .await
        .unwrap();
    assert!(
        store
            .get_endpoint(&app.id, &hook.id.clone().into())
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert_eq!(
        status(store, &first.id, &hook.id).await.0,
        DeliveryStatus::Canceled
    );
    assert_eq!(
        status(store, &second.id, &hook.id).await.0,
        DeliveryStatus::Canceled
    );
    let counts = store.endpoint_health_counts().await.unwrap();
    assert_eq!(counts.disabled, 1);
}

pub(crate) async fn recover_reopens_failed_and_canceled_in_window(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 2).await;
    let (hook, other) = (&hooks[0], &hooks[1].id);
    let t = now();
    let old = message_at(&app.id, "a", t - minutes(120));
    let failed = message_at(&app.id, "a", t - minutes(30));
    let delivered = message_at(&app.id, "a", t - minutes(20));
    for msg in [&old, &failed, &delivered] {
        store.create_message(msg, None, None).await.unwrap();
    }
    let record = |msg: &MessageId, update| attempt_record(&app.id, msg, &hook.id, update, "node-a");
    store
        .record_attempts(&[
            record(&old.id, DeliveryUpdate::Failed),
            record(&failed.id, DeliveryUpdate::Failed),
            record(&delivered.id, DeliveryUpdate::Delivered),
        ])
        .await
        .unwrap();
    let canceled = message_at(&app.id, "a", t - minutes(10));
    store.create_message(&canceled, None, None).await.unwrap();
    let mut toggled = hook.clone();
    toggled.disabled = true;
    store.update_endpoint(&toggled).await.unwrap();
    toggled.disabled = false;
    store.update_endpoint(&toggled).await.unwrap();
    assert_eq!(
        status(store, &canceled.id, &hook.id).await.0,
        DeliveryStatus::Canceled
    );

    let recovered = store
        .recover(&hook.id, t - minutes(60), t, t)
        .await
        .unwrap();
    assert_eq!(recovered, 2);
    assert_eq!(
        status(store, &failed.id, &hook.id).await,
        (DeliveryStatus::Pending, 0, Some(t))
    );
    assert_eq!(
        status(store, &canceled.id, &hook.id).await,
        (DeliveryStatus::Pending, 0, Some(t))
    );
    assert_eq!(
        status(store, &old.id, &hook.id).await.0,
        DeliveryStatus::Fail
    );
    assert_eq!(
        status(store, &delivered.id, &hook.id).await.0,
        DeliveryStatus::Success
    );
    assert_eq!(
        status(store, &failed.id, other).await,
        (DeliveryStatus::Pending, 0, Some(failed.created_at))
    );
    let mut claimed = claim(store, "node-a", t, 10, std::slice::from_ref(other)).await;
    claimed.sort();
    let mut expected = vec![
        (failed.id.clone(), hook.id.clone()),
        (canceled.id.clone(), hook.id.clone()),
    ];
    expected.sort();
    assert_eq!(claimed, expected);
    assert_eq!(
        store
            .recover(&hook.id, t - minutes(60), t, t)
            .await
            .unwrap(),
        0
    );
}

pub(crate) async fn stats_and_queue_depth(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 1).await;
    let hook = &hooks[0].id;
    let t = now();
    let leased = message_at(&app.id, "a", t);
    store
        .create_message(&leased, Some(&lease("node-a", t + minutes(1))), None)
        .await
        .unwrap();
    store
        .create_message(&message_at(&app.id, "a", t), None, None)
        .await
        .unwrap();
    let mut scheduled = message_at(&app.id, "a", t);
    scheduled.deliver_at = Some(t + minutes(60));
    store.create_message(&scheduled, None, None).await.unwrap();
    let (delivered, failed) = (message_at(&app.id, "a", t), message_at(&app.id, "a", t));
    store.create_message(&delivered, None, None).await.unwrap();
    store.create_message(&failed, None, None).await.unwrap();
    store
        .record_attempts(&[
            attempt_record(
                &app.id,
                &delivered.id,
                hook,
                DeliveryUpdate::Delivered,
                "node-a",
            ),
            attempt_record(&app.id, &failed.id, hook, DeliveryUpdate::Failed, "node-a"),
        ])
        .await
        .unwrap();

    let stats = store.endpoint_stats(hook, None, None).await.unwrap();
    assert_eq!(
        stats,
        EndpointStats {
            success: 1,
            pending: 3,
            sending: 0,
            fail: 1,
            canceled: 0
        }
    );
    assert_eq!(
        store
            .endpoint_stats(&EndpointId::new(), None, None)
            .await
            .unwrap(),
        EndpointStats::default()
    );
    assert_eq!(store.queue_depth(t).await.unwrap(), depth(1, 1, 1));
    assert_eq!(
        store.queue_depth(t + minutes(61)).await.unwrap(),
        depth(2, 0, 1)
    );
    assert_eq!(
        store
            .next_due_at(t - Duration::milliseconds(1))
            .await
            .unwrap(),
        Some(t)
    );
    // A window counts the deliveries created in it, bounds included.
    let earlier = message_at(&app.id, "a", t - minutes(120));
    store.create_message(&earlier, None, None).await.unwrap();
    let window = |since: Option<OffsetDateTime>, until: Option<OffsetDateTime>| {
        store.endpoint_stats(hook, since, until)
    };
    assert_eq!(window(None, None).await.unwrap().pending, 4);
    assert_eq!(window(Some(t), None).await.unwrap().pending, 3);
    assert_eq!(window(Some(t), Some(t)).await.unwrap().success, 1);
    let before = window(None, Some(t - minutes(1))).await.unwrap();
    assert_eq!(
        before,
        EndpointStats {
            pending: 1,
            ..EndpointStats::default()
        }
    );
    assert_eq!(
        window(Some(t + minutes(1)), None).await.unwrap(),
        EndpointStats::default()
    );
}

pub(crate) async fn retention_keeps_pending_payloads(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 1).await;
    let hook = &hooks[0].id;
    let t = now();
    let long_ago = t - Duration::days(2);
    let old_done = message_at(&app.id, "a", long_ago);
    let old_pending = message_at(&app.id, "a", long_ago);
    let recent = message_at(&app.id, "a", t);
    let mut short_lived = message_at(&app.id, "a", t);
    short_lived.retain_payload_until = Some(t - minutes(1));
    for msg in [&old_done, &old_pending, &recent, &short_lived] {
        store.create_message(msg, None, None).await.unwrap();
    }
    let mut old_attempt =
        attempt_record(&app.id, &old_done.id, hook, DeliveryUpdate::Delivered, "n");
    // An attempt made long ago has the id of that time.
    old_attempt.attempt.id = AttemptId::made_at(long_ago);
    old_attempt.attempt.created_at = long_ago;
    let new_attempt = attempt_record(
        &app.id,
        &short_lived.id,
        hook,
        DeliveryUpdate::Delivered,
        "n",
    );
    store
        .record_attempts(&[old_attempt, new_attempt])
        .await
        .unwrap();
    let done_recent = attempt_record(&app.id, &recent.id, hook, DeliveryUpdate::Delivered, "n");
    store.record_attempts(&[done_recent]).await.unwrap();

    let purged = store
        .apply_retention(t - Duration::days(1), now())
        .await
        .unwrap();
    assert_eq!((purged.payloads, purged.attempts), (2, 1));
    let payload = |msg: &MessageId| {
        let msg = msg.clone();
        let app = app.id.clone();
        async move {
            store
                .get_message(&app, &msg.clone().into())
                .await
                .unwrap()
                .unwrap()
                .payload
        }
    };
    assert!(payload(&old_done.id).await.is_empty());
    assert!(payload(&short_lived.id).await.is_empty());
    assert_eq!(payload(&old_pending.id).await, old_pending.payload);
    assert_eq!(payload(&recent.id).await, recent.payload);
    let attempts = |msg: &MessageId| {
        let scope = AttemptScope::Message(msg.clone());
        let app = app.id.clone();
        async move {
            let page = PageRequest::default();
            store
                .list_attempts(&app, &scope, &Default::default(), &page)
                .await
                .unwrap()
                .items
                .len()
        }
    };
    assert_eq!(attempts(&old_done.id).await, 0);
    assert_eq!(attempts(&short_lived.id).await, 1);
    assert!(
        store
            .apply_retention(t - Duration::days(1), now())
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn a_refused_batch_writes_nothing(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 2).await;
    let t = now();
    let msg = message_at(&app.id, "a", t);
    store.create_message(&msg, None, None).await.unwrap();
    let first = attempt_record(
        &app.id,
        &msg.id,
        &hooks[0].id,
        DeliveryUpdate::Delivered,
        "n",
    );
    let second = attempt_record(&app.id, &msg.id, &hooks[1].id, DeliveryUpdate::Failed, "n");
    // The same attempt twice: its id is taken by the time the second copy is written.
    let refused = store.record_attempts(&[first.clone(), second, first]).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    for hook in &hooks {
        assert_eq!(
            status(store, &msg.id, &hook.id).await,
            (DeliveryStatus::Pending, 0, Some(t))
        );
    }
    let attempts = store
        .list_attempts(
            &app.id,
            &AttemptScope::Message(msg.id.clone()),
            &Default::default(),
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(attempts.items.is_empty());
}

/// Two results for one delivery in one batch apply in order, each counting its attempt, beside
/// the results for other deliveries.
pub(crate) async fn results_for_one_delivery_apply_in_order(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 2).await;
    let (twice, once) = (&hooks[0].id, &hooks[1].id);
    let t = now();
    let msg = message_at(&app.id, "user.created", t);
    store
        .create_message(&msg, Some(&lease("node-a", t + minutes(1))), None)
        .await
        .unwrap();
    let record = |endpoint: &EndpointId, update| {
        attempt_record(&app.id, &msg.id, endpoint, update, "node-a")
    };
    store
        .record_attempts(&[
            record(twice, DeliveryUpdate::RetryAt(t + minutes(5))),
            record(once, DeliveryUpdate::Delivered),
            record(twice, DeliveryUpdate::Failed),
        ])
        .await
        .unwrap();
    assert_eq!(
        status(store, &msg.id, twice).await,
        (DeliveryStatus::Fail, 2, None)
    );
    assert_eq!(
        status(store, &msg.id, once).await,
        (DeliveryStatus::Success, 1, None)
    );
}
