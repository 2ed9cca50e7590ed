//! The delivery rollup: what recorded batches add to each minute, across batches and nodes,
//! that a refused batch adds nothing, and pruning.

use time::OffsetDateTime;
use webhookd_core::latency;
use webhookd_core::time::{from_unix_ms, now, to_unix_ms};
use webhookd_store::{AttemptRecord, DeliveryUpdate, RollupMinute, Store, StoreError};

use crate::support::{app_with_endpoints, attempt_record, message_at, minutes};

/// The start of the minute holding `at`.
fn minute_of(at: OffsetDateTime) -> OffsetDateTime {
    from_unix_ms(to_unix_ms(at).div_euclid(60_000) * 60_000)
}

/// A record of `update` made at `at`, taking `duration_ms`.
fn record_at(base: AttemptRecord, at: OffsetDateTime, duration_ms: u64) -> AttemptRecord {
    let mut record = base;
    record.attempt.created_at = at;
    record.attempt.duration_ms = duration_ms;
    record
}

pub(crate) async fn batches_add_into_their_minutes(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 2).await;
    // Two minutes ago, on a minute boundary plus a little, so the batch spans two minutes.
    let first_minute = minute_of(now() - minutes(3));
    let ingested = first_minute + time::Duration::seconds(10);
    let msg = message_at(&app.id, "a", ingested);
    store.create_message(&msg, None, None).await.unwrap();
    let other = message_at(&app.id, "a", ingested);
    store.create_message(&other, None, None).await.unwrap();
    let record = |msg: &webhookd_core::MessageId, hook: usize, update| {
        attempt_record(&app.id, msg, &hooks[hook].id, update, "node-a")
    };
    let retry_at = now() + minutes(5);
    // Minute one: a retry, then success 1.5 s after ingest; a final failure.
    let batch = [
        record_at(
            record(&msg.id, 0, DeliveryUpdate::RetryAt(retry_at)),
            ingested,
            3,
        ),
        record_at(
            record(&msg.id, 0, DeliveryUpdate::Delivered),
            ingested + time::Duration::milliseconds(1_480),
            20,
        ),
        record_at(
            record(&msg.id, 1, DeliveryUpdate::Failed),
            ingested + time::Duration::seconds(2),
            5,
        ),
        // Minute two: a manual resend that failed.
        record_at(
            record(&other.id, 1, DeliveryUpdate::Manual { success: false }),
            first_minute + minutes(1) + time::Duration::seconds(1),
            5,
        ),
    ];
    store.record_attempts(&batch).await.unwrap();
    let minutes_read = store.rollup_minutes(first_minute).await.unwrap();
    assert_eq!(minutes_read.len(), 2, "{minutes_read:?}");
    let one = &minutes_read[0];
    assert_eq!(one.start, first_minute);
    assert_eq!(
        (one.attempts, one.delivered, one.failed, one.retried),
        (3, 1, 1, 1)
    );
    let mut expected = [0; latency::BUCKETS];
    expected[latency::bucket_of(1_500)] = 1;
    assert_eq!(one.latency, expected);
    let two = &minutes_read[1];
    assert_eq!(two.start, first_minute + minutes(1));
    assert_eq!(
        (two.attempts, two.delivered, two.failed, two.retried),
        (1, 0, 1, 0)
    );

    // Another node's batch adds into the same minute.
    let success = record_at(
        attempt_record(
            &app.id,
            &other.id,
            &hooks[0].id,
            DeliveryUpdate::Delivered,
            "node-b",
        ),
        ingested + time::Duration::milliseconds(40),
        2,
    );
    store.record_attempts(&[success]).await.unwrap();
    let again = store.rollup_minutes(first_minute).await.unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!((again[0].attempts, again[0].delivered), (4, 2));
    expected[latency::bucket_of(42)] += 1;
    assert_eq!(again[0].latency, expected);
    assert_eq!(again[1], *two);

    // Reading from a later minute leaves the earlier out.
    let later = store
        .rollup_minutes(first_minute + minutes(1))
        .await
        .unwrap();
    assert_eq!(later, vec![*two]);
}

pub(crate) async fn a_refused_batch_adds_nothing(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 1).await;
    let msg = message_at(&app.id, "a", now());
    store.create_message(&msg, None, None).await.unwrap();
    let first = attempt_record(
        &app.id,
        &msg.id,
        &hooks[0].id,
        DeliveryUpdate::Delivered,
        "n",
    );
    let refused = store.record_attempts(&[first.clone(), first]).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let read = store.rollup_minutes(now() - minutes(10)).await.unwrap();
    assert!(read.is_empty(), "{read:?}");
}

pub(crate) async fn old_minutes_are_pruned(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 1).await;
    let t = now();
    let old_time = t - time::Duration::days(3);
    let old = message_at(&app.id, "a", old_time);
    let recent = message_at(&app.id, "a", t);
    for msg in [&old, &recent] {
        store.create_message(msg, None, None).await.unwrap();
    }
    let batch = [
        record_at(
            attempt_record(
                &app.id,
                &old.id,
                &hooks[0].id,
                DeliveryUpdate::Delivered,
                "n",
            ),
            old_time,
            1,
        ),
        attempt_record(
            &app.id,
            &recent.id,
            &hooks[0].id,
            DeliveryUpdate::Delivered,
            "n",
        ),
    ];
    store.record_attempts(&batch).await.unwrap();
    let all = store.rollup_minutes(old_time - minutes(1)).await.unwrap();
    assert_eq!(all.len(), 2);
    let pruned = store
        .prune_rollup(t - webhookd_store::ROLLUP_RETENTION)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    let kept: Vec<RollupMinute> = store.rollup_minutes(old_time - minutes(1)).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].start, minute_of(t));
}
