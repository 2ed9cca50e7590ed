//! The message list's filters page like the unfiltered list: every filter (tag, channel,
//! event types, time) with a cursor, in both orders, gives exactly the matching messages in
//! id order, and a message's tags and channels go when its application goes.

use time::OffsetDateTime;
use webhookd_core::MessageId;
use webhookd_core::model::Message;
use webhookd_core::time::now;
use webhookd_store::{Cursor, MessageFilter, Order, PageRequest, Store};

use crate::support::{app_with_endpoints, message_at, minutes};

/// Every page of the list, following cursors forward.
async fn all_pages(
    store: &dyn Store,
    app: &webhookd_core::AppId,
    filter: &MessageFilter,
    order: Order,
) -> Vec<MessageId> {
    let mut found = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_messages(
                app,
                filter,
                &PageRequest {
                    limit: 3,
                    cursor: cursor.clone(),
                    order,
                },
            )
            .await
            .unwrap();
        found.extend(page.items.iter().map(|msg| msg.id.clone()));
        match (page.done, page.items.last()) {
            (false, Some(last)) => {
                cursor = Some(Cursor {
                    key: last.id.to_string(),
                    backward: false,
                })
            }
            _ => return found,
        }
    }
}

pub(crate) async fn every_filter_pages_in_id_order(store: &dyn Store) {
    let (app, _) = app_with_endpoints(store, 0).await;
    let start = now() - minutes(120);
    let mut messages: Vec<Message> = Vec::new();
    for index in 0..20i64 {
        let event_type = ["a", "b", "c"][index as usize % 3];
        let mut msg = message_at(&app.id, event_type, start + minutes(index * 5));
        if index % 2 == 0 {
            // A repeated tag is one tag.
            msg.tags = vec!["even".into(), "even".into()];
        }
        if index % 4 == 0 {
            msg.channels = vec!["eu".into(), "four".into()];
        }
        store.create_message(&msg, None, None).await.unwrap();
        messages.push(msg);
    }
    let (other, _) = app_with_endpoints(store, 0).await;
    let mut elsewhere = message_at(&other.id, "a", start);
    elsewhere.tags = vec!["even".into()];
    elsewhere.channels = vec!["eu".into()];
    store.create_message(&elsewhere, None, None).await.unwrap();

    let expect = |keep: &dyn Fn(&Message) -> bool| -> Vec<MessageId> {
        messages
            .iter()
            .filter(|msg| keep(msg))
            .map(|msg| msg.id.clone())
            .collect()
    };
    let check = |filter: MessageFilter, expected: Vec<MessageId>| {
        let app = app.id.clone();
        async move {
            let forward = all_pages(store, &app, &filter, Order::Ascending).await;
            assert_eq!(forward, expected, "{filter:?} ascending");
            let mut backward = all_pages(store, &app, &filter, Order::Descending).await;
            backward.reverse();
            assert_eq!(backward, expected, "{filter:?} descending");
        }
    };
    let in_window = |at: OffsetDateTime| at > start + minutes(22) && at < start + minutes(71);

    check(MessageFilter::default(), expect(&|_| true)).await;
    check(
        MessageFilter {
            tag: Some("even".into()),
            ..Default::default()
        },
        expect(&|msg| msg.tags.contains(&"even".to_owned())),
    )
    .await;
    check(
        MessageFilter {
            channel: Some("four".into()),
            ..Default::default()
        },
        expect(&|msg| msg.channels.contains(&"four".to_owned())),
    )
    .await;
    check(
        MessageFilter {
            event_types: vec!["a".into(), "c".into()],
            ..Default::default()
        },
        expect(&|msg| msg.event_type != "b"),
    )
    .await;
    check(
        MessageFilter {
            after: Some(start + minutes(22)),
            before: Some(start + minutes(71)),
            ..Default::default()
        },
        expect(&|msg| in_window(msg.created_at)),
    )
    .await;
    // Every filter at once.
    check(
        MessageFilter {
            tag: Some("even".into()),
            channel: Some("eu".into()),
            event_types: vec!["a".into(), "b".into()],
            after: Some(start + minutes(22)),
            before: Some(start + minutes(71)),
        },
        expect(&|msg| {
            msg.tags.contains(&"even".to_owned())
                && msg.channels.contains(&"eu".to_owned())
                && msg.event_type != "c"
                && in_window(msg.created_at)
        }),
    )
    .await;
    check(
        MessageFilter {
            tag: Some("none".into()),
            ..Default::default()
        },
        Vec::new(),
    )
    .await;

    // Deleting the application takes its tags and channels along.
    assert!(store.delete_application(&app.id).await.unwrap());
    let tagged = MessageFilter {
        tag: Some("even".into()),
        ..Default::default()
    };
    assert!(
        all_pages(store, &app.id, &tagged, Order::Ascending)
            .await
            .is_empty()
    );
    assert_eq!(
        all_pages(store, &other.id, &tagged, Order::Ascending).await,
        vec![elsewhere.id.clone()]
    );
}
