//! What a web page could make a browser send, and hostile bodies: only JSON is read (415),
//! local mode answers loopback names and its own origin only (403), an announced body over the
//! limit is refused before it is read (413), a body that trickles in is cut off (408), and an
//! answer given without reading the body says it closes the connection.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::TestApi;

/// Sends `request` through the whole service, headers exactly as given.
async fn send(api: &TestApi, request: Request<Body>) -> (StatusCode, Value, HeaderMap) {
    let response = webhookd_api::service(api.state().clone())
        .oneshot(request)
        .await
        .expect("the service answers");
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON answer")
    };
    (status, body, headers)
}

fn request(method: Method, path: &str, headers: &[(&str, &str)], body: Body) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).expect("a valid request")
}

fn app_body() -> Body {
    Body::from(json!({"name": "Joe"}).to_string())
}

#[tokio::test]
async fn bodies_must_be_declared_as_json_or_not_at_all() {
    let api = TestApi::new();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let (status, body, _) = send(
            &api,
            request(
                Method::POST,
                "/api/v1/app",
                &[("content-type", content_type)],
                app_body(),
            ),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}: {body}"
        );
        assert_eq!(body["code"], "unsupported_media_type", "{body}");
    }
    for headers in [
        &[("content-type", "application/json; charset=utf-8")][..],
        &[("content-type", "application/merge-patch+json")][..],
        &[][..],
    ] {
        let (status, body, _) = send(
            &api,
            request(Method::POST, "/api/v1/app", headers, app_body()),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{headers:?}: {body}");
    }
    // An empty form post cannot trigger a body-less action either.
    let (status, _, _) = send(
        &api,
        request(
            Method::POST,
            "/webhooks",
            &[("content-type", "application/x-www-form-urlencoded")],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn local_mode_answers_loopback_names_only() {
    let api = TestApi::new();
    for host in [
        "localhost:8090",
        "127.0.0.1:8090",
        "[::1]:8090",
        "app.localhost",
    ] {
        let (status, body, _) = send(
            &api,
            request(Method::GET, "/api/v1/app", &[("host", host)], Body::empty()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
    // A name rebound to 127.0.0.1 by a web page's DNS, on every route.
    for path in ["/api/v1/app", "/webhooks", "/api/v1/health", "/nowhere"] {
        let (status, body, _) = send(
            &api,
            request(
                Method::GET,
                path,
                &[("host", "rebind.example:8090")],
                Body::empty(),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["code"], "forbidden", "{body}");
    }

    // With tokens, a node answers whatever name it is reached under.
    let api = TestApi::with_token("secret-token");
    let (status, body, _) = send(
        &api,
        request(
            Method::GET,
            "/api/v1/app",
            &[
                ("host", "webhooks.example"),
                ("authorization", "Bearer secret-token"),
            ],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn local_mode_refuses_other_origins() {
    let api = TestApi::new();
    let host = ("host", "localhost:8090");
    let json = ("content-type", "application/json");
    for refused in [
        &[host, json, ("origin", "https://evil.example")][..],
        &[host, json, ("origin", "http://localhost:3000")][..],
        &[host, json, ("origin", "null")][..],
        &[host, json, ("sec-fetch-site", "cross-site")][..],
    ] {
        let (status, body, _) = send(
            &api,
            request(Method::POST, "/api/v1/app", refused, app_body()),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{refused:?}: {body}");
    }
    // The console, served by the node itself, posts from its own origin.
    let own = [
        host,
        json,
        ("origin", "http://localhost:8090"),
        ("sec-fetch-site", "same-origin"),
    ];
    let (status, body, _) =
        send(&api, request(Method::POST, "/api/v1/app", &own, app_body())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A body that announces itself and never sends a byte.
struct Silent;

impl http_body::Body for Silent {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Pending
    }
}

#[tokio::test]
async fn an_announced_body_over_the_limit_is_refused_unread() {
    let api = TestApi::new();
    let huge = request(
        Method::POST,
        "/api/v1/app",
        &[
            ("content-type", "application/json"),
            ("content-length", "100000000000"),
        ],
        Body::new(Silent),
    );
    let answered = tokio::time::timeout(std::time::Duration::from_secs(10), send(&api, huge));
    let (status, body, headers) = answered.await.expect("answered without reading the body");
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "payload_too_large");
    assert_eq!(headers["connection"], "close");
}

/// Waits out `BODY_READ_TIMEOUT` (30 s) in real time.
#[tokio::test]
async fn a_body_that_never_arrives_is_cut_off() {
    let api = TestApi::new();
    let slow = request(
        Method::POST,
        "/api/v1/app",
        &[
            ("content-type", "application/json"),
            ("content-length", "20"),
        ],
        Body::new(Silent),
    );
    let (status, body, headers) = send(&api, slow).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert_eq!(body["code"], "request_timeout");
    assert_eq!(headers["connection"], "close");
}

#[tokio::test]
async fn an_unread_body_closes_the_connection_and_a_read_one_does_not() {
    let api = TestApi::new();
    let json = ("content-type", "application/json");
    for (method, path) in [
        (Method::DELETE, "/api/v1/app/nobody"),
        (Method::GET, "/api/v1/health"),
        (Method::from_bytes(b"PROPFIND").unwrap(), "/webhooks"),
        (Method::POST, "/nowhere"),
    ] {
        let (status, _, headers) =
            send(&api, request(method.clone(), path, &[json], app_body())).await;
        assert_eq!(
            headers["connection"], "close",
            "{method} {path} answered {status}"
        );
    }
    let (status, _, headers) = send(
        &api,
        request(Method::POST, "/api/v1/app", &[json], app_body()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(headers.get("connection").is_none(), "{headers:?}");
    let (_, _, headers) = send(
        &api,
        request(Method::GET, "/api/v1/app", &[], Body::empty()),
    )
    .await;
    assert!(headers.get("connection").is_none(), "{headers:?}");
}
