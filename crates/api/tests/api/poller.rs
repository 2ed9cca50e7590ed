//! Polling endpoints (`poll:`): no deliveries, their stream through `poll`, consumers with
//! offsets kept by the server, and the poller token that reads its endpoint and nothing else.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Answer, TestApi};

const OPERATOR: &str = "operator-token";

/// The application `joe` with a polling endpoint `inbox` (user.* types only), a second polling
/// endpoint `other` and a push endpoint `hook`; and the application `ann` with a polling
/// endpoint `inbox`.
async fn setup() -> TestApi {
    let api = TestApi::with_token(OPERATOR);
    for app in ["joe", "ann"] {
        api.post("/api/v1/app", json!({"name": app, "uid": app}))
            .await
            .expect(StatusCode::CREATED);
        api.post(
            &format!("/api/v1/app/{app}/endpoint"),
            json!({"uid": "inbox", "url": "poll:", "filterTypes": ["user.created", "user.deleted"]}),
        )
        .await
        .expect(StatusCode::CREATED);
    }
    api.post(
        "/api/v1/app/joe/endpoint",
        json!({"uid": "other", "url": "poll:"}),
    )
    .await
    .expect(StatusCode::CREATED);
    api.post(
        "/api/v1/app/joe/endpoint",
        json!({"uid": "hook", "url": "https://joe.example.com/hook"}),
    )
    .await
    .expect(StatusCode::CREATED);
    api
}

/// Sends a message to `joe`; its id.
async fn send(api: &TestApi, event_type: &str, n: u32) -> String {
    let out = api
        .post(
            "/api/v1/app/joe/msg",
            json!({"eventType": event_type, "payload": {"n": n}}),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    out["id"].as_str().unwrap().to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn as_token(
    api: &TestApi,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let body = body
        .map(|body| serde_json::to_vec(&body).unwrap())
        .unwrap_or_default();
    api.send(Some(token), method, path, body, &[]).await
}

#[tokio::test]
async fn a_polling_endpoint_gets_no_deliveries_and_reads_its_stream() {
    let api = setup().await;
    let first = send(&api, "user.created", 1).await;
    send(&api, "invoice.paid", 2).await;
    let second = send(&api, "user.deleted", 3).await;

    // Only the push endpoint has a delivery.
    let deliveries = api
        .get(&format!("/api/v1/app/joe/msg/{first}/endpoint"))
        .await
        .expect(StatusCode::OK);
    let urls: Vec<_> = deliveries["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|delivery| delivery["url"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(urls, vec!["https://joe.example.com/hook"]);
    let endpoint = api
        .get("/api/v1/app/joe/endpoint/inbox")
        .await
        .expect(StatusCode::OK);
    assert_eq!(endpoint["url"], "poll:");

    let page = api
        .get("/api/v1/app/joe/poller/inbox")
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&page), vec![first.clone(), second.clone()]);
    assert_eq!(page["done"], true);
    assert_eq!(page["data"][0]["eventType"], "user.created");
    assert_eq!(page["data"][0]["payload"], json!({"n": 1}));
    assert!(page["data"][0]["timestamp"].is_string());
    let iterator = page["iterator"].as_str().unwrap().to_owned();

    let path = format!("/api/v1/app/joe/poller/inbox?iterator={iterator}");
    let page = api.get(&path).await.expect(StatusCode::OK);
    assert!(ids(&page).is_empty());
    assert_eq!(page["done"], true);
    let third = send(&api, "user.created", 4).await;
    let page = api.get(&path).await.expect(StatusCode::OK);
    assert_eq!(ids(&page), vec![third.clone()]);

    // A limit, the query's own filters, and a start time.
    let page = api
        .get("/api/v1/app/joe/poller/inbox?limit=1")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        (ids(&page), &page["done"]),
        (vec![first.clone()], &json!(false))
    );
    let page = api
        .get(&format!(
            "/api/v1/app/joe/poller/inbox?limit=5&iterator={}",
            page["iterator"].as_str().unwrap()
        ))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&page), vec![second.clone(), third.clone()]);
    let page = api
        .get("/api/v1/app/joe/poller/inbox?event_type=user.deleted")
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&page), vec![second]);
    let page = api
        .get("/api/v1/app/joe/poller/other?after=2100-01-01T00:00:00Z")
        .await
        .expect(StatusCode::OK);
    assert!(ids(&page).is_empty());
    let page = api
        .get("/api/v1/app/joe/poller/other")
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&page).len(), 4, "no filter: every message");
}

