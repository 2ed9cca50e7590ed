//! App-scoped tokens: `app-portal-access`, `expire-all`, `logout`, and the scoping of every
//! route to the token's application and capabilities.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Answer, TestApi};

const OPERATOR: &str = "operator-token";

/// An operator's API with the application `joe` (one endpoint) and `ann`.
async fn setup() -> (TestApi, String, String) {
    let api = TestApi::with_token(OPERATOR);
    let joe = api
        .post("/api/v1/app", json!({"name": "Joe", "uid": "joe"}))
        .await
        .expect(StatusCode::CREATED);
    api.post(
        "/api/v1/app/joe/endpoint",
        json!({"uid": "main", "url": "https://joe.example.com/hook", "headers": {"x-tenant": "acme"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    api.post("/api/v1/app", json!({"name": "Ann", "uid": "ann"}))
        .await
        .expect(StatusCode::CREATED);
    api.post(
        "/api/v1/event-type",
        json!({"name": "user.created", "description": "A user"}),
    )
    .await
    .expect(StatusCode::CREATED);
    (api, joe["id"].as_str().unwrap().to_owned(), "joe".into())
}

/// A portal token for `app` with these access options.
async fn portal_token(api: &TestApi, app: &str, body: Value) -> String {
    let out = api
        .post(&format!("/api/v1/auth/app-portal-access/{app}"), body)
        .await
        .expect(StatusCode::OK);
    out["token"].as_str().unwrap().to_owned()
}

async fn as_app(
    api: &TestApi,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let body = body
        .map(|body| serde_json::to_vec(&body).unwrap())
        .unwrap_or_default();
    let headers: &[(&str, &str)] = if body.is_empty() {
        &[]
    } else {
        &[("content-type", "application/json")]
    };
    api.send(Some(token), method, path, body, headers).await
}

#[tokio::test]
async fn portal_access_answers_a_token_and_its_link() {
    let (api, _, _) = setup().await;
    let out = api
        .post("/api/v1/auth/app-portal-access/joe", json!({}))
        .await
        .expect(StatusCode::OK);
    let token = out["token"].as_str().unwrap();
    assert!(
        token.starts_with("appsk_") && token.len() >= 6 + 43,
        "{token}"
    );
    assert_eq!(
        out["url"],
        format!("http://127.0.0.1:8090/portal#key={token}")
    );
    // Two links are two tokens.
    let again = portal_token(&api, "joe", json!({})).await;
    assert_ne!(again, token);
    // The answer holds a secret shown once: it is not stored for idempotent replay, so a
    // retry with the same key makes a new token.
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let answer = api
            .raw(
                Method::POST,
                "/api/v1/auth/app-portal-access/joe",
                b"{}".to_vec(),
                &[("idempotency-key", "portal-retry")],
            )
            .await
            .expect(StatusCode::OK);
        tokens.push(answer["token"].as_str().unwrap().to_owned());
    }
    assert_ne!(tokens[0], tokens[1]);
}

#[tokio::test]
async fn portal_access_creates_the_application_on_the_fly() {
    let (api, _, _) = setup().await;
    api.post("/api/v1/auth/app-portal-access/newcomer", json!({}))
        .await
        .expect_error(StatusCode::NOT_FOUND);
    let token = portal_token(
        &api,
        "newcomer",
        json!({"application": {"name": "Newcomer Ltd"}}),
    )
    .await;
    let app = api.get("/api/v1/app/newcomer").await.expect(StatusCode::OK);
    assert_eq!(app["name"], "Newcomer Ltd");
    as_app(&api, &token, Method::GET, "/api/v1/app/newcomer", None)
        .await
        .expect(StatusCode::OK);
    // An existing application is not changed by `application`.
    portal_token(&api, "joe", json!({"application": {"name": "Other"}})).await;
    assert_eq!(
        api.get("/api/v1/app/joe").await.expect(StatusCode::OK)["name"],
        "Joe"
    );
}

#[tokio::test]
async fn portal_access_refuses_bad_input() {
    let (api, _, _) = setup().await;
    let path = "/api/v1/auth/app-portal-access/joe";
    for (body, loc) in [
        (json!({"expiry": 59}), vec!["body", "expiry"]),
        (json!({"expiry": 604_801}), vec!["body", "expiry"]),
        (
            json!({"capabilities": ["Teleport"]}),
            vec!["body", "capabilities[0]"],
        ),
        (
            json!({"featureFlags": ["beta"]}),
            vec!["body", "featureFlags"],
        ),
        (
            json!({"sessionId": "not valid!"}),
            vec!["body", "sessionId"],
        ),
        (
            json!({"application": {"name": ""}}),
            vec!["body", "application", "name"],
        ),
    ] {
        api.post(path, body).await.expect_invalid(&loc);
    }
    api.post(
        path,
        json!({"expiry": 60, "capabilities": [], "sessionId": "user_1"}),
    )
    .await
    .expect(StatusCode::OK);
}

#[tokio::test]
async fn an_app_token_works_for_its_application_by_id_and_uid() {
    let (api, joe_id, _) = setup().await;
    let token = portal_token(&api, "joe", json!({})).await;
    for path in [
        "/api/v1/app/joe".to_owned(),
        format!("/api/v1/app/{joe_id}"),
        "/api/v1/app/joe/endpoint".to_owned(),
        format!("/api/v1/app/{joe_id}/endpoint/main"),
        "/api/v1/app/joe/msg".to_owned(),
        "/api/v1/app/joe/endpoint/main/stats".to_owned(),
        "/api/v1/event-type".to_owned(),
        "/api/v1/event-type/user.created".to_owned(),
    ] {
        as_app(&api, &token, Method::GET, &path, None)
            .await
            .expect(StatusCode::OK);
    }
}

#[tokio::test]
async fn an_app_token_is_refused_elsewhere() {
    let (api, _, _) = setup().await;
    let token = portal_token(&api, "joe", json!({})).await;
    let ann = api.get("/api/v1/app/ann").await.expect(StatusCode::OK);
    let ann_id = ann["id"].as_str().unwrap();
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        // Another application, by uid, by id, or one that does not exist.
        (Method::GET, "/api/v1/app/ann".into(), None),
        (Method::GET, format!("/api/v1/app/{ann_id}/endpoint"), None),
        (Method::GET, "/api/v1/app/nobody/msg".into(), None),
        (
            Method::POST,
            "/api/v1/app/ann/endpoint".into(),
            Some(json!({"url": "https://x.example.com"})),
        ),
        // Global routes.
        (Method::GET, "/api/v1/app".into(), None),
        (
            Method::POST,
            "/api/v1/app".into(),
            Some(json!({"name": "Mine"})),
        ),
        (
            Method::POST,
            "/api/v1/event-type".into(),
            Some(json!({"name": "x.y", "description": "d"})),
        ),
        (
            Method::PUT,
            "/api/v1/event-type/user.created".into(),
            Some(json!({"description": "d"})),
        ),
        (
            Method::DELETE,
            "/api/v1/event-type/user.created".into(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/background-task/qtask_01JD0000000000000000000000".into(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/operational-webhook/endpoint".into(),
            None,
        ),
        (Method::GET, "/webhooks".into(), None),
        (
            Method::POST,
            "/webhooks".into(),
            Some(json!({"name": "joe", "destination": "https://x.example.com"})),
        ),
        (
            Method::POST,
            "/api/v1/auth/app-portal-access/joe".into(),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/api/v1/auth/app/joe/expire-all".into(),
            Some(json!({})),
        ),
        // Its own application, but what only operators do.
        (Method::DELETE, "/api/v1/app/joe".into(), None),
        (
            Method::PUT,
            "/api/v1/app/joe".into(),
            Some(json!({"name": "Joe"})),
        ),
        (
            Method::POST,
            "/api/v1/app/joe/msg".into(),
            Some(json!({"eventType": "a", "payload": {}})),
        ),
    ];
    for (method, path, body) in cases {
        let answer = as_app(&api, &token, method.clone(), &path, body).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            answer.body
        );
        assert_eq!(answer.body["code"], "forbidden");
    }
    // Metrics are an operator's too.
    let answer = as_app(&api, &token, Method::GET, "/metrics", None).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

/// The status of each guarded action for a token with `capabilities`.
async fn guarded_statuses(api: &TestApi, capabilities: &[&str]) -> Vec<(&'static str, StatusCode)> {
    let token = portal_token(api, "joe", json!({"capabilities": capabilities})).await;
    let ep = "/api/v1/app/joe/endpoint/main";
    let calls: Vec<(&'static str, Method, String, Option<Value>)> = vec![
        ("read", Method::GET, ep.into(), None),
        ("secret", Method::GET, format!("{ep}/secret"), None),
        (
            "rotate",
            Method::POST,
            format!("{ep}/secret/rotate"),
            Some(json!({})),
        ),
        (
            "recover",
            Method::POST,
            format!("{ep}/recover"),
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        ),
        // A resend of an unknown message: past authorization it is a 404.
        (
            "resend",
            Method::POST,
            "/api/v1/app/joe/msg/msg_01JD0000000000000000000000/endpoint/main/resend".into(),
            Some(json!({})),
        ),
        (
            "headers",
            Method::PUT,
            format!("{ep}/headers"),
            Some(json!({"headers": {"x-tenant": "acme"}})),
        ),
        (
            "update",
            Method::PATCH,
            ep.into(),
            Some(json!({"description": "changed"})),
        ),
        (
            "create",
            Method::POST,
            "/api/v1/app/joe/endpoint".into(),
            Some(json!({"url": "https://new.example.com"})),
        ),
    ];
    let mut statuses = Vec::new();
    for (name, method, path, body) in calls {
        statuses.push((name, as_app(api, &token, method, &path, body).await.status));
    }
    statuses
}

#[tokio::test]
async fn each_route_checks_its_capability() {
    use StatusCode as S;
    let (api, _, _) = setup().await;
    let forbidden = |names: &[&str], statuses: &[(&str, S)]| {
        for (name, status) in statuses {
            assert_eq!(
                *status == S::FORBIDDEN,
                names.contains(name),
                "{name}: {status} in {statuses:?}"
            );
        }
    };
    let all = [
        "secret", "rotate", "recover", "resend", "headers", "update", "create",
    ];
    // ViewBase alone (always included) reads and does nothing else.
    forbidden(&all, &guarded_statuses(&api, &["ViewBase"]).await);
    forbidden(&all, &guarded_statuses(&api, &[]).await);
    let without = |allowed: &[&str]| -> Vec<&str> {
        all.iter()
            .copied()
            .filter(|name| !allowed.contains(name))
            .collect()
    };
    forbidden(
        &without(&["secret"]),
        &guarded_statuses(&api, &["ViewEndpointSecret"]).await,
    );
    forbidden(
        &without(&["rotate"]),
        &guarded_statuses(&api, &["ManageEndpointSecret"]).await,
    );
    forbidden(
        &without(&["recover", "resend"]),
        &guarded_statuses(&api, &["CreateAttempts"]).await,
    );
    forbidden(
        &without(&["headers", "update", "create"]),
        &guarded_statuses(&api, &["ManageEndpoint"]).await,
    );
    // No list: every capability.
    let token = portal_token(&api, "joe", json!({})).await;
    let statuses = guarded_statuses(
        &api,
        &[
            "ViewBase",
            "ViewEndpointSecret",
            "ManageEndpointSecret",
            "CreateAttempts",
            "ManageEndpoint",
        ],
    )
    .await;
    forbidden(&[], &statuses);
    as_app(
        &api,
        &token,
        Method::DELETE,
        "/api/v1/app/joe/endpoint/main",
        None,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn header_values_need_the_secret_capability() {
    let (api, _, _) = setup().await;
    let path = "/api/v1/app/joe/endpoint/main/headers";
    let base = portal_token(&api, "joe", json!({"capabilities": ["ViewBase"]})).await;
    let hidden = as_app(&api, &base, Method::GET, path, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(hidden, json!({"headers": {}, "sensitive": ["x-tenant"]}));
    let secret = portal_token(&api, "joe", json!({"capabilities": ["ViewEndpointSecret"]})).await;
    let shown = as_app(&api, &secret, Method::GET, path, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(shown["headers"]["x-tenant"], "acme");
}

#[tokio::test]
async fn expired_revoked_and_unknown_tokens_are_401() {
    let (api, _, _) = setup().await;
    let read = |token: String| {
        let api = &api;
        async move {
            as_app(api, &token, Method::GET, "/api/v1/app/joe/endpoint", None)
                .await
                .status
        }
    };
    assert_eq!(read("appsk_unknown".into()).await, StatusCode::UNAUTHORIZED);

    // expire-all with a delay leaves the tokens working until then; without, ends them now.
    let first = portal_token(&api, "joe", json!({"sessionId": "user_1"})).await;
    let second = portal_token(&api, "joe", json!({"sessionId": "user_2"})).await;
    let other_app = portal_token(&api, "ann", json!({})).await;
    api.post("/api/v1/auth/app/joe/expire-all", json!({"expiry": 3600}))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(read(first.clone()).await, StatusCode::OK);
    api.post(
        "/api/v1/auth/app/joe/expire-all",
        json!({"sessionIds": ["user_1"]}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    assert_eq!(read(first.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(read(second.clone()).await, StatusCode::OK);
    api.post("/api/v1/auth/app/joe/expire-all", json!({}))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(read(second).await, StatusCode::UNAUTHORIZED);
    let answer = as_app(&api, &other_app, Method::GET, "/api/v1/app/ann", None).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "another application's tokens live on"
    );

    api.post("/api/v1/auth/app/nobody/expire-all", json!({}))
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.post("/api/v1/auth/app/joe/expire-all", json!({"expiry": -1}))
        .await
        .expect_invalid(&["body", "expiry"]);
}

#[tokio::test]
async fn logout_revokes_the_app_token() {
    let (api, _, _) = setup().await;
    let token = portal_token(&api, "joe", json!({})).await;
    as_app(&api, &token, Method::POST, "/api/v1/auth/logout", None)
        .await
        .expect(StatusCode::NO_CONTENT);
    as_app(&api, &token, Method::GET, "/api/v1/app/joe", None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
    // An operator's API token is not logged out: `webhookd token revoke` does that.
    api.post("/api/v1/auth/logout", json!({}))
        .await
        .expect_error(StatusCode::FORBIDDEN);
    api.get("/api/v1/app").await.expect(StatusCode::OK);
}

#[tokio::test]
async fn app_tokens_are_scoped_in_local_mode_too() {
    let api = TestApi::new();
    api.post("/api/v1/app", json!({"name": "Joe", "uid": "joe"}))
        .await
        .expect(StatusCode::CREATED);
    api.post("/api/v1/app", json!({"name": "Ann", "uid": "ann"}))
        .await
        .expect(StatusCode::CREATED);
    let token = portal_token(&api, "joe", json!({})).await;
    as_app(&api, &token, Method::GET, "/api/v1/app/joe", None)
        .await
        .expect(StatusCode::OK);
    as_app(&api, &token, Method::GET, "/api/v1/app/ann", None)
        .await
        .expect_error(StatusCode::FORBIDDEN);
    as_app(&api, "appsk_forged", Method::GET, "/api/v1/app/joe", None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
    // Any other token is ignored, as the SDKs always send one.
    as_app(&api, "whatever", Method::GET, "/api/v1/app/ann", None)
        .await
        .expect(StatusCode::OK);
}
