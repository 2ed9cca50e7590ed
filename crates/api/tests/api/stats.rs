//! The operator's overview (`/api/v1/stats/overview`) and an endpoint's health
//! (`…/endpoint/{ep}/health`). This harness makes no deliveries, so attempts are recorded
//! through the store as the engine records them; the end-to-end suite checks the same figures
//! after real deliveries.

use axum::http::StatusCode;
use serde_json::{Value, json};
use webhookd_core::Key;
use webhookd_core::model::{Attempt, DeliveryStatus, TriggerType};
use webhookd_core::time::now;
use webhookd_core::{AttemptId, EndpointId, MessageId};
use webhookd_store::{AttemptRecord, DeliveryUpdate, EndpointHealth};

use crate::common::TestApi;
use crate::message::{MSG, with_app};

const OVERVIEW: &str = "/api/v1/stats/overview";

/// Records one attempt of `msg` to `endpoint`, as the engine would.
async fn record(
    api: &TestApi,
    msg: &str,
    endpoint: &str,
    update: DeliveryUpdate,
    code: u16,
    health: Option<EndpointHealth>,
) {
    let store = api.state().store();
    let app = store
        .get_application(&Key::parse("joe"))
        .await
        .unwrap()
        .expect("joe");
    let success = code / 100 == 2;
    let record = AttemptRecord {
        attempt: Attempt {
            id: AttemptId::new(),
            msg_id: msg.parse::<MessageId>().unwrap(),
            endpoint_id: endpoint.parse::<EndpointId>().unwrap(),
            app_id: app.id,
            url: "https://example.com/hook".into(),
            status: if success {
                DeliveryStatus::Success
            } else {
                DeliveryStatus::Fail
            },
            response_status_code: code,
            response: "answer".into(),
            duration_ms: 3,
            trigger_type: TriggerType::Scheduled,
            created_at: now(),
        },
        delivery: update,
        endpoint_health: health,
        owner: "test".into(),
        ordered: false,
        events: Vec::new(),
    };
    store.record_attempts(&[record]).await.unwrap();
}

