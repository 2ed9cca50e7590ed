//! Claims and leases, as several nodes use them: exclusive between concurrent claimers,
//! held by the ingesting node, expiring when a node dies, renewed while it lives, released
//! when it gives work back; `deliverAt` holds; and the wake-ups other nodes get.

use std::collections::HashSet;

use time::Duration;
use webhookd_core::model::DeliveryStatus;
use webhookd_core::time::now;
use webhookd_store::{DeliveryUpdate, Store};

use crate::support::{
    Key, app_with_endpoints, attempt_record, claim, depth, lease, message_at, minutes, status,
    woken,
};

pub(crate) async fn fresh_deliveries_are_leased_to_the_ingesting_node(store: &dyn Store) {
    let (app, _) = app_with_endpoints(store, 2).await;
    let t = now();
    let msg = message_at(&app.id, "user.created", t);
    let fanned = store
        .create_message(&msg, Some(&lease("node-a", t + minutes(1))), None)
        .await
        .unwrap();
    assert_eq!(fanned.len(), 2);
    assert_eq!(store.queue_depth(t).await.unwrap(), depth(0, 0, 2));
    assert_eq!(store.next_due_at(t).await.unwrap(), None);
    // Nobody else claims them while the lease holds.
    assert!(
        claim(store, "node-b", t + Duration::seconds(30), 10, &[])
            .await
            .is_empty()
    );

    // Once it has expired (its node died), another node takes them over, and holds them.
    let later = t + minutes(2);
    let taken = store
        .claim_due(&lease("node-b", later + minutes(1)), later, 10, &[])
        .await
        .unwrap();
    assert_eq!(taken.len(), 2);
    assert!(taken.iter().all(|due| due.message == msg));
    assert!(claim(store, "node-c", later, 10, &[]).await.is_empty());
}

pub(crate) async fn deliver_at_holds_until_due(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 1).await;
    let t = now();
    let mut held = message_at(&app.id, "user.created", t);
    held.deliver_at = Some(t + minutes(60));
    store
        .create_message(&held, Some(&lease("node-a", t + minutes(1))), None)
        .await
        .unwrap();
    // Not claimed by the ingesting node: it waits in the store.
    assert_eq!(
        status(store, &held.id, &hooks[0].id).await,
        (DeliveryStatus::Pending, 0, held.deliver_at)
    );
    assert_eq!(store.queue_depth(t).await.unwrap(), depth(0, 1, 0));
    assert_eq!(store.next_due_at(t).await.unwrap(), held.deliver_at);
    // What is already due is not a time to wait for.
    assert_eq!(store.next_due_at(t + minutes(60)).await.unwrap(), None);
    assert!(
        claim(store, "node-b", t + minutes(59), 10, &[])
            .await
            .is_empty()
    );
    let due = store
        .claim_due(&lease("node-b", t + minutes(61)), t + minutes(60), 10, &[])
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].message, held);

    // A deliverAt already past is due at once, and leased like any fresh delivery.
    let mut past = message_at(&app.id, "user.created", t);
    past.deliver_at = Some(t - minutes(5));
    store
        .create_message(&past, Some(&lease("node-a", t + minutes(1))), None)
        .await
        .unwrap();
    assert_eq!(
        status(store, &past.id, &hooks[0].id).await,
        (DeliveryStatus::Pending, 0, Some(t))
    );
    assert!(claim(store, "node-b", t, 10, &[]).await.is_empty());
}

pub(crate) async fn concurrent_claims_are_disjoint(store: &dyn Store) {
    let (app, _) = app_with_endpoints(store, 4).await;
    let t = now();
    for _ in 0..50 {
        store
            .create_message(&message_at(&app.id, "user.created", t), None, None)
            .await
            .unwrap();
    }
    let claimer = |owner: &'static str| async move {
        let mut mine = Vec::new();
        loop {
            let claimed = claim(store, owner, t, 7, &[]).await;
            if claimed.is_empty() {
                return mine;
            }
            mine.extend(claimed);
        }
    };
    let (a, b) = tokio::join!(claimer("node-a"), claimer("node-b"));
    let (set_a, set_b): (HashSet<Key>, HashSet<Key>) =
        (a.iter().cloned().collect(), b.iter().cloned().collect());
    assert_eq!(set_a.len(), a.len(), "node-a claimed a delivery twice");
    assert_eq!(set_b.len(), b.len(), "node-b claimed a delivery twice");
    assert!(
        set_a.is_disjoint(&set_b),
        "two nodes claimed the same delivery"
    );
    assert_eq!(a.len() + b.len(), 200);
    assert_eq!(store.queue_depth(t).await.unwrap(), depth(0, 0, 200));
}

