//! Endpoint options: fan-out honours payload filters (an evaluation error is no match, and a
//! changed filter is evaluated anew), and the delivery overrides round-trip.

use std::time::Duration;

use bytes::Bytes;
use webhookd_core::retry::RetrySchedule;
use webhookd_core::time::now;
use webhookd_store::Store;

use crate::support::{application, endpoint, lease, message, message_at, minutes};

pub(crate) async fn fan_out_honours_payload_filters(store: &dyn Store) {
    let app = application(None);
    store.create_application(&app, None).await.unwrap();
    let every = endpoint(&app.id, None);
    let mut large = endpoint(&app.id, None);
    large.payload_filter = Some(r#"payload.amount > 100 && payload.currency == "EUR""#.into());
    let mut typed = endpoint(&app.id, None);
    typed.payload_filter = Some(r#"eventType == "invoice.paid" && "eu" in channels"#.into());
    for hook in [&every, &large, &typed] {
        store.create_endpoint(hook, None).await.unwrap();
    }
    let send = |event_type: &str, payload: &'static str, channels: &[&str], claimed: bool| {
        let mut message = message(&app.id, event_type);
        message.payload = Bytes::from_static(payload.as_bytes());
        message.channels = channels.iter().map(|c| (*c).to_owned()).collect();
        let lease = claimed.then(|| lease("node-a", now() + minutes(5)));
        async move {
            let mut fanned = store
                .create_message(&message, lease.as_ref(), None)
                .await
                .unwrap();
            fanned.sort();
            (message, fanned)
        }
    };
    let sorted = |mut ids: Vec<_>| {
        ids.sort();
        ids
    };

    let (big, fanned) = send(
        "invoice.paid",
        r#"{"amount": 150, "currency": "EUR"}"#,
        &["eu"],
        true,
    )
    .await;
    assert_eq!(
        fanned,
        sorted(vec![every.id.clone(), large.id.clone(), typed.id.clone()])
    );
    assert!(
        store
            .get_delivery(&big.id, &large.id)
            .await
            .unwrap()
            .is_some()
    );

    let (small, fanned) = send(
        "invoice.paid",
        r#"{"amount": 50, "currency": "EUR"}"#,
        &[],
        false,
    )
    .await;
    assert_eq!(fanned, vec![every.id.clone()]);
    assert!(
        store
            .get_delivery(&small.id, &large.id)
            .await
            .unwrap()
            .is_none()
    );

    // A field the payload lacks, or a payload that is not JSON: no match, no error.
    let (_, fanned) = send("invoice.paid", r#"{"other": true}"#, &["eu"], false).await;
    assert_eq!(fanned, sorted(vec![every.id.clone(), typed.id.clone()]));

    // A changed filter is evaluated anew; a removed one lets everything through.
    let mut changed = large.clone();
    changed.payload_filter = Some("payload.amount < 100".into());
    store.update_endpoint(&changed).await.unwrap();
    let (_, fanned) = send("order", r#"{"amount": 50}"#, &[], false).await;
    assert_eq!(fanned, sorted(vec![every.id.clone(), large.id.clone()]));
    changed.payload_filter = None;
    store.update_endpoint(&changed).await.unwrap();
    let (_, fanned) = send("order", r#"{"amount": 500}"#, &[], false).await;
    assert_eq!(fanned, sorted(vec![every.id.clone(), large.id.clone()]));
}

pub(crate) async fn endpoint_overrides_round_trip(store: &dyn Store) {
    let app = application(None);
    store.create_application(&app, None).await.unwrap();
    let mut hook = endpoint(&app.id, None);
    hook.payload_filter = Some("payload.a == 1".into());
    hook.retry_schedule = Some(RetrySchedule::new(vec![
        Duration::from_millis(100),
        Duration::from_secs(300),
    ]));
    hook.request_timeout = Some(Duration::from_millis(2500));
    store.create_endpoint(&hook, None).await.unwrap();
    let read = store
        .get_endpoint(&app.id, &hook.id.clone().into())
        .await
        .unwrap();
    assert_eq!(read.as_ref(), Some(&hook));

    // An empty schedule (never retry) is kept apart from none (the node's schedule).
    hook.retry_schedule = Some(RetrySchedule::new(Vec::new()));
    hook.request_timeout = None;
    store.update_endpoint(&hook).await.unwrap();
    let read = store
        .get_endpoint(&app.id, &hook.id.clone().into())
        .await
        .unwrap();
    assert_eq!(read.as_ref(), Some(&hook));

    hook.retry_schedule = None;
    hook.payload_filter = None;
    store.update_endpoint(&hook).await.unwrap();
    let read = store
        .get_endpoint(&app.id, &hook.id.clone().into())
        .await
        .unwrap();
    assert_eq!(read.as_ref(), Some(&hook));
}

pub(crate) async fn replay_missing_honours_the_payload_filter(store: &dyn Store) {
    let app = application(None);
    store.create_application(&app, None).await.unwrap();
    let at = now();
    let mut sent = Vec::new();
    for amount in [50, 150, 250] {
        let mut message = message_at(&app.id, "invoice.paid", at - minutes(10));
        message.payload = Bytes::from(format!(r#"{{"amount": {amount}}}"#));
        store.create_message(&message, None, None).await.unwrap();
        sent.push(message);
    }
    let mut late = endpoint(&app.id, None);
    late.payload_filter = Some("payload.amount > 100".into());
    store.create_endpoint(&late, None).await.unwrap();
    let replayed = store
        .replay_missing(&late, at - minutes(60), at, at)
        .await
        .unwrap();
    assert_eq!(replayed, 2);
    for (message, replayed) in sent.iter().zip([false, true, true]) {
        let delivery = store.get_delivery(&message.id, &late.id).await.unwrap();
        assert_eq!(delivery.is_some(), replayed, "{:?}", message.payload);
    }
}
