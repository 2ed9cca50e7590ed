//! Limits on what a request may store: free-text fields, JSON objects, payload nesting, uids
//! that are path segments, and the size of the `/webhooks` list. Each is a 422 in the list
//! shape, located at the field.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApi;

fn nested(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = json!({ "a": value });
    }
    value
}

#[tokio::test]
async fn free_text_and_objects_have_documented_limits() {
    let api = TestApi::new();
    api.post("/api/v1/app", json!({"name": "x".repeat(257)}))
        .await
        .expect_invalid(&["body", "name"]);
    let big_metadata = json!({"blob": "x".repeat(17 * 1024)});
    api.post(
        "/api/v1/app",
        json!({"name": "a", "metadata": big_metadata}),
    )
    .await
    .expect_invalid(&["body", "metadata"]);
    // At the limits, accepted.
    let app = api
        .post(
            "/api/v1/app",
            json!({"name": "é".repeat(256), "uid": "acme"}),
        )
        .await
        .expect(StatusCode::CREATED);
    api.patch("/api/v1/app/acme", json!({"name": "x".repeat(257)}))
        .await
        .expect_invalid(&["body", "name"]);
    assert_eq!(app["name"].as_str().unwrap().chars().count(), 256);

    let endpoint = |fields: Value| {
        let mut body = json!({"url": "https://example.com/hook"});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        body
    };
    api.post(
        "/api/v1/app/acme/endpoint",
        endpoint(json!({"description": "d".repeat(1025)})),
    )
    .await
    .expect_invalid(&["body", "description"]);
    api.post(
        "/api/v1/app/acme/endpoint",
        endpoint(json!({"channels": ["c".repeat(129)]})),
    )
    .await
    .expect_invalid(&["body", "channels", "0"]);
    api.post(
        "/api/v1/app/acme/endpoint",
        endpoint(json!({"metadata": big_metadata})),
    )
    .await
    .expect_invalid(&["body", "metadata"]);
    let created = api
        .post(
            "/api/v1/app/acme/endpoint",
            endpoint(json!({"description": "d".repeat(1024), "channels": ["c".repeat(128)]})),
        )
        .await
        .expect(StatusCode::CREATED);
    api.patch(
        &format!(
            "/api/v1/app/acme/endpoint/{}",
            created["id"].as_str().unwrap()
        ),
        json!({"description": "d".repeat(1025)}),
    )
    .await
    .expect_invalid(&["body", "description"]);

    api.post(
        "/api/v1/event-type",
        json!({"name": "user.created", "description": "d".repeat(4097)}),
    )
    .await
    .expect_invalid(&["body", "description"]);
    api.post(
        "/api/v1/event-type",
        json!({"name": "user.created", "schemas": {"1": {"description": "s".repeat(65 * 1024)}}}),
    )
    .await
    .expect_invalid(&["body", "schemas"]);

    api.post(
        "/api/v1/app/acme/msg",
        json!({"eventType": "a", "payload": {}, "tags": ["t".repeat(129)]}),
    )
    .await
    .expect_invalid(&["body", "tags"]);
    api.post(
        "/api/v1/app/acme/msg",
        json!({"eventType": "a", "payload": {}, "channels": ["c".repeat(129)]}),
    )
    .await
    .expect_invalid(&["body", "channels"]);
}

#[tokio::test]
async fn payloads_nest_at_most_64_levels() {
    let api = TestApi::new();
    api.post("/api/v1/app", json!({"name": "a", "uid": "acme"}))
        .await
        .expect(StatusCode::CREATED);
    api.post(
        "/api/v1/app/acme/msg",
        json!({"eventType": "a", "payload": nested(64)}),
    )
    .await
    .expect(StatusCode::ACCEPTED);
    let refused = api
        .post(
            "/api/v1/app/acme/msg",
            json!({"eventType": "a", "payload": nested(65)}),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused["detail"][0]["loc"], json!(["body", "payload"]));
    assert!(
        refused["detail"][0]["msg"].as_str().unwrap().contains("64"),
        "the answer names the limit: {refused}"
    );
    // Far deeper than any parser's recursion limit: refused, not stored.
    let deep = format!(
        r#"{{"eventType": "a", "payload": {{"a": {}1{}}}}}"#,
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    let answer = api
        .raw(
            axum::http::Method::POST,
            "/api/v1/app/acme/msg",
            deep.into_bytes(),
            &[],
        )
        .await;
    assert!(
        answer.status == StatusCode::UNPROCESSABLE_ENTITY
            || answer.status == StatusCode::BAD_REQUEST,
        "{} {}",
        answer.status,
        answer.body
    );
}

#[tokio::test]
async fn dot_uids_are_refused() {
    let api = TestApi::new();
    for uid in [".", ".."] {
        api.post("/api/v1/app", json!({"name": "a", "uid": uid}))
            .await
            .expect_invalid(&["body", "uid"]);
    }
    api.post("/api/v1/app", json!({"name": "a", "uid": "acme"}))
        .await
        .expect(StatusCode::CREATED);
    api.post(
        "/api/v1/app/acme/endpoint",
        json!({"url": "https://example.com", "uid": ".."}),
    )
    .await
    .expect_invalid(&["body", "uid"]);
    api.post(
        "/webhooks",
        json!({"name": "..", "destination": "https://example.com"}),
    )
    .await
    .expect_invalid(&["body", "name"]);
}

#[tokio::test]
async fn the_webhooks_list_is_paged() {
    let api = TestApi::new();
    let mut registered = Vec::new();
    for name in ["ann", "bob", "cid"] {
        let answer = api
            .post(
                "/webhooks",
                json!({"name": name, "destination": format!("https://example.com/{name}")}),
            )
            .await
            .expect(StatusCode::CREATED);
        registered.push(answer["endpointId"].as_str().unwrap().to_owned());
    }
    let first = api.get("/webhooks?limit=2").await.expect(StatusCode::OK);
    let data = first["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{first}");
    assert_eq!(first["done"], false);
    // Newest first.
    assert_eq!(data[0]["endpointId"], registered[2].as_str());
    assert_eq!(data[0]["name"], "cid");
    let iterator = first["iterator"].as_str().unwrap();
    let rest = api
        .get(&format!("/webhooks?limit=2&iterator={iterator}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(rest["data"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["data"][0]["endpointId"], registered[0].as_str());
    assert_eq!(rest["data"][0]["name"], "ann");
    assert_eq!(rest["done"], true);
    api.get("/webhooks?limit=251")
        .await
        .expect_invalid(&["query", "limit"]);
}
