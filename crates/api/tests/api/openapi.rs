//! The OpenAPI document: the committed `openapi.json` is the generated one, it is served
//! without a token, and it matches the router operation for operation.
//!
//! When the document changes on purpose, rewrite the file with
//! `UPDATE_OPENAPI=1 cargo test -p webhookd-api --test api openapi` and commit it.

use std::path::PathBuf;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use webhookd_api::openapi::document;
use webhookd_api::query::MAX_LIMIT;

use crate::common::TestApi;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi.json")
}

fn generated() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("the document serializes");
    text.push('\n');
    text
}

fn generated_value() -> Value {
    serde_json::to_value(document()).expect("the document serializes")
}

/// Every operation of the document: (method in upper case, path).
fn operations() -> Vec<(Method, String)> {
    let document = generated_value();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            let method =
                Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("a method");
            operations.push((method, path.clone()));
        }
    }
    operations
}

/// A concrete path for a templated one: every `{param}` becomes `x`.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for character in path.chars() {
        match character {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                out.push('x');
            }
            _ if in_param => {}
            _ => out.push(character),
        }
    }
    out
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let path = committed_path();
    let generated = generated();
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|value| value == "1") {
        std::fs::write(&path, &generated).expect("openapi.json is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.json at the repository root is not the document the code generates; \
         if the change is intended, run `UPDATE_OPENAPI=1 cargo test -p webhookd-api --test api openapi` \
         and commit the file"
    );
}

#[test]
fn the_document_describes_the_whole_api() {
    let document = generated_value();
    assert_eq!(document["info"]["title"], "webhookd");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let operations = operations();
    for (method, path) in [
        (Method::GET, "/api/v1/app"),
        (Method::PUT, "/api/v1/app/{app}"),
        (
            Method::POST,
            "/api/v1/app/{app}/endpoint/{ep}/secret/rotate",
        ),
        (Method::PATCH, "/api/v1/app/{app}/endpoint/{ep}/headers"),
        (Method::DELETE, "/api/v1/event-type/{name}"),
        (Method::POST, "/api/v1/app/{app}/msg"),
        (
            Method::POST,
            "/api/v1/app/{app}/msg/{msg}/endpoint/{ep}/resend",
        ),
        (Method::GET, "/api/v1/background-task/{id}"),
        (
            Method::POST,
            "/api/v1/app/{app}/endpoint/{ep}/replay-missing",
        ),
        (Method::POST, "/api/v1/app/{app}/msg/expunge-all-contents"),
        (
            Method::DELETE,
            "/api/v1/app/{app}/msg/{msg}/attempt/{id}/content",
        ),
        (Method::POST, "/api/v1/stats/usage/app"),
        (Method::GET, "/api/v1/auth/token"),
        (Method::POST, "/api/v1/auth/token"),
        (Method::DELETE, "/api/v1/auth/token/{id}"),
        (Method::POST, "/api/v1/auth/app-portal-access/{app_id}"),
        (Method::POST, "/api/v1/auth/app/{app_id}/expire-all"),
        (Method::POST, "/api/v1/auth/logout"),
        (Method::GET, "/api/v1/auth/session"),
        (Method::POST, "/api/v1/auth/session"),
        (Method::POST, "/webhooks"),
        (Method::GET, "/api/v1/health"),
        (Method::GET, "/api/v1/health/ready"),
        (Method::GET, "/api/v1/openapi.json"),
        (Method::GET, "/metrics"),
        (Method::GET, "/api/v1/stats/overview"),
        (Method::GET, "/api/v1/app/{app}/endpoint/{ep}/health"),
        (Method::GET, "/api/v1/app/{app}/poller/{ep}"),
        (
            Method::POST,
            "/api/v1/app/{app}/poller/{ep}/consumer/{consumer}/seek",
        ),
        (
            Method::POST,
            "/api/v1/auth/app/{app}/poller/{ep}/token/rotate",
        ),
        (Method::POST, "/api/v1/operational-webhook/endpoint"),
        (
            Method::POST,
            "/api/v1/operational-webhook/endpoint/{endpoint_id}/secret/rotate",
        ),
    ] {
        assert!(
            operations.contains(&(method.clone(), path.to_owned())),
            "{method} {path} is not in the document"
        );
    }
    // Every handler of every router: a new route must be annotated, listed in `ApiDoc` and
    // counted here.
    assert_eq!(
        operations.len(),
        78,
        "the document's operations: {operations:?}"
    );
}

