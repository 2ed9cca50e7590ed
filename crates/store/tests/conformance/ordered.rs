//! Ordered endpoints: the claim hands out only the head of an endpoint's line, never while
//! an earlier delivery is pending (leased, or waiting for a retry) or another one of the line
//! is leased anywhere; a final result releases the next. Claim-at-insert, expired leases,
//! recovery, requeue and turning ordering on or off keep the line.

use std::collections::HashSet;

use time::Duration;
use webhookd_core::model::{Application, DeliveryStatus, Endpoint};
use webhookd_core::time::now;
use webhookd_core::{EndpointId, MessageId};
use webhookd_store::{DeliveryUpdate, Store};

use crate::support::{
    Key, app_with_endpoints, attempt_record, claim, endpoint, lease, message_at, minutes, status,
};

/// An application with one ordered endpoint and one unordered one.
async fn ordered_and_not(store: &dyn Store) -> (Application, Endpoint, Endpoint) {
    let (app, mut hooks) = app_with_endpoints(store, 1).await;
    let mut ordered = endpoint(&app.id, Some("ordered"));
    ordered.ordered = true;
    store.create_endpoint(&ordered, None).await.unwrap();
    (app, ordered, hooks.remove(0))
}

/// Records one scheduled attempt's result, as the engine does for an ordered endpoint.
async fn record(
    store: &dyn Store,
    app: &Application,
    msg: &MessageId,
    endpoint: &EndpointId,
    update: DeliveryUpdate,
    owner: &str,
) {
    let mut record = attempt_record(&app.id, msg, endpoint, update, owner);
    record.ordered = true;
    store.record_attempts(&[record]).await.unwrap();
}

fn only(claimed: &[Key], endpoint: &EndpointId) -> Vec<MessageId> {
    claimed
        .iter()
        .filter(|(_, id)| id == endpoint)
        .map(|(msg, _)| msg.clone())
        .collect()
}

pub(crate) async fn ordered_claims_hand_out_the_head_of_the_line_only(store: &dyn Store) {
    let (app, ordered, plain) = ordered_and_not(store).await;
    let t = now();
    let msgs: Vec<_> = (0..3)
        .map(|_| message_at(&app.id, "user.created", t))
        .collect();
    let node_a = lease("node-a", t + minutes(1));
    let mut handed = Vec::new();
    for msg in &msgs {
        handed.push(
            store
                .create_message(msg, Some(&node_a), None)
                .await
                .unwrap(),
        );
    }
    // The first is the head: claimed at insert. The others wait, unclaimed, in the line; the
    // unordered endpoint gets every message at once.
    assert!(handed[0].contains(&ordered.id) && handed[0].contains(&plain.id));
    assert_eq!(handed[1], vec![plain.id.clone()]);
    assert_eq!(handed[2], vec![plain.id.clone()]);
    for msg in &msgs {
        record(
            store,
            &app,
            &msg.id,
            &plain.id,
            DeliveryUpdate::Delivered,
            "node-a",
        )
        .await;
    }
    // While the head is leased, nobody gets the next.
    assert!(claim(store, "node-b", t, 10, &[]).await.is_empty());

    // A retry holds the line: the head waits for its time, the next waits for the head.
    let retry_at = t + minutes(1);
    record(
        store,
        &app,
        &msgs[0].id,
        &ordered.id,
        DeliveryUpdate::RetryAt(retry_at),
        "node-a",
    )
    .await;
    assert!(
        claim(store, "node-b", t + Duration::seconds(30), 10, &[])
            .await
            .is_empty()
    );
    let at = t + minutes(2);
    let claimed = claim(store, "node-b", at, 10, &[]).await;
    assert_eq!(only(&claimed, &ordered.id), vec![msgs[0].id.clone()]);
    assert_eq!(claimed.len(), 1);
    assert!(claim(store, "node-c", at, 10, &[]).await.is_empty());

    // A final failure releases the next, and only the next.
    record(
        store,
        &app,
        &msgs[0].id,
        &ordered.id,
        DeliveryUpdate::Failed,
        "node-b",
    )
    .await;
    assert_eq!(
        status(store, &msgs[0].id, &ordered.id).await.0,
        DeliveryStatus::Fail
    );
    let claimed = claim(store, "node-c", at, 10, &[]).await;
    assert_eq!(claimed, vec![(msgs[1].id.clone(), ordered.id.clone())]);
    record(
        store,
        &app,
        &msgs[1].id,
        &ordered.id,
        DeliveryUpdate::Delivered,
        "node-c",
    )
    .await;
    let claimed = claim(store, "node-c", at, 10, &[]).await;
    assert_eq!(claimed, vec![(msgs[2].id.clone(), ordered.id.clone())]);
    record(
        store,
        &app,
        &msgs[2].id,
        &ordered.id,
        DeliveryUpdate::Delivered,
        "node-c",
    )
    .await;
    assert!(claim(store, "node-c", at, 10, &[]).await.is_empty());

    // With nothing pending, a new message is the head again: claimed at insert.
    let next = message_at(&app.id, "user.created", t);
    let handed = store
        .create_message(&next, Some(&lease("node-c", at + minutes(1))), None)
        .await
        .unwrap();
    assert!(handed.contains(&ordered.id));
}

