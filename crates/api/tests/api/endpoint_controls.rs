//! Endpoint controls: the secret and its rotation, custom headers, recovery as a background
//! task, and delivery stats.

use axum::http::StatusCode;
use serde_json::{Value, json};
use webhookd_core::Key;
use webhookd_core::model::{DeliveryStatus, Message};
use webhookd_core::time::now;
use webhookd_core::{AppId, MessageId};

use crate::common::TestApi;
use crate::endpoint::{SECRET, api_with_app, create};

#[tokio::test]
async fn the_secret_is_given_generated_and_rotated() {
    let api = api_with_app().await;
    create(
        &api,
        json!({"url": "https://example.com", "uid": "given", "secret": SECRET}),
    )
    .await;
    let read = api
        .get("/api/v1/app/acme/endpoint/given/secret")
        .await
        .expect(StatusCode::OK);
    assert_eq!(read["key"], SECRET);

    create(
        &api,
        json!({"url": "https://example.com", "uid": "generated"}),
    )
    .await;
    let generated = api
        .get("/api/v1/app/acme/endpoint/generated/secret/")
        .await
        .expect(StatusCode::OK);
    let generated = generated["key"].as_str().unwrap().to_owned();
    assert!(generated.starts_with("whsec_"));

    let rotated = api
        .post(
            "/api/v1/app/acme/endpoint/generated/secret/rotate",
            json!({}),
        )
        .await
        .expect(StatusCode::OK);
    let new = rotated["key"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_"));
    assert_ne!(new, generated);
    let read = api
        .get("/api/v1/app/acme/endpoint/generated/secret")
        .await
        .expect(StatusCode::OK);
    assert_eq!(read["key"], new.as_str());

    let chosen = api
        .post(
            "/api/v1/app/acme/endpoint/generated/secret/rotate",
            json!({"key": SECRET, "gracePeriodSeconds": 60}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(chosen["key"], SECRET);
    // The old secret keeps signing for the grace period.
    let app = api
        .state()
        .store()
        .get_application(&Key::parse("acme"))
        .await
        .unwrap()
        .unwrap();
    let endpoint = api
        .state()
        .store()
        .get_endpoint(&app.id, &Key::parse("generated"))
        .await
        .unwrap()
        .unwrap();
    let signing: Vec<String> = endpoint
        .signing_secrets(now())
        .map(|secret| secret.expose())
        .collect();
    assert_eq!(signing, [SECRET.to_owned(), generated, new]);

    let rotate = "/api/v1/app/acme/endpoint/generated/secret/rotate";
    api.post(rotate, json!({"key": SECRET}))
        .await
        .expect_invalid(&["body", "key"]);
    api.post(rotate, json!({"key": "nope"}))
        .await
        .expect_invalid(&["body", "key"]);
    api.post(rotate, json!({"gracePeriodSeconds": -1}))
        .await
        .expect_invalid(&["body", "gracePeriodSeconds"]);
    api.post(rotate, json!({"gracePeriodSeconds": 8 * 86400}))
        .await
        .expect_invalid(&["body", "gracePeriodSeconds"]);
    api.get("/api/v1/app/acme/endpoint/nothing/secret")
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.post("/api/v1/app/acme/endpoint/nothing/secret/rotate", json!({}))
        .await
        .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rotation_accepts_an_empty_body() {
    let api = api_with_app().await;
    create(&api, json!({"url": "https://example.com", "uid": "e"})).await;
    let answer = api
        .raw(
            axum::http::Method::POST,
            "/api/v1/app/acme/endpoint/e/secret/rotate",
            Vec::new(),
            &[],
        )
        .await;
    assert!(
        answer.expect(StatusCode::OK)["key"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
}

#[tokio::test]
async fn custom_headers_are_set_merged_and_redacted() {
    let api = api_with_app().await;
    create(
        &api,
        json!({"url": "https://example.com", "uid": "e", "headers": {"X-Tenant": "acme"}}),
    )
    .await;
    let path = "/api/v1/app/acme/endpoint/e/headers";
    let read = api.get(path).await.expect(StatusCode::OK);
    assert_eq!(
        read,
        json!({"headers": {"x-tenant": "acme"}, "sensitive": []})
    );

    let replaced = api
        .put(path, json!({"headers": {"Authorization": "Bearer s3cret", "X-Region": "eu", "X-Api-Key": "k"}}))
        .await;
    assert_eq!(replaced.status, StatusCode::NO_CONTENT);
    let read = api.get(path).await.expect(StatusCode::OK);
    assert_eq!(read["headers"], json!({"x-region": "eu"}));
    assert_eq!(read["sensitive"], json!(["authorization", "x-api-key"]));

    let merged = api
        .patch(path, json!({"headers": {"X-Extra": "1", "x-region": null}, "deleteHeaders": ["Authorization"]}))
        .await;
    assert_eq!(merged.status, StatusCode::NO_CONTENT);
    let read = api.get(&format!("{path}/")).await.expect(StatusCode::OK);
    assert_eq!(read["headers"], json!({"x-extra": "1"}));
    assert_eq!(read["sensitive"], json!(["x-api-key"]));

    for reserved in [
        "webhook-signature",
        "Svix-Id",
        "content-type",
        "Host",
        "user-agent",
        "Proxy-Authorization",
    ] {
        api.put(path, json!({"headers": {reserved: "x"}}))
            .await
            .expect_invalid(&["body", "headers", reserved]);
        api.patch(path, json!({"headers": {reserved: "x"}}))
            .await
            .expect_invalid(&["body", "headers", reserved]);
    }
    api.put(path, json!({"headers": {"bad name": "x"}}))
        .await
        .expect_invalid(&["body", "headers", "bad name"]);
    api.put(path, json!({"headers": {"x-ok": "line\nbreak"}}))
        .await
        .expect_invalid(&["body", "headers", "x-ok"]);
    let many: serde_json::Map<String, Value> =
        (0..21).map(|n| (format!("x-h{n}"), json!("v"))).collect();
    api.put(path, json!({ "headers": many }))
        .await
        .expect_invalid(&["body", "headers"]);
    api.put(path, json!({})).await.expect_invalid(&["body"]);
    // Nothing was changed by the refused requests.
    assert_eq!(
        api.get(path).await.expect(StatusCode::OK)["headers"],
        json!({"x-extra": "1"})
    );
    api.get("/api/v1/app/acme/endpoint/nothing/headers")
        .await
        .expect_error(StatusCode::NOT_FOUND);
}

/// A message with a canceled delivery to the endpoint: stored, fanned out, then canceled by
/// disabling the endpoint (delivery itself is not part of these tests).
async fn canceled_delivery(api: &TestApi, endpoint: &str) {
    let store = api.state().store();
    let app = store
        .get_application(&Key::parse("acme"))
        .await
        .unwrap()
        .unwrap();
    let message = Message {
        id: MessageId::new(),
        app_id: AppId::clone(&app.id),
        event_type: "user.created".into(),
        event_id: None,
        payload: bytes::Bytes::from_static(b"{}"),
        channels: Vec::new(),
        tags: Vec::new(),
        created_at: now(),
        deliver_at: None,
        retain_payload_until: None,
    };
    let fanned_out = store.create_message(&message, None, None).await.unwrap();
    assert_eq!(fanned_out.len(), 1);
    let path = format!("/api/v1/app/acme/endpoint/{endpoint}");
    api.patch(&path, json!({"disabled": true}))
        .await
        .expect(StatusCode::OK);
    api.patch(&path, json!({"disabled": false}))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn stats_count_deliveries_by_status() {
    let api = api_with_app().await;
    create(&api, json!({"url": "https://example.com", "uid": "e"})).await;
    let stats = api
        .get("/api/v1/app/acme/endpoint/e/stats")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        stats,
        json!({"success": 0, "pending": 0, "sending": 0, "fail": 0, "canceled": 0})
    );
    canceled_delivery(&api, "e").await;
    let stats = api
        .get("/api/v1/app/acme/endpoint/e/stats?since=2024-01-01T00:00:00&until=2100-01-01T00:00:00Z")
        .await
        .expect(StatusCode::OK);
    assert_eq!(stats["canceled"], 1);
    assert_eq!(stats["pending"], 0);
    // The window narrows the counts: a window that ends before the message counts nothing.
    for path in ["stats", "attempt-stats"] {
        let stats = api
            .get(&format!(
                "/api/v1/app/acme/endpoint/e/{path}?until=2024-01-01T00:00:00Z"
            ))
            .await
            .expect(StatusCode::OK);
        assert_eq!(stats["canceled"], 0, "{path}");
        let stats = api
            .get(&format!(
                "/api/v1/app/acme/endpoint/e/{path}?since=2024-01-01T00:00:00Z"
            ))
            .await
            .expect(StatusCode::OK);
        assert_eq!(stats["canceled"], 1, "{path}");
        api.get(&format!(
            "/api/v1/app/acme/endpoint/e/{path}?since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z"
        ))
        .await
        .expect_invalid(&["query", "since"]);
    }
    api.get("/api/v1/app/acme/endpoint/e/stats?since=yesterday")
        .await
        .expect_invalid(&["query", "since"]);
    api.get("/api/v1/app/acme/endpoint/nothing/stats")
        .await
        .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn recover_requeues_and_records_a_task() {
    let api = api_with_app().await;
    create(&api, json!({"url": "https://example.com", "uid": "e"})).await;
    canceled_delivery(&api, "e").await;

    let task = api
        .post(
            "/api/v1/app/acme/endpoint/e/recover",
            json!({"since": "2024-01-01T00:00:00"}),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(task["task"], "endpoint.recover");
    assert_eq!(task["status"], "finished");
    assert!(task["updatedAt"].as_str().unwrap().ends_with('Z'));
    let id = task["id"].as_str().unwrap();

    let read = api
        .get(&format!("/api/v1/background-task/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(read["id"], id);
    assert_eq!(read["status"], "finished");
    assert_eq!(read["task"], "endpoint.recover");
    assert_eq!(read["data"], json!({"recovered": 1}));
    api.get(&format!("/api/v1/background-task/{id}/"))
        .await
        .expect(StatusCode::OK);

    let stats = api
        .get("/api/v1/app/acme/endpoint/e/stats")
        .await
        .expect(StatusCode::OK);
    assert_eq!(stats["pending"], 1);
    assert_eq!(stats["canceled"], 0);
    let app = api
        .state()
        .store()
        .get_application(&Key::parse("acme"))
        .await
        .unwrap()
        .unwrap();
    let endpoint = api
        .state()
        .store()
        .get_endpoint(&app.id, &Key::parse("e"))
        .await
        .unwrap()
        .unwrap();
    let page = webhookd_store::PageRequest::default();
    let deliveries = api
        .state()
        .store()
        .list_endpoint_deliveries(&app.id, &endpoint.id, &Default::default(), &page)
        .await
        .unwrap();
    assert_eq!(deliveries.items[0].1.status, DeliveryStatus::Pending);

    // A window with an offset and an explicit end, holding nothing.
    let empty = api
        .post(
            "/api/v1/app/acme/endpoint/e/recover/",
            json!({"since": "2020-01-01T00:00:00+02:00", "until": "2020-01-02T00:00:00Z"}),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let read = api
        .get(&format!(
            "/api/v1/background-task/{}",
            empty["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(read.expect(StatusCode::OK)["data"], json!({"recovered": 0}));
}

#[tokio::test]
async fn recover_refuses_bad_windows() {
    let api = api_with_app().await;
    create(&api, json!({"url": "https://example.com", "uid": "e"})).await;
    let path = "/api/v1/app/acme/endpoint/e/recover";
    api.post(
        path,
        json!({"since": "2024-01-02T00:00:00Z", "until": "2024-01-01T00:00:00Z"}),
    )
    .await
    .expect_invalid(&["body", "since"]);
    api.post(path, json!({"since": "2999-01-01T00:00:00Z"}))
        .await
        .expect_invalid(&["body", "since"]);
    api.post(path, json!({"since": "yesterday"}))
        .await
        .expect_invalid(&["body", "since"]);
    api.post(path, json!({})).await.expect_invalid(&["body"]);
    api.post(
        "/api/v1/app/acme/endpoint/nothing/recover",
        json!({"since": "2024-01-01T00:00:00Z"}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn recovery_replays_for_the_same_idempotency_key() {
    let api = api_with_app().await;
    create(&api, json!({"url": "https://example.com", "uid": "e"})).await;
    let body = serde_json::to_vec(&json!({"since": "2024-01-01T00:00:00Z"})).unwrap();
    let headers = [("idempotency-key", "auto_recover")];
    let path = "/api/v1/app/acme/endpoint/e/recover";
    let first = api
        .raw(axum::http::Method::POST, path, body.clone(), &headers)
        .await;
    let second = api
        .raw(axum::http::Method::POST, path, body, &headers)
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(second.status, StatusCode::ACCEPTED);
    assert_eq!(first.body, second.body);
}

#[tokio::test]
async fn unknown_background_tasks_are_404() {
    let api = TestApi::new();
    api.get("/api/v1/background-task/qtask_01ARZ3NDEKTSV4RRFFQ69G5FAV")
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.get("/api/v1/background-task/not-an-id")
        .await
        .expect_error(StatusCode::NOT_FOUND);
}
