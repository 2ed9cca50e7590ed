//! A client of the public API, used as the SDKs use it (by the bench, `listen` and the remote
//! `token` commands).
//!
//! One hyper client with a keep-alive connection pool serves every request: the set-up calls
//! (applications, endpoints, stats) and the load itself. Every POST carries an
//! `idempotency-key`, so a retried request never creates a second message. A message POST is
//! retried, with the same key, after a 429 or 503 (waiting out `Retry-After`), a 409 (the first
//! try is still running) or a transport error, a few times at most; anything else is final.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use url::Url;

/// Tries of one message POST at most, the first included.
const MAX_TRIES: u32 = 5;
/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `Retry-After` honoured; a longer one is shortened to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// The pause before retrying a 409 or a transport error.
const SHORT_PAUSE: Duration = Duration::from_millis(100);

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// How a message POST ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Posted {
    /// 202: the message is stored.
    Accepted,
    /// A final answer other than 202, or the last of the retried ones.
    Rejected(StatusCode),
    /// No answer: the reason.
    Failed(&'static str),
}

/// The API at `base`, with an optional bearer token.
pub(crate) struct Api {
    http: Client<HttpConnector, Full<Bytes>>,
    /// `http://host:port` and the URL's path, without a trailing slash.
    base: String,
    authorization: Option<HeaderValue>,
}

impl Api {
    pub(crate) fn new(base: &Url, token: Option<&str>) -> anyhow::Result<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let authorization = token
            .map(|token| HeaderValue::try_from(format!("Bearer {token}")))
            .transpose()
            .context("the token is not a valid header value")?;
        Ok(Self {
            http,
            base: base.as_str().trim_end_matches('/').to_owned(),
            authorization,
        })
    }

    /// The URI of an API path (`/api/v1/…`).
    pub(crate) fn uri(&self, path: &str) -> anyhow::Result<Uri> {
        let text = format!("{}{path}", self.base);
        text.parse()
            .with_context(|| format!("{text} is not a valid URI"))
    }

    /// Whether `GET /api/v1/health` answers 204.
    pub(crate) async fn healthy(&self) -> bool {
        let Ok(uri) = self.uri("/api/v1/health") else {
            return false;
        };
        let request = Request::get(uri).body(Full::default());
        let Ok(request) = request else { return false };
        match tokio::time::timeout(Duration::from_secs(2), self.http.request(request)).await {
            Ok(Ok(response)) => {
                let status = response.status();
                let _ = response.into_body().collect().await;
                status == StatusCode::NO_CONTENT
            }
            _ => false,
        }
    }

    /// Calls the API and answers the JSON body of a 2xx, or an error with the status and body.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let uri = self.uri(path)?;
        let body = body
            .map(serde_json::to_vec)
            .transpose()?
            .map(Bytes::from)
            .unwrap_or_default();
        let key = idempotency_key(&format!("setup_{}", unique()))?;
        let request = self.request(method.clone(), uri, key, body)?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| anyhow!("{method} {path} timed out"))?
            .with_context(|| format!("{method} {path} failed"))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .context("reading the answer")?
            .to_bytes();
        if !status.is_success() {
            bail!(
                "{method} {path} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).with_context(|| format!("{method} {path} answered no JSON"))
    }

    /// Posts one message body to `uri` under `key`, retrying what may pass on a second try.
    pub(crate) async fn post_message(&self, uri: &Uri, key: &HeaderValue, body: &Bytes) -> Posted {
        let mut tries = 0;
        loop {
            tries += 1;
            let last = tries >= MAX_TRIES;
            let Ok(request) = self.request(Method::POST, uri.clone(), key.clone(), body.clone())
            else {
                return Posted::Failed("request");
            };
            let response =
                match tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(request)).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(_)) if !last => {
                        tokio::time::sleep(SHORT_PAUSE).await;
                        continue;
                    }
                    Ok(Err(_)) => return Posted::Failed("connection"),
                    Err(_) => return Posted::Failed("timeout"),
                };
            let status = response.status();
            let retry_after = response.headers().get(RETRY_AFTER).and_then(retry_after);
            // The answer is read to its end, so the connection goes back to the pool.
            if response.into_body().collect().await.is_err() && !last {
                continue;
            }
            match status {
                StatusCode::ACCEPTED => return Posted::Accepted,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE if !last => {
                    tokio::time::sleep(retry_after.unwrap_or(Duration::from_secs(1))).await;
                }
                StatusCode::CONFLICT if !last => tokio::time::sleep(SHORT_PAUSE).await,
                status => return Posted::Rejected(status),
            }
        }
    }

    fn request(
        &self,
        method: Method,
        uri: Uri,
        key: HeaderValue,
        body: Bytes,
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(CONTENT_TYPE, JSON)
            .header("idempotency-key", key);
        if let Some(authorization) = &self.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        Ok(builder.body(Full::new(body))?)
    }
}

/// A header value for an idempotency key.
pub(crate) fn idempotency_key(key: &str) -> anyhow::Result<HeaderValue> {
    HeaderValue::try_from(key).with_context(|| format!("{key:?} is not a valid header value"))
}

/// A string unique to this call (time, process and a counter), for names and keys.
pub(crate) fn unique() -> String {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}{:x}{call:x}", std::process::id())
}

/// `Retry-After` in seconds (an HTTP date is taken as one second), capped.
fn retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    let seconds = text.parse::<u64>().unwrap_or(1);
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}
