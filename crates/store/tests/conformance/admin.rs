//! Idempotency records (saved in the transaction of their effect), API tokens and background
//! tasks.

use webhookd_core::model::{BackgroundTask, TaskStatus};
use webhookd_core::time::now;
use webhookd_core::{MessageId, TaskId, TokenId};
use webhookd_store::{
    ApiTokenRecord, IDEMPOTENCY_WINDOW, IdempotentResponse, Store, StoreError, Taken,
};

use crate::support::{app_with_endpoints, application, endpoint, message, minutes};

fn response(key: &str, status: u16, body: &str) -> IdempotentResponse {
    IdempotentResponse {
        key_hash: key.into(),
        status,
        body: body.as_bytes().to_vec(),
        created_at: now(),
    }
}

pub(crate) async fn idempotent_responses_are_saved_with_their_effect(store: &dyn Store) {
    let long_ago = now() - minutes(60 * 48);
    let saved = response("k-standalone", 202, "{}");
    store.save_idempotent_response(&saved).await.unwrap();
    assert_eq!(
        store
            .get_idempotent_response("k-standalone", long_ago)
            .await
            .unwrap(),
        Some(saved.clone())
    );
    // Outside the window it no longer answers.
    let after = saved.created_at + minutes(1);
    assert_eq!(
        store
            .get_idempotent_response("k-standalone", after)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get_idempotent_response("k-unknown", long_ago)
            .await
            .unwrap(),
        None
    );
    // Within the window, a second response under the same key is refused (another request,
    // perhaps on another node, got there first)...
    let again = response("k-standalone", 200, r#"{"again":true}"#);
    let refused = store.save_idempotent_response(&again).await.unwrap_err();
    assert!(refused.is_taken(Taken::IdempotencyKey), "{refused:?}");
    // ...and once the first has outlived the window, a new one replaces it.
    let mut replaced = again;
    replaced.created_at = saved.created_at + IDEMPOTENCY_WINDOW + minutes(1);
    store.save_idempotent_response(&replaced).await.unwrap();
    assert_eq!(
        store
            .get_idempotent_response("k-standalone", long_ago)
            .await
            .unwrap(),
        Some(replaced)
    );

    // Saved with the write it answers for...
    let app = application(Some("idem"));
    let created = response("k-app", 201, r#"{"id":"app"}"#);
    store
        .create_application(&app, Some(&created))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_idempotent_response("k-app", long_ago)
            .await
            .unwrap(),
        Some(created)
    );
    let hook = endpoint(&app.id, None);
    store
        .create_endpoint(&hook, Some(&response("k-endpoint", 201, "{}")))
        .await
        .unwrap();
    assert!(
        store
            .get_idempotent_response("k-endpoint", long_ago)
            .await
            .unwrap()
            .is_some()
    );
    let msg = message(&app.id, "user.created");
    store
        .create_message(&msg, None, Some(&response("k-message", 202, "{}")))
        .await
        .unwrap();
    assert!(
        store
            .get_idempotent_response("k-message", long_ago)
            .await
            .unwrap()
            .is_some()
    );
    // ...and not at all when the write fails.
    let twin = application(Some("idem"));
    let refused = store
        .create_application(&twin, Some(&response("k-twin", 201, "{}")))
        .await;
    assert!(
        matches!(&refused, Err(error) if error.is_taken(Taken::ApplicationUid)),
        "{refused:?}"
    );
    // A repeat of the first request (its key, its uid) is told that its key was used, not that
    // the uid is taken: the caller then answers with the first answer.
    let repeat = store
        .create_application(
            &application(Some("idem")),
            Some(&response("k-app", 201, "{}")),
        )
        .await;
    assert!(
        matches!(&repeat, Err(error) if error.is_taken(Taken::IdempotencyKey)),
        "{repeat:?}"
    );
    assert_eq!(
        store
            .get_idempotent_response("k-twin", long_ago)
            .await
            .unwrap(),
        None
    );
    let (other, _) = app_with_endpoints(store, 0).await;
    let mut first = message(&other.id, "a");
    first.event_id = Some("e".into());
    store.create_message(&first, None, None).await.unwrap();
    let mut second = message(&other.id, "a");
    second.event_id = Some("e".into());
    let refused = store
        .create_message(&second, None, Some(&response("k-dup", 202, "{}")))
        .await;
    assert!(
        matches!(&refused, Err(error) if error.is_taken(Taken::EventId)),
        "{refused:?}"
    );
    let repeat = store
        .create_message(&second, None, Some(&response("k-message", 202, "{}")))
        .await;
    assert!(
        matches!(&repeat, Err(error) if error.is_taken(Taken::IdempotencyKey)),
        "{repeat:?}"
    );
    assert_eq!(
        store
            .get_idempotent_response("k-dup", long_ago)
            .await
            .unwrap(),
        None
    );

    let mut stale = response("k-stale", 200, "{}");
    stale.created_at = now() - minutes(60 * 25);
    store.save_idempotent_response(&stale).await.unwrap();
    assert_eq!(
        store
            .prune_idempotency(now() - minutes(60 * 24))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .get_idempotent_response("k-stale", long_ago)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .get_idempotent_response("k-app", long_ago)
            .await
            .unwrap()
            .is_some()
    );
}

fn token(name: &str, hash: &str) -> ApiTokenRecord {
    ApiTokenRecord {
        id: TokenId::new(),
        name: name.into(),
        hash: hash.into(),
        created_at: now(),
    }
}

pub(crate) async fn tokens(store: &dyn Store) {
    assert_eq!(store.count_tokens().await.unwrap(), 0);
    assert!(
        !store.had_tokens().await.unwrap(),
        "a new store never had a token"
    );
    let (ci, deploy) = (token("ci", "hash-ci"), token("deploy", "hash-deploy"));
    store.create_token(&ci).await.unwrap();
    store.create_token(&deploy).await.unwrap();
    match store.create_token(&token("ci", "hash-other")).await {
        Err(StoreError::Conflict(conflict)) => {
            assert_eq!(conflict.taken, Taken::TokenName);
            assert_eq!(conflict.detail(), "a token named `ci` already exists");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.count_tokens().await.unwrap(), 2);
    assert_eq!(
        store.list_tokens().await.unwrap(),
        vec![ci.clone(), deploy.clone()]
    );
    assert_eq!(
        store.find_token("hash-deploy").await.unwrap(),
        Some(deploy.clone())
    );
    assert_eq!(store.find_token("hash-none").await.unwrap(), None);

    assert!(store.revoke_token("ci").await.unwrap());
    assert!(store.revoke_token(deploy.id.as_str()).await.unwrap());
    assert!(!store.revoke_token("ci").await.unwrap());
    assert_eq!(store.count_tokens().await.unwrap(), 0);
    assert_eq!(store.find_token("hash-ci").await.unwrap(), None);
    // Revoking every token does not make the store one that never had any.
    assert!(store.had_tokens().await.unwrap());
}

pub(crate) async fn background_tasks(store: &dyn Store) {
    let mut task = BackgroundTask {
        id: TaskId::new(),
        kind: "endpoint.recover".into(),
        status: TaskStatus::Running,
        data: serde_json::json!({"endpointId": "ep_x"}),
        updated_at: now(),
    };
    let started = IdempotentResponse {
        key_hash: "k-task".into(),
        status: 202,
        body: b"{}".to_vec(),
        created_at: now(),
    };
    store.put_task(&task, Some(&started)).await.unwrap();
    assert_eq!(store.get_task(&task.id).await.unwrap(), Some(task.clone()));
    assert!(
        store
            .get_idempotent_response("k-task", now() - minutes(1))
            .await
            .unwrap()
            .is_some()
    );
    task.status = TaskStatus::Finished;
    task.data = serde_json::json!({"recovered": 3});
    task.updated_at = now();
    store.put_task(&task, None).await.unwrap();
    assert_eq!(store.get_task(&task.id).await.unwrap(), Some(task));
    assert_eq!(store.get_task(&TaskId::new()).await.unwrap(), None);
}

pub(crate) async fn resend_requests_are_queued_once_and_taken_once(store: &dyn Store) {
    let (app, endpoints) = app_with_endpoints(store, 1).await;
    let (first, second) = (MessageId::new(), MessageId::new());
    store
        .request_resend(&app.id, &first, &endpoints[0].id, now())
        .await
        .unwrap();
    store
        .request_resend(&app.id, &first, &endpoints[0].id, now())
        .await
        .unwrap();
    store
        .request_resend(&app.id, &second, &endpoints[0].id, now() + minutes(1))
        .await
        .unwrap();
    let taken = store.take_resends(1).await.unwrap();
    assert_eq!(
        taken,
        [(app.id.clone(), first, endpoints[0].id.clone())],
        "oldest first"
    );
    let taken = store.take_resends(10).await.unwrap();
    assert_eq!(taken, [(app.id.clone(), second, endpoints[0].id.clone())]);
    assert!(store.take_resends(10).await.unwrap().is_empty());
}

pub(crate) async fn a_live_idempotency_key_refuses_a_second_effect(store: &dyn Store) {
    let app = application(None);
    let record = |body: &[u8]| IdempotentResponse {
        key_hash: "race".into(),
        status: 201,
        body: body.to_vec(),
        created_at: now(),
    };
    store
        .create_application(&app, Some(&record(b"first")))
        .await
        .unwrap();
    let second = application(None);
    let refused = store
        .create_application(&second, Some(&record(b"second")))
        .await
        .unwrap_err();
    assert!(refused.is_taken(Taken::IdempotencyKey), "{refused:?}");
    assert!(
        store
            .get_application(&second.id.clone().into())
            .await
            .unwrap()
            .is_none(),
        "the effect rolled back"
    );
    let kept = store
        .get_idempotent_response("race", now() - minutes(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.body, b"first");
}
