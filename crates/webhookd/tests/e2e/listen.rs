//! `webhookd listen` (the real binary) against a real node: it makes its polling endpoint,
//! prints the signing secret, forwards every message signed with it to a loopback receiver
//! that verifies it, tries a failed forward again before moving on, and after a stop and a
//! restart goes on from the first message it had not forwarded: none twice, none skipped.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::{Backend, Receiver, Reply, TestServer, eventually, on_both_backends};

on_both_backends!(listen_forwards_signed_and_resumes_after_a_restart);

/// A running `webhookd listen` and the lines it printed so far.
struct Listen {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Listen {
    fn start(server: &str, app: &str, forward: &str) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_webhookd"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("WEBHOOKD_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .args([
                "listen",
                "--url",
                server,
                "--app",
                app,
                "--forward",
                forward,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("webhookd listen starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("a piped stdout");
        let sink = Arc::clone(&lines);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The secret printed at start.
    async fn secret(&self) -> String {
        eventually("listen prints its signing secret", || {
            let found = self
                .lines()
                .iter()
                .find_map(|line| line.strip_prefix("Signing secret: ").map(str::to_owned));
            std::future::ready(found.ok_or_else(|| format!("printed: {:?}", self.lines())))
        })
        .await
    }

    /// Ctrl-C, and waits for a clean exit.
    async fn interrupt(mut self) {
        let pid = self.child.id().expect("a running child").to_string();
        let sent = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .await
            .expect("`kill` runs");
        assert!(sent.success());
        let status = tokio::time::timeout(crate::harness::DEADLINE, self.child.wait())
            .await
            .expect("listen exits after Ctrl-C")
            .expect("an exit status");
        assert!(status.success(), "listen exited with {status}");
    }
}

async fn listen_forwards_signed_and_resumes_after_a_restart(backend: Backend) {
    let server = TestServer::start_on(backend, &[]).await;
    let receiver = Receiver::start().await;
    let app = server.create_app().await;
    let forward = receiver.url("/hook");
    // The first forward finds the local code down; it is tried again.
    receiver.script("/hook", [Reply::status(503)]);

    let listen = Listen::start(server.base_url(), &app, &forward);
    let secret = listen.secret().await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let first = [
        server.send_event(&app, json!({"n": 1})).await,
        server.send_event(&app, json!({"n": 2})).await,
    ];
    let got = receiver.wait_for_count("/hook", 3).await;
    assert_eq!(got[0].status, 503);
    assert_eq!(got[0].webhook_id(), first[0]);
    let delivered: Vec<_> = got[1..]
        .iter()
        .map(|request| request.webhook_id())
        .collect();
    assert_eq!(
        delivered,
        first.iter().map(String::as_str).collect::<Vec<_>>()
    );
    for request in &got {
        request.assert_verifies(&secret);
    }
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&got[1].body).unwrap(),
        json!({"n": 1})
    );
    // One line per forward, the failed one included.
    eventually("a line per forward", || {
        let lines = listen.lines();
        let forwards = lines.iter().filter(|line| line.contains(" msg_")).count();
        std::future::ready(if forwards >= 3 {
            Ok(())
        } else {
            Err(format!("printed: {lines:?}"))
        })
    })
    .await;
    listen.interrupt().await;

    // Sent while nothing listens: the next run forwards these, and nothing before them again.
    let second = [
        server.send_event(&app, json!({"n": 3})).await,
        server.send_event(&app, json!({"n": 4})).await,
    ];
    let listen = Listen::start(server.base_url(), &app, &forward);
    assert_eq!(listen.secret().await, secret, "the same endpoint");
    let got = receiver.wait_for_count("/hook", 5).await;
    let delivered: Vec<_> = got[3..]
        .iter()
        .map(|request| request.webhook_id())
        .collect();
    assert_eq!(
        delivered,
        second.iter().map(String::as_str).collect::<Vec<_>>()
    );
    for request in &got[3..] {
        request.assert_verifies(&secret);
    }
    listen.interrupt().await;
    assert_eq!(
        receiver.requests_to("/hook").len(),
        5,
        "nothing forwarded twice"
    );
    server.stop().await;
}
