//! Bulk operations (`BulkStore`): replays, content erasure, usage counts, and a message sent
//! to one endpoint alone.

use webhookd_core::model::DeliveryStatus;
use webhookd_core::time::now;
use webhookd_store::{
    AttemptFilter, AttemptScope, DeliveryUpdate, PageRequest, ReplayFilter, Store,
};

use crate::support::{
    app_with_endpoints, attempt_record, endpoint, lease, message_at, minutes, status,
};

pub(crate) async fn replay_missing_fills_only_absent_deliveries(store: &dyn Store) {
    let (app, _) = app_with_endpoints(store, 1).await;
    let t = now();
    let before = message_at(&app.id, "a", t - minutes(90));
    let missed = message_at(&app.id, "a", t - minutes(30));
    let mut elsewhere = message_at(&app.id, "a", t - minutes(25));
    elsewhere.channels = vec!["eu".into()];
    let other_type = message_at(&app.id, "b", t - minutes(20));
    let erased = message_at(&app.id, "a", t - minutes(15));
    for msg in [&before, &missed, &elsewhere, &other_type, &erased] {
        store.create_message(msg, None, None).await.unwrap();
    }
    store
        .expunge_contents(&app.id, std::slice::from_ref(&erased.id), now())
        .await
        .unwrap();
    let mut late = endpoint(&app.id, None);
    late.event_types = vec!["a".into()];
    late.channels = vec!["us".into(), "eu".into()];
    late.disabled = true;
    store.create_endpoint(&late, None).await.unwrap();
    let mut got_it = message_at(&app.id, "a", t - minutes(10));
    got_it.channels = vec!["us".into()];
    late.disabled = false;
    store.update_endpoint(&late).await.unwrap();
    store.create_message(&got_it, None, None).await.unwrap();

    let replayed = store
        .replay_missing(&late, t - minutes(60), t, t)
        .await
        .unwrap();
    // `missed` has no channel and `late` listens to some: it does not match.
    assert_eq!(replayed, 1);
    assert_eq!(
        status(store, &elsewhere.id, &late.id).await,
        (DeliveryStatus::Pending, 0, Some(t))
    );
    for msg in [&before, &missed, &other_type, &erased] {
        assert!(
            store
                .get_delivery(&msg.id, &late.id)
                .await
                .unwrap()
                .is_none()
        );
    }
    assert_eq!(
        store
            .replay_missing(&late, t - minutes(60), t, t)
            .await
            .unwrap(),
        0,
        "a second replay finds nothing missing"
    );
}

pub(crate) async fn replay_deliveries_reopens_finished_ones_by_filter(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 1).await;
    let hook = &hooks[0].id;
    let t = now();
    let mut tagged = message_at(&app.id, "a", t - minutes(30));
    tagged.tags = vec!["vip".into()];
    let failed = message_at(&app.id, "b", t - minutes(20));
    let pending = message_at(&app.id, "a", t - minutes(10));
    for msg in [&tagged, &failed, &pending] {
        store.create_message(msg, None, None).await.unwrap();
    }
    let record = |msg, update| attempt_record(&app.id, msg, hook, update, "node-a");
    store
        .record_attempts(&[
            record(&tagged.id, DeliveryUpdate::Delivered),
            record(&failed.id, DeliveryUpdate::Failed),
        ])
        .await
        .unwrap();
    let window = ReplayFilter {
        since: t - minutes(60),
        until: t,
        event_types: Vec::new(),
        channel: None,
        tag: None,
        status: None,
        status_code_class: None,
    };
    let by_tag = ReplayFilter {
        tag: Some("vip".into()),
        ..window.clone()
    };
    assert_eq!(store.replay_deliveries(hook, &by_tag, t).await.unwrap(), 1);
    assert_eq!(
        status(store, &tagged.id, hook).await,
        (DeliveryStatus::Pending, 0, Some(t))
    );
    let none = ReplayFilter {
        status_code_class: Some(400),
        ..window.clone()
    };
    assert_eq!(store.replay_deliveries(hook, &none, t).await.unwrap(), 0);
    let by_class = ReplayFilter {
        status_code_class: Some(500),
        event_types: vec!["b".into()],
        status: Some(DeliveryStatus::Fail),
        ..window.clone()
    };
    assert_eq!(
        store.replay_deliveries(hook, &by_class, t).await.unwrap(),
        1
    );
    assert_eq!(
        status(store, &failed.id, hook).await.0,
        DeliveryStatus::Pending
    );
    // Pending deliveries are left alone, whatever the filter.
    assert_eq!(store.replay_deliveries(hook, &window, t).await.unwrap(), 0);
    assert_eq!(
        status(store, &pending.id, hook).await,
        (DeliveryStatus::Pending, 0, Some(pending.created_at))
    );
}

