//! What a delivery is: one signed POST per message and endpoint, carrying the
//! exact bytes that were sent, the endpoint's custom headers and a fresh timestamp; fan-out by
//! event type, channel and disabled flag; `deliverAt` holds; raw payloads; the attempt record;
//! the optional `svix-*` headers. Each runs on both backends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use webhookd_core::time::{format_timestamp, now};

use crate::harness::{
    Backend, HOOK, OneEndpoint, Receiver, Reply, TestServer, on_both_backends, unix,
};

async fn a_message_arrives_once_with_the_exact_bytes_sent_and_a_valid_signature(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[], json!({"headers": {"x-tenant": "acme"}})).await;
    // Spacing, key order and number spelling that a parse-and-reserialize would change.
    let payload = r#"{"user":  "ünïcode ✓", "n": [1, 2.50, 1e3],"nested": {"z": null, "a": true}}"#;
    let sent_at = SystemTime::now();
    let msg = setup
        .server
        .send_raw(
            &setup.app,
            &format!(r#"{{"eventType": "user.created", "payload": {payload}}}"#),
        )
        .await;

    setup.wait_for_status(&msg, 0).await;
    let requests = setup.receiver.requests_to(HOOK);
    assert_eq!(requests.len(), 1, "one message, one request: {requests:?}");
    let request = &requests[0];
    assert_eq!(
        request.body,
        payload.as_bytes(),
        "the body is the payload byte for byte"
    );
    assert_eq!(request.webhook_id(), msg);
    let skew = request.timestamp() - unix(sent_at);
    assert!(
        skew.abs() <= 60,
        "webhook-timestamp is {skew} s away from the time of sending"
    );
    request.assert_verifies(&setup.endpoint.secret);
    assert_eq!(
        request.header("x-tenant"),
        "acme",
        "the endpoint's custom header"
    );
    assert_eq!(request.header("content-type"), "application/json");
    assert!(
        request.header("user-agent").starts_with("webhookd/"),
        "user-agent {}",
        request.header("user-agent")
    );
}

async fn the_attempt_record_shows_the_receivers_answer(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[], json!({})).await;
    setup
        .receiver
        .fallback(HOOK, Reply::status(200).body("thanks, got it"));
    let msg = setup.send(json!({"n": 1})).await;

    let attempts = setup.wait_for_attempts(&msg, 1).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    let attempt = &attempts[0];
    assert_eq!(attempt["status"], 0, "{attempt}");
    assert_eq!(attempt["statusText"], "success", "{attempt}");
    assert_eq!(attempt["responseStatusCode"], 200, "{attempt}");
    assert_eq!(attempt["response"], "thanks, got it", "{attempt}");
    assert_eq!(attempt["triggerType"], 0, "{attempt}");
    assert_eq!(attempt["msgId"], msg.as_str(), "{attempt}");
    assert_eq!(
        attempt["endpointId"],
        setup.endpoint.id.as_str(),
        "{attempt}"
    );
    assert_eq!(
        attempt["url"],
        setup.receiver.url(HOOK).as_str(),
        "{attempt}"
    );
}

