//! `webhookd bin`: a local receiver for debugging webhooks, the offline stand-in for a request bin.
//!
//! Point an endpoint at it and it prints every request it gets, on any path and with any method:
//! the method, path and query, the time, every header, and the body (pretty-printed when it is
//! JSON). Given the endpoint's secret (`--secret whsec_…`, or `--secret whpk_…`, the public key
//! of an ed25519 endpoint) it also verifies the Standard Webhooks
//! signature (or the `svix-` variant of the headers) and says whether it is valid. It answers with
//! the status chosen by `--status`, fails a fraction of requests with a 500 (`--fail-rate`), and
//! can answer slowly (`--delay`), so that retries and timeouts can be watched from the outside.
//!
//! The command goes in three steps, so that the caller owns the socket and the output:
//! 1. [`validate`] turns the flags into a [`ValidatedBin`], or an error naming the bad flag;
//! 2. the caller binds the listener (tests bind `127.0.0.1:0`);
//! 3. [`run`] serves until `shutdown` completes, writing one report block per request to `out`.
//!
//! Each block is formatted in full before it is written, once, under a lock, so the reports of
//! concurrent requests never interleave. Whatever the request carries (path, header values,
//! body) is printed with its control characters escaped (`\n`, `\u{1b}`), so a request
//! cannot forge lines of the report (its own `signature: valid`) or drive the terminal.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use webhookd_core::signing::{self, VerifyKey};
use webhookd_core::time as core_time;

/// The largest body the bin accepts; far above webhookd's own payload limit.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The width of the line that separates two reports.
const SEPARATOR_WIDTH: usize = 72;

/// The flags of `webhookd bin`, as clap parses them.
#[derive(clap::Args, Debug, Clone)]
pub struct BinArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// The endpoint's signing secret (`whsec_…`) or ed25519 public key (`whpk_…`); when given,
    /// signatures are verified.
    #[arg(long)]
    pub secret: Option<String>,
    /// HTTP status to answer with.
    #[arg(long, default_value_t = 200)]
    pub status: u16,
    /// Fraction of requests (0 to 1) answered with a 500 instead.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Wait this long before answering (e.g. `500ms`, `20s`).
    #[arg(long)]
    pub delay: Option<String>,
}

/// The flags of `webhookd bin` once checked, in their typed form.
#[derive(Debug, Clone)]
pub struct ValidatedBin {
    pub listen: SocketAddr,
    pub secret: Option<VerifyKey>,
    pub status: StatusCode,
    pub fail_rate: f64,
    pub delay: Option<Duration>,
}

/// Checks the flags; the error names the flag at fault (the caller prints it and exits 2).
pub fn validate(args: &BinArgs) -> anyhow::Result<ValidatedBin> {
    // The secret itself is never echoed back: it may be a real one.
    let secret = args
        .secret
        .as_deref()
        .map(VerifyKey::parse)
        .transpose()
        .map_err(|error| anyhow!("invalid --secret: {error}"))?;
    let status = Some(args.status)
        .filter(|status| (100..=599).contains(status))
        .and_then(|status| StatusCode::from_u16(status).ok())
        .ok_or_else(|| {
            anyhow!(
                "invalid --status {}: must be an HTTP status from 100 to 599",
                args.status
            )
        })?;
    if !(0.0..=1.0).contains(&args.fail_rate) {
        return Err(anyhow!(
            "invalid --fail-rate {}: must be a fraction from 0 to 1",
            args.fail_rate
        ));
    }
    let delay = args
        .delay
        .as_deref()
        .map(core_time::parse_duration)
        .transpose()
        .map_err(|error| anyhow!("invalid --delay: {error}"))?;
    Ok(ValidatedBin {
        listen: args.listen,
        secret,
        status,
        fail_rate: args.fail_rate,
        delay,
    })
}

/// Runs the bin on `listener` until `shutdown` completes, reporting each request to `out`.
///
/// Validates `args` first (see [`validate`]). Prints `listening on http://ADDR` with the address
/// actually bound, so a listener on port 0 shows its real port. On shutdown, requests in flight
/// (including those waiting out `--delay`) are answered before this returns.
pub async fn run(
    args: BinArgs,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    out: impl Write + Send + 'static,
) -> anyhow::Result<()> {
    let config = validate(&args)?;
    let local_addr = listener
        .local_addr()
        .context("reading the listener's address")?;
    let report = Report {
        out: Arc::new(Mutex::new(Box::new(out))),
    };
    report.write(&format!("listening on http://{local_addr}\n"));
    let bin = Arc::new(Bin { config, report });
    let router = Router::new()
        .fallback(receive)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(bin);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the bin")
}

