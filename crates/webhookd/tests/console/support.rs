//! The pieces the browser tests drive: the real `webhookd` binary on an ephemeral port with a
//! temporary SQLite database, a loopback receiver that records what it got and answers with a
//! status the test sets, and an API client for what the test does outside the browser.

use std::net::TcpListener as StdListener;
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::webdriver::DEADLINE;

/// `webhookd serve` as a child process on `127.0.0.1:<free port>`.
pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) token: Option<String>,
    http: reqwest::Client,
    _child: Child,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary with these extra settings and waits for its health check.
    pub(crate) async fn start(settings: &[(&str, &str)]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_webhookd"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("WEBHOOKD_") {
                command.env_remove(name);
            }
        }
        let log = std::fs::File::create(dir.path().join("webhookd.log"))?;
        command
            .arg("serve")
            .env("WEBHOOKD_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "WEBHOOKD_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("webhookd.db").display()),
            )
            .env("WEBHOOKD_ALLOW_PRIVATE", "all")
            // One attempt, no retries: a failure is final until someone resends.
            .env("WEBHOOKD_RETRY_SCHEDULE", "")
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command.spawn().context("webhookd starts")?;
        let token = settings
            .iter()
            .find(|(name, _)| *name == "WEBHOOKD_API_TOKENS")
            .map(|(_, value)| (*value).to_owned());
        let server = Self {
            base: format!("http://127.0.0.1:{port}"),
            token,
            http: reqwest::Client::builder().no_proxy().build()?,
            _child: child,
            dir,
        };
        let started = Instant::now();
        loop {
            let healthy = server
                .http
                .get(format!("{}/api/v1/health", server.base))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if healthy {
                return Ok(server);
            }
            if started.elapsed() > DEADLINE {
                bail!(
                    "webhookd did not start within {DEADLINE:?}: {}",
                    server.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("webhookd.log")).unwrap_or_default()
    }

    /// Calls the API (with the bearer token when the server has one); the status and JSON body.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// Trades a token for a session as a browser would, without any other credential; the
    /// status of the answer.
    pub(crate) async fn open_session(&self, token: &Value) -> Result<u16> {
        let response = self
            .http
            .post(format!("{}/api/v1/auth/session", self.base))
            .header("x-webhookd-csrf", "1")
            .json(&serde_json::json!({"token": token}))
            .send()
            .await?;
        Ok(response.status().as_u16())
    }

    /// Calls the API and expects a 2xx.
    pub(crate) async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let (status, value) = self.call(method, path, body).await?;
        if !(200..300).contains(&status) {
            bail!("{path} answered {status}: {value}");
        }
        Ok(value)
    }

    /// Whether the server's OpenAPI document has this path; parameter names do not matter
    /// (`/app/{app_id}` is `/app/{app}`).
    pub(crate) async fn has_route(&self, path: &str) -> Result<bool> {
        let document = self
            .ok(reqwest::Method::GET, "/api/v1/openapi.json", None)
            .await?;
        let wanted = without_parameter_names(path);
        Ok(document["paths"].as_object().is_some_and(|paths| {
            paths
                .keys()
                .any(|known| without_parameter_names(known) == wanted)
        }))
    }

    pub(crate) async fn get(&self, path: &str) -> Result<reqwest::Response> {
        Ok(self.http.get(format!("{}{path}", self.base)).send().await?)
    }
}

/// `/app/{app_id}/msg` → `/app/{}/msg`.
fn without_parameter_names(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_parameter = false;
    for character in path.chars() {
        match character {
            '{' => {
                in_parameter = true;
                out.push('{');
            }
            '}' => {
                in_parameter = false;
                out.push('}');
            }
            _ if in_parameter => {}
            _ => out.push(character),
        }
    }
    out
}

/// A webhook receiver on loopback: records every body and answers with the current status.
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    status: Arc<AtomicU16>,
    bodies: Arc<Mutex<Vec<Bytes>>>,
}

impl Receiver {
    pub(crate) async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let receiver = Self {
            url: format!("http://{}/hook", listener.local_addr()?),
            status: Arc::new(AtomicU16::new(200)),
            bodies: Arc::default(),
        };
        let app = Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(receiver)
    }

    pub(crate) fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub(crate) fn count(&self) -> usize {
        self.bodies
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Waits until the receiver has got `count` requests.
    pub(crate) async fn wait_for(&self, count: usize) -> Result<()> {
        let started = Instant::now();
        while self.count() < count {
            if started.elapsed() > DEADLINE {
                bail!(
                    "the receiver got {} requests, not {count}, within {DEADLINE:?}",
                    self.count()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    pub(crate) fn bodies(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|body| String::from_utf8_lossy(body).into_owned())
            .collect()
    }
}

async fn receive(State(receiver): State<Receiver>, body: Bytes) -> (StatusCode, &'static str) {
    receiver
        .bodies
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(body);
    let status =
        StatusCode::from_u16(receiver.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK);
    (status, "{\"received\": true, \"note\": \"<b>bold?</b>\"}")
}

/// Polls `check` until it is true.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let started = Instant::now();
    loop {
        if check().await? {
            return Ok(());
        }
        if started.elapsed() > DEADLINE {
            bail!("{what}: not within {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
