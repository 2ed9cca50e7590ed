//! Operational webhooks end to end: an operational endpoint (a receiver that verifies every
//! signature with the endpoint's secret) gets `message.attempt.failing` then `recovered`,
//! `exhausted` after the last retry, `endpoint.disabled` after a 410, `background_task.finished`
//! after a recover, and the `endpoint.*` events of an operator's changes, each once and in
//! Svix's shape. Operational deliveries raise no events of their own.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, Receiver, Reply, TestServer, expect_status, on_both_backends};

on_both_backends!(every_operational_event_reaches_the_operational_endpoint);

const OPS: &str = "/ops";

/// The events the operational endpoint got so far, each verified, as JSON bodies.
fn events(receiver: &Receiver, secret: &str) -> Vec<Value> {
    receiver
        .requests_to(OPS)
        .iter()
        .map(|request| {
            request.assert_verifies(secret);
            serde_json::from_slice(&request.body).expect("an operational event is JSON")
        })
        .collect()
}

/// The events of this type about this endpoint.
fn about<'a>(events: &'a [Value], kind: &str, endpoint: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| event["type"] == kind && event["data"]["endpointId"] == endpoint)
        .collect()
}

async fn wait_for_event(receiver: &Receiver, secret: &str, kind: &str, endpoint: &str) -> Value {
    receiver
        .wait_for(&format!("{kind} about {endpoint}"), |_| {
            !about(&events(receiver, secret), kind, endpoint).is_empty()
        })
        .await;
    about(&events(receiver, secret), kind, endpoint)[0].clone()
}

