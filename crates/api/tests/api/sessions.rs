//! Browser sessions (`/api/v1/auth/session`): the cookie, its scope, CSRF, and its end; and
//! CORS for the listed origins only.

use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use webhookd_api::ApiConfig;
use webhookd_api::auth::{AuthMode, hash_token};
use webhookd_core::TokenId;
use webhookd_core::time::now;
use webhookd_store::ApiTokenRecord;

use crate::common::{Answer, TestApi};

const OPERATOR: &str = "operator-token";

fn operator_config() -> ApiConfig {
    ApiConfig {
        auth: AuthMode::Tokens {
            configured: vec![hash_token(OPERATOR)],
        },
        ..ApiConfig::default()
    }
}

/// An API with tokens required and the applications `joe` and `ann`.
async fn setup(config: ApiConfig) -> TestApi {
    let mut api = TestApi::with_config(config);
    api.token = Some(OPERATOR.into());
    for (name, uid) in [("Joe", "joe"), ("Ann", "ann")] {
        api.post("/api/v1/app", json!({"name": name, "uid": uid}))
            .await
            .expect(StatusCode::CREATED);
    }
    api
}

/// Logs in with `token` (no bearer token); the answer and the cookie pair to send back.
async fn login(api: &TestApi, token: &str) -> (Answer, Option<String>) {
    let body = serde_json::to_vec(&json!({ "token": token })).unwrap();
    let answer = api
        .send(None, Method::POST, "/api/v1/auth/session", body, &[])
        .await;
    let cookie = answer.headers.get(header::SET_COOKIE).map(|value| {
        value
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    });
    (answer, cookie)
}

/// A request authenticated by the cookie alone, with the CSRF header when `csrf`.
async fn with_cookie(
    api: &TestApi,
    cookie: &str,
    csrf: bool,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let body = body
        .map(|body| serde_json::to_vec(&body).unwrap())
        .unwrap_or_default();
    let mut headers = vec![("cookie", cookie)];
    if csrf {
        headers.push(("x-webhookd-csrf", "1"));
    }
    api.send(None, method, path, body, &headers).await
}

