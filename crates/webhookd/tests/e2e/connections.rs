//! Connections the node must survive: a crowd of idle and slowloris clients under a low limit
//! on open files (the API still answers and deliveries still go out), and a long stream of
//! hostile requests over one keep-alive connection (every request gets an answer, or the
//! answer before it says the connection closes).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{
    Backend, DEADLINE, HOOK, Receiver, ServerProcess, TestDatabase, TestServer, eventually,
    free_port, webhookd_with_open_files,
};

/// The node's limit on open files: its connection cap is then (256 − 64) / 2 = 96.
const OPEN_FILES: u64 = 256;
/// Clients that connect and never send a byte.
const IDLE: usize = 200;
/// Clients that send half a request head and stop (slowloris).
const SLOW_HEADERS: usize = 100;
/// Clients that send a head announcing a body and only part of the body.
const SLOW_BODIES: usize = 50;

/// Opens a connection and sends `prefix`; `None` when the connect itself did not finish.
async fn hold(address: &str, prefix: &[u8]) -> Option<TcpStream> {
    let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(address));
    let mut stream = connect.await.ok()?.ok()?;
    if !prefix.is_empty() {
        stream.write_all(prefix).await.ok()?;
    }
    Some(stream)
}

/// How many descriptors a process has open.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_slow_clients_leave_room_for_the_api_and_deliveries() {
    let receiver = Receiver::start().await;
    let database = TestDatabase::create(Backend::Sqlite).await;
    let port = free_port();
    let command = webhookd_with_open_files(OPEN_FILES);
    let server = ServerProcess::start_with(command, &database, port, &[]).await;
    let app = server.create_app().await;
    let endpoint = server
        .create_endpoint(&app, json!({"url": receiver.url(HOOK)}))
        .await;
    let address = format!("127.0.0.1:{port}");

    let slow_head = b"POST /api/v1/app HTTP/1.1\r\nhost: localhost\r\ncontent-type: app";
    let slow_body = b"POST /api/v1/app HTTP/1.1\r\nhost: localhost\r\ncontent-type: \
        application/json\r\ncontent-length: 1000\r\n\r\n{\"name\": \"";
    let mut held = Vec::new();
    for n in 0..IDLE + SLOW_HEADERS + SLOW_BODIES {
        let prefix: &[u8] = if n < IDLE {
            b""
        } else if n < IDLE + SLOW_HEADERS {
            slow_head
        } else {
            slow_body
        };
        held.extend(hold(&address, prefix).await);
    }
    assert!(
        held.len() > (OPEN_FILES as usize),
        "only {} connections could be opened",
        held.len()
    );
    let pid = server.pid();
    eventually("the node to hold many connections", || {
        let open = open_files(pid);
        std::future::ready(if open > 90 {
            Ok(())
        } else {
            Err(format!("{open} files open"))
        })
    })
    .await;

    // With every slot taken by a client that does nothing, the API answers…
    let (status, body) = server.get(&format!("/api/v1/app/{app}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // …and a delivery goes out: the node kept descriptors for it.
    let msg = server
        .send(&app, json!({"eventType": "e2e.crowd", "payload": {"n": 1}}))
        .await;
    server
        .wait_for_delivery_status(&app, &msg, &endpoint.id, 0)
        .await;
    assert!(
        !server.log().contains("Too many open files"),
        "the node ran out of descriptors:\n{}",
        server.log()
    );
    drop(held);
}

/// A request of the hostile stream: odd methods, bodies where none is read, bad paths,
/// large bodies, malformed JSON and plain requests, each with a fresh number: its head and
/// its body.
fn hostile(n: usize) -> (Vec<u8>, Vec<u8>) {
    let body = format!("{{\"n\": {n}}}");
    let (method, path, body) = match n % 10 {
        0 => ("PROPFIND", "/webhooks?limit=0".to_owned(), Some(body)),
        1 => ("GET", "/api/v1/app".to_owned(), Some(body)),
        2 => (
            "DELETE",
            format!("/api/v1/app/a{n}/msg/m/endpoint/e/resend"),
            Some(body),
        ),
        3 => (
            "POST",
            "/api/v1/app".to_owned(),
            Some("{not json".to_owned()),
        ),
        4 => ("GET", "/../../etc/passwd".to_owned(), None),
        5 => ("POST", "/api/v1/app".to_owned(), Some("x".repeat(200_000))),
        6 => (
            "PUT",
            format!("/api/v1/app/a{n}/endpoint/e/headers"),
            Some(body),
        ),
        7 => ("GET", "/api/v1/health".to_owned(), None),
        8 => ("OPTIONS", "/api/v1/app".to_owned(), Some(body)),
        _ => (
            "POST",
            "/api/v1/app".to_owned(),
            Some(json!({"name": format!("a{n}")}).to_string()),
        ),
    };
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\n");
    if let Some(body) = &body {
        head.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    (head.into_bytes(), body.unwrap_or_default().into_bytes())
}

/// Reads one response head and its body (by `content-length`); answers whether the
/// connection stays open after it.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<bool, String> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0_u8; 8192];
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut chunk))
            .await
            .map_err(|_| "no answer in time".to_owned())?
            .map_err(|error| error.to_string())?;
        if read == 0 {
            return Err("the server closed the connection without an answer".to_owned());
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 ") {
        return Err(format!("not a response: {head}"));
    }
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap_or(0));
    while buffer.len() < head_end + length {
        let mut chunk = [0_u8; 8192];
        let read = stream
            .read(&mut chunk)
            .await
            .map_err(|error| error.to_string())?;
        if read == 0 {
            return Err("the body of the answer was cut short".to_owned());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    buffer.drain(..head_end + length);
    Ok(!head.lines().any(|line| line.trim() == "connection: close"))
}

#[tokio::test]
async fn every_request_of_a_hostile_keep_alive_stream_is_answered() {
    let server = TestServer::start(&[]).await;
    let address = server.base_url().trim_start_matches("http://").to_owned();
    let (mut answered, mut connections) = (0, 1);
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let mut buffer = Vec::new();
    for n in 0..600 {
        let (head, body) = hostile(n);
        // The body follows its head a moment later, as it does over a real network: a server
        // that answers before the body arrives must not keep the connection open and then
        // close it under the next request.
        let sent = async {
            stream.write_all(&head).await?;
            if !body.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
                stream.write_all(&body).await?;
            }
            std::io::Result::Ok(())
        };
        sent.await.unwrap_or_else(|error| {
            panic!("request {n} could not be sent on a connection left open: {error}")
        });
        let what = String::from_utf8_lossy(&head[..head.len().min(40)]).into_owned();
        let open = read_response(&mut stream, &mut buffer)
            .await
            .unwrap_or_else(|error| panic!("request {n} ({what:?}…): {error}"));
        answered += 1;
        if !open {
            stream = TcpStream::connect(&address).await.unwrap();
            buffer.clear();
            connections += 1;
        }
    }
    assert_eq!(answered, 600);
    assert!(connections > 1, "no answer ever closed the connection");
    server.stop().await;
}