pub(crate) async fn expunged_contents_are_erased(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 1).await;
    let (other, _) = app_with_endpoints(store, 0).await;
    let hook = &hooks[0].id;
    let t = now();
    let sent = message_at(&app.id, "a", t - minutes(3));
    let waiting = message_at(&app.id, "a", t - minutes(2));
    let kept = message_at(&other.id, "a", t - minutes(1));
    for msg in [&sent, &waiting, &kept] {
        store.create_message(msg, None, None).await.unwrap();
    }
    let record = attempt_record(&app.id, &sent.id, hook, DeliveryUpdate::Delivered, "node-a");
    let attempt = record.attempt.id.clone();
    store.record_attempts(&[record]).await.unwrap();

    let expunged = store
        .expunge_contents(&app.id, &[waiting.id.clone(), kept.id.clone()], now())
        .await
        .unwrap();
    assert_eq!(
        expunged,
        std::slice::from_ref(&waiting.id),
        "another application's message is not found"
    );
    let read = store
        .get_message(&app.id, &waiting.id.clone().into())
        .await
        .unwrap()
        .unwrap();
    assert!(read.payload.is_empty());
    assert_eq!(
        status(store, &waiting.id, hook).await.0,
        DeliveryStatus::Canceled
    );
    let kept_read = store
        .get_message(&other.id, &kept.id.clone().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept_read.payload, kept.payload);

    assert!(
        store
            .expunge_attempt_content(&app.id, &sent.id, &attempt)
            .await
            .unwrap()
    );
    let read = store
        .get_attempt(&app.id, &sent.id, &attempt)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.response, "");
    assert!(
        !store
            .expunge_attempt_content(&other.id, &sent.id, &attempt)
            .await
            .unwrap()
    );

    assert_eq!(store.expunge_app_contents(&app.id, now()).await.unwrap(), 1);
    assert_eq!(store.expunge_app_contents(&app.id, now()).await.unwrap(), 0);
    let read = store
        .get_message(&app.id, &sent.id.clone().into())
        .await
        .unwrap()
        .unwrap();
    assert!(read.payload.is_empty());
    assert_eq!(
        status(store, &sent.id, hook).await.0,
        DeliveryStatus::Success
    );
}

pub(crate) async fn usage_counts_deliveries_per_application(store: &dyn Store) {
    let (busy, _) = app_with_endpoints(store, 2).await;
    let (quiet, _) = app_with_endpoints(store, 0).await;
    let t = now();
    store
        .create_message(&message_at(&busy.id, "a", t - minutes(5)), None, None)
        .await
        .unwrap();
    store
        .create_message(&message_at(&busy.id, "a", t - minutes(90)), None, None)
        .await
        .unwrap();
    let named = store
        .usage_by_app(
            Some(&[quiet.id.clone(), busy.id.clone()]),
            t - minutes(60),
            t,
        )
        .await
        .unwrap();
    let mut expected = vec![(busy.id.clone(), 2), (quiet.id.clone(), 0)];
    expected.sort();
    let counts: Vec<_> = named
        .iter()
        .map(|usage| (usage.app_id.clone(), usage.message_destinations))
        .collect();
    assert_eq!(counts, expected);
    let all = store.usage_by_app(None, t - minutes(60), t).await.unwrap();
    let busy_usage = all.iter().find(|usage| usage.app_id == busy.id).unwrap();
    assert_eq!(busy_usage.message_destinations, 2);
    assert!(all.iter().all(|usage| usage.app_id != quiet.id));
}

pub(crate) async fn a_message_to_one_endpoint_goes_there_alone(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 2).await;
    let t = now();
    let msg = message_at(&app.id, "example", t);
    let mut filtered = hooks[0].clone();
    filtered.event_types = vec!["other".into()];
    store.update_endpoint(&filtered).await.unwrap();
    store
        .create_message_to(&msg, &filtered.id, Some(&lease("node-a", t + minutes(1))))
        .await
        .unwrap();
    assert_eq!(
        status(store, &msg.id, &filtered.id).await.0,
        DeliveryStatus::Pending
    );
    assert!(
        store
            .get_delivery(&msg.id, &hooks[1].id)
            .await
            .unwrap()
            .is_none()
    );
    let attempts = store
        .list_attempts(
            &app.id,
            &AttemptScope::Message(msg.id.clone()),
            &AttemptFilter::default(),
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(attempts.items.is_empty());
    assert!(
        store
            .get_message(&app.id, &msg.id.clone().into())
            .await
            .unwrap()
            .is_some()
    );
}
