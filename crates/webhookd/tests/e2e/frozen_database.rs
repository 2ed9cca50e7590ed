//! A database that stops answering (a proxy between the node and PostgreSQL stops forwarding):
//! requests that need it are answered 503 with `Retry-After` within the store deadline instead
//! of hanging, readiness says so while liveness does not, and once the database answers again
//! the node serves and delivers as before.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{
    FreezableProxy, Receiver, ServerProcess, TestDatabase, eventually, free_port,
};

/// The node's store deadline in this test.
const STORE_TIMEOUT: &str = "1s";
/// How long the test lets a request take before it calls it hung: far above the deadline.
const HUNG: Duration = Duration::from_secs(15);

/// The status and `Retry-After` of one request, failing if no answer comes within [`HUNG`].
async fn answer(base: &str, method: Method, path: &str) -> (StatusCode, Option<String>) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(HUNG)
        .build()
        .expect("an HTTP client");
    let mut request = client.request(method.clone(), format!("{base}{path}"));
    if method == Method::POST {
        request = request.json(&json!({"eventType": "e2e.test", "payload": {"n": 1}}));
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|error| panic!("{method} {path} hung or failed: {error}"));
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap_or_default().to_owned());
    (response.status(), retry_after)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_database_is_answered_503_and_readiness_follows_it() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let mut url = url::Url::parse(database.url()).expect("a postgres:// URL");
    let upstream = format!(
        "{}:{}",
        url.host_str().expect("a host"),
        url.port().unwrap_or(5432)
    );
    let proxy = FreezableProxy::start(upstream.parse().expect("a socket address")).await;
    url.set_port(Some(proxy.port())).expect("a port");
    let receiver = Receiver::start().await;
    let node = ServerProcess::start(
        &database,
        free_port(),
        &[
            ("WEBHOOKD_DATABASE_URL", url.as_str()),
            ("WEBHOOKD_STORE_TIMEOUT", STORE_TIMEOUT),
        ],
    )
    .await;
    let base = node.base_url().to_owned();
    let app = node.create_app().await;
    node.create_endpoint(&app, json!({"url": receiver.url("/hook")}))
        .await;
    let send = format!("/api/v1/app/{app}/msg");
    assert_eq!(
        answer(&base, Method::GET, "/api/v1/health/ready").await.0,
        StatusCode::NO_CONTENT
    );

    proxy.freeze();
    for (method, path) in [
        (Method::GET, "/api/v1/health/ready"),
        (Method::POST, send.as_str()),
        (Method::GET, &format!("/api/v1/app/{app}")),
    ] {
        let (status, retry_after) = answer(&base, method.clone(), path).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path} with the database frozen"
        );
        assert!(
            retry_after.is_some_and(|seconds| seconds.parse::<u32>().is_ok()),
            "{method} {path} says when to retry"
        );
    }
    assert_eq!(
        answer(&base, Method::GET, "/api/v1/health").await.0,
        StatusCode::NO_CONTENT,
        "liveness does not depend on the database"
    );

    proxy.thaw();
    eventually("readiness once the database answers again", || {
        let base = base.clone();
        async move {
            match answer(&base, Method::GET, "/api/v1/health/ready").await {
                (StatusCode::NO_CONTENT, _) => Ok(()),
                (status, _) => Err(status.to_string()),
            }
        }
    })
    .await;
    let msg = node.send_event(&app, json!({"after": "thaw"})).await;
    let requests = receiver
        .wait_for("the message sent after the thaw", |requests| {
            requests.iter().any(|request| request.webhook_id() == msg)
        })
        .await;
    assert!(!requests.is_empty());
}
