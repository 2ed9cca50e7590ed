//! Polling endpoints: the application's message stream read from a start in commit order
//! (a message whose older id commits after newer ones is still read), the offsets kept per
//! consumer, and poller tokens found by hash and retired forward.

use webhookd_core::model::POLLING_URL;
use webhookd_core::time::now;
use webhookd_core::{MessageId, TokenId};
use webhookd_store::{PollerTokenRecord, Store, StreamPosition};

use crate::support::{application, endpoint, message, message_at, minutes};

/// Every message of the stream after `from`, read `limit` at a time.
async fn read_all(
    store: &dyn Store,
    app: &webhookd_core::AppId,
    since: time::OffsetDateTime,
    from: &StreamPosition,
    limit: usize,
) -> (Vec<MessageId>, StreamPosition) {
    let mut position = from.clone();
    let mut ids = Vec::new();
    loop {
        let batch = store
            .read_stream(app, since, &position, limit)
            .await
            .unwrap();
        assert!(batch.len() <= limit);
        let Some((last, _)) = batch.last() else {
            return (ids, position);
        };
        assert!(last > &position, "the stream moves forward");
        position = last.clone();
        ids.extend(batch.into_iter().map(|(_, message)| message.id));
    }
}

/// [`read_all`] until it has `expected` messages or 30 s have passed: on PostgreSQL, another
/// client's open transaction holds the stream back until it ends.
async fn read_expecting(
    store: &dyn Store,
    app: &webhookd_core::AppId,
    since: time::OffsetDateTime,
    from: &StreamPosition,
    limit: usize,
    expected: usize,
) -> (Vec<MessageId>, StreamPosition) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let read = read_all(store, app, since, from, limit).await;
        if read.0.len() >= expected || std::time::Instant::now() > deadline {
            return read;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub(crate) async fn polling_streams_read_in_commit_order_from_their_start(store: &dyn Store) {
    let app = application(Some("poll-app"));
    let other = application(Some("poll-other"));
    store.create_application(&app, None).await.unwrap();
    store.create_application(&other, None).await.unwrap();
    let mut poller = endpoint(&app.id, Some("poller"));
    poller.url = POLLING_URL.into();
    let pushed = endpoint(&app.id, Some("pushed"));
    store.create_endpoint(&poller, None).await.unwrap();
    store.create_endpoint(&pushed, None).await.unwrap();

    let old = message_at(&app.id, "user.old", now() - minutes(30));
    store.create_message(&old, None, None).await.unwrap();
    let since = now() - minutes(5);
    let start = store.stream_start(&app.id, since).await.unwrap();

    let mut sent = Vec::new();
    for n in 0..5 {
        let message = message(&app.id, &format!("user.{n}"));
        let fanned_out = store.create_message(&message, None, None).await.unwrap();
        assert_eq!(
            fanned_out,
            vec![pushed.id.clone()],
            "no delivery to a poller"
        );
        sent.push(message.id);
    }
    store
        .create_message(&message(&other.id, "user.elsewhere"), None, None)
        .await
        .unwrap();
    let (read, end) = read_expecting(store, &app.id, since, &start, 2, sent.len()).await;
    assert_eq!(
        read, sent,
        "in order, from the start, this application's only"
    );

    // Stored after the others but with an older id (its node's clock, or a slow commit): the
    // stream still has it, after what was read.
    let late = message_at(&app.id, "user.late", now() - minutes(1));
    store.create_message(&late, None, None).await.unwrap();
    let (read, _) = read_expecting(store, &app.id, since, &end, 10, 1).await;
    assert_eq!(read, vec![late.id.clone()]);

    // A later start leaves out what was created before it; an empty stream starts at its end.
    let (read, _) = read_all(store, &app.id, now() + minutes(1), &start, 10).await;
    assert!(read.is_empty());
    let fresh = application(Some("poll-fresh"));
    store.create_application(&fresh, None).await.unwrap();
    let start = store.stream_start(&fresh.id, now()).await.unwrap();
    let first = message(&fresh.id, "user.first");
    store.create_message(&first, None, None).await.unwrap();
    let (read, _) = read_expecting(store, &fresh.id, now() - minutes(1), &start, 10, 1).await;
    assert_eq!(read, vec![first.id]);
}

pub(crate) async fn poll_offsets_are_kept_per_consumer(store: &dyn Store) {
    let app = application(Some("offset-app"));
    store.create_application(&app, None).await.unwrap();
    let mut poller = endpoint(&app.id, None);
    poller.url = POLLING_URL.into();
    store.create_endpoint(&poller, None).await.unwrap();

    assert_eq!(store.get_poll_offset(&poller.id, "a").await.unwrap(), None);
    store
        .set_poll_offset(&app.id, &poller.id, "a", "it-1", now())
        .await
        .unwrap();
    store
        .set_poll_offset(&app.id, &poller.id, "b", "it-9", now())
        .await
        .unwrap();
    store
        .set_poll_offset(&app.id, &poller.id, "a", "it-2", now())
        .await
        .unwrap();
    assert_eq!(
        store.get_poll_offset(&poller.id, "a").await.unwrap(),
        Some("it-2".into())
    );
    assert_eq!(
        store.get_poll_offset(&poller.id, "b").await.unwrap(),
        Some("it-9".into())
    );
    // Gone with the endpoint.
    assert!(
        store
            .delete_endpoint(&app.id, &poller.id, now())
            .await
            .unwrap()
    );
    assert_eq!(store.get_poll_offset(&poller.id, "a").await.unwrap(), None);
}

fn poller_token(
    endpoint: &webhookd_core::model::Endpoint,
    hash: &str,
    token: &str,
) -> PollerTokenRecord {
    let at = now();
    PollerTokenRecord {
        id: TokenId::new(),
        hash: hash.into(),
        app_id: endpoint.app_id.clone(),
        endpoint_id: endpoint.id.clone(),
        token: token.into(),
        created_at: at,
        expires_at: at + minutes(60),
    }
}

pub(crate) async fn poller_tokens_rotate_and_retire_forward(store: &dyn Store) {
    let app = application(Some("token-app"));
    store.create_application(&app, None).await.unwrap();
    let mut poller = endpoint(&app.id, None);
    poller.url = POLLING_URL.into();
    store.create_endpoint(&poller, None).await.unwrap();

    assert_eq!(
        store.current_poller_token(&poller.id, now()).await.unwrap(),
        None
    );
    let first = poller_token(&poller, "hash-1", "pollsk_one");
    store
        .rotate_poller_token(&first, now() + minutes(600))
        .await
        .unwrap();
    assert_eq!(
        store.find_poller_token("hash-1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.current_poller_token(&poller.id, now()).await.unwrap(),
        Some(first.clone())
    );
    // The previous token lives on until the grace ends, never longer than it would have.
    let second = poller_token(&poller, "hash-2", "pollsk_two");
    let grace_end = now() + minutes(5);
    store.rotate_poller_token(&second, grace_end).await.unwrap();
    let retired = store.find_poller_token("hash-1").await.unwrap().unwrap();
    assert_eq!(
        retired.expires_at.unix_timestamp(),
        grace_end.unix_timestamp()
    );
    assert_eq!(
        store.current_poller_token(&poller.id, now()).await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(store.find_poller_token("hash-3").await.unwrap(), None);
    // Re-sealing keeps every token readable.
    assert_eq!(store.reseal_poller_tokens().await.unwrap(), 2);
    assert_eq!(
        store.find_poller_token("hash-2").await.unwrap(),
        Some(second.clone())
    );
    assert!(
        store
            .delete_endpoint(&app.id, &poller.id, now())
            .await
            .unwrap()
    );
    assert_eq!(store.find_poller_token("hash-2").await.unwrap(), None);
}
