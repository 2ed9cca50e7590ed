//! Endpoint options: `payloadFilter`, `retrySchedule` and `requestTimeout` on create, update
//! and patch (422 with the position of a filter's syntax error), their round trip and removal,
//! and the filter test route, for operators and portal tokens.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::endpoint::{api_with_app, create};

const FILTER: &str = r#"payload.amount > 100 && payload.currency == "EUR""#;

/// Asserts a 422 on `payloadFilter` whose message gives this line and column.
#[track_caller]
fn assert_filter_error(body: Value, line: u32, column: u32) {
    let first = &body["detail"][0];
    assert_eq!(first["loc"], json!(["body", "payloadFilter"]), "{body}");
    let msg = first["msg"].as_str().unwrap();
    assert!(
        msg.contains(&format!("line {line}, column {column}")),
        "no position in {msg}"
    );
}

#[tokio::test]
async fn options_round_trip_and_are_removed_with_null() {
    let api = api_with_app().await;
    let plain = create(&api, json!({"url": "https://example.com/plain"})).await;
    for field in ["payloadFilter", "retrySchedule", "requestTimeout"] {
        assert!(plain.get(field).is_none(), "{field} shown unset: {plain}");
    }
    let created = create(
        &api,
        json!({"url": "https://example.com/hook", "uid": "main", "payloadFilter": FILTER,
               "retrySchedule": ["100ms", "5s", "300s"], "requestTimeout": "10s"}),
    )
    .await;
    assert_eq!(created["payloadFilter"], FILTER);
    assert_eq!(created["retrySchedule"], json!(["100ms", "5s", "5m"]));
    assert_eq!(created["requestTimeout"], "10s");
    let read = api
        .get("/api/v1/app/acme/endpoint/main")
        .await
        .expect(StatusCode::OK);
    assert_eq!(read["retrySchedule"], json!(["100ms", "5s", "5m"]));

    // PATCH keeps what it does not name, sets what it does and removes what is null.
    let patched = api
        .patch(
            "/api/v1/app/acme/endpoint/main",
            json!({"retrySchedule": [], "requestTimeout": null}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched["payloadFilter"], FILTER);
    assert_eq!(patched["retrySchedule"], json!([]), "never retry is kept");
    assert!(patched.get("requestTimeout").is_none());
    let patched = api
        .patch(
            "/api/v1/app/acme/endpoint/main",
            json!({"payloadFilter": null, "retrySchedule": null}),
        )
        .await
        .expect(StatusCode::OK);
    assert!(patched.get("payloadFilter").is_none());
    assert!(patched.get("retrySchedule").is_none());

    // PUT replaces every field: absent options are removed.
    let put = api
        .put(
            "/api/v1/app/acme/endpoint/main",
            json!({"url": "https://example.com/hook", "payloadFilter": "payload.ok == true"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(put["payloadFilter"], "payload.ok == true");
    let put = api
        .put(
            "/api/v1/app/acme/endpoint/main",
            json!({"url": "https://example.com/hook"}),
        )
        .await
        .expect(StatusCode::OK);
    assert!(put.get("payloadFilter").is_none());
}

#[tokio::test]
async fn a_filter_that_does_not_compile_is_refused_with_its_position() {
    let api = api_with_app().await;
    let body = api
        .post(
            "/api/v1/app/acme/endpoint",
            json!({"url": "https://example.com/hook", "payloadFilter": "payload.amount >"}),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_filter_error(body, 1, 17);
    create(
        &api,
        json!({"url": "https://example.com/hook", "uid": "main"}),
    )
    .await;
    let body = api
        .put(
            "/api/v1/app/acme/endpoint/main",
            json!({"url": "https://example.com/hook",
                   "payloadFilter": "payload.a == 1 &&\n  payload.b == )"}),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_filter_error(body, 2, 16);
    let body = api
        .patch(
            "/api/v1/app/acme/endpoint/main",
            json!({"payloadFilter": "payload.items.exists(x, x > 1)"}),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_filter_error(body, 1, 21);
    api.patch(
        "/api/v1/app/acme/endpoint/main",
        json!({"payloadFilter": "x".repeat(5000)}),
    )
    .await
    .expect_invalid(&["body", "payloadFilter"]);
    let read = api
        .get("/api/v1/app/acme/endpoint/main")
        .await
        .expect(StatusCode::OK);
    assert!(read.get("payloadFilter").is_none(), "nothing saved");
}

#[tokio::test]
async fn overrides_are_bounded() {
    let api = api_with_app().await;
    let refused = [
        (
            json!({"retrySchedule": ["5s", "soon"]}),
            vec!["retrySchedule", "1"],
        ),
        (
            json!({"retrySchedule": ["10ms"]}),
            vec!["retrySchedule", "0"],
        ),
        (
            json!({"retrySchedule": ["30d"]}),
            vec!["retrySchedule", "0"],
        ),
        (
            json!({"retrySchedule": vec!["5s"; 21]}),
            vec!["retrySchedule"],
        ),
        (json!({"requestTimeout": "500ms"}), vec!["requestTimeout"]),
        (json!({"requestTimeout": "later"}), vec!["requestTimeout"]),
    ];
    for (fields, loc) in refused {
        let mut body = json!({"url": "https://example.com/hook"});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let mut expected = vec!["body"];
        expected.extend(loc);
        api.post("/api/v1/app/acme/endpoint", body)
            .await
            .expect_invalid(&expected);
    }
    // The default lease is 60s: a request timeout above 30s would let it lapse mid-attempt.
    let body = api
        .post(
            "/api/v1/app/acme/endpoint",
            json!({"url": "https://example.com/hook", "requestTimeout": "31s"}),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    let msg = body["detail"][0]["msg"].as_str().unwrap();
    assert!(msg.contains("lease") && msg.contains("30s"), "{msg}");
    create(
        &api,
        json!({"url": "https://example.com/hook", "requestTimeout": "30s"}),
    )
    .await;
}

#[tokio::test]
async fn the_test_route_evaluates_a_filter_against_a_sample() {
    let api = api_with_app().await;
    let test = |body: Value| {
        let api = &api;
        async move {
            api.post("/api/v1/app/acme/endpoint/payload-filter/test", body)
                .await
        }
    };
    let out = test(json!({"payloadFilter": FILTER, "payload": {"amount": 150, "currency": "EUR"}}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(out, json!({"matches": true}));
    let out = test(json!({"payloadFilter": FILTER, "payload": {"amount": 50, "currency": "EUR"}}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(out, json!({"matches": false}));
    // An evaluation error is no match, and says why.
    let out = test(json!({"payloadFilter": FILTER, "payload": {}}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(out["matches"], false);
    assert!(
        out["error"]
            .as_str()
            .is_some_and(|e| e.contains("No such key")),
        "{out}"
    );
    let out = test(
        json!({"payloadFilter": r#"eventType == "invoice.paid" && "eu" in channels"#,
                          "payload": {}, "eventType": "invoice.paid", "channels": ["eu"]}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(out, json!({"matches": true}));
    let body = test(json!({"payloadFilter": "payload.amount >", "payload": {}}))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_filter_error(body, 1, 17);
    api.post(
        "/api/v1/app/nobody/endpoint/payload-filter/test",
        json!({"payloadFilter": FILTER, "payload": {}}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn portal_tokens_may_test_filters_of_their_application_only() {
    let api = api_with_app().await;
    api.post("/api/v1/app", json!({"name": "Other", "uid": "other"}))
        .await
        .expect(StatusCode::CREATED);
    let out = api
        .post("/api/v1/auth/app-portal-access/acme", json!({}))
        .await
        .expect(StatusCode::OK);
    let token = out["token"].as_str().unwrap();
    let body = serde_json::to_vec(&json!({"payloadFilter": "payload.a == 1", "payload": {"a": 1}}))
        .unwrap();
    let headers = [("content-type", "application/json")];
    for (app, status) in [("acme", StatusCode::OK), ("other", StatusCode::FORBIDDEN)] {
        let answer = api
            .send(
                Some(token),
                Method::POST,
                &format!("/api/v1/app/{app}/endpoint/payload-filter/test"),
                body.clone(),
                &headers,
            )
            .await;
        assert_eq!(answer.status, status, "{app}: {}", answer.body);
    }
}
