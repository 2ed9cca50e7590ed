//! `/api/v1/auth/token`: the operator's tokens managed on a running node. Creating the first
//! one ends local mode at once; a revoked token stops working at once; configured tokens are
//! not affected.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::TestApi;

#[tokio::test]
async fn tokens_are_created_listed_and_revoked_through_the_api() {
    let mut api = TestApi::new();
    let empty = api.get("/api/v1/auth/token").await.expect(StatusCode::OK);
    assert_eq!(
        empty,
        json!({"data": [], "iterator": null, "prevIterator": null, "done": true})
    );

    // Local mode: the first token is created without one, and ends local mode at once.
    let created = api
        .post("/api/v1/auth/token", json!({"name": "ops"}))
        .await
        .expect(StatusCode::CREATED);
    let token = created["token"].as_str().expect("the token").to_owned();
    let id = created["id"].as_str().expect("an id").to_owned();
    assert!(id.starts_with("tok_"), "{created}");
    assert_eq!(created["name"], "ops");
    assert!(created["createdAt"].is_string(), "{created}");
    api.get("/api/v1/app")
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
    assert!(!api.state().is_local());

    api.token = Some(token.clone());
    api.get("/api/v1/app").await.expect(StatusCode::OK);
    let listed = api.get("/api/v1/auth/token/").await.expect(StatusCode::OK);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        listed["data"][0],
        json!({"id": id, "name": "ops", "createdAt": created["createdAt"]}),
        "never the token itself"
    );
    assert_eq!(listed["done"], true);

    let second = api
        .post("/api/v1/auth/token", json!({"name": "deploy"}))
        .await
        .expect(StatusCode::CREATED);
    api.post("/api/v1/auth/token", json!({"name": "deploy"}))
        .await
        .expect_error(StatusCode::CONFLICT);
    api.post("/api/v1/auth/token", json!({"name": ""}))
        .await
        .expect_invalid(&["body", "name"]);

    // Revoking the token in use: it stops working with the very next request.
    api.delete(&format!("/api/v1/auth/token/{id}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    api.get("/api/v1/app")
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
    api.token = Some(second["token"].as_str().unwrap().to_owned());
    api.get("/api/v1/app").await.expect(StatusCode::OK);
    api.delete(&format!("/api/v1/auth/token/{id}"))
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.delete("/api/v1/auth/token/not-an-id")
        .await
        .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn configured_tokens_keep_working_beside_stored_ones() {
    let mut api = TestApi::with_token("configured-token-0123456789abcdef");
    let created = api
        .post("/api/v1/auth/token", json!({"name": "stored"}))
        .await
        .expect(StatusCode::CREATED);
    let id = created["id"].as_str().unwrap();
    api.delete(&format!("/api/v1/auth/token/{id}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    api.get("/api/v1/app").await.expect(StatusCode::OK);
    api.token = Some(created["token"].as_str().unwrap().to_owned());
    api.get("/api/v1/app")
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_stored_elsewhere_ends_local_mode_within_seconds() {
    let api = TestApi::new();
    let watch = tokio::spawn(webhookd_api::auth::watch_tokens(
        api.state().clone(),
        std::time::Duration::from_millis(50),
    ));
    api.get("/api/v1/app").await.expect(StatusCode::OK);
    // Another node (or the CLI on PostgreSQL) stores a token: this node did not make it.
    api.state()
        .store()
        .create_token(&webhookd_store::ApiTokenRecord {
            id: webhookd_core::TokenId::new(),
            name: "elsewhere".into(),
            hash: hex::encode(webhookd_api::auth::hash_token("whk_elsewhere")),
            created_at: webhookd_core::time::now(),
        })
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), watch)
        .await
        .expect("the watch notices the token")
        .unwrap();
    api.get("/api/v1/app")
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
}
