//! App-scoped tokens and browser sessions: stored by hash, expired forward only, pruned once
//! expired, and gone with their application.

use webhookd_core::access::Capability;
use webhookd_core::time::now;
use webhookd_core::{AppId, TokenId};
use webhookd_store::{AppTokenRecord, SessionRecord, SessionSubject, Store, StoreError};

use crate::support::{application, minutes};

fn app_token(app: &AppId, hash: &str, label: Option<&str>) -> AppTokenRecord {
    let at = now();
    AppTokenRecord {
        id: TokenId::new(),
        hash: hash.into(),
        app_id: app.clone(),
        capabilities: vec![Capability::ViewBase, Capability::ManageEndpoint],
        session_label: label.map(str::to_owned),
        created_at: at,
        expires_at: at + minutes(60),
    }
}

pub(crate) async fn app_tokens_are_found_by_hash_and_expire_forward(store: &dyn Store) {
    let app = application(Some("portal-app"));
    let other = application(Some("portal-other"));
    store.create_application(&app, None).await.unwrap();
    store.create_application(&other, None).await.unwrap();
    let first = app_token(&app.id, "hash-1", Some("user_1"));
    let second = app_token(&app.id, "hash-2", Some("user_2"));
    let elsewhere = app_token(&other.id, "hash-3", None);
    for token in [&first, &second, &elsewhere] {
        store.create_app_token(token).await.unwrap();
    }
    assert_eq!(
        store.find_app_token("hash-1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.get_app_token(&second.id).await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(store.find_app_token("hash-unknown").await.unwrap(), None);
    let taken = store
        .create_app_token(&app_token(&app.id, "hash-1", None))
        .await
        .unwrap_err();
    assert!(matches!(taken, StoreError::Conflict(_)), "{taken:?}");

    // Expiring by label touches only that label's tokens of that application.
    let soon = now() + minutes(1);
    let labels = ["user_2".to_owned()];
    assert_eq!(
        store
            .expire_app_tokens(&app.id, &labels, soon)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .get_app_token(&second.id)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        soon
    );
    assert_eq!(
        store
            .get_app_token(&first.id)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        first.expires_at
    );
    // Expiring all of them never moves an expiry later.
    let later = now() + minutes(30);
    assert_eq!(
        store.expire_app_tokens(&app.id, &[], later).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .get_app_token(&first.id)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        later
    );
    assert_eq!(
        store
            .get_app_token(&second.id)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        soon
    );
    assert_eq!(
        store
            .get_app_token(&elsewhere.id)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        elsewhere.expires_at
    );

    // One token: found whether or not its expiry moved.
    let revoked_at = now();
    assert!(
        store
            .expire_app_token(&elsewhere.id, revoked_at)
            .await
            .unwrap()
    );
    assert!(
        store
            .expire_app_token(&elsewhere.id, revoked_at + minutes(5))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .find_app_token("hash-3")
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        revoked_at
    );
    assert!(
        !store
            .expire_app_token(&TokenId::new(), revoked_at)
            .await
            .unwrap()
    );

    // Deleting the application deletes its tokens.
    assert!(store.delete_application(&app.id).await.unwrap());
    assert_eq!(store.find_app_token("hash-1").await.unwrap(), None);
    assert_eq!(store.get_app_token(&second.id).await.unwrap(), None);
    assert!(store.find_app_token("hash-3").await.unwrap().is_some());
}

pub(crate) async fn sessions_are_kept_by_hash_and_pruned_when_expired(store: &dyn Store) {
    let app = application(Some("session-app"));
    store.create_application(&app, None).await.unwrap();
    let token = app_token(&app.id, "hash-session-app", None);
    store.create_app_token(&token).await.unwrap();
    let at = now();
    let operator = SessionRecord {
        hash: "session-operator".into(),
        subject: SessionSubject::Operator {
            token_hash: "operator-token-hash".into(),
        },
        created_at: at,
        expires_at: at + minutes(60),
    };
    let portal = SessionRecord {
        hash: "session-portal".into(),
        subject: SessionSubject::App {
            token_id: token.id.clone(),
        },
        created_at: at,
        expires_at: at + minutes(60),
    };
    store.create_session(&operator).await.unwrap();
    store.create_session(&portal).await.unwrap();
    assert_eq!(
        store.find_session("session-operator").await.unwrap(),
        Some(operator.clone())
    );
    assert_eq!(
        store.find_session("session-portal").await.unwrap(),
        Some(portal.clone())
    );
    assert_eq!(store.find_session("session-unknown").await.unwrap(), None);

    assert!(store.delete_session("session-operator").await.unwrap());
    assert!(!store.delete_session("session-operator").await.unwrap());
    assert_eq!(store.find_session("session-operator").await.unwrap(), None);

    // Nothing has expired yet: pruning keeps everything.
    assert_eq!(store.prune_access(at).await.unwrap(), 0);
    // An hour and more later, the session and the token are both gone.
    assert_eq!(store.prune_access(at + minutes(61)).await.unwrap(), 2);
    assert_eq!(store.find_session("session-portal").await.unwrap(), None);
    assert_eq!(
        store.find_app_token("hash-session-app").await.unwrap(),
        None
    );
}
