//! Endpoints: CRUD with ids and uids, both field names, PUT as create-or-update, PATCH with
//! nulls, limits and errors. Secrets, headers, recovery and stats are in `endpoint_controls`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApi;

pub(crate) const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// A test API with the application `acme`.
pub(crate) async fn api_with_app() -> TestApi {
    let api = TestApi::new();
    api.post("/api/v1/app", json!({"name": "Acme", "uid": "acme"}))
        .await
        .expect(StatusCode::CREATED);
    api
}

pub(crate) async fn create(api: &TestApi, body: Value) -> Value {
    api.post("/api/v1/app/acme/endpoint", body)
        .await
        .expect(StatusCode::CREATED)
}

#[tokio::test]
async fn create_read_update_delete() {
    let api = api_with_app().await;
    let created = create(
        &api,
        json!({"url": "https://example.com/hook", "uid": "main", "filterTypes": ["user.created"],
               "channels": ["eu"], "rateLimit": 5, "metadata": {"team": "core"}}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ep_"));
    assert_eq!(created["uid"], "main");
    assert_eq!(created["url"], "https://example.com/hook");
    assert_eq!(created["description"], "");
    assert_eq!(created["version"], 1);
    assert_eq!(created["disabled"], false);
    assert_eq!(created["filterTypes"], json!(["user.created"]));
    assert_eq!(created["eventTypes"], json!(["user.created"]));
    assert_eq!(created["channels"], json!(["eu"]));
    assert_eq!(created["rateLimit"], 5);
    assert_eq!(created["throttleRate"], 5);
    assert_eq!(created["metadata"], json!({"team": "core"}));
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(
        created.get("secret").is_none(),
        "the secret has its own route"
    );

    for key in [id.as_str(), "main"] {
        let read = api
            .get(&format!("/api/v1/app/acme/endpoint/{key}"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(read["id"], id.as_str());
    }
    let app_id = api.get("/api/v1/app/acme").await.expect(StatusCode::OK)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.get(&format!("/api/v1/app/{app_id}/endpoint/main/"))
        .await
        .expect(StatusCode::OK);

    let patched = api
        .patch(
            "/api/v1/app/acme/endpoint/main",
            json!({"description": "primary", "throttleRate": 9}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched["description"], "primary");
    assert_eq!(patched["rateLimit"], 9);
    assert_eq!(patched["filterTypes"], json!(["user.created"]));
    assert_eq!(patched["metadata"], json!({"team": "core"}));

    assert_eq!(
        api.delete("/api/v1/app/acme/endpoint/main").await.status,
        StatusCode::NO_CONTENT
    );
    api.get(&format!("/api/v1/app/acme/endpoint/{id}"))
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.delete("/api/v1/app/acme/endpoint/main")
        .await
        .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn defaults_are_never_null() {
    let api = api_with_app().await;
    let created = create(
        &api,
        json!({"url": "https://example.com", "description": null, "metadata": null}),
    )
    .await;
    assert_eq!(created["description"], "");
    assert_eq!(created["metadata"], json!({}));
    assert_eq!(created["filterTypes"], Value::Null);
    assert_eq!(created["eventTypes"], Value::Null);
    assert_eq!(created["channels"], Value::Null);
    assert_eq!(created["uid"], Value::Null);
    assert_eq!(created["throttleRate"], Value::Null);
    // Unknown fields are ignored.
    create(
        &api,
        json!({"url": "https://example.com", "somethingNew": 1}),
    )
    .await;
}

#[tokio::test]
async fn both_field_names_are_accepted_and_emitted() {
    let api = api_with_app().await;
    let newer = create(
        &api,
        json!({"url": "https://example.com", "eventTypes": ["a", "b", "a"], "throttleRate": 3}),
    )
    .await;
    assert_eq!(newer["filterTypes"], json!(["a", "b"]));
    assert_eq!(newer["eventTypes"], json!(["a", "b"]));
    assert_eq!(newer["rateLimit"], 3);
    let older = create(
        &api,
        json!({"url": "https://example.com", "filterTypes": ["c"], "rateLimit": 4}),
    )
    .await;
    assert_eq!(older["eventTypes"], json!(["c"]));
    assert_eq!(older["throttleRate"], 4);
    let id = older["id"].as_str().unwrap();
    let patched = api
        .patch(
            &format!("/api/v1/app/acme/endpoint/{id}"),
            json!({"eventTypes": ["d"]}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched["filterTypes"], json!(["d"]));
}

#[tokio::test]
async fn patch_clears_with_null() {
    let api = api_with_app().await;
    create(
        &api,
        json!({"url": "https://example.com", "uid": "ep1", "filterTypes": ["a"], "channels": ["x"],
               "rateLimit": 2, "description": "d", "metadata": {"k": "v"}}),
    )
    .await;
    let cleared = api
        .patch(
            "/api/v1/app/acme/endpoint/ep1",
            json!({"filterTypes": null, "channels": null, "rateLimit": null, "description": null,
                   "metadata": null}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(cleared["filterTypes"], Value::Null);
    assert_eq!(cleared["eventTypes"], Value::Null);
    assert_eq!(cleared["channels"], Value::Null);
    assert_eq!(cleared["throttleRate"], Value::Null);
    assert_eq!(cleared["description"], "");
    assert_eq!(cleared["metadata"], json!({}));
    assert_eq!(cleared["uid"], "ep1");
    let id = cleared["id"].as_str().unwrap().to_owned();
    let no_uid = api
        .patch("/api/v1/app/acme/endpoint/ep1", json!({"uid": null}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(no_uid["uid"], Value::Null);
    api.get(&format!("/api/v1/app/acme/endpoint/{id}"))
        .await
        .expect(StatusCode::OK);
    api.patch(
        &format!("/api/v1/app/acme/endpoint/{id}"),
        json!({"url": "ftp://example.com"}),
    )
    .await
    .expect_invalid(&["body", "url"]);
    let disabled = api
        .patch(
            &format!("/api/v1/app/acme/endpoint/{id}"),
            json!({"disabled": true}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(disabled["disabled"], true);
}

#[tokio::test]
async fn urls_with_line_breaks_are_stored_normalised() {
    let api = api_with_app().await;
    let typed = "https://example.com/hook\r\n2026-01-01T00:00:00Z INFO forged\tline";
    let created = api
        .post("/api/v1/app/acme/endpoint", json!({"url": typed}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(
        created["url"],
        "https://example.com/hook2026-01-01T00:00:00Z%20INFO%20forgedline"
    );
    let id = created["id"].as_str().unwrap();
    let patched = api
        .patch(
            &format!("/api/v1/app/acme/endpoint/{id}"),
            json!({"url": "https://example.com/\nx"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched["url"], "https://example.com/x");
    // A URL typed plainly is kept as typed.
    let plain = api
        .post(
            "/api/v1/app/acme/endpoint",
            json!({"url": "https://example.com"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(plain["url"], "https://example.com");
}

#[tokio::test]
async fn put_creates_or_replaces() {
    let api = api_with_app().await;
    let created = api
        .put(
            "/api/v1/app/acme/endpoint/billing",
            json!({"url": "https://example.com/a", "channels": ["x"]}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(created["uid"], "billing");
    let replaced = api
        .put(
            "/api/v1/app/acme/endpoint/billing",
            json!({"url": "https://example.com/b"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(replaced["id"], created["id"]);
    assert_eq!(replaced["url"], "https://example.com/b");
    assert_eq!(replaced["channels"], Value::Null);
    assert_eq!(replaced["uid"], "billing");
    api.put(
        "/api/v1/app/acme/endpoint/ep_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        json!({"url": "https://example.com"}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND);
    api.put(
        "/api/v1/app/acme/endpoint/other",
        json!({"url": "https://example.com", "uid": "different"}),
    )
    .await
    .expect_invalid(&["body", "uid"]);
    api.put(
        "/api/v1/app/nobody/endpoint/x",
        json!({"url": "https://example.com"}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lists_are_ascending_and_page() {
    let api = api_with_app().await;
    for n in 0..3 {
        create(&api, json!({"url": format!("https://example.com/{n}")})).await;
    }
    let all = api
        .get("/api/v1/app/acme/endpoint")
        .await
        .expect(StatusCode::OK);
    let urls: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ep| ep["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "https://example.com/0",
            "https://example.com/1",
            "https://example.com/2"
        ]
    );
    assert_eq!(all["done"], true);
    let first = api
        .get("/api/v1/app/acme/endpoint/?limit=2")
        .await
        .expect(StatusCode::OK);
    assert_eq!(first["done"], false);
    let iterator = first["iterator"].as_str().unwrap();
    let rest = api
        .get(&format!("/api/v1/app/acme/endpoint?iterator={iterator}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(rest["data"][0]["url"], "https://example.com/2");
    let newest = api
        .get("/api/v1/app/acme/endpoint?order=descending&limit=1")
        .await
        .expect(StatusCode::OK);
    assert_eq!(newest["data"][0]["url"], "https://example.com/2");
    api.get("/api/v1/app/acme/endpoint?limit=251")
        .await
        .expect_invalid(&["query", "limit"]);
    api.get("/api/v1/app/nobody/endpoint")
        .await
        .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_input_is_refused_clearly() {
    let api = api_with_app().await;
    let path = "/api/v1/app/acme/endpoint";
    for url in [
        "ftp://example.com",
        "file:///etc/passwd",
        "https://",
        "not a url",
        "//example.com/relative",
    ] {
        api.post(path, json!({ "url": url }))
            .await
            .expect_invalid(&["body", "url"]);
    }
    let answer = api
        .post(path, json!({"url": "ftp://example.com"}))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("http or https")
    );
    api.post(path, json!({})).await.expect_invalid(&["body"]);
    api.post(path, json!({"url": "https://example.com", "version": 0}))
        .await
        .expect_invalid(&["body", "version"]);
    api.post(path, json!({"url": "https://example.com", "uid": "ep_x"}))
        .await
        .expect_invalid(&["body", "uid"]);
    api.post(path, json!({"url": "https://example.com", "rateLimit": 0}))
        .await
        .expect_invalid(&["body", "throttleRate"]);
    api.post(
        path,
        json!({"url": "https://example.com", "secret": "whsec_short"}),
    )
    .await
    .expect_invalid(&["body", "secret"]);
    api.post(
        path,
        json!({"url": "https://example.com", "filterTypes": ["ok", "not ok"]}),
    )
    .await
    .expect_invalid(&["body", "filterTypes", "1"]);
    let many: Vec<String> = (0..101).map(|n| format!("type.{n}")).collect();
    api.post(
        path,
        json!({"url": "https://example.com", "eventTypes": many}),
    )
    .await
    .expect_invalid(&["body", "eventTypes"]);
    let channels: Vec<String> = (0..11).map(|n| format!("c{n}")).collect();
    api.post(
        path,
        json!({"url": "https://example.com", "channels": channels}),
    )
    .await
    .expect_invalid(&["body", "channels"]);
    api.post(
        path,
        json!({"url": "https://example.com", "headers": {"host": "x"}}),
    )
    .await
    .expect_invalid(&["body", "headers", "host"]);
    api.post(
        "/api/v1/app/nobody/endpoint",
        json!({"url": "https://example.com"}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND);
    api.get("/api/v1/app/acme/endpoint/nothing")
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.patch("/api/v1/app/acme/endpoint/nothing", json!({}))
        .await
        .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn uid_conflicts_are_409() {
    let api = api_with_app().await;
    create(&api, json!({"url": "https://example.com", "uid": "same"})).await;
    api.post(
        "/api/v1/app/acme/endpoint",
        json!({"url": "https://example.com", "uid": "same"}),
    )
    .await
    .expect_error(StatusCode::CONFLICT);
    let other = create(&api, json!({"url": "https://example.com", "uid": "other"})).await;
    let id = other["id"].as_str().unwrap();
    api.patch(
        &format!("/api/v1/app/acme/endpoint/{id}"),
        json!({"uid": "same"}),
    )
    .await
    .expect_error(StatusCode::CONFLICT);
    // The same uid in another application is fine.
    api.post("/api/v1/app", json!({"name": "Other", "uid": "other-app"}))
        .await
        .expect(StatusCode::CREATED);
    api.post(
        "/api/v1/app/other-app/endpoint",
        json!({"url": "https://example.com", "uid": "same"}),
    )
    .await
    .expect(StatusCode::CREATED);
}

#[tokio::test]
async fn creation_honours_idempotency_keys() {
    let api = api_with_app().await;
    let body = serde_json::to_vec(&json!({"url": "https://example.com"})).unwrap();
    let headers = [("idempotency-key", "auto_ep")];
    let first = api
        .raw(
            axum::http::Method::POST,
            "/api/v1/app/acme/endpoint",
            body.clone(),
            &headers,
        )
        .await;
    let second = api
        .raw(
            axum::http::Method::POST,
            "/api/v1/app/acme/endpoint",
            body,
            &headers,
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.body, second.body);
    let all = api
        .get("/api/v1/app/acme/endpoint")
        .await
        .expect(StatusCode::OK);
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_application_holds_at_most_a_thousand_endpoints() {
    let api = TestApi::new();
    api.post("/api/v1/app", json!({"name": "big", "uid": "big"}))
        .await
        .expect(StatusCode::CREATED);
    for n in 0..1000 {
        let url = format!("https://example.com/{n}");
        api.post("/api/v1/app/big/endpoint", json!({ "url": url }))
            .await
            .expect(StatusCode::CREATED);
    }
    let refused = api
        .post(
            "/api/v1/app/big/endpoint",
            json!({"url": "https://example.com/one-more"}),
        )
        .await;
    let body = refused.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("at most 1000"),
        "{body}"
    );
}

#[tokio::test]
async fn ordered_round_trips_and_is_omitted_when_off() {
    let api = api_with_app().await;
    let plain = create(&api, json!({"url": "https://example.com/plain"})).await;
    assert!(plain.get("ordered").is_none(), "omitted when off: {plain}");
    let off = create(
        &api,
        json!({"url": "https://example.com/off", "ordered": false}),
    )
    .await;
    assert!(off.get("ordered").is_none());

    let created = create(
        &api,
        json!({"url": "https://example.com/fifo", "uid": "fifo", "ordered": true}),
    )
    .await;
    assert_eq!(created["ordered"], true);
    let read = api
        .get("/api/v1/app/acme/endpoint/fifo")
        .await
        .expect(StatusCode::OK);
    assert_eq!(read["ordered"], true);
    let listed = api
        .get("/api/v1/app/acme/endpoint")
        .await
        .expect(StatusCode::OK);
    let fifo = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|endpoint| endpoint["uid"] == "fifo")
        .expect("listed");
    assert_eq!(fifo["ordered"], true);

    // PATCH without it keeps it; PUT without it keeps it (clients that do not know the
    // field leave it alone); either may set it.
    let patched = api
        .patch(
            "/api/v1/app/acme/endpoint/fifo",
            json!({"description": "in order"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched["ordered"], true);
    let put = api
        .put(
            "/api/v1/app/acme/endpoint/fifo",
            json!({"url": "https://example.com/fifo"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(put["ordered"], true);
    let patched = api
        .patch("/api/v1/app/acme/endpoint/fifo", json!({"ordered": false}))
        .await
        .expect(StatusCode::OK);
    assert!(patched.get("ordered").is_none());
    let put = api
        .put(
            "/api/v1/app/acme/endpoint/fifo",
            json!({"url": "https://example.com/fifo", "ordered": true}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(put["ordered"], true);

    api.post(
        "/api/v1/app/acme/endpoint",
        json!({"url": "https://example.com/x", "ordered": "yes"}),
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY);
}
