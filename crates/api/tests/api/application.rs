//! Applications: CRUD, uids in paths, get_if_exists, PUT as create-or-update, errors.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::TestApi;

#[tokio::test]
async fn create_read_update_delete() {
    let api = TestApi::new();
    let created = api
        .post(
            "/api/v1/app",
            json!({"name": "Joe", "uid": "joe", "metadata": {"plan": "pro"}}),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("app_"));
    assert_eq!(created["uid"], "joe");
    assert_eq!(created["metadata"]["plan"], "pro");
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));

    for key in [id.as_str(), "joe"] {
        let read = api
            .get(&format!("/api/v1/app/{key}"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(read["id"], id.as_str());
    }
    let read = api.get("/api/v1/app/joe/").await.expect(StatusCode::OK);
    assert_eq!(read["name"], "Joe");

    let patched = api
        .patch("/api/v1/app/joe", json!({"name": "Joseph", "rateLimit": 7}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched["name"], "Joseph");
    assert_eq!(patched["throttleRate"], 7);
    assert_eq!(patched["rateLimit"], 7);
    assert_eq!(patched["metadata"]["plan"], "pro");

    let put = api
        .put("/api/v1/app/joe", json!({"name": "Jo"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(put["id"], id.as_str());
    assert_eq!(put["metadata"], json!({}));

    assert_eq!(
        api.delete("/api/v1/app/joe").await.status,
        StatusCode::NO_CONTENT
    );
    api.get(&format!("/api/v1/app/{id}"))
        .await
        .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn put_creates_with_the_path_uid() {
    let api = TestApi::new();
    let created = api
        .put("/api/v1/app/acme", json!({"name": "Acme"}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(created["uid"], "acme");
    api.put(
        "/api/v1/app/app_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        json!({"name": "x"}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn get_if_exists_and_conflicts() {
    let api = TestApi::new();
    let first = api
        .post("/api/v1/app", json!({"name": "A", "uid": "a"}))
        .await
        .expect(StatusCode::CREATED);
    let again = api
        .post(
            "/api/v1/app?get_if_exists=true",
            json!({"name": "A", "uid": "a"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(again["id"], first["id"]);
    let conflict = api
        .post("/api/v1/app", json!({"name": "A", "uid": "a"}))
        .await
        .expect_error(StatusCode::CONFLICT);
    assert!(conflict["detail"].as_str().unwrap().contains("`a`"));
}

#[tokio::test]
async fn bad_input_is_refused_clearly() {
    let api = TestApi::new();
    api.post("/api/v1/app", json!({}))
        .await
        .expect_invalid(&["body"]);
    api.post("/api/v1/app", json!({"name": 5}))
        .await
        .expect_invalid(&["body", "name"]);
    api.post("/api/v1/app", json!({"name": "x", "uid": "has space"}))
        .await
        .expect_invalid(&["body", "uid"]);
    api.post("/api/v1/app", json!({"name": "x", "uid": "app_123"}))
        .await
        .expect_invalid(&["body", "uid"]);
    api.post("/api/v1/app", json!({"name": ""}))
        .await
        .expect_invalid(&["body", "name"]);
    let malformed = api
        .raw(
            axum::http::Method::POST,
            "/api/v1/app",
            b"{nope".to_vec(),
            &[],
        )
        .await;
    malformed.expect_error(StatusCode::BAD_REQUEST);
    api.get("/api/v1/app?limit=251")
        .await
        .expect_invalid(&["query", "limit"]);
    api.get("/api/v1/nothing-here")
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.call(axum::http::Method::DELETE, "/api/v1/app", None)
        .await
        .expect_error(StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn lists_page_with_iterators() {
    let api = TestApi::new();
    for n in 0..5 {
        api.post("/api/v1/app", json!({"name": format!("app {n}")}))
            .await
            .expect(StatusCode::CREATED);
    }
    let first = api.get("/api/v1/app?limit=2").await.expect(StatusCode::OK);
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    assert_eq!(first["done"], false);
    assert!(first["prevIterator"].as_str().unwrap().starts_with('-'));
    let iterator = first["iterator"].as_str().unwrap();
    let second = api
        .get(&format!("/api/v1/app?limit=2&iterator={iterator}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(second["data"][0]["name"], "app 2");
    let prev = second["prevIterator"].as_str().unwrap();
    let back = api
        .get(&format!("/api/v1/app?limit=2&iterator={prev}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(back["data"], first["data"]);
    let last = api
        .get(&format!("/api/v1/app?limit=10&iterator={iterator}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(last["data"].as_array().unwrap().len(), 3);
    assert_eq!(last["done"], true);
    let newest = api
        .get("/api/v1/app?limit=1&order=descending")
        .await
        .expect(StatusCode::OK);
    assert_eq!(newest["data"][0]["name"], "app 4");
    let empty = api
        .get("/api/v1/app?iterator=app_zzz")
        .await
        .expect(StatusCode::OK);
    assert_eq!(empty["iterator"], serde_json::Value::Null);
    assert_eq!(empty["done"], true);
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_answer() {
    let api = TestApi::new();
    let body = serde_json::to_vec(&json!({"name": "once"})).unwrap();
    let headers = [("idempotency-key", "auto_123")];
    let first = api
        .raw(
            axum::http::Method::POST,
            "/api/v1/app",
            body.clone(),
            &headers,
        )
        .await;
    let second = api
        .raw(axum::http::Method::POST, "/api/v1/app", body, &headers)
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(first.body, second.body);
    let all = api.get("/api/v1/app").await.expect(StatusCode::OK);
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn tokens_are_required_when_configured() {
    let mut api = TestApi::with_token("testsk_secret");
    api.get("/api/v1/app").await.expect(StatusCode::OK);
    assert_eq!(
        api.get("/api/v1/health").await.status,
        StatusCode::NO_CONTENT
    );
    api.token = Some("wrong".into());
    api.get("/api/v1/app")
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
    api.token = None;
    api.get("/api/v1/app")
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.get("/api/v1/health").await.status,
        StatusCode::NO_CONTENT
    );
}

/// RFC 7235: the auth scheme is case-insensitive.
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let mut api = TestApi::with_token("testsk_secret");
    api.token = None;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let value = format!("{scheme} testsk_secret");
        api.raw(
            Method::GET,
            "/api/v1/app",
            Vec::new(),
            &[("authorization", &value)],
        )
        .await
        .expect(StatusCode::OK);
    }
    api.raw(
        Method::GET,
        "/api/v1/app",
        Vec::new(),
        &[("authorization", "Basic testsk_secret")],
    )
    .await
    .expect_error(StatusCode::UNAUTHORIZED);
}

/// Found by hostile input: a path parameter that is not UTF-8 once decoded got axum's
/// plain-text 400, which the SDKs cannot parse. It names nothing: a JSON 404.
#[tokio::test]
async fn a_path_parameter_that_is_not_utf8_answers_json() {
    let api = TestApi::new();
    api.get("/api/v1/app/%FF")
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.get("/api/v1/app/joe/endpoint/%C3%28/secret")
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.get("/api/v1/event-type/%FF")
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.get("/api/v1/background-task/%FF")
        .await
        .expect_error(StatusCode::NOT_FOUND);
}