async fn portal_token(api: &TestApi, app: &str, body: Value) -> String {
    let out = api
        .post(&format!("/api/v1/auth/app-portal-access/{app}"), body)
        .await
        .expect(StatusCode::OK);
    out["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_operator_logs_in_and_the_cookie_holds_no_token() {
    let api = setup(operator_config()).await;
    let (answer, cookie) = login(&api, OPERATOR).await;
    let set_cookie = answer.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = answer.expect(StatusCode::OK);
    assert_eq!(body["kind"], "operator");
    assert_eq!(body["appId"], Value::Null);
    assert_eq!(body["capabilities"].as_array().unwrap().len(), 5);
    assert!(body["expiresAt"].is_string());
    assert!(set_cookie.starts_with("webhookd_session="), "{set_cookie}");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(part), "{part} missing in {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let cookie = cookie.unwrap();
    assert!(!cookie.contains(OPERATOR));

    let me = with_cookie(
        &api,
        &cookie,
        false,
        Method::GET,
        "/api/v1/auth/session",
        None,
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(me["kind"], "operator");
    assert_eq!(me["expiresAt"], body["expiresAt"]);
    with_cookie(&api, &cookie, false, Method::GET, "/api/v1/app", None)
        .await
        .expect(StatusCode::OK);
    // Changes need the CSRF header.
    let create = || Some(json!({"name": "Zed"}));
    let refused = with_cookie(&api, &cookie, false, Method::POST, "/api/v1/app", create())
        .await
        .expect_error(StatusCode::FORBIDDEN);
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("x-webhookd-csrf")
    );
    with_cookie(&api, &cookie, true, Method::POST, "/api/v1/app", create())
        .await
        .expect(StatusCode::CREATED);
    // A bearer token needs no CSRF header.
    api.post("/api/v1/app", json!({"name": "Bea"}))
        .await
        .expect(StatusCode::CREATED);
}

#[tokio::test]
async fn a_portal_session_has_its_token_scope_and_expiry() {
    let api = setup(operator_config()).await;
    let token = portal_token(
        &api,
        "joe",
        json!({"expiry": 120, "capabilities": ["ViewBase", "CreateAttempts"]}),
    )
    .await;
    let (answer, cookie) = login(&api, &token).await;
    let set_cookie = answer.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = answer.expect(StatusCode::OK);
    assert_eq!(body["kind"], "app");
    let joe = api.get("/api/v1/app/joe").await.expect(StatusCode::OK);
    assert_eq!(body["appId"], joe["id"]);
    assert_eq!(body["capabilities"], json!(["ViewBase", "CreateAttempts"]));
    // The session ends with its token, sooner than the session lifetime.
    let max_age: i64 = set_cookie
        .split("Max-Age=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((100..=120).contains(&max_age), "{set_cookie}");

    let cookie = cookie.unwrap();
    with_cookie(
        &api,
        &cookie,
        false,
        Method::GET,
        "/api/v1/app/joe/endpoint",
        None,
    )
    .await
    .expect(StatusCode::OK);
    for path in ["/api/v1/app/ann", "/api/v1/app"] {
        with_cookie(&api, &cookie, false, Method::GET, path, None)
            .await
            .expect_error(StatusCode::FORBIDDEN);
    }
    let endpoint = Some(json!({"url": "https://joe.example.com/hook"}));
    with_cookie(
        &api,
        &cookie,
        true,
        Method::POST,
        "/api/v1/app/joe/endpoint",
        endpoint,
    )
    .await
    .expect_error(StatusCode::FORBIDDEN);
    // A bearer token wins over the cookie.
    let answer = api
        .send(
            Some(OPERATOR),
            Method::GET,
            "/api/v1/app",
            Vec::new(),
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn expire_all_and_logout_end_sessions() {
    let api = setup(operator_config()).await;
    let me = "/api/v1/auth/session";

    // expire-all ends the sessions opened with the application's tokens.
    let token = portal_token(&api, "joe", json!({})).await;
    let cookie = login(&api, &token).await.1.unwrap();
    with_cookie(&api, &cookie, false, Method::GET, me, None)
        .await
        .expect(StatusCode::OK);
    api.post("/api/v1/auth/app/joe/expire-all", json!({}))
        .await
        .expect(StatusCode::NO_CONTENT);
    with_cookie(&api, &cookie, false, Method::GET, me, None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED);

    // Logout with the cookie ends that session (not the token) and clears the cookie.
    let token = portal_token(&api, "joe", json!({})).await;
    let cookie = login(&api, &token).await.1.unwrap();
    with_cookie(
        &api,
        &cookie,
        false,
        Method::POST,
        "/api/v1/auth/logout",
        None,
    )
    .await
    .expect_error(StatusCode::FORBIDDEN);
    let answer = with_cookie(
        &api,
        &cookie,
        true,
        Method::POST,
        "/api/v1/auth/logout",
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let cleared = answer.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("webhookd_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    with_cookie(&api, &cookie, false, Method::GET, me, None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
    let answer = api
        .send(
            Some(&token),
            Method::GET,
            "/api/v1/app/joe",
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "the token itself lives on");

    // Revoking the app token (logout with it) ends its sessions too.
    let cookie = login(&api, &token).await.1.unwrap();
    api.send(
        Some(&token),
        Method::POST,
        "/api/v1/auth/logout",
        Vec::new(),
        &[],
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    with_cookie(&api, &cookie, false, Method::GET, me, None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_operator_session_ends_when_its_token_is_revoked() {
    let api = setup(operator_config()).await;
    let stored = "stored-operator-token";
    let record = ApiTokenRecord {
        id: TokenId::new(),
        name: "console".into(),
        hash: hex::encode(hash_token(stored)),
        created_at: now(),
    };
    api.state().store().create_token(&record).await.unwrap();
    let cookie = login(&api, stored).await.1.unwrap();
    with_cookie(&api, &cookie, false, Method::GET, "/api/v1/app", None)
        .await
        .expect(StatusCode::OK);
    assert!(api.state().store().revoke_token("console").await.unwrap());
    with_cookie(&api, &cookie, false, Method::GET, "/api/v1/app", None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_logins_and_expired_sessions_are_refused() {
    let api = setup(ApiConfig {
        session_ttl: Duration::ZERO,
        secure_cookies: true,
        ..operator_config()
    })
    .await;
    let (answer, cookie) = login(&api, "wrong-token").await;
    answer.expect_error(StatusCode::UNAUTHORIZED);
    assert_eq!(cookie, None);
    login(&api, "appsk_forged")
        .await
        .0
        .expect_error(StatusCode::UNAUTHORIZED);
    login(&api, " ").await.0.expect_invalid(&["body", "token"]);
    // Not logged in: 401.
    api.send(None, Method::GET, "/api/v1/auth/session", Vec::new(), &[])
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
    // A session whose lifetime is over is refused; under TLS the cookie is Secure.
    let (answer, cookie) = login(&api, OPERATOR).await;
    assert!(
        answer.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .ends_with("; Secure")
    );
    with_cookie(
        &api,
        &cookie.unwrap(),
        false,
        Method::GET,
        "/api/v1/app",
        None,
    )
    .await
    .expect_error(StatusCode::UNAUTHORIZED);
    with_cookie(
        &api,
        "webhookd_session=made-up",
        false,
        Method::GET,
        "/api/v1/app",
        None,
    )
    .await
    .expect_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn local_mode_needs_no_login_but_honours_portal_sessions() {
    let api = TestApi::new();
    for (name, uid) in [("Joe", "joe"), ("Ann", "ann")] {
        api.post("/api/v1/app", json!({"name": name, "uid": uid}))
            .await
            .expect(StatusCode::CREATED);
    }
    let me = api.get("/api/v1/auth/session").await.expect(StatusCode::OK);
    assert_eq!(me["kind"], "local");
    assert_eq!(me["expiresAt"], Value::Null);
    let (answer, cookie) = login(&api, "anything").await;
    assert_eq!(answer.expect(StatusCode::OK)["kind"], "local");
    assert_eq!(cookie, None);
    // A stale cookie is ignored; a portal session scopes the browser to its application.
    with_cookie(
        &api,
        "webhookd_session=stale",
        false,
        Method::GET,
        "/api/v1/app",
        None,
    )
    .await
    .expect(StatusCode::OK);
    let token = portal_token(&api, "joe", json!({})).await;
    let cookie = login(&api, &token).await.1.unwrap();
    let me = with_cookie(
        &api,
        &cookie,
        false,
        Method::GET,
        "/api/v1/auth/session",
        None,
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(me["kind"], "app");
    with_cookie(&api, &cookie, false, Method::GET, "/api/v1/app/ann", None)
        .await
        .expect_error(StatusCode::FORBIDDEN);
    // The first stored operator token (which ends local mode) opens a real session at once.
    let created = api
        .post("/api/v1/auth/token", json!({"name": "console"}))
        .await
        .expect(StatusCode::CREATED);
    let (answer, cookie) = login(&api, created["token"].as_str().unwrap()).await;
    let answer = answer.expect(StatusCode::OK);
    assert_eq!(answer["kind"], "operator");
    assert_ne!(answer["expiresAt"], Value::Null);
    let me = with_cookie(
        &api,
        &cookie.unwrap(),
        false,
        Method::GET,
        "/api/v1/auth/session",
        None,
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(me["kind"], "operator");
}

#[tokio::test]
async fn cors_answers_listed_origins_only() {
    let listed = "https://app.example.com";
    let api = setup(ApiConfig {
        cors_origins: vec![HeaderValue::from_static(listed)],
        ..operator_config()
    })
    .await;
    let preflight = |origin: &'static str| {
        let api = &api;
        async move {
            api.send(
                None,
                Method::OPTIONS,
                "/api/v1/app/joe/endpoint",
                Vec::new(),
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "authorization, content-type",
                    ),
                ],
            )
            .await
        }
    };
    let answer = preflight(listed).await;
    assert!(answer.status.is_success(), "{answer:?}");
    assert_eq!(answer.headers["access-control-allow-origin"], listed);
    let methods = answer.headers["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let answer = preflight("https://evil.example.com").await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(answer.headers.get("access-control-allow-origin").is_none());

    // Actual requests: the header for the listed origin, errors included.
    let answer = api
        .send(
            None,
            Method::GET,
            "/api/v1/app",
            Vec::new(),
            &[("origin", listed)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.headers["access-control-allow-origin"], listed);
    let answer = api
        .raw(
            Method::GET,
            "/api/v1/app",
            Vec::new(),
            &[("origin", "https://evil.example.com")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.headers.get("access-control-allow-origin").is_none());

    // None listed (the default): no CORS at all.
    let api = setup(operator_config()).await;
    let answer = api
        .send(
            None,
            Method::OPTIONS,
            "/api/v1/app",
            Vec::new(),
            &[("origin", listed), ("access-control-request-method", "GET")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(answer.headers.get("access-control-allow-origin").is_none());
}