#[test]
fn every_operation_has_an_id_and_answers_in_documented_shapes() {
    let document = generated_value();
    let mut ids = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no id"));
            assert!(!ids.contains(&id.to_owned()), "{id} is not unique");
            ids.push(id.to_owned());
            let responses = operation["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|status| status.starts_with('2')),
                "{method} {path} has no success"
            );
            let open = operation["security"] == json!([{}])
                || operation["security"] == json!([{}, {"bearer": []}]);
            if !open {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} does not document 401"
                );
                assert!(
                    responses.contains_key("503"),
                    "{method} {path} does not document 503"
                );
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "422"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} does not document {status}"
                    );
                }
            }
        }
    }
}

#[test]
fn lists_document_the_extractors_limit() {
    let document = generated_value();
    let parameters = document["paths"]["/api/v1/app"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    let limit = parameters
        .iter()
        .find(|parameter| parameter["name"] == "limit")
        .expect("a limit parameter");
    assert_eq!(limit["schema"]["maximum"], json!(MAX_LIMIT));
    assert_eq!(limit["schema"]["minimum"], json!(1));
}

#[tokio::test]
async fn the_document_is_served_without_a_token() {
    let mut api = TestApi::with_token("secret-token");
    api.token = None;
    api.get("/api/v1/app")
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
    let body = api.get("/api/v1/openapi.json").await.expect(StatusCode::OK);
    assert_eq!(body, generated_value());
    let body = api
        .get("/api/v1/openapi.json/")
        .await
        .expect(StatusCode::OK);
    assert_eq!(body["info"]["title"], "webhookd");
}

/// Every documented operation reaches a handler: the answer is not the router's fallback.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let api = TestApi::new();
    for (method, path) in operations() {
        let uri = concrete(&path);
        let body = if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            b"{}".to_vec()
        } else {
            Vec::new()
        };
        let answer = api.raw(method.clone(), &uri, body, &[]).await;
        assert_ne!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not routed"
        );
        let detail = answer.body["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.starts_with("no route for"),
            "{method} {path} is documented but not routed"
        );
    }
}

/// On a documented path, every method that the document does not list is refused by the router:
/// no handler hides from the document behind a documented path.
#[tokio::test]
async fn undocumented_methods_are_not_routed() {
    let api = TestApi::new();
    let operations = operations();
    let mut paths: Vec<&String> = operations.iter().map(|(_, path)| path).collect();
    paths.dedup();
    for path in paths {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            if operations.contains(&(method.clone(), path.clone())) {
                continue;
            }
            let answer = api
                .raw(method.clone(), &concrete(path), Vec::new(), &[])
                .await;
            assert_eq!(
                answer.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is routed but not documented: {}",
                answer.body
            );
        }
    }
}

/// Every POST route is declared with its idempotency layer: a request with an
/// `idempotency-key` leaves its answer stored under the key (here the 4xx of an unknown
/// application or an empty body, which is kept like any other non-5xx answer).
#[tokio::test]
async fn every_post_keeps_its_answer_under_the_idempotency_key() {
    let api = TestApi::new();
    let not_before = webhookd_core::time::now() - webhookd_store::IDEMPOTENCY_WINDOW;
    for (method, path) in operations() {
        if method != Method::POST {
            continue;
        }
        let uri = concrete(&path);
        let answer = api
            .raw(
                Method::POST,
                &uri,
                b"{}".to_vec(),
                &[("idempotency-key", "every-post")],
            )
            .await;
        assert!(
            !answer.status.is_server_error(),
            "POST {path}: {}",
            answer.body
        );
        let hash = webhookd_api::idempotency::key_hash(
            &webhookd_api::auth::Caller::Local,
            &Method::POST,
            &uri,
            "every-post",
        );
        let stored = api
            .state()
            .store()
            .get_idempotent_response(&hash, not_before)
            .await
            .expect("the store answers");
        assert!(
            stored.is_some(),
            "POST {path} answered {} but kept nothing under its idempotency-key",
            answer.status
        );
    }
}