async fn fan_out_honours_event_types_channels_and_disabled_endpoints(backend: Backend) {
    let receiver = Receiver::start().await;
    let server = TestServer::start_on(backend, &[]).await;
    let app = server.create_app().await;
    let mut endpoints = BTreeMap::new();
    for (path, fields) in [
        ("/everything", json!({})),
        ("/invoices", json!({"filterTypes": ["invoice.paid"]})),
        ("/europe", json!({"channels": ["eu"]})),
        ("/disabled", json!({"disabled": true})),
    ] {
        let mut fields = fields;
        fields["url"] = json!(receiver.url(path));
        endpoints.insert(path, server.create_endpoint(&app, fields).await.id);
    }
    let paid = server
        .send(
            &app,
            json!({"eventType": "invoice.paid", "payload": {}, "channels": ["us"]}),
        )
        .await;
    let signup = server
        .send(
            &app,
            json!({"eventType": "user.created", "payload": {}, "channels": ["eu"]}),
        )
        .await;
    let expected = [
        (&paid, ["/everything", "/invoices"]),
        (&signup, ["/everything", "/europe"]),
    ];

    for (msg, paths) in &expected {
        // The fan-out is committed with the message: it is readable as soon as the 202 is.
        let fanned_out: BTreeSet<String> = server
            .deliveries(&app, msg)
            .await
            .iter()
            .map(|delivery| delivery["id"].as_str().unwrap().to_owned())
            .collect();
        let wanted: BTreeSet<String> = paths.iter().map(|path| endpoints[path].clone()).collect();
        assert_eq!(
            fanned_out, wanted,
            "the endpoints {msg} fanned out to ({endpoints:?})"
        );
        for path in paths {
            server
                .wait_for_delivery_status(&app, msg, &endpoints[path], 0)
                .await;
        }
    }
    let mut received: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for request in receiver.requests() {
        received
            .entry(request.path.clone())
            .or_default()
            .insert(request.webhook_id().to_owned());
    }
    let wanted = BTreeMap::from([
        (
            "/everything".to_owned(),
            BTreeSet::from([paid.clone(), signup.clone()]),
        ),
        ("/invoices".to_owned(), BTreeSet::from([paid.clone()])),
        ("/europe".to_owned(), BTreeSet::from([signup.clone()])),
    ]);
    assert_eq!(received, wanted, "what each endpoint received");
}

async fn deliver_at_holds_the_first_attempt_until_then(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[], json!({})).await;
    // Whole seconds, so that no rounding in storage can move it earlier.
    let deliver_at = (now() + Duration::from_secs(3))
        .replace_nanosecond(0)
        .expect("a valid time");
    let msg = setup
        .server
        .send(&setup.app, json!({"eventType": "e2e.later", "payload": {}, "deliverAt": format_timestamp(deliver_at)}))
        .await;

    let deliveries = setup.server.deliveries(&setup.app, &msg).await;
    assert_eq!(
        deliveries[0]["status"], 1,
        "pending until deliverAt: {deliveries:?}"
    );
    assert!(
        deliveries[0]["nextAttempt"].is_string(),
        "a held delivery has a next attempt: {deliveries:?}"
    );
    let request = &setup.receiver.wait_for_count(HOOK, 1).await[0];
    let arrived = request
        .arrived_at
        .duration_since(UNIX_EPOCH)
        .expect("a time after 1970");
    let held_until = Duration::from_secs(deliver_at.unix_timestamp() as u64);
    assert!(
        arrived >= held_until,
        "arrived at {arrived:?}, before deliverAt {held_until:?} (Unix time)"
    );
    request.assert_verifies(&setup.endpoint.secret);
}

async fn a_raw_payload_is_delivered_byte_for_byte(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[], json!({})).await;
    let raw = "not JSON at all: ünïcode ✓ {\n\t\"x\": 1,}  ";
    let msg = setup
        .server
        .send(&setup.app, json!({"eventType": "e2e.raw", "payload": {}, "transformationsParams": {"rawPayload": raw}}))
        .await;

    let request = &setup.receiver.wait_for_count(HOOK, 1).await[0];
    assert_eq!(request.webhook_id(), msg);
    assert_eq!(
        request.body,
        raw.as_bytes(),
        "the raw payload byte for byte"
    );
    request.assert_verifies(&setup.endpoint.secret);
}

async fn svix_headers_repeat_the_standard_ones_when_enabled(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[("WEBHOOKD_SVIX_HEADERS", "true")], json!({})).await;
    let msg = setup.send(json!({"n": 1})).await;

    let request = &setup.receiver.wait_for_count(HOOK, 1).await[0];
    request.assert_verifies(&setup.endpoint.secret);
    assert_eq!(request.header("svix-id"), msg);
    for name in ["id", "timestamp", "signature"] {
        assert_eq!(
            request.header(&format!("svix-{name}")),
            request.header(&format!("webhook-{name}")),
            "svix-{name}"
        );
    }
}

on_both_backends! {
    a_message_arrives_once_with_the_exact_bytes_sent_and_a_valid_signature,
    the_attempt_record_shows_the_receivers_answer,
    fan_out_honours_event_types_channels_and_disabled_endpoints,
    deliver_at_holds_the_first_attempt_until_then,
    a_raw_payload_is_delivered_byte_for_byte,
    svix_headers_repeat_the_standard_ones_when_enabled,
}