pub(crate) async fn claims_skip_endpoints_and_take_oldest_due_first(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 2).await;
    let (first, second) = (&hooks[0].id, &hooks[1].id);
    let t = now();
    let newer = message_at(&app.id, "user.created", t - minutes(1));
    let older = message_at(&app.id, "user.created", t - minutes(2));
    store.create_message(&newer, None, None).await.unwrap();
    store.create_message(&older, None, None).await.unwrap();

    let skip = [second.clone()];
    assert_eq!(
        claim(store, "node-a", t, 1, &skip).await,
        vec![(older.id.clone(), first.clone())]
    );
    assert_eq!(
        claim(store, "node-a", t, 10, &skip).await,
        vec![(newer.id.clone(), first.clone())]
    );
    assert_eq!(
        claim(store, "node-a", t, 10, &[]).await,
        vec![
            (older.id.clone(), second.clone()),
            (newer.id.clone(), second.clone())
        ]
    );
    assert!(claim(store, "node-a", t, 0, &[]).await.is_empty());
}

pub(crate) async fn leases_renew_and_release(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 1).await;
    let hook = &hooks[0].id;
    let t = now();
    let mut keys = Vec::new();
    for _ in 0..3 {
        let msg = message_at(&app.id, "user.created", t);
        store.create_message(&msg, None, None).await.unwrap();
        keys.push((msg.id, hook.clone()));
    }
    assert_eq!(
        store
            .next_due_at(t - Duration::milliseconds(1))
            .await
            .unwrap(),
        Some(t)
    );
    assert_eq!(claim(store, "node-a", t, 10, &[]).await.len(), 3);
    assert_eq!(
        store
            .next_due_at(t - Duration::milliseconds(1))
            .await
            .unwrap(),
        None
    );

    // Only the leases named are renewed, and only by their owner.
    assert_eq!(
        store
            .renew_leases(&lease("node-a", t + minutes(10)), &keys[..2])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .renew_leases(&lease("node-b", t + minutes(10)), &keys)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .renew_leases(&lease("node-a", t + minutes(10)), &[])
            .await
            .unwrap(),
        0
    );
    // Renewed leases hold past their first expiry; the one not named does not.
    assert_eq!(
        claim(store, "node-b", t + minutes(5), 10, &[]).await,
        keys[2..].to_vec()
    );
    assert_eq!(
        store
            .renew_leases(&lease("node-a", t + minutes(10)), &keys)
            .await
            .unwrap(),
        2,
        "a lease now held by another node is not renewed"
    );
    store.release_leases("node-b", &keys[2..]).await.unwrap();
    assert_eq!(
        store
            .renew_leases(&lease("node-a", t + minutes(10)), &keys[2..])
            .await
            .unwrap(),
        0
    );
    assert_eq!(claim(store, "node-a", t, 10, &[]).await, keys[2..].to_vec());
    assert_eq!(
        store
            .renew_leases(&lease("node-a", t + minutes(10)), &keys)
            .await
            .unwrap(),
        3
    );

    // Only the owner releases its claims.
    store.release_leases("node-b", &keys[..1]).await.unwrap();
    assert!(claim(store, "node-b", t, 10, &[]).await.is_empty());
    store.release_leases("node-a", &keys[..1]).await.unwrap();
    assert_eq!(
        store
            .next_due_at(t - Duration::milliseconds(1))
            .await
            .unwrap(),
        Some(t)
    );
    assert_eq!(claim(store, "node-b", t, 10, &[]).await, keys[..1].to_vec());
    store.release_leases("node-a", &[]).await.unwrap();

    assert_eq!(store.release_all_leases().await.unwrap(), 3);
    assert_eq!(store.queue_depth(t).await.unwrap(), depth(3, 0, 0));
    // Renewal covers pending deliveries only.
    assert_eq!(claim(store, "node-a", t, 10, &[]).await.len(), 3);
    let (msg, endpoint) = &keys[0];
    let done = attempt_record(&app.id, msg, endpoint, DeliveryUpdate::Delivered, "node-a");
    store.record_attempts(&[done]).await.unwrap();
    assert_eq!(
        store
            .renew_leases(&lease("node-a", t + minutes(10)), &keys)
            .await
            .unwrap(),
        2
    );
}

pub(crate) async fn other_nodes_are_woken_by_due_work(store: &dyn Store) {
    // A store without signals (SQLite: one node) has nothing to test here.
    let Some(due) = store.due_notifications() else {
        return;
    };
    let (app, hooks) = app_with_endpoints(store, 1).await;
    let t = now();
    let msg = message_at(&app.id, "a", t);
    // Fresh deliveries leased to their node signal nothing: that node sends them itself.
    store
        .create_message(&msg, Some(&lease("node-a", t + minutes(1))), None)
        .await
        .unwrap();
    // The listener wakes once when it starts listening; from then on, each wake-up below
    // comes from the write before it.
    woken(&due, "the listener started").await;

    store
        .release_leases("node-a", &[(msg.id.clone(), hooks[0].id.clone())])
        .await
        .unwrap();
    woken(&due, "release_leases").await;

    let failed = attempt_record(
        &app.id,
        &msg.id,
        &hooks[0].id,
        DeliveryUpdate::Failed,
        "node-a",
    );
    store.record_attempts(&[failed]).await.unwrap();
    assert_eq!(
        store
            .recover(&hooks[0].id, t - minutes(1), t + minutes(1), t)
            .await
            .unwrap(),
        1
    );
    woken(&due, "recover").await;

    store
        .create_message(&message_at(&app.id, "a", t), None, None)
        .await
        .unwrap();
    woken(&due, "create_message without a lease").await;
}
