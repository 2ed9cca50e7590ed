//! A small W3C WebDriver client over `reqwest`, talking to `chromedriver` on a loopback port:
//! just the commands the console tests use (navigate, find, click, type, read, run a script,
//! screenshot, window size, colour scheme).
//!
//! `chromedriver` and headless Chromium are started here with a fresh profile directory and
//! the flags that keep Chromium off the network (no sync, no component updates, no QUIC).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The key W3C WebDriver names element references with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait for the page lasts before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// The Chromium and chromedriver binaries, when both are installed.
pub(crate) fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| names.iter().map(PathBuf::from).find(|path| path.exists());
    let chromium = find(&[
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ])?;
    let driver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])?;
    Some((chromium, driver))
}

/// A browser session; the driver process ends when it is dropped.
pub(crate) struct Browser {
    http: reqwest::Client,
    session: String,
    driver_url: String,
    _driver: Child,
    _profile: tempfile::TempDir,
}

/// An element of the current page.
#[derive(Clone)]
pub(crate) struct Element {
    id: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium `width` × `height` pixels wide.
    pub(crate) async fn start(chromium: &Path, driver: &Path) -> Result<Self> {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.local_addr()?.port()
        };
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("chromedriver starts")?;
        let http = reqwest::Client::builder().no_proxy().build()?;
        let driver_url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = http
                .get(format!("{driver_url}/status"))
                .send()
                .await
                .ok()
                .filter(|response| response.status().is_success());
            if ready.is_some() {
                break;
            }
            if started.elapsed() > DEADLINE {
                bail!("chromedriver did not answer within {DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir()?;
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--window-size=1440,1000".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let created: Value = http
            .post(format!("{driver_url}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "unhandledPromptBehavior": "ignore",
                "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {"binary": chromium, "args": args},
            }}}))
            .send()
            .await?
            .json()
            .await?;
        let session = created["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no session from chromedriver: {created}"))?
            .to_owned();
        Ok(Self {
            http,
            session,
            driver_url,
            _driver: child,
            _profile: profile,
        })
    }

    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}/session/{}{path}", self.driver_url, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let value: Value = response.json().await?;
        if !status.is_success() {
            bail!(
                "WebDriver {path} failed ({status}): {}",
                value["value"]["message"]
            );
        }
        Ok(value["value"].clone())
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    pub(crate) async fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", json!({"url": url})).await.map(drop)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub(crate) async fn script(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    pub(crate) async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await?;
        Ok(found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|element| element[ELEMENT].as_str())
            .map(|id| Element { id: id.to_owned() })
            .collect())
    }

    /// Waits until an element matching `css` whose text contains `text` is on the page.
    pub(crate) async fn wait_for(&self, css: &str, text: &str) -> Result<Element> {
        let started = Instant::now();
        loop {
            for element in self.find_all(css).await.unwrap_or_default() {
                if self.text(&element).await.unwrap_or_default().contains(text) {
                    return Ok(element);
                }
            }
            if started.elapsed() > DEADLINE {
                let body = self
                    .script("return document.body.innerText", vec![])
                    .await?;
                bail!(
                    "no `{css}` containing {text:?} within {DEADLINE:?}; the page shows:\n{}",
                    body.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn text(&self, element: &Element) -> Result<String> {
        let value = self
            .command(
                reqwest::Method::GET,
                &format!("/element/{}/text", element.id),
                None,
            )
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    pub(crate) async fn click(&self, element: &Element) -> Result<()> {
        self.post(&format!("/element/{}/click", element.id), json!({}))
            .await
            .map(drop)
    }

    /// Clears a field and types `text` into it.
    pub(crate) async fn fill(&self, element: &Element, text: &str) -> Result<()> {
        self.post(&format!("/element/{}/clear", element.id), json!({}))
            .await?;
        self.post(
            &format!("/element/{}/value", element.id),
            json!({"text": text}),
        )
        .await
        .map(drop)
    }

    /// Accepts the page's `confirm()` dialog, waiting for it to open.
    pub(crate) async fn accept_dialog(&self) -> Result<()> {
        let started = Instant::now();
        loop {
            if self.post("/alert/accept", json!({})).await.is_ok() {
                return Ok(());
            }
            if started.elapsed() > DEADLINE {
                bail!("no dialog opened within {DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Presses a key (a WebDriver key code such as `\u{E004}` for Tab) on the focused element.
    pub(crate) async fn press(&self, key: &str) -> Result<()> {
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key},
                {"type": "keyUp", "value": key},
            ]}]}),
        )
        .await
        .map(drop)
    }

    /// Sets the viewport size, as the window's size.
    pub(crate) async fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await
            .map(drop)
    }

    /// Emulates `prefers-color-scheme: dark` (or light).
    pub(crate) async fn color_scheme(&self, dark: bool) -> Result<()> {
        self.post(
            "/goog/cdp/execute",
            json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": [
                {"name": "prefers-color-scheme", "value": if dark { "dark" } else { "light" }}
            ]}}),
        )
        .await
        .map(drop)
    }

    /// A PNG of the whole page.
    pub(crate) async fn screenshot(&self) -> Result<Vec<u8>> {
        // The whole page, not only the viewport: clip to the document's size.
        let size = self
            .script(
                "return [document.documentElement.clientWidth, \
                 Math.max(document.documentElement.scrollHeight, window.innerHeight)]",
                vec![],
            )
            .await?;
        let (width, height) = (
            size[0].as_f64().unwrap_or(1440.0),
            size[1].as_f64().unwrap_or(900.0),
        );
        let value = self
            .post(
                "/goog/cdp/execute",
                json!({"cmd": "Page.captureScreenshot", "params": {
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height.min(6000.0), "scale": 1},
                }}),
            )
            .await?;
        let data = value["data"].as_str().context("no screenshot data")?;
        Ok(base64::engine::general_purpose::STANDARD.decode(data)?)
    }

    /// What the page logged to its console since the last call (errors, policy violations).
    pub(crate) async fn console_log(&self) -> Result<Vec<String>> {
        let entries = self.post("/se/log", json!({"type": "browser"})).await?;
        Ok(entries
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| {
                format!(
                    "{} {}",
                    entry["level"].as_str().unwrap_or_default(),
                    entry["message"].as_str().unwrap_or_default()
                )
            })
            .collect())
    }

    pub(crate) async fn quit(self) -> Result<()> {
        self.http
            .delete(format!("{}/session/{}", self.driver_url, self.session))
            .send()
            .await?;
        Ok(())
    }
}