#[tokio::test]
async fn a_polling_endpoint_reads_only_what_its_payload_filter_lets_through() {
    let api = setup().await;
    api.post(
        "/api/v1/app/joe/endpoint",
        json!({"uid": "big", "url": "poll:", "payloadFilter": "payload.n >= 10"}),
    )
    .await
    .expect(StatusCode::CREATED);
    send(&api, "user.created", 1).await;
    let big = send(&api, "user.created", 12).await;
    send(&api, "invoice.paid", 3).await;
    let bigger = send(&api, "invoice.paid", 30).await;
    let page = api
        .get("/api/v1/app/joe/poller/big")
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&page), vec![big, bigger.clone()]);
    // A changed filter applies to the next read.
    api.patch(
        "/api/v1/app/joe/endpoint/big",
        json!({"payloadFilter": "payload.n >= 20"}),
    )
    .await
    .expect(StatusCode::OK);
    let page = api
        .get("/api/v1/app/joe/poller/big")
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&page), vec![bigger]);
}

#[tokio::test]
async fn what_makes_no_sense_for_a_polling_endpoint_is_refused() {
    let api = setup().await;
    let msg = send(&api, "user.created", 1).await;
    for (path, body) in [
        (
            "/api/v1/app/joe/endpoint/inbox/recover".to_owned(),
            json!({"since": "2020-01-01T00:00:00Z"}),
        ),
        (
            "/api/v1/app/joe/endpoint/inbox/replay-missing".to_owned(),
            json!({"since": "2020-01-01T00:00:00Z"}),
        ),
        (
            "/api/v1/app/joe/endpoint/inbox/send-example".to_owned(),
            json!({"eventType": "user.created"}),
        ),
        (
            format!("/api/v1/app/joe/msg/{msg}/endpoint/inbox/resend"),
            json!({}),
        ),
    ] {
        let error = api
            .post(&path, body)
            .await
            .expect_error(StatusCode::BAD_REQUEST);
        assert_eq!(error["code"], "polling_endpoint", "{path}");
    }
    // A push endpoint has no stream; neither kind turns into the other.
    let error = api
        .get("/api/v1/app/joe/poller/hook")
        .await
        .expect_error(StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "not_polling_endpoint");
    api.patch(
        "/api/v1/app/joe/endpoint/inbox",
        json!({"url": "https://joe.example.com/other"}),
    )
    .await
    .expect_invalid(&["body", "url"]);
    api.put("/api/v1/app/joe/endpoint/hook", json!({"url": "poll:"}))
        .await
        .expect_invalid(&["body", "url"]);
    api.post(
        "/api/v1/operational-webhook/endpoint",
        json!({"url": "poll:"}),
    )
    .await
    .expect_invalid(&["body", "url"]);
    api.get("/api/v1/app/joe/poller/inbox?iterator=garbage")
        .await
        .expect_invalid(&["query", "iterator"]);
    api.get("/api/v1/app/joe/poller/inbox?limit=251")
        .await
        .expect_invalid(&["query", "limit"]);
    api.get("/api/v1/app/joe/poller/nobody")
        .await
        .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn consumers_keep_their_offsets_and_seek() {
    let api = setup().await;
    let sent = [
        send(&api, "user.created", 1).await,
        send(&api, "user.created", 2).await,
        send(&api, "user.created", 3).await,
    ];
    let consumer = "/api/v1/app/joe/poller/inbox/consumer";
    let page = api
        .get(&format!("{consumer}/a?limit=2"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&page), sent[..2]);
    // Each read moves the offset; another consumer has its own.
    let page = api
        .get(&format!("{consumer}/a"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&page), sent[2..]);
    let page = api
        .get(&format!("{consumer}/a"))
        .await
        .expect(StatusCode::OK);
    assert!(ids(&page).is_empty());
    assert_eq!(page["done"], true);
    let page = api
        .get(&format!("{consumer}/b"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&page), sent);

    // `peek` leaves the offset; seeking to an iterator commits it.
    api.post(
        &format!("{consumer}/c/seek"),
        json!({"after": "2000-01-01T00:00:00Z"}),
    )
    .await
    .expect(StatusCode::OK);
    let peeked = api
        .get(&format!("{consumer}/c?limit=1&peek=true"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&peeked), sent[..1]);
    let again = api
        .get(&format!("{consumer}/c?limit=1&peek=true"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&again), sent[..1]);
    let seek = api
        .post(
            &format!("{consumer}/c/seek"),
            json!({"iterator": peeked["iterator"]}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(seek["iterator"], peeked["iterator"]);
    let page = api
        .get(&format!("{consumer}/c"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&page), sent[1..]);

    // Seeking to a time starts after it.
    api.post(
        &format!("{consumer}/a/seek"),
        json!({"after": "2000-01-01T00:00:00Z"}),
    )
    .await
    .expect(StatusCode::OK);
    let page = api
        .get(&format!("{consumer}/a"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&page), sent);
    api.post(&format!("{consumer}/a/seek"), json!({}))
        .await
        .expect_invalid(&["body", "after"]);
}

#[tokio::test]
async fn a_poller_token_reads_its_poller_and_nothing_else() {
    let api = setup().await;
    let sent = send(&api, "user.created", 1).await;
    let out = api
        .get("/api/v1/auth/app/joe/poller/inbox/token")
        .await
        .expect(StatusCode::OK);
    let token = out["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("pollsk_"), "{token}");
    // The same token until it is rotated.
    let again = api
        .get("/api/v1/auth/app/joe/poller/inbox/token")
        .await
        .expect(StatusCode::OK);
    assert_eq!(again["token"], token.as_str());

    let inbox = api
        .get("/api/v1/app/joe/endpoint/inbox")
        .await
        .expect(StatusCode::OK);
    let inbox_id = inbox["id"].as_str().unwrap();
    for path in [
        "/api/v1/app/joe/poller/inbox".to_owned(),
        format!("/api/v1/app/joe/poller/{inbox_id}"),
        "/api/v1/app/joe/poller/inbox/consumer/laptop".to_owned(),
    ] {
        let page = as_token(&api, &token, Method::GET, &path, None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(ids(&page), vec![sent.clone()], "{path}");
    }
    as_token(
        &api,
        &token,
        Method::POST,
        "/api/v1/app/joe/poller/inbox/consumer/laptop/seek",
        Some(json!({"after": "2000-01-01T00:00:00Z"})),
    )
    .await
    .expect(StatusCode::OK);

    for (method, path) in [
        (Method::GET, "/api/v1/app/joe/poller/other"),
        (Method::GET, "/api/v1/app/ann/poller/inbox"),
        (Method::GET, "/api/v1/app/joe"),
        (Method::GET, "/api/v1/app"),
        (Method::GET, "/api/v1/app/joe/endpoint"),
        (Method::GET, "/api/v1/app/joe/endpoint/inbox/secret"),
        (Method::GET, "/api/v1/app/joe/msg"),
        (Method::GET, "/api/v1/event-type"),
        (Method::GET, "/api/v1/auth/session"),
        (Method::GET, "/api/v1/auth/app/joe/poller/inbox/token"),
        (
            Method::POST,
            "/api/v1/auth/app/joe/poller/inbox/token/rotate",
        ),
        (Method::GET, "/api/v1/auth/token"),
    ] {
        as_token(&api, &token, method.clone(), path, Some(json!({})))
            .await
            .expect_error(StatusCode::FORBIDDEN);
    }
    // It cannot open a session either.
    api.send(
        None,
        Method::POST,
        "/api/v1/auth/session",
        serde_json::to_vec(&json!({"token": token})).unwrap(),
        &[("content-type", "application/json")],
    )
    .await
    .expect_error(StatusCode::UNAUTHORIZED);

    // Rotating with no grace ends the old token at once.
    let rotated = api
        .post(
            "/api/v1/auth/app/joe/poller/inbox/token/rotate",
            json!({"oldTokenExpiry": 0}),
        )
        .await
        .expect(StatusCode::CREATED);
    let new_token = rotated["token"].as_str().unwrap();
    assert_ne!(new_token, token);
    as_token(
        &api,
        &token,
        Method::GET,
        "/api/v1/app/joe/poller/inbox",
        None,
    )
    .await
    .expect_error(StatusCode::UNAUTHORIZED);
    as_token(
        &api,
        new_token,
        Method::GET,
        "/api/v1/app/joe/poller/inbox",
        None,
    )
    .await
    .expect(StatusCode::OK);
    api.post(
        "/api/v1/auth/app/joe/poller/inbox/token/rotate",
        json!({"oldTokenExpiry": 86_401}),
    )
    .await
    .expect_invalid(&["body", "oldTokenExpiry"]);
    api.get("/api/v1/auth/app/joe/poller/hook/token")
        .await
        .expect_error(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn application_tokens_poll_with_view_base_and_read_the_token_with_the_secret_capability() {
    let api = setup().await;
    let portal = |capabilities: Value| {
        let api = &api;
        async move {
            let out = api
                .post(
                    "/api/v1/auth/app-portal-access/joe",
                    json!({"capabilities": capabilities}),
                )
                .await
                .expect(StatusCode::OK);
            out["token"].as_str().unwrap().to_owned()
        }
    };
    let viewer = portal(json!(["ViewBase"])).await;
    as_token(
        &api,
        &viewer,
        Method::GET,
        "/api/v1/app/joe/poller/inbox",
        None,
    )
    .await
    .expect(StatusCode::OK);
    as_token(
        &api,
        &viewer,
        Method::GET,
        "/api/v1/app/ann/poller/inbox",
        None,
    )
    .await
    .expect_error(StatusCode::FORBIDDEN);
    as_token(
        &api,
        &viewer,
        Method::GET,
        "/api/v1/auth/app/joe/poller/inbox/token",
        None,
    )
    .await
    .expect_error(StatusCode::FORBIDDEN);
    let keeper = portal(json!(["ViewBase", "ViewEndpointSecret"])).await;
    as_token(
        &api,
        &keeper,
        Method::GET,
        "/api/v1/auth/app/joe/poller/inbox/token",
        None,
    )
    .await
    .expect(StatusCode::OK);
    as_token(
        &api,
        &keeper,
        Method::GET,
        "/api/v1/auth/app/ann/poller/inbox/token",
        None,
    )
    .await
    .expect_error(StatusCode::FORBIDDEN);
}
