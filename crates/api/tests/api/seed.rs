//! The tutorial's `/webhooks` routes: registration (idempotent for the same URL) and the list.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::TestApi;

#[tokio::test]
async fn registration_creates_then_reuses() {
    let api = TestApi::new();
    let body = json!({"name": "joe", "destination": "https://example.com/hook"});
    let first = api
        .post("/webhooks", body.clone())
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(first["name"], "joe");
    assert_eq!(first["destination"], "https://example.com/hook");
    assert!(first["applicationId"].as_str().unwrap().starts_with("app_"));
    assert!(first["endpointId"].as_str().unwrap().starts_with("ep_"));
    assert!(first["secret"].as_str().unwrap().starts_with("whsec_"));

    let again = api
        .post("/webhooks/", body)
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(again, first);
    // The same URL written differently is the same destination.
    let same = api
        .post(
            "/webhooks",
            json!({"name": "joe", "destination": "HTTPS://example.com:443/hook"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(same["endpointId"], first["endpointId"]);

    // The application is a regular one, with `name` as its uid and display name.
    let app = api.get("/api/v1/app/joe").await.expect(StatusCode::OK);
    assert_eq!(app["id"], first["applicationId"]);
    assert_eq!(app["name"], "joe");
    let secret = api
        .get(&format!(
            "/api/v1/app/joe/endpoint/{}/secret",
            first["endpointId"].as_str().unwrap()
        ))
        .await
        .expect(StatusCode::OK);
    assert_eq!(secret["key"], first["secret"]);

    let second = api
        .post(
            "/webhooks",
            json!({"name": "joe", "destination": "https://example.com/other"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(second["applicationId"], first["applicationId"]);
    assert_ne!(second["endpointId"], first["endpointId"]);
}

#[tokio::test]
async fn registration_reuses_an_application_made_through_the_api() {
    let api = TestApi::new();
    let app = api
        .post("/api/v1/app", json!({"name": "Acme Inc", "uid": "acme"}))
        .await
        .expect(StatusCode::CREATED);
    let registered = api
        .post(
            "/webhooks",
            json!({"name": "acme", "destination": "https://example.com"}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(registered["applicationId"], app["id"]);
}

#[tokio::test]
async fn the_list_shows_every_registration_without_secrets() {
    let api = TestApi::new();
    assert_eq!(
        api.get("/webhooks").await.expect(StatusCode::OK),
        json!({"data": [], "iterator": null, "prevIterator": null, "done": true})
    );
    let joe = api
        .post(
            "/webhooks",
            json!({"name": "joe", "destination": "https://example.com/joe"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let ann = api
        .post(
            "/webhooks",
            json!({"name": "ann", "destination": "https://example.com/ann"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let list = api.get("/webhooks/").await.expect(StatusCode::OK);
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for registered in [&joe, &ann] {
        let item = data
            .iter()
            .find(|item| item["endpointId"] == registered["endpointId"])
            .unwrap();
        assert_eq!(item["name"], registered["name"]);
        assert_eq!(item["destination"], registered["destination"]);
        assert_eq!(item["applicationId"], registered["applicationId"]);
        assert!(item.get("secret").is_none());
    }
}

#[tokio::test]
async fn bad_registrations_say_why() {
    let api = TestApi::new();
    let answer = api
        .post(
            "/webhooks",
            json!({"name": "joe", "destination": "ftp://example.com"}),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["detail"][0]["loc"], json!(["body", "destination"]));
    assert!(
        answer["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("http or https")
    );
    api.post("/webhooks", json!({"name": "joe", "destination": "nope"}))
        .await
        .expect_invalid(&["body", "destination"]);
    api.post(
        "/webhooks",
        json!({"name": "has space", "destination": "https://example.com"}),
    )
    .await
    .expect_invalid(&["body", "name"]);
    api.post(
        "/webhooks",
        json!({"name": "app_x", "destination": "https://example.com"}),
    )
    .await
    .expect_invalid(&["body", "name"]);
    api.post("/webhooks", json!({"name": "joe"}))
        .await
        .expect_invalid(&["body"]);
    // Nothing was created by the refused requests.
    assert_eq!(
        api.get("/webhooks").await.expect(StatusCode::OK),
        json!({"data": [], "iterator": null, "prevIterator": null, "done": true})
    );
}

#[tokio::test]
async fn registration_needs_a_token_when_configured() {
    let mut api = TestApi::with_token("testsk_seed");
    api.post(
        "/webhooks",
        json!({"name": "joe", "destination": "https://example.com"}),
    )
    .await
    .expect(StatusCode::CREATED);
    api.token = None;
    api.get("/webhooks")
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_registrations_of_one_url_make_one_endpoint() {
    let api = TestApi::new();
    let body = || serde_json::json!({"name": "racer", "destination": "https://example.com/race"});
    let answers = tokio::join!(
        api.post("/webhooks", body()),
        api.post("/webhooks", body()),
        api.post("/webhooks", body()),
        api.post("/webhooks", body()),
    );
    let ids: std::collections::HashSet<String> = [answers.0, answers.1, answers.2, answers.3]
        .into_iter()
        .map(|answer| {
            answer.expect(StatusCode::CREATED)["endpointId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let listed = api
        .get("/api/v1/app/racer/endpoint")
        .await
        .expect(StatusCode::OK);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}