async fn every_operational_event_reaches_the_operational_endpoint(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.fallback(OPS, Reply::status(204));
    let server =
        TestServer::start_on(backend, &[("WEBHOOKD_RETRY_SCHEDULE", "1s,1s,1s,1s,1s")]).await;

    let (status, ops) = server
        .post(
            "/api/v1/operational-webhook/endpoint",
            json!({ "url": receiver.url(OPS), "description": "ops" }),
        )
        .await;
    expect_status(
        "POST operational endpoint",
        status,
        StatusCode::CREATED,
        &ops,
    );
    assert!(ops["eventTypes"].is_null());
    let ops_id = ops["id"].as_str().expect("an id").to_owned();
    let (status, secret) = server
        .get(&format!(
            "/api/v1/operational-webhook/endpoint/{ops_id}/secret"
        ))
        .await;
    expect_status("GET its secret", status, StatusCode::OK, &secret);
    let secret = secret["key"].as_str().expect("a key").to_owned();
    let (status, bad) = server
        .post(
            "/api/v1/operational-webhook/endpoint",
            json!({ "url": receiver.url(OPS), "eventTypes": ["user.created"] }),
        )
        .await;
    expect_status(
        "an unknown event type",
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        &bad,
    );

    let (status, app) = server
        .post("/api/v1/app", json!({ "name": "ops", "uid": "ops-app" }))
        .await;
    expect_status("POST /api/v1/app", status, StatusCode::CREATED, &app);
    let app = app["id"].as_str().expect("an id").to_owned();
    receiver.script("/flaky", (0..4).map(|_| Reply::status(500)));
    receiver.fallback("/flaky", Reply::status(200));
    receiver.fallback("/down", Reply::status(500));
    receiver.fallback("/gone", Reply::status(410));
    let flaky = server
        .create_endpoint(
            &app,
            json!({ "url": receiver.url("/flaky"), "uid": "flaky" }),
        )
        .await;
    let down = server
        .create_endpoint(&app, json!({ "url": receiver.url("/down") }))
        .await;
    let gone = server
        .create_endpoint(&app, json!({ "url": receiver.url("/gone") }))
        .await;
    let created = wait_for_event(&receiver, &secret, "endpoint.created", &flaky.id).await;
    assert_eq!(
        created["data"],
        json!({ "appId": app, "appUid": "ops-app", "endpointId": flaky.id, "endpointUid": "flaky" })
    );

    let msg = server
        .send(
            &app,
            json!({ "eventType": "e2e.test", "eventId": "evt-1", "payload": {} }),
        )
        .await;

    // failing on the 4th failure, then recovered on the success that follows.
    let failing = wait_for_event(&receiver, &secret, "message.attempt.failing", &flaky.id).await;
    assert_eq!(failing["data"]["msgId"], msg);
    assert_eq!(failing["data"]["msgEventId"], "evt-1");
    assert_eq!(failing["data"]["appUid"], "ops-app");
    assert_eq!(failing["data"]["lastAttempt"]["responseStatusCode"], 500);
    assert!(
        failing["data"]["lastAttempt"]["id"]
            .as_str()
            .unwrap()
            .starts_with("atmpt_")
    );
    assert!(failing["data"]["lastAttempt"]["timestamp"].is_string());
    let recovered =
        wait_for_event(&receiver, &secret, "message.attempt.recovered", &flaky.id).await;
    assert_eq!(recovered["data"]["lastAttempt"]["responseStatusCode"], 200);

    // exhausted after the last retry.
    let exhausted = wait_for_event(&receiver, &secret, "message.attempt.exhausted", &down.id).await;
    assert_eq!(exhausted["data"]["msgId"], msg);
    assert_eq!(exhausted["data"]["lastAttempt"]["responseStatusCode"], 500);
    let attempts = server.attempts(&app, &msg).await;
    assert_eq!(
        attempts
            .iter()
            .filter(|a| a["endpointId"] == down.id.as_str())
            .count(),
        6,
        "exhausted comes after the 6th attempt"
    );

    // disabled (automatic) after a 410.
    let disabled = wait_for_event(&receiver, &secret, "endpoint.disabled", &gone.id).await;
    assert_eq!(disabled["data"]["trigger"], "automatic");
    assert_eq!(disabled["data"]["appId"], app);

    // background_task.finished after a recover.
    receiver.fallback("/down", Reply::status(200));
    let (status, task) = server
        .post(
            &format!("/api/v1/app/{app}/endpoint/{}/recover", down.id),
            json!({ "since": "2020-01-01T00:00:00Z" }),
        )
        .await;
    expect_status("POST recover", status, StatusCode::ACCEPTED, &task);
    let task_id = task["id"].as_str().expect("a task id").to_owned();
    receiver
        .wait_for("background_task.finished", |_| {
            events(&receiver, &secret)
                .iter()
                .any(|event| event["type"] == "background_task.finished")
        })
        .await;
    let finished: Vec<Value> = events(&receiver, &secret)
        .into_iter()
        .filter(|event| event["type"] == "background_task.finished")
        .collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["data"]["taskId"], task_id);
    assert_eq!(finished[0]["data"]["task"], "endpoint.recover");
    assert_eq!(finished[0]["data"]["status"], "finished");
    assert_eq!(finished[0]["data"]["data"]["recovered"], 1);

    // An operator's changes: updated, enabled, disabled (manual), deleted.
    let path = |ep: &str| format!("/api/v1/app/{app}/endpoint/{ep}");
    let (status, body) = server
        .patch(&path(&gone.id), json!({ "disabled": false }))
        .await;
    expect_status("PATCH enable", status, StatusCode::OK, &body);
    wait_for_event(&receiver, &secret, "endpoint.enabled", &gone.id).await;
    let (status, body) = server
        .patch(&path(&flaky.id), json!({ "disabled": true }))
        .await;
    expect_status("PATCH disable", status, StatusCode::OK, &body);
    let manual = loop_until_trigger(&receiver, &secret, &flaky.id).await;
    assert_eq!(manual["data"]["trigger"], "manual");
    let (status, body) = server
        .try_request(Method::DELETE, &path(&flaky.id), None)
        .await
        .expect("DELETE answers");
    expect_status("DELETE endpoint", status, StatusCode::NO_CONTENT, &body);
    wait_for_event(&receiver, &secret, "endpoint.deleted", &flaky.id).await;
    let all = events(&receiver, &secret);
    assert!(!about(&all, "endpoint.updated", &flaky.id).is_empty());
    assert!(!about(&all, "endpoint.updated", &gone.id).is_empty());

    // Each event once: one failing and one recovered for the flaky delivery.
    assert_eq!(about(&all, "message.attempt.failing", &flaky.id).len(), 1);
    assert_eq!(about(&all, "message.attempt.recovered", &flaky.id).len(), 1);
    assert_eq!(about(&all, "message.attempt.exhausted", &down.id).len(), 1);
    assert_eq!(about(&all, "endpoint.disabled", &gone.id).len(), 1);
    // The operational endpoint's own creation is no event, and neither are its deliveries.
    assert!(
        all.iter()
            .all(|event| event["data"]["endpointId"] != ops_id.as_str())
    );

    // The operational endpoint through its own routes; the reserved application stays hidden.
    let (status, list) = server.get("/api/v1/operational-webhook/endpoint").await;
    expect_status("GET list", status, StatusCode::OK, &list);
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    let (status, apps) = server.get("/api/v1/app").await;
    expect_status("GET /api/v1/app", status, StatusCode::OK, &apps);
    assert_eq!(apps["data"].as_array().map(Vec::len), Some(1));
    let reserved = format!("/api/v1/app/app_{}/endpoint", "0".repeat(26));
    let (status, body) = server.get(&reserved).await;
    expect_status(
        "the reserved application",
        status,
        StatusCode::NOT_FOUND,
        &body,
    );
    let ops_path = format!("/api/v1/operational-webhook/endpoint/{ops_id}");
    let (status, body) = server
        .try_request(
            Method::PUT,
            &ops_path,
            Some(
                json!({ "url": receiver.url(OPS), "eventTypes": ["endpoint.deleted"] })
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await
        .expect("PUT answers");
    expect_status("PUT operational endpoint", status, StatusCode::OK, &body);
    assert_eq!(body["eventTypes"], json!(["endpoint.deleted"]));
    let (status, body) = server
        .post(&format!("{ops_path}/secret/rotate"), json!({}))
        .await;
    expect_status("rotate", status, StatusCode::NO_CONTENT, &body);
    let (status, body) = server.get(&format!("{ops_path}/headers")).await;
    expect_status("GET headers", status, StatusCode::OK, &body);
    assert_eq!(body, json!({ "headers": {}, "sensitive": [] }));
    let (status, body) = server
        .try_request(Method::DELETE, &ops_path, None)
        .await
        .expect("DELETE answers");
    expect_status(
        "DELETE operational endpoint",
        status,
        StatusCode::NO_CONTENT,
        &body,
    );
    let (status, body) = server.get(&ops_path).await;
    expect_status("GET deleted", status, StatusCode::NOT_FOUND, &body);
}

/// The manual `endpoint.disabled` of this endpoint (it may also have an automatic one).
async fn loop_until_trigger(receiver: &Receiver, secret: &str, endpoint: &str) -> Value {
    let manual = |events: &[Value]| {
        about(events, "endpoint.disabled", endpoint)
            .into_iter()
            .find(|event| event["data"]["trigger"] == "manual")
            .cloned()
    };
    receiver
        .wait_for("a manual endpoint.disabled", |_| {
            manual(&events(receiver, secret)).is_some()
        })
        .await;
    manual(&events(receiver, secret)).expect("found above")
}
