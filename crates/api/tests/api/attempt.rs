//! Attempts and delivery states: the attempt lists, one attempt, a message's deliveries per
//! endpoint, an endpoint's deliveries, resend. This harness makes no deliveries
//! (`Dispatcher::disabled()`), so attempts are written through the store as the engine would.

use webhookd_core::Key;

use axum::http::StatusCode;
use serde_json::{Value, json};
use webhookd_core::model::{Attempt, DeliveryStatus, Endpoint, TriggerType};
use webhookd_core::time::now;
use webhookd_core::{AttemptId, MessageId};
use webhookd_store::{AttemptRecord, DeliveryUpdate};

use crate::common::TestApi;
use crate::message::{MSG, ids, with_app};

/// An endpoint of `joe`, written through the store (the endpoint routes are another module's).
async fn add_endpoint(api: &TestApi) -> Endpoint {
    let store = api.state().store();
    let app = store
        .get_application(&Key::parse("joe"))
        .await
        .unwrap()
        .expect("joe");
    let at = now();
    let endpoint = Endpoint {
        uid: Some("hook".into()),
        description: "the hook".into(),
        ..Endpoint::new(app.id, "https://example.com/hook", at)
    };
    store.create_endpoint(&endpoint, None).await.unwrap();
    endpoint
}

/// Records a final failed attempt, as the engine would.
async fn fail_delivery(api: &TestApi, endpoint: &Endpoint, msg: &str) -> AttemptId {
    let attempt = Attempt {
        id: AttemptId::new(),
        msg_id: msg.parse::<MessageId>().unwrap(),
        endpoint_id: endpoint.id.clone(),
        app_id: endpoint.app_id.clone(),
        url: endpoint.url.clone(),
        status: DeliveryStatus::Fail,
        response_status_code: 400,
        response: "bad request".into(),
        duration_ms: 12,
        trigger_type: TriggerType::Scheduled,
        created_at: now(),
    };
    let id = attempt.id.clone();
    let record = AttemptRecord {
        attempt,
        delivery: DeliveryUpdate::Failed,
        endpoint_health: None,
        owner: "test".into(),
        ordered: false,
        events: Vec::new(),
    };
    api.state()
        .store()
        .record_attempts(&[record])
        .await
        .unwrap();
    id
}

fn empty_list() -> Value {
    json!({"data": [], "iterator": null, "prevIterator": null, "done": true})
}