pub(crate) async fn concurrent_claims_take_one_head_per_line(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 0).await;
    assert!(hooks.is_empty());
    let mut lines = Vec::new();
    for _ in 0..4 {
        let mut hook = endpoint(&app.id, None);
        hook.ordered = true;
        store.create_endpoint(&hook, None).await.unwrap();
        lines.push(hook.id);
    }
    let t = now();
    let mut sent = Vec::new();
    for _ in 0..20 {
        let msg = message_at(&app.id, "user.created", t);
        store.create_message(&msg, None, None).await.unwrap();
        sent.push(msg.id);
    }
    // Nodes claim at once, again and again, finishing what they got: every delivery is handed
    // out once, one at a time per line, in the order of the messages. A claim is logged before
    // its result is recorded, so the log holds the order in which each line was handed out.
    let log = std::sync::Mutex::new(Vec::<Key>::new());
    let claimer = |owner: &'static str| {
        let (app, log) = (app.clone(), &log);
        async move {
            let mut mine: Vec<Key> = Vec::new();
            let mut idle = 0;
            while idle < 20 {
                let claimed = claim(store, owner, t, 100, &[]).await;
                let endpoints: HashSet<_> = claimed.iter().map(|(_, id)| id.clone()).collect();
                assert_eq!(
                    endpoints.len(),
                    claimed.len(),
                    "two of one line in one claim"
                );
                if claimed.is_empty() {
                    idle += 1;
                    tokio::task::yield_now().await;
                }
                for (msg, endpoint) in claimed {
                    log.lock().unwrap().push((msg.clone(), endpoint.clone()));
                    record(
                        store,
                        &app,
                        &msg,
                        &endpoint,
                        DeliveryUpdate::Delivered,
                        owner,
                    )
                    .await;
                    mine.push((msg, endpoint));
                }
            }
            mine
        }
    };
    let (a, b) = tokio::join!(claimer("node-a"), claimer("node-b"));
    let all: Vec<Key> = a.iter().chain(&b).cloned().collect();
    let unique: HashSet<&Key> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a delivery was handed out twice");
    assert_eq!(all.len(), 80);
    let log = log.into_inner().unwrap();
    for line in &lines {
        assert_eq!(only(&log, line), sent, "a line went out of order");
    }
}

pub(crate) async fn an_expired_head_is_taken_over_in_order(store: &dyn Store) {
    let (app, ordered, _) = ordered_and_not(store).await;
    let t = now();
    let (first, second) = (
        message_at(&app.id, "user.created", t),
        message_at(&app.id, "user.created", t),
    );
    for msg in [&first, &second] {
        store
            .create_message(msg, Some(&lease("node-a", t + minutes(1))), None)
            .await
            .unwrap();
    }
    // node-a died holding the head: once its lease ends, the head is taken over, not the next.
    let at = t + minutes(2);
    let claimed = only(&claim(store, "node-b", at, 10, &[]).await, &ordered.id);
    assert_eq!(claimed, vec![first.id.clone()]);
    assert!(only(&claim(store, "node-c", at, 10, &[]).await, &ordered.id).is_empty());
    record(
        store,
        &app,
        &first.id,
        &ordered.id,
        DeliveryUpdate::Delivered,
        "node-b",
    )
    .await;
    let claimed = only(&claim(store, "node-c", at, 10, &[]).await, &ordered.id);
    assert_eq!(claimed, vec![second.id.clone()]);
}

