//! The test client: the real service over a fresh SQLite store, called in-process.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use webhookd_api::auth::{AuthMode, hash_token};
use webhookd_api::{ApiConfig, ApiState};
use webhookd_core::signing::SignatureType;
use webhookd_delivery::Dispatcher;
use webhookd_store::sqlite::SqliteStore;

pub struct TestApi {
    state: ApiState,
    /// Sent as `Authorization: Bearer …` when set.
    pub token: Option<String>,
    _dir: tempfile::TempDir,
}

/// A response: status and parsed JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: axum::http::HeaderMap,
}

impl TestApi {
    /// Local mode: no token needed.
    pub fn new() -> Self {
        Self::with_auth(AuthMode::Local)
    }

    /// Requires `token`.
    pub fn with_token(token: &str) -> Self {
        let mut api = Self::with_auth(AuthMode::Tokens {
            configured: vec![hash_token(token)],
        });
        api.token = Some(token.to_owned());
        api
    }

    pub fn with_auth(auth: AuthMode) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(&dir.path().join("webhookd.db")).expect("the store opens");
        let config = ApiConfig {
            auth,
            max_payload_bytes: 64 * 1024,
            metrics: None,
            allowed_origins: Vec::new(),
            signature_type: SignatureType::Hmac,
        };
        let state = ApiState::new(Arc::new(store), Dispatcher::disabled(), config);
        Self {
            state,
            token: None,
            _dir: dir,
        }
    }

    pub fn state(&self) -> &ApiState {
        &self.state
    }

    /// Sends a request with a raw body and extra headers.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body)).expect("a valid request");
        let response = webhookd_api::service(self.state.clone())
            .oneshot(request)
            .await
            .expect("the service answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{path} answered non-JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Answer {
            status,
            body,
            headers,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let body = body
            .map(|body| serde_json::to_vec(&body).expect("JSON"))
            .unwrap_or_default();
        self.raw(method, path, body, &[]).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }
}

impl Answer {
    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts a 422 whose first error is located at `loc`.
    #[track_caller]
    pub fn expect_invalid(self, loc: &[&str]) {
        let body = self.expect(StatusCode::UNPROCESSABLE_ENTITY);
        let first = &body["detail"][0];
        let got: Vec<&str> = first["loc"]
            .as_array()
            .expect("a loc list")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(got, loc, "unexpected error location in {body}");
        assert!(
            first["msg"].as_str().is_some_and(|msg| !msg.is_empty()),
            "no message in {body}"
        );
    }

    /// Asserts an error in the `{code, detail}` shape.
    #[track_caller]
    pub fn expect_error(self, status: StatusCode) -> Value {
        let body = self.expect(status);
        assert!(
            body["code"].is_string() && body["detail"].is_string(),
            "not an error shape: {body}"
        );
        body
    }
}