#[tokio::test]
async fn a_message_without_attempts_lists_nothing() {
    let api = with_app().await;
    let endpoint = add_endpoint(&api).await;
    let created = api
        .post(
            MSG,
            json!({"eventType": "a", "payload": {}, "eventId": "e1"}),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let id = created["id"].as_str().unwrap();
    let paths = [
        format!("/api/v1/app/joe/attempt/msg/{id}"),
        "/api/v1/app/joe/attempt/msg/e1?with_content=false&expanded_statuses=true&with_msg=true&tag=x".into(),
        format!("/api/v1/app/joe/attempt/endpoint/{}", endpoint.id),
        "/api/v1/app/joe/attempt/endpoint/hook?status=1&status_code_class=200".into(),
    ];
    for path in paths {
        assert_eq!(
            api.get(&path).await.expect(StatusCode::OK),
            empty_list(),
            "{path}"
        );
    }
    // Without an endpoint, a message fans out to nothing.
    let other = TestApi::new();
    other
        .post("/api/v1/app", json!({"name": "Joe", "uid": "joe"}))
        .await
        .expect(StatusCode::CREATED);
    let lonely = other
        .post(MSG, json!({"eventType": "a", "payload": {}}))
        .await
        .expect(StatusCode::ACCEPTED);
    let path = format!(
        "/api/v1/app/joe/msg/{}/endpoint",
        lonely["id"].as_str().unwrap()
    );
    assert_eq!(other.get(&path).await.expect(StatusCode::OK), empty_list());
}

#[tokio::test]
async fn delivery_states_and_attempts_read_back() {
    let api = with_app().await;
    let endpoint = add_endpoint(&api).await;
    let created = api
        .post(
            MSG,
            json!({"eventType": "a", "payload": {"k": 1}, "channels": ["eu"]}),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let msg = created["id"].as_str().unwrap();

    let states = api
        .get(&format!("/api/v1/app/joe/msg/{msg}/endpoint"))
        .await
        .expect(StatusCode::OK);
    let state = &states["data"][0];
    assert_eq!(state["id"], endpoint.id.as_str());
    assert_eq!(state["uid"], "hook");
    assert_eq!(state["url"], "https://example.com/hook");
    assert_eq!(state["description"], "the hook");
    assert_eq!(state["version"], 1);
    assert_eq!(state["disabled"], false);
    assert_eq!(state["metadata"], json!({}));
    assert_eq!(state["status"], 1);
    assert_eq!(state["statusText"], "pending");
    assert!(
        state["nextAttempt"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z'))
    );

    let deliveries = api
        .get("/api/v1/app/joe/endpoint/hook/msg")
        .await
        .expect(StatusCode::OK);
    let delivery = &deliveries["data"][0];
    assert_eq!(delivery["id"], msg);
    assert_eq!(delivery["eventType"], "a");
    assert_eq!(delivery["payload"], json!({"k": 1}));
    assert_eq!(delivery["channels"], json!(["eu"]));
    assert_eq!(delivery["eventId"], Value::Null);
    assert_eq!(delivery["status"], 1);
    assert_eq!(delivery["statusText"], "pending");
    let hidden = api
        .get("/api/v1/app/joe/endpoint/hook/msg?with_content=false")
        .await
        .expect(StatusCode::OK);
    assert_eq!(hidden["data"][0]["payload"], json!({}));

    let attempt_id = fail_delivery(&api, &endpoint, msg).await;
    let attempts = api
        .get(&format!("/api/v1/app/joe/attempt/msg/{msg}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(attempts["iterator"], attempt_id.as_str());
    let attempt = &attempts["data"][0];
    assert_eq!(attempt["id"], attempt_id.as_str());
    assert_eq!(attempt["msgId"], msg);
    assert_eq!(attempt["endpointId"], endpoint.id.as_str());
    assert_eq!(attempt["url"], "https://example.com/hook");
    assert_eq!(attempt["status"], 2);
    assert_eq!(attempt["statusText"], "fail");
    assert_eq!(attempt["response"], "bad request");
    assert_eq!(attempt["responseStatusCode"], 400);
    assert_eq!(attempt["responseDurationMs"], 12);
    assert_eq!(attempt["triggerType"], 0);
    assert!(attempt["timestamp"].as_str().unwrap().ends_with('Z'));

    let one = api
        .get(&format!("/api/v1/app/joe/msg/{msg}/attempt/{attempt_id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(&one, attempt);
    let by_endpoint = api
        .get("/api/v1/app/joe/attempt/endpoint/hook")
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&by_endpoint), [attempt_id.as_str()]);
    let filters = [
        ("status=2", 1),
        ("status=0", 0),
        ("status_code_class=400", 1),
        ("status_code_class=500", 0),
        ("event_types=a", 1),
        ("event_types=b", 0),
        ("channel=eu", 1),
        ("channel=us", 0),
        ("endpoint_id=hook", 1),
        ("after=2999-01-01T00:00:00Z", 0),
    ];
    for (query, expected) in filters {
        let list = api
            .get(&format!("/api/v1/app/joe/attempt/msg/{msg}?{query}"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(ids(&list).len(), expected, "{query}");
    }
    let failed = api
        .get(&format!("/api/v1/app/joe/msg/{msg}/endpoint"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(failed["data"][0]["statusText"], "fail");
    assert_eq!(failed["data"][0]["nextAttempt"], Value::Null);
    let by_status = api
        .get("/api/v1/app/joe/endpoint/hook/msg?status=1")
        .await
        .expect(StatusCode::OK);
    assert!(ids(&by_status).is_empty());

    // This node does not deliver: the resend is queued in the store for a node that does.
    let resent = api
        .post(
            &format!("/api/v1/app/joe/msg/{msg}/endpoint/hook/resend"),
            json!({}),
        )
        .await;
    assert_eq!(resent.expect(StatusCode::ACCEPTED), json!({}));
    let queued = api.state().store().take_resends(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].1.as_str(), msg);
}

#[tokio::test]
async fn attempt_routes_refuse_unknown_things() {
    let api = with_app().await;
    add_endpoint(&api).await;
    let created = api
        .post(MSG, json!({"eventType": "a", "payload": {}}))
        .await
        .expect(StatusCode::ACCEPTED);
    let msg = created["id"].as_str().unwrap();
    let missing_msg = "msg_01ARZ3NDEKTSV4RRFFQ69G5FAV";

    api.get(&format!("/api/v1/app/joe/attempt/msg/{msg}?status=9"))
        .await
        .expect_invalid(&["query", "status"]);
    api.get(&format!("/api/v1/app/joe/attempt/msg/{msg}?status=x"))
        .await
        .expect_invalid(&["query", "status"]);
    api.get(&format!(
        "/api/v1/app/joe/attempt/msg/{msg}?status_code_class=250"
    ))
    .await
    .expect_invalid(&["query", "status_code_class"]);
    api.get("/api/v1/app/joe/endpoint/hook/msg?status=5")
        .await
        .expect_invalid(&["query", "status"]);

    let not_found = [
        format!("/api/v1/app/joe/attempt/msg/{missing_msg}"),
        "/api/v1/app/joe/attempt/msg/no-such-event".into(),
        "/api/v1/app/nobody/attempt/msg/x".into(),
        "/api/v1/app/joe/attempt/endpoint/ep_01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
        "/api/v1/app/joe/attempt/endpoint/nohook".into(),
        format!("/api/v1/app/joe/attempt/msg/{msg}?endpoint_id=nohook"),
        format!("/api/v1/app/joe/msg/{msg}/attempt/atmpt_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        format!("/api/v1/app/joe/msg/{msg}/attempt/not-an-id"),
        format!("/api/v1/app/joe/msg/{missing_msg}/attempt/atmpt_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        format!("/api/v1/app/joe/msg/{missing_msg}/endpoint"),
        "/api/v1/app/joe/endpoint/nohook/msg".into(),
    ];
    for path in not_found {
        api.get(&path).await.expect_error(StatusCode::NOT_FOUND);
    }
    for path in [
        format!("/api/v1/app/joe/msg/{msg}/endpoint/nohook/resend"),
        format!("/api/v1/app/joe/msg/{msg}/endpoint/ep_01ARZ3NDEKTSV4RRFFQ69G5FAV/resend"),
        format!("/api/v1/app/joe/msg/{missing_msg}/endpoint/hook/resend"),
    ] {
        api.post(&path, json!({}))
            .await
            .expect_error(StatusCode::NOT_FOUND);
    }
}