/// What every request handler shares.
struct Bin {
    config: ValidatedBin,
    report: Report,
}

/// The writer the reports go to. A std mutex: it guards one synchronous write and is never held
/// across an `.await`.
#[derive(Clone)]
struct Report {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl Report {
    /// Writes one whole block at once. A failed write (a closed pipe) must not fail the request.
    fn write(&self, block: &str) {
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let written = out.write_all(block.as_bytes()).and_then(|()| out.flush());
        if let Err(error) = written {
            tracing::warn!(%error, "could not write the bin's report");
        }
    }
}

/// Handles every request: report it, wait `--delay`, then answer.
async fn receive(
    State(bin): State<Arc<Bin>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = &bin.config;
    // Decided before the report is written, so the block can say how the bin will answer.
    let status = if rand::random_bool(config.fail_rate) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        config.status
    };
    let now = core_time::now();
    let request = ReceivedRequest {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &body,
    };
    let block = format_block(&request, config, status, now);
    bin.report.write(&block);
    if let Some(delay) = config.delay {
        tokio::time::sleep(delay).await;
    }
    let ok = status.is_success();
    (status, Json(serde_json::json!({ "ok": ok }))).into_response()
}

/// The parts of a request the report shows.
struct ReceivedRequest<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

/// Formats the report of one request: separator, request line and time, headers, body, the
/// signature verdict when a secret is known, and the answer about to be given.
fn format_block(
    request: &ReceivedRequest<'_>,
    config: &ValidatedBin,
    status: StatusCode,
    now: core_time::Timestamp,
) -> String {
    let mut block = String::new();
    block.push_str(&"-".repeat(SEPARATOR_WIDTH));
    block.push('\n');
    let target = request
        .uri
        .path_and_query()
        .map_or("/", |target| target.as_str());
    block.push_str(&format!(
        "{} {} at {}\n",
        request.method,
        escape_controls(target),
        core_time::format_timestamp(now)
    ));
    for (name, value) in sorted_headers(request.headers) {
        block.push_str(&format!("{name}: {}\n", escape_controls(&value)));
    }
    block.push('\n');
    block.push_str(&format_body(request.body));
    block.push('\n');
    if let Some(secret) = &config.secret {
        let verdict =
            signature_verdict(secret, request.headers, request.body, now.unix_timestamp());
        block.push_str(&format!("signature: {verdict}\n"));
    }
    match config.delay {
        Some(delay) => block.push_str(&format!(
            "answering {status} after {}\n",
            core_time::format_duration(delay)
        )),
        None => block.push_str(&format!("answering {status}\n")),
    }
    block
}

/// Every header as `(name, value)`, sorted by name; repeated headers keep their order.
fn sorted_headers(headers: &HeaderMap) -> Vec<(&str, String)> {
    let mut sorted: Vec<(&str, String)> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    sorted.sort_by(|left, right| left.0.cmp(right.0));
    sorted
}

/// The body pretty-printed when it is JSON, else as text (invalid UTF-8 replaced).
fn format_body(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty body)".to_owned();
    }
    match serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| serde_json::to_string_pretty(&json).ok())
    {
        // JSON escapes line breaks inside strings, so its own lines are the pretty-printer's;
        // the other control characters (DEL, C1) it leaves alone are escaped here.
        Some(pretty) => pretty
            .split('\n')
            .map(escape_controls)
            .collect::<Vec<_>>()
            .join("\n"),
        None => escape_controls(&String::from_utf8_lossy(body)),
    }
}

/// `text` with every control character escaped (`\n`, `\r`, `\t`, `\u{1b}`, …), so that it
/// prints on one line and sends nothing to the terminal but visible characters.
fn escape_controls(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if character.is_control() {
            escaped.extend(character.escape_default());
        } else {
            escaped.push(character);
        }
    }
    escaped
}

