//! Messages: fan-out at insert, `eventId` uniqueness, the message list's filters, and the
//! attempt and delivery lists the API reads.

use webhookd_core::Key;
use webhookd_core::model::{DeliveryStatus, TriggerType};
use webhookd_core::time::now;
use webhookd_core::{EndpointId, MessageId};
use webhookd_store::{
    AttemptFilter, AttemptScope, DeliveryUpdate, MessageFilter, PageRequest, Store, StoreError,
    Taken,
};

use crate::support::{
    app_with_endpoints, application, attempt_record, endpoint, message, message_at, minutes,
};

fn sorted(mut ids: Vec<EndpointId>) -> Vec<EndpointId> {
    ids.sort();
    ids
}

pub(crate) async fn fan_out_follows_event_types_channels_and_disabled(store: &dyn Store) {
    let app = application(None);
    store.create_application(&app, None).await.unwrap();
    let every = endpoint(&app.id, None);
    let mut typed = endpoint(&app.id, None);
    typed.event_types = vec!["user.created".into(), "user.deleted".into()];
    let mut european = endpoint(&app.id, None);
    european.channels = vec!["eu".into(), "uk".into()];
    let mut both = endpoint(&app.id, None);
    both.event_types = vec!["user.created".into()];
    both.channels = vec!["eu".into()];
    let mut disabled = endpoint(&app.id, None);
    disabled.disabled = true;
    for hook in [&every, &typed, &european, &both, &disabled] {
        store.create_endpoint(hook, None).await.unwrap();
    }
    // An endpoint of another application never receives this one's messages.
    let (_, _) = app_with_endpoints(store, 1).await;

    let mut eu_user = message(&app.id, "user.created");
    eu_user.channels = vec!["eu".into()];
    let fanned = store.create_message(&eu_user, None, None).await.unwrap();
    assert_eq!(
        sorted(fanned),
        sorted(vec![
            every.id.clone(),
            typed.id.clone(),
            european.id.clone(),
            both.id.clone()
        ])
    );

    let order = message(&app.id, "order.paid");
    assert_eq!(
        store.create_message(&order, None, None).await.unwrap(),
        vec![every.id.clone()]
    );

    let mut us_user = message(&app.id, "user.created");
    us_user.channels = vec!["us".into()];
    let fanned = store.create_message(&us_user, None, None).await.unwrap();
    assert_eq!(
        sorted(fanned),
        sorted(vec![every.id.clone(), typed.id.clone()])
    );

    let delivery = store
        .get_delivery(&eu_user.id, &both.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    assert_eq!(delivery.attempts, 0);
    assert_eq!(delivery.app_id, app.id);
    assert_eq!(delivery.next_attempt_at, Some(eu_user.created_at));
    assert_eq!(delivery.created_at, eu_user.created_at);
    assert_eq!(
        store.get_delivery(&eu_user.id, &disabled.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.get_delivery(&order.id, &typed.id).await.unwrap(),
        None
    );

    let stored = store
        .get_message(&app.id, &eu_user.id.clone().into())
        .await
        .unwrap();
    assert_eq!(stored, Some(eu_user));
}

pub(crate) async fn event_id_is_unique_per_application(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 1).await;
    let (other, _) = app_with_endpoints(store, 0).await;
    let mut first = message(&app.id, "user.created");
    first.event_id = Some("evt-1".into());
    store.create_message(&first, None, None).await.unwrap();

    let mut again = message(&app.id, "user.created");
    again.event_id = Some("evt-1".into());
    match store.create_message(&again, None, None).await {
        Err(StoreError::Conflict(conflict)) => {
            assert_eq!(conflict.taken, Taken::EventId);
            assert_eq!(
                conflict.detail(),
                "a message with eventId `evt-1` already exists in this application"
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Nothing of the refused message was stored.
    assert_eq!(
        store
            .get_message(&app.id, &again.id.clone().into())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.get_delivery(&again.id, &hooks[0].id).await.unwrap(),
        None
    );

    let mut elsewhere = message(&other.id, "user.created");
    elsewhere.event_id = Some("evt-1".into());
    store.create_message(&elsewhere, None, None).await.unwrap();
    assert_eq!(
        store
            .get_message(&app.id, &Key::parse("evt-1"))
            .await
            .unwrap(),
        Some(first)
    );
    assert_eq!(
        store
            .get_message(&other.id, &Key::parse("evt-1"))
            .await
            .unwrap(),
        Some(elsewhere)
    );
    assert_eq!(
        store
            .get_message(&app.id, &Key::parse("evt-2"))
            .await
            .unwrap(),
        None
    );
}

pub(crate) async fn message_list_filters(store: &dyn Store) {
    let (app, _) = app_with_endpoints(store, 0).await;
    let start = now() - minutes(60);
    let mut old = message_at(&app.id, "user.created", start);
    old.channels = vec!["eu".into()];
    old.tags = vec!["vip".into()];
    let mut middle = message_at(&app.id, "order.paid", start + minutes(10));
    middle.channels = vec!["us".into(), "eu".into()];
    let recent = message_at(&app.id, "user.created", start + minutes(20));
    for msg in [&old, &middle, &recent] {
        store.create_message(msg, None, None).await.unwrap();
    }
    let app_id = &app.id;
    let list = |filter: MessageFilter| async move {
        let page = store
            .list_messages(app_id, &filter, &PageRequest::default())
            .await
            .unwrap();
        page.items
            .into_iter()
            .map(|msg| msg.id)
            .collect::<Vec<MessageId>>()
    };
    let all = vec![old.id.clone(), middle.id.clone(), recent.id.clone()];
    assert_eq!(list(MessageFilter::default()).await, all);
    let by_type = MessageFilter {
        event_types: vec!["user.created".into()],
        ..Default::default()
    };
    assert_eq!(list(by_type).await, vec![old.id.clone(), recent.id.clone()]);
    let by_channel = MessageFilter {
        channel: Some("eu".into()),
        ..Default::default()
    };
    assert_eq!(
        list(by_channel).await,
        vec![old.id.clone(), middle.id.clone()]
    );
    let by_tag = MessageFilter {
        tag: Some("vip".into()),
        ..Default::default()
    };
    assert_eq!(list(by_tag).await, vec![old.id.clone()]);
    let window = MessageFilter {
        after: Some(start),
        before: Some(start + minutes(20)),
        ..Default::default()
    };
    assert_eq!(list(window).await, vec![middle.id.clone()]);
}

pub(crate) async fn attempts_and_deliveries_are_listed(store: &dyn Store) {
    let (app, hooks) = app_with_endpoints(store, 2).await;
    let (first, second) = (&hooks[0], &hooks[1]);
    let msg = message(&app.id, "user.created");
    store.create_message(&msg, None, None).await.unwrap();
    let failed = attempt_record(
        &app.id,
        &msg.id,
        &first.id,
        DeliveryUpdate::Failed,
        "node-a",
    );
    let delivered = attempt_record(
        &app.id,
        &msg.id,
        &second.id,
        DeliveryUpdate::Delivered,
        "node-a",
    );
    let manual = attempt_record(
        &app.id,
        &msg.id,
        &first.id,
        DeliveryUpdate::Manual { success: false },
        "node-a",
    );
    store
        .record_attempts(&[failed.clone(), delivered.clone(), manual.clone()])
        .await
        .unwrap();

    let page = PageRequest::default();
    let attempts = |scope: AttemptScope, filter: AttemptFilter| {
        let page = page.clone();
        let app = app.id.clone();
        async move {
            let listed = store
                .list_attempts(&app, &scope, &filter, &page)
                .await
                .unwrap();
            listed
                .items
                .into_iter()
                .map(|attempt| attempt.id)
                .collect::<Vec<_>>()
        }
    };
    let of_message = AttemptScope::Message(msg.id.clone());
    assert_eq!(
        attempts(of_message.clone(), AttemptFilter::default()).await,
        vec![
            failed.attempt.id.clone(),
            delivered.attempt.id.clone(),
            manual.attempt.id.clone()
        ]
    );
    let successes = AttemptFilter {
        status: Some(DeliveryStatus::Success),
        ..Default::default()
    };
    assert_eq!(
        attempts(of_message.clone(), successes).await,
        vec![delivered.attempt.id.clone()]
    );
    let no_response = AttemptFilter {
        status_code_class: Some(0),
        ..Default::default()
    };
    assert_eq!(
        attempts(of_message.clone(), no_response).await,
        vec![manual.attempt.id.clone()]
    );
    let server_errors = AttemptFilter {
        status_code_class: Some(500),
        ..Default::default()
    };
    assert_eq!(
        attempts(of_message.clone(), server_errors).await,
        vec![failed.attempt.id.clone()]
    );
    let to_second = AttemptFilter {
        endpoint_id: Some(second.id.clone()),
        ..Default::default()
    };
    assert_eq!(
        attempts(of_message, to_second).await,
        vec![delivered.attempt.id.clone()]
    );
    assert_eq!(
        attempts(
            AttemptScope::Endpoint(first.id.clone()),
            AttemptFilter::default()
        )
        .await,
        vec![failed.attempt.id.clone(), manual.attempt.id.clone()]
    );

    let stored = store
        .get_attempt(&app.id, &msg.id, &manual.attempt.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, manual.attempt);
    assert_eq!(stored.trigger_type, TriggerType::Manual);

    let deliveries = store
        .list_message_deliveries(&app.id, &msg.id, &page)
        .await
        .unwrap();
    let mut expected = vec![first.id.clone(), second.id.clone()];
    expected.sort();
    let listed: Vec<_> = deliveries
        .items
        .iter()
        .map(|(hook, _)| hook.id.clone())
        .collect();
    assert_eq!(listed, expected);
    assert!(deliveries.done);
    let (hook, delivery) = deliveries
        .items
        .iter()
        .find(|(hook, _)| hook.id == second.id)
        .unwrap();
    assert_eq!(hook, second);
    assert_eq!(delivery.status, DeliveryStatus::Success);

    let later = message(&app.id, "order.paid");
    store.create_message(&later, None, None).await.unwrap();
    let of_first = store
        .list_endpoint_deliveries(&app.id, &first.id, &AttemptFilter::default(), &page)
        .await
        .unwrap();
    let listed: Vec<_> = of_first
        .items
        .iter()
        .map(|(msg, d)| (msg.id.clone(), d.status))
        .collect();
    assert_eq!(
        listed,
        vec![
            (msg.id.clone(), DeliveryStatus::Fail),
            (later.id.clone(), DeliveryStatus::Pending)
        ]
    );
    let pending = AttemptFilter {
        status: Some(DeliveryStatus::Pending),
        ..Default::default()
    };
    let of_first = store
        .list_endpoint_deliveries(&app.id, &first.id, &pending, &page)
        .await
        .unwrap();
    assert_eq!(of_first.items.len(), 1);
    assert_eq!(of_first.items[0].0, later);
}