async fn endpoint_and_messages(api: &TestApi, count: usize) -> (String, Vec<String>) {
    let endpoint = api
        .post(
            "/api/v1/app/joe/endpoint",
            json!({"url": "https://example.com/hook", "uid": "hook"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let mut messages = Vec::new();
    for _ in 0..count {
        let created = api
            .post(MSG, json!({"eventType": "a", "payload": {}}))
            .await
            .expect(StatusCode::ACCEPTED);
        messages.push(created["id"].as_str().unwrap().to_owned());
    }
    (endpoint["id"].as_str().unwrap().to_owned(), messages)
}

fn sum(buckets: &[Value], field: &str) -> u64 {
    buckets
        .iter()
        .map(|bucket| bucket[field].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn an_empty_overview_has_every_bucket_with_zeros() {
    let api = TestApi::new();
    for (query, count, width) in [
        ("", 60, 60),
        ("?period=1h", 60, 60),
        ("?period=1d", 96, 900),
    ] {
        let overview = api
            .get(&format!("{OVERVIEW}{query}"))
            .await
            .expect(StatusCode::OK);
        let buckets = overview["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), count, "{overview}");
        let starts: Vec<time::OffsetDateTime> = buckets
            .iter()
            .map(|bucket| {
                webhookd_core::time::parse_timestamp(bucket["start"].as_str().unwrap()).unwrap()
            })
            .collect();
        for pair in starts.windows(2) {
            assert_eq!((pair[1] - pair[0]).whole_seconds(), width);
        }
        assert_eq!(starts[0].unix_timestamp() % width, 0, "aligned");
        let last = *starts.last().unwrap();
        assert!(last <= now() && now() - last < time::Duration::seconds(width));
        assert_eq!(
            buckets[0],
            json!({"start": buckets[0]["start"], "attempts": 0, "delivered": 0, "failed": 0,
                   "retried": 0, "p50Ms": null, "p99Ms": null})
        );
        assert_eq!(
            overview["queue"],
            json!({"due": 0, "scheduled": 0, "leased": 0})
        );
        assert_eq!(overview["endpoints"], json!({"failing": 0, "disabled": 0}));
    }
    assert_eq!(
        api.get(OVERVIEW).await.expect(StatusCode::OK)["period"],
        "1h"
    );
    assert_eq!(
        api.get(&format!("{OVERVIEW}/?period=1d"))
            .await
            .expect(StatusCode::OK)["period"],
        "1d"
    );
}

#[tokio::test]
async fn a_bad_period_is_a_422() {
    let api = TestApi::new();
    for period in ["2h", "hour", "1H"] {
        api.get(&format!("{OVERVIEW}?period={period}"))
            .await
            .expect_invalid(&["query", "period"]);
    }
}

#[tokio::test]
async fn recorded_attempts_show_in_the_overview_with_the_queue_and_endpoints() {
    let api = with_app().await;
    let (endpoint, messages) = endpoint_and_messages(&api, 4).await;
    let retry = now() + time::Duration::hours(1);
    record(
        &api,
        &messages[0],
        &endpoint,
        DeliveryUpdate::Delivered,
        200,
        None,
    )
    .await;
    record(
        &api,
        &messages[1],
        &endpoint,
        DeliveryUpdate::Delivered,
        204,
        None,
    )
    .await;
    let failing = Some(EndpointHealth::FailingSince(now()));
    record(
        &api,
        &messages[2],
        &endpoint,
        DeliveryUpdate::RetryAt(retry),
        503,
        failing,
    )
    .await;
    record(
        &api,
        &messages[3],
        &endpoint,
        DeliveryUpdate::Failed,
        400,
        None,
    )
    .await;

    for period in ["1h", "1d"] {
        let overview = api
            .get(&format!("{OVERVIEW}?period={period}"))
            .await
            .expect(StatusCode::OK);
        let buckets = overview["buckets"].as_array().unwrap().clone();
        assert_eq!(sum(&buckets, "attempts"), 4, "{overview}");
        assert_eq!(sum(&buckets, "delivered"), 2);
        assert_eq!(sum(&buckets, "failed"), 1);
        assert_eq!(sum(&buckets, "retried"), 1);
        // The deliveries were made within a minute of ingest: the estimate says so.
        let busy: Vec<&Value> = buckets.iter().filter(|b| b["delivered"] != 0).collect();
        assert!(!busy.is_empty());
        for bucket in busy {
            let p50 = bucket["p50Ms"].as_f64().expect("a p50");
            let p99 = bucket["p99Ms"].as_f64().expect("a p99");
            assert!(p50 > 0.0 && p50 <= p99 && p99 <= 60_000.0, "{bucket}");
        }
        // Nothing claimed (this harness delivers nothing): the retry is scheduled.
        assert_eq!(overview["queue"]["scheduled"], 1, "{overview}");
        assert_eq!(overview["endpoints"], json!({"failing": 1, "disabled": 0}));
    }
}

#[tokio::test]
async fn the_overview_needs_a_token() {
    let api = TestApi::with_token("secret-token");
    api.get(OVERVIEW).await.expect(StatusCode::OK);
    let mut anonymous = TestApi::with_token("secret-token");
    anonymous.token = None;
    anonymous
        .get(OVERVIEW)
        .await
        .expect_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn endpoint_health_shows_the_last_attempt_and_the_recent_success_rate() {
    let api = with_app().await;
    let (endpoint, messages) = endpoint_and_messages(&api, 3).await;
    let path = "/api/v1/app/joe/endpoint/hook/health";
    let fresh = api.get(path).await.expect(StatusCode::OK);
    assert_eq!(
        fresh,
        json!({"endpointId": endpoint, "disabled": false, "failingSince": null,
               "lastAttempt": null,
               "recent": {"attempts": 0, "succeeded": 0, "successRate": null}})
    );
    record(
        &api,
        &messages[0],
        &endpoint,
        DeliveryUpdate::Delivered,
        200,
        None,
    )
    .await;
    let since = now();
    let failing = Some(EndpointHealth::FailingSince(since));
    record(
        &api,
        &messages[1],
        &endpoint,
        DeliveryUpdate::Failed,
        500,
        failing,
    )
    .await;
    record(
        &api,
        &messages[2],
        &endpoint,
        DeliveryUpdate::Failed,
        410,
        Some(EndpointHealth::Disable),
    )
    .await;

    let health = api.get(path).await.expect(StatusCode::OK);
    assert_eq!(health["disabled"], true, "{health}");
    assert_eq!(
        health["failingSince"],
        json!(webhookd_core::time::format_timestamp(since))
    );
    assert_eq!(health["lastAttempt"]["msgId"], messages[2].as_str());
    assert_eq!(health["lastAttempt"]["responseStatusCode"], 410);
    assert_eq!(health["lastAttempt"]["statusText"], "fail");
    assert_eq!(
        health["recent"],
        json!({"attempts": 3, "succeeded": 1, "successRate": 1.0 / 3.0})
    );
    // By id too, and 404 for what does not exist.
    api.get(&format!("/api/v1/app/joe/endpoint/{endpoint}/health"))
        .await
        .expect(StatusCode::OK);
    api.get("/api/v1/app/joe/endpoint/nope/health")
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.get("/api/v1/app/nobody/endpoint/hook/health")
        .await
        .expect_error(StatusCode::NOT_FOUND);
}
