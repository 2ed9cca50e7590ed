//! A client of the webhookd API, as an application would use it: plain HTTP with JSON bodies,
//! and helpers for the resources the tests create and read (applications, endpoints,
//! messages, attempts, delivery states).
//!
//! Every answer is parsed as JSON (the API answers JSON on every path, errors included), and the
//! helpers that expect a status fail with the route and the body when it differs.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::wait::eventually;

/// An endpoint created through the API, with its signing secret.
#[derive(Debug, Clone)]
pub(crate) struct TestEndpoint {
    pub(crate) id: String,
    pub(crate) secret: String,
}

/// The API of one webhookd node.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    base_url: String,
    client: reqwest::Client,
    /// Sent as `Authorization: Bearer …` when set.
    token: Option<String>,
}

impl Api {
    pub(crate) fn new(base_url: String) -> Self {
        let client = reqwest::Client::builder()
            // The tests talk to loopback only; a proxy from the environment must not intercept.
            .no_proxy()
            .build()
            .expect("an HTTP client");
        Self {
            base_url,
            client,
            token: None,
        }
    }

    /// `http://host:port`, the node's address.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The same API, called with this bearer token (or none).
    pub(crate) fn with_token(&self, token: Option<&str>) -> Self {
        Self {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    /// The Prometheus exposition text of `GET /metrics`.
    pub(crate) async fn metrics_text(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
            .expect("GET /metrics answers");
        assert_eq!(response.status(), StatusCode::OK, "GET /metrics");
        response.text().await.expect("the metrics text")
    }

    /// Sends a request; `Err` only when no answer came (the server is down).
    pub(crate) async fn try_request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        self.try_request_with(method, path, body, &[]).await
    }

    /// [`Api::try_request`] with these extra headers (`idempotency-key`).
    pub(crate) async fn try_request_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base_url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{method} {path} answered {status} with a body that is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Ok((status, body))
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let what = format!("{method} {path}");
        self.try_request(method, path, body)
            .await
            .unwrap_or_else(|error| panic!("{what} got no answer: {error}"))
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(body.to_string().into_bytes()))
            .await
    }

    /// POSTs `body` with these extra headers (`idempotency-key`).
    pub(crate) async fn post_with(
        &self,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        self.try_request_with(
            Method::POST,
            path,
            Some(body.to_string().into_bytes()),
            headers,
        )
        .await
        .unwrap_or_else(|error| panic!("POST {path} got no answer: {error}"))
    }

    pub(crate) async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::PATCH, path, Some(body.to_string().into_bytes()))
            .await
    }

    /// POSTs a body exactly as written, for tests about bytes (whitespace, key order).
    pub(crate) async fn post_raw(&self, path: &str, body: &str) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(body.as_bytes().to_vec()))
            .await
    }

    /// Creates an application and returns its id.
    pub(crate) async fn create_app(&self) -> String {
        let (status, body) = self.post("/api/v1/app", json!({"name": "e2e"})).await;
        expect_status("POST /api/v1/app", status, StatusCode::CREATED, &body);
        id_of(&body)
    }

    /// Creates an endpoint from `fields` (at least `url`) and reads its secret back.
    pub(crate) async fn create_endpoint(&self, app: &str, fields: Value) -> TestEndpoint {
        let path = format!("/api/v1/app/{app}/endpoint");
        let (status, body) = self.post(&path, fields).await;
        expect_status(&format!("POST {path}"), status, StatusCode::CREATED, &body);
        let id = id_of(&body);
        let secret = self.secret(app, &id).await;
        TestEndpoint { id, secret }
    }

    /// The endpoint's current signing secret.
    pub(crate) async fn secret(&self, app: &str, endpoint: &str) -> String {
        let path = format!("/api/v1/app/{app}/endpoint/{endpoint}/secret");
        let (status, body) = self.get(&path).await;
        expect_status(&format!("GET {path}"), status, StatusCode::OK, &body);
        body["key"]
            .as_str()
            .unwrap_or_else(|| panic!("GET {path}: no `key` in {body}"))
            .to_owned()
    }

    /// The endpoint as the API shows it.
    pub(crate) async fn endpoint(&self, app: &str, endpoint: &str) -> Value {
        let path = format!("/api/v1/app/{app}/endpoint/{endpoint}");
        let (status, body) = self.get(&path).await;
        expect_status(&format!("GET {path}"), status, StatusCode::OK, &body);
        body
    }

    /// The endpoint's delivery counts (`{success, pending, sending, fail, canceled}`).
    pub(crate) async fn stats(&self, app: &str, endpoint: &str) -> Value {
        let path = format!("/api/v1/app/{app}/endpoint/{endpoint}/stats");
        let (status, body) = self.get(&path).await;
        expect_status(&format!("GET {path}"), status, StatusCode::OK, &body);
        body
    }

    /// Creates a message from a full request body; answers its id once acknowledged (202).
    pub(crate) async fn send(&self, app: &str, message: Value) -> String {
        self.send_raw(app, &message.to_string()).await
    }

    /// [`Api::send`] with the request body written out by the caller.
    pub(crate) async fn send_raw(&self, app: &str, message: &str) -> String {
        let path = format!("/api/v1/app/{app}/msg");
        let (status, body) = self.post_raw(&path, message).await;
        expect_status(&format!("POST {path}"), status, StatusCode::ACCEPTED, &body);
        id_of(&body)
    }

    /// A message of type `e2e.test` with this payload.
    pub(crate) async fn send_event(&self, app: &str, payload: Value) -> String {
        self.send(app, json!({"eventType": "e2e.test", "payload": payload}))
            .await
    }

    /// The message's attempts, oldest first.
    pub(crate) async fn attempts(&self, app: &str, msg: &str) -> Vec<Value> {
        self.list(&format!(
            "/api/v1/app/{app}/attempt/msg/{msg}?order=ascending&limit=250"
        ))
        .await
    }

    /// The message's delivery to each endpoint it fanned out to (`MessageEndpointOut`).
    pub(crate) async fn deliveries(&self, app: &str, msg: &str) -> Vec<Value> {
        self.list(&format!("/api/v1/app/{app}/msg/{msg}/endpoint?limit=250"))
            .await
    }

    /// The status (0 success, 1 pending, 2 fail, 3 sending, 4 canceled) of the message's
    /// delivery to the endpoint.
    pub(crate) async fn delivery_status(
        &self,
        app: &str,
        msg: &str,
        endpoint: &str,
    ) -> Option<i64> {
        self.deliveries(app, msg)
            .await
            .iter()
            .find(|delivery| delivery["id"] == endpoint)
            .map(|delivery| delivery["status"].as_i64().expect("an integer `status`"))
    }

    /// Waits until the message's delivery to the endpoint has this status.
    pub(crate) async fn wait_for_delivery_status(
        &self,
        app: &str,
        msg: &str,
        endpoint: &str,
        status: i64,
    ) {
        eventually(
            &format!("the delivery of {msg} to {endpoint} to have status {status}"),
            || async {
                match self.delivery_status(app, msg, endpoint).await {
                    Some(got) if got == status => Ok(()),
                    got => Err(format!(
                        "status {got:?}; attempts: {:?}",
                        self.attempts(app, msg).await
                    )),
                }
            },
        )
        .await;
    }

    /// Waits until `count` attempts of the message are recorded (results are written in
    /// batches, a little after the receiver answered), and returns them oldest first.
    pub(crate) async fn wait_for_attempts(&self, app: &str, msg: &str, count: usize) -> Vec<Value> {
        eventually(&format!("{count} recorded attempts of {msg}"), || async {
            let attempts = self.attempts(app, msg).await;
            if attempts.len() >= count {
                Ok(attempts)
            } else {
                Err(format!("{attempts:?}"))
            }
        })
        .await
    }

    /// The `data` of a list answer, expecting 200.
    async fn list(&self, path: &str) -> Vec<Value> {
        let (status, body) = self.get(path).await;
        expect_status(&format!("GET {path}"), status, StatusCode::OK, &body);
        body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("GET {path}: no `data` list in {body}"))
            .clone()
    }
}

/// Fails with the route and the body when the status is not the expected one.
#[track_caller]
pub(crate) fn expect_status(route: &str, got: StatusCode, expected: StatusCode, body: &Value) {
    assert_eq!(
        got, expected,
        "{route} answered {got} (expected {expected}) with {body}"
    );
}

fn id_of(body: &Value) -> String {
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no `id` in {body}"))
        .to_owned()
}