pub(crate) async fn recover_and_requeue_join_the_end_of_the_line(store: &dyn Store) {
    let (app, ordered, _) = ordered_and_not(store).await;
    let t = now();
    let msgs: Vec<_> = (0..3)
        .map(|_| message_at(&app.id, "user.created", t))
        .collect();
    for msg in &msgs {
        store.create_message(msg, None, None).await.unwrap();
    }
    let line = &ordered.id;
    let take =
        |owner: &'static str| async move { only(&claim(store, owner, t, 10, &[]).await, line) };
    assert_eq!(take("node-a").await, vec![msgs[0].id.clone()]);
    record(
        store,
        &app,
        &msgs[0].id,
        &ordered.id,
        DeliveryUpdate::Failed,
        "node-a",
    )
    .await;
    assert_eq!(take("node-a").await, vec![msgs[1].id.clone()]);
    // Recovered while the next is in flight: it waits for that one (one in flight per line),
    // and queues behind what was already pending.
    let recovered = store
        .recover(&ordered.id, t - minutes(1), t + minutes(1), t)
        .await
        .unwrap();
    assert_eq!(recovered, 1);
    assert!(take("node-b").await.is_empty());
    record(
        store,
        &app,
        &msgs[1].id,
        &ordered.id,
        DeliveryUpdate::Delivered,
        "node-a",
    )
    .await;
    assert_eq!(take("node-b").await, vec![msgs[2].id.clone()]);
    record(
        store,
        &app,
        &msgs[2].id,
        &ordered.id,
        DeliveryUpdate::Delivered,
        "node-b",
    )
    .await;
    assert_eq!(take("node-b").await, vec![msgs[0].id.clone()]);
    record(
        store,
        &app,
        &msgs[0].id,
        &ordered.id,
        DeliveryUpdate::Delivered,
        "node-b",
    )
    .await;

    // A requeued (resent) message goes to the end of the line; one still pending stays put.
    let fresh = message_at(&app.id, "user.created", t);
    store.create_message(&fresh, None, None).await.unwrap();
    store
        .requeue(&app.id, &msgs[1].id, &ordered.id, t)
        .await
        .unwrap();
    store
        .requeue(&app.id, &fresh.id, &ordered.id, t)
        .await
        .unwrap();
    let (state, attempts, _) = status(store, &msgs[1].id, &ordered.id).await;
    assert_eq!((state, attempts), (DeliveryStatus::Pending, 0));
    assert_eq!(take("node-b").await, vec![fresh.id.clone()]);
    record(
        store,
        &app,
        &fresh.id,
        &ordered.id,
        DeliveryUpdate::Delivered,
        "node-b",
    )
    .await;
    assert_eq!(take("node-b").await, vec![msgs[1].id.clone()]);
}

pub(crate) async fn turning_ordering_on_and_off_keeps_pending_work(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 1).await;
    let mut hook = hooks[0].clone();
    let t = now();
    let msgs: Vec<_> = (0..3)
        .map(|_| message_at(&app.id, "user.created", t))
        .collect();
    for msg in &msgs {
        store.create_message(msg, None, None).await.unwrap();
    }
    hook.ordered = true;
    store.update_endpoint(&hook).await.unwrap();
    assert!(
        store
            .get_endpoint(&app.id, &hook.id.clone().into())
            .await
            .unwrap()
            .unwrap()
            .ordered
    );
    // Now a line, in message order.
    assert_eq!(
        claim(store, "node-a", t, 10, &[]).await,
        vec![(msgs[0].id.clone(), hook.id.clone())]
    );
    // Off again: the rest go at once (the first is still leased).
    hook.ordered = false;
    store.update_endpoint(&hook).await.unwrap();
    let rest: HashSet<Key> = claim(store, "node-a", t, 10, &[])
        .await
        .into_iter()
        .collect();
    assert_eq!(
        rest,
        HashSet::from([
            (msgs[1].id.clone(), hook.id.clone()),
            (msgs[2].id.clone(), hook.id.clone())
        ])
    );
}