/// `valid`, `INVALID (<reason>)` or `missing headers`, from the `webhook-` headers or, failing
/// those, the `svix-` ones.
fn signature_verdict(
    secret: &VerifyKey,
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()))
    };
    let found = ["webhook", "svix"].into_iter().find_map(|prefix| {
        Some((
            header(&format!("{prefix}-id"))?,
            header(&format!("{prefix}-timestamp"))?,
            header(&format!("{prefix}-signature"))?,
        ))
    });
    let Some((msg_id, timestamp, signature)) = found else {
        return "missing headers".to_owned();
    };
    match signing::verify_with(secret, &msg_id, &timestamp, &signature, body, now_unix) {
        Ok(()) => "valid".to_owned(),
        Err(reason) => format!("INVALID ({reason})"),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;
    use webhookd_core::signing::Secret;

    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    /// Parses the flags the way the real command line does.
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bin: BinArgs,
    }

    fn args(flags: &[&str]) -> BinArgs {
        Cli::try_parse_from(std::iter::once("bin").chain(flags.iter().copied()))
            .expect("flags parse")
            .bin
    }

    /// A writer the test can read back while the bin writes to it.
    #[derive(Clone, Default)]
    struct SharedOutput(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedOutput {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(bytes)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl SharedOutput {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A bin running in-process on an ephemeral loopback port.
    struct RunningBin {
        base_url: String,
        output: SharedOutput,
        client: reqwest::Client,
        stop: oneshot::Sender<()>,
        task: JoinHandle<anyhow::Result<()>>,
    }

    impl RunningBin {
        async fn start(flags: &[&str]) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base_url = format!("http://{}", listener.local_addr().unwrap());
            let output = SharedOutput::default();
            let (stop, stopped) = oneshot::channel::<()>();
            let shutdown = async move {
                let _ = stopped.await;
            };
            let task = tokio::spawn(run(args(flags), listener, shutdown, output.clone()));
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            Self {
                base_url,
                output,
                client,
                stop,
                task,
            }
        }

        async fn stop(self) -> String {
            self.stop.send(()).unwrap();
            self.task.await.unwrap().unwrap();
            self.output.text()
        }
    }

    /// The three signature headers for `body`, named `{prefix}-id` and so on.
    fn signed_headers(prefix: &str, body: &[u8]) -> Vec<(String, String)> {
        let timestamp = core_time::now().unix_timestamp();
        let signature = Secret::parse(SECRET)
            .unwrap()
            .sign("msg_test", timestamp, body);
        vec![
            (format!("{prefix}-id"), "msg_test".to_owned()),
            (format!("{prefix}-timestamp"), timestamp.to_string()),
            (format!("{prefix}-signature"), signature),
        ]
    }

    async fn post(
        bin: &RunningBin,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> reqwest::Response {
        let mut request = bin
            .client
            .post(format!("{}{path}", bin.base_url))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.unwrap()
    }

    async fn json_body(response: reqwest::Response) -> serde_json::Value {
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn prints_a_signed_request_and_verifies_it() {
        let bin = RunningBin::start(&["--secret", SECRET]).await;
        let body = br#"{"type":"user.created","data":{"id":7}}"#;
        let response = post(
            &bin,
            "/hooks/in?source=test",
            &signed_headers("webhook", body),
            body,
        )
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(json_body(response).await, serde_json::json!({"ok": true}));

        let output = bin.stop().await;
        assert!(
            output.starts_with("listening on http://127.0.0.1:"),
            "{output}"
        );
        assert!(
            output.contains("POST /hooks/in?source=test at "),
            "{output}"
        );
        assert!(
            output.contains("content-type: application/json\n"),
            "{output}"
        );
        assert!(output.contains("webhook-id: msg_test\n"), "{output}");
        assert!(
            output.contains("  \"data\": {\n    \"id\": 7\n  },\n"),
            "{output}"
        );
        assert!(output.contains("signature: valid\n"), "{output}");
        assert!(output.contains("answering 200 OK\n"), "{output}");
    }

    #[tokio::test]
    async fn verifies_ed25519_signatures_with_the_public_key() {
        let secret = Secret::generate_ed25519();
        let public = secret.receiver_key();
        let bin = RunningBin::start(&["--secret", &public]).await;
        let body = br#"{"type":"user.created"}"#;
        let timestamp = core_time::now().unix_timestamp();
        let headers = vec![
            ("webhook-id".to_owned(), "msg_test".to_owned()),
            ("webhook-timestamp".to_owned(), timestamp.to_string()),
            (
                "webhook-signature".to_owned(),
                secret.sign("msg_test", timestamp, body),
            ),
        ];
        post(&bin, "/", &headers, body).await;
        post(&bin, "/", &headers, br#"{"type":"forged"}"#).await;
        let output = bin.stop().await;
        assert!(output.contains("signature: valid\n"), "{output}");
        assert!(output.contains("signature: INVALID"), "{output}");
    }

    #[tokio::test]
    async fn a_tampered_body_is_reported_invalid() {
        let bin = RunningBin::start(&["--secret", SECRET]).await;
        let headers = signed_headers("webhook", br#"{"amount":10}"#);
        let response = post(&bin, "/", &headers, br#"{"amount":1000}"#).await;
        // The bin reports; it does not refuse: the answer is still the chosen status.
        assert_eq!(response.status(), 200);

        let output = bin.stop().await;
        assert!(
            output.contains(
                "signature: INVALID (no signature of this key's kind in the header matches)\n"
            ),
            "{output}"
        );
    }

    #[tokio::test]
    async fn a_body_cannot_forge_lines_of_the_report() {
        let bin = RunningBin::start(&["--secret", SECRET]).await;
        let forged = b"hi\nsignature: valid\nanswering 200 OK\n\x1b[2J";
        post(
            &bin,
            "/",
            &signed_headers("webhook", b"another body"),
            forged,
        )
        .await;

        let output = bin.stop().await;
        assert!(
            !output.lines().any(|line| line == "signature: valid"),
            "{output}"
        );
        assert!(
            output.contains("\nhi\\nsignature: valid\\nanswering 200 OK\\n\\u{1b}[2J\n"),
            "{output}"
        );
        assert!(!output.contains('\x1b'), "{output}");
    }

    #[tokio::test]
    async fn reports_svix_headers_missing_headers_and_raw_text() {
        let bin = RunningBin::start(&["--secret", SECRET]).await;
        let body = b"plain text, not JSON";
        post(&bin, "/svix", &signed_headers("svix", body), body).await;
        let unsigned = bin
            .client
            .put(format!("{}/unsigned", bin.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(unsigned.status(), 200);

        let output = bin.stop().await;
        let blocks: Vec<&str> = output.split(&"-".repeat(SEPARATOR_WIDTH)).collect();
        assert_eq!(blocks.len(), 3, "{output}");
        let svix = blocks
            .iter()
            .find(|block| block.contains("POST /svix"))
            .unwrap();
        assert!(svix.contains("\nplain text, not JSON\n"), "{svix}");
        assert!(svix.contains("signature: valid\n"), "{svix}");
        let unsigned = blocks
            .iter()
            .find(|block| block.contains("PUT /unsigned"))
            .unwrap();
        assert!(unsigned.contains("(empty body)\n"), "{unsigned}");
        assert!(
            unsigned.contains("signature: missing headers\n"),
            "{unsigned}"
        );
    }

    #[tokio::test]
    async fn answers_the_chosen_status() {
        let bin = RunningBin::start(&["--status", "410"]).await;
        let response = post(&bin, "/gone", &[], b"{}").await;
        assert_eq!(response.status(), 410);
        assert_eq!(json_body(response).await, serde_json::json!({"ok": false}));
        let output = bin.stop().await;
        assert!(output.contains("answering 410 Gone\n"), "{output}");
        assert!(!output.contains("signature:"), "{output}");
    }

    #[tokio::test]
    async fn a_fail_rate_of_one_always_answers_500() {
        let bin = RunningBin::start(&["--fail-rate", "1", "--status", "204"]).await;
        for _ in 0..3 {
            assert_eq!(post(&bin, "/", &[], b"{}").await.status(), 500);
        }
        bin.stop().await;
    }

    #[tokio::test]
    async fn waits_the_delay_before_answering() {
        let bin = RunningBin::start(&["--delay", "200ms"]).await;
        let started = std::time::Instant::now();
        assert_eq!(post(&bin, "/", &[], b"{}").await.status(), 200);
        assert!(started.elapsed() >= Duration::from_millis(200));
        let output = bin.stop().await;
        assert!(
            output.contains("answering 200 OK after 200ms\n"),
            "{output}"
        );
    }

    #[test]
    fn validation_names_the_bad_flag() {
        let cases: [(&[&str], &str); 6] = [
            (&["--fail-rate", "2"], "--fail-rate"),
            (&["--fail-rate", "NaN"], "--fail-rate"),
            (&["--secret", "whsec_!!!"], "--secret"),
            (&["--secret", "whsec_AAAA"], "--secret"),
            (&["--status", "600"], "--status"),
            (&["--delay", "soon"], "--delay"),
        ];
        for (flags, flag) in cases {
            let error = validate(&args(flags)).unwrap_err().to_string();
            assert!(error.contains(flag), "{flags:?}: {error}");
        }
        let secret_error = validate(&args(&["--secret", "whsec_AAAA"]))
            .unwrap_err()
            .to_string();
        assert!(
            !secret_error.contains("AAAA"),
            "the secret is not echoed: {secret_error}"
        );

        let valid = validate(&args(&[
            "--secret",
            SECRET,
            "--status",
            "503",
            "--fail-rate",
            "0.5",
        ]))
        .unwrap();
        assert_eq!(valid.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(valid.listen, "127.0.0.1:9000".parse().unwrap());
    }

    #[tokio::test]
    async fn run_refuses_bad_flags_too() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let result = run(
            args(&["--status", "42"]),
            listener,
            async {},
            SharedOutput::default(),
        )
        .await;
        assert!(result.unwrap_err().to_string().contains("--status"));
    }
}
