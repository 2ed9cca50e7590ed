//! Event types: CRUD by name, archive and expunge, un-archiving by creating, listing, 409s.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApi;

fn names(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .expect("a data list")
        .iter()
        .filter_map(|item| item["name"].as_str())
        .collect()
}

#[tokio::test]
async fn create_read_update_delete() {
    let api = TestApi::new();
    let schemas = json!({"1": {"type": "object", "properties": {"id": {"type": "string"}}}});
    let created = api
        .post(
            "/api/v1/event-type",
            json!({"name": "invoice.paid", "description": "An invoice was paid", "schemas": schemas,
                   "featureFlag": "beta", "groupName": "billing"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(created["name"], "invoice.paid");
    assert_eq!(created["description"], "An invoice was paid");
    assert_eq!(created["archived"], false);
    assert_eq!(created["deprecated"], false);
    assert_eq!(created["schemas"], schemas);
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(created["updatedAt"].is_string());

    let read = api
        .get("/api/v1/event-type/invoice.paid/")
        .await
        .expect(StatusCode::OK);
    assert_eq!(read, created);

    let patched = api
        .patch(
            "/api/v1/event-type/invoice.paid",
            json!({"deprecated": true, "schemas": null}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched["deprecated"], true);
    assert_eq!(patched["description"], "An invoice was paid");
    assert_eq!(patched["schemas"], Value::Null);

    let put = api
        .put(
            "/api/v1/event-type/invoice.paid",
            json!({"description": "Paid"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(put["description"], "Paid");
    assert_eq!(put["deprecated"], false);
    assert_eq!(put["createdAt"], created["createdAt"]);

    let minimal = api
        .post("/api/v1/event-type", json!({"name": "user.created"}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(minimal["description"], "");
    assert_eq!(minimal["schemas"], Value::Null);

    assert_eq!(
        api.delete("/api/v1/event-type/user.created?expunge=true")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    api.get("/api/v1/event-type/user.created")
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.delete("/api/v1/event-type/user.created")
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.patch("/api/v1/event-type/nope", json!({"deprecated": true}))
        .await
        .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn put_creates_then_updates() {
    let api = TestApi::new();
    let created = api
        .put("/api/v1/event-type/a.b", json!({"description": "x"}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(created["name"], "a.b");
    let updated = api
        .put("/api/v1/event-type/a.b", json!({"description": "y"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(updated["description"], "y");
    api.put("/api/v1/event-type/has%20space", json!({}))
        .await
        .expect_invalid(&["path", "name"]);
}

#[tokio::test]
async fn archive_hides_and_creating_unarchives() {
    let api = TestApi::new();
    api.post("/api/v1/event-type", json!({"name": "a"}))
        .await
        .expect(StatusCode::CREATED);
    let first = api
        .post(
            "/api/v1/event-type",
            json!({"name": "b", "description": "old"}),
        )
        .await
        .expect(StatusCode::CREATED);
    api.post("/api/v1/event-type", json!({"name": "b"}))
        .await
        .expect_error(StatusCode::CONFLICT);

    assert_eq!(
        api.delete("/api/v1/event-type/b").await.status,
        StatusCode::NO_CONTENT
    );
    let archived = api.get("/api/v1/event-type/b").await.expect(StatusCode::OK);
    assert_eq!(archived["archived"], true);
    assert_eq!(
        names(&api.get("/api/v1/event-type").await.expect(StatusCode::OK)),
        ["a"]
    );
    let all = api
        .get("/api/v1/event-type?include_archived=true")
        .await
        .expect(StatusCode::OK);
    assert_eq!(names(&all), ["a", "b"]);

    let revived = api
        .post(
            "/api/v1/event-type",
            json!({"name": "b", "description": "new"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(revived["archived"], false);
    assert_eq!(revived["description"], "new");
    assert_eq!(revived["createdAt"], first["createdAt"]);
    assert_eq!(
        names(&api.get("/api/v1/event-type").await.expect(StatusCode::OK)),
        ["a", "b"]
    );
}

#[tokio::test]
async fn lists_page_by_name() {
    let api = TestApi::new();
    for name in ["c", "a", "e", "b", "d"] {
        api.post(
            "/api/v1/event-type",
            json!({"name": name, "schemas": {"1": {}}}),
        )
        .await
        .expect(StatusCode::CREATED);
    }
    let first = api
        .get("/api/v1/event-type?limit=2")
        .await
        .expect(StatusCode::OK);
    assert_eq!(names(&first), ["a", "b"]);
    assert_eq!(first["done"], false);
    assert_eq!(first["iterator"], "b");
    assert_eq!(first["prevIterator"], "-a");
    let second = api
        .get("/api/v1/event-type?limit=2&iterator=b")
        .await
        .expect(StatusCode::OK);
    assert_eq!(names(&second), ["c", "d"]);
    let last = api
        .get("/api/v1/event-type?limit=2&iterator=d")
        .await
        .expect(StatusCode::OK);
    assert_eq!(names(&last), ["e"]);
    assert_eq!(last["done"], true);
    let back = api
        .get("/api/v1/event-type?limit=2&iterator=-c")
        .await
        .expect(StatusCode::OK);
    assert_eq!(names(&back), ["a", "b"]);

    let with_content = api.get("/api/v1/event-type").await.expect(StatusCode::OK);
    assert_eq!(with_content["data"][0]["schemas"], json!({"1": {}}));
    let without = api
        .get("/api/v1/event-type?with_content=false")
        .await
        .expect(StatusCode::OK);
    assert_eq!(without["data"][0]["schemas"], Value::Null);

    let empty = TestApi::new()
        .get("/api/v1/event-type")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        empty,
        json!({"data": [], "iterator": null, "prevIterator": null, "done": true})
    );
}

#[tokio::test]
async fn bad_input_is_refused_clearly() {
    let api = TestApi::new();
    api.post("/api/v1/event-type", json!({}))
        .await
        .expect_invalid(&["body"]);
    api.post("/api/v1/event-type", json!({"name": "has space"}))
        .await
        .expect_invalid(&["body", "name"]);
    api.post("/api/v1/event-type", json!({"name": ""}))
        .await
        .expect_invalid(&["body", "name"]);
    api.post("/api/v1/event-type", json!({"name": "a", "schemas": [1]}))
        .await
        .expect_invalid(&["body", "schemas"]);
    api.post(
        "/api/v1/event-type",
        json!({"name": "a", "archived": "yes"}),
    )
    .await
    .expect_invalid(&["body", "archived"]);
    api.get("/api/v1/event-type?include_archived=maybe")
        .await
        .expect_invalid(&["query", "include_archived"]);
    let malformed = api
        .raw(
            axum::http::Method::POST,
            "/api/v1/event-type",
            b"{".to_vec(),
            &[],
        )
        .await;
    malformed.expect_error(StatusCode::BAD_REQUEST);
}
