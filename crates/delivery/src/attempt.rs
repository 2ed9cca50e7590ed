//! One attempt: sign the message afresh, POST it, classify the result, and describe what the
//! store must record. The only I/O is the request itself; recording is the caller's.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use time::OffsetDateTime;
use webhookd_core::model::{Attempt, DeliveryStatus, Endpoint, Message, TriggerType};
use webhookd_core::operational::{self, LastAttempt, OperationalEvent};
use webhookd_core::outcome::{AttemptResult, Outcome, decide};
use webhookd_core::signing::signature_header;
use webhookd_core::time::now;
use webhookd_core::{AttemptId, EndpointId};
use webhookd_store::{AttemptRecord, DeliveryUpdate, EndpointHealth};

use crate::EngineConfig;
use crate::http::HttpClient;

/// What an attempt is for.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) message: Arc<Message>,
    /// Scheduled attempts already made for this delivery.
    pub(crate) attempts_made: u32,
    pub(crate) manual: bool,
}

/// The attempt's result, for the store and for the engine.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) record: AttemptRecord,
    pub(crate) outcome: Outcome,
}

/// Builds the request headers: content type, the Standard Webhooks triple (and the `svix-`
/// copies when asked), then the endpoint's custom headers.
fn headers(
    endpoint: &Endpoint,
    message: &Message,
    timestamp: i64,
    svix_headers: bool,
    at: OffsetDateTime,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(6 + endpoint.headers.len());
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let signature = signature_header(
        endpoint.signing_secrets(at),
        message.id.as_str(),
        timestamp,
        &message.payload,
    );
    let values = [
        HeaderValue::from_str(message.id.as_str()),
        HeaderValue::from_str(&timestamp.to_string()),
        HeaderValue::from_str(&signature),
    ];
    let names: &[[&'static str; 3]] = if svix_headers {
        &[
            ["webhook-id", "webhook-timestamp", "webhook-signature"],
            ["svix-id", "svix-timestamp", "svix-signature"],
        ]
    } else {
        &[["webhook-id", "webhook-timestamp", "webhook-signature"]]
    };
    for group in names {
        for (name, value) in group.iter().zip(&values) {
            if let Ok(value) = value {
                headers.insert(HeaderName::from_static(name), value.clone());
            }
        }
    }
    for (name, value) in &endpoint.headers {
        // Names and values were validated when they were set; a bad one is skipped, and so is
        // a `proxy-authorization` stored before the API reserved it: the proxy's credentials
        // are the operator's (`WEBHOOKD_PROXY`), never a tenant's.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) && name != reqwest::header::PROXY_AUTHORIZATION
        {
            headers.insert(name, value);
        }
    }
    headers
}

/// Makes the attempt and decides what follows.
pub(crate) async fn run(
    config: &EngineConfig,
    http: &HttpClient,
    endpoint: &Endpoint,
    job: &Job,
) -> Finished {
    let started_at = now();
    let timestamp = started_at.unix_timestamp();
    let message = &job.message;
    let headers = headers(
        endpoint,
        message,
        timestamp,
        config.svix_headers,
        started_at,
    );
    // The endpoint's own timeout and schedule, when it has them, replace the node's.
    let sent = http
        .post_within(
            &endpoint.url,
            headers,
            Bytes::clone(&message.payload),
            endpoint.request_timeout,
        )
        .await;
    let attempts_made = if job.manual {
        job.attempts_made
    } else {
        job.attempts_made + 1
    };
    let jitter = rand::random::<f64>() * 2.0 - 1.0;
    let outcome = decide(
        &sent.result,
        attempts_made,
        job.manual,
        endpoint
            .retry_schedule
            .as_ref()
            .unwrap_or(&config.retry_schedule),
        config.retry_client_errors,
        jitter,
    );
    let delivered = outcome == Outcome::Delivered;
    let status_code = match sent.result {
        AttemptResult::Response { status, .. } => status,
        _ => 0,
    };
    let duration_ms = sent.duration.as_millis() as u64;
    tracing::info!(
        endpoint = %endpoint.id,
        msg = %message.id,
        status = status_code,
        duration_ms,
        "webhook to '{}' dispatched, response code: {status_code}",
        // Escaped: a URL stored before URLs were normalised may hold a line break.
        endpoint.url.escape_debug()
    );
    let finished_at = now();
    let delivery = match (&outcome, job.manual) {
        (_, true) => DeliveryUpdate::Manual { success: delivered },
        (Outcome::Delivered, false) => DeliveryUpdate::Delivered,
        (Outcome::Retry { after }, false) => DeliveryUpdate::RetryAt(finished_at + *after),
        (Outcome::Failed { .. }, false) => DeliveryUpdate::Failed,
    };
    let endpoint_health = health(config, endpoint, &outcome, finished_at);
    let attempt_id = AttemptId::new();
    let last_attempt = LastAttempt {
        id: attempt_id.clone(),
        response_status_code: status_code,
        timestamp: started_at,
    };
    let events = operational_events(job, &endpoint.id, &delivery, attempts_made, &last_attempt);
    let record = AttemptRecord {
        attempt: Attempt {
            id: attempt_id,
            msg_id: message.id.clone(),
            endpoint_id: endpoint.id.clone(),
            app_id: message.app_id.clone(),
            url: endpoint.url.clone(),
            status: if delivered {
                DeliveryStatus::Success
            } else {
                DeliveryStatus::Fail
            },
            response_status_code: status_code,
            response: sent.response,
            duration_ms,
            trigger_type: if job.manual {
                TriggerType::Manual
            } else {
                TriggerType::Scheduled
            },
            created_at: started_at,
        },
        delivery,
        endpoint_health,
        owner: config.node_id.clone(),
        ordered: endpoint.ordered,
        events,
    };
    Finished { record, outcome }
}

/// The operational events of a scheduled attempt (`failing`, `exhausted`, `recovered`). Manual
/// attempts and deliveries of operational events themselves raise none.
fn operational_events(
    job: &Job,
    endpoint: &EndpointId,
    delivery: &DeliveryUpdate,
    attempts_made: u32,
    last_attempt: &LastAttempt,
) -> Vec<OperationalEvent> {
    let message = &job.message;
    if job.manual || operational::is_operational(&message.app_id) {
        return Vec::new();
    }
    let delivered = *delivery == DeliveryUpdate::Delivered;
    let last = *delivery == DeliveryUpdate::Failed;
    operational::attempt_events(attempts_made, delivered, last)
        .into_iter()
        .map(|event| OperationalEvent::Attempt {
            event,
            app_id: message.app_id.clone(),
            msg_id: message.id.clone(),
            msg_event_id: message.event_id.clone(),
            endpoint_id: endpoint.clone(),
            last_attempt: last_attempt.clone(),
        })
        .collect()
}

/// How the endpoint's health changes: a success ends a run of failures; a failure starts one,
/// or disables the endpoint once the run has lasted `disable_after` (or at once on 410).
fn health(
    config: &EngineConfig,
    endpoint: &Endpoint,
    outcome: &Outcome,
    at: OffsetDateTime,
) -> Option<EndpointHealth> {
    match (outcome, endpoint.failing_since) {
        (Outcome::Delivered, Some(_)) => Some(EndpointHealth::Healthy),
        (Outcome::Delivered, None) => None,
        (
            Outcome::Failed {
                disable_endpoint: true,
            },
            _,
        ) => Some(EndpointHealth::Disable),
        (_, None) => Some(EndpointHealth::FailingSince(at)),
        (_, Some(since)) if at - since >= config.disable_after => Some(EndpointHealth::Disable),
        (_, Some(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use webhookd_core::{AppId, MessageId};

    use super::*;

    fn job(app: AppId, manual: bool) -> Job {
        Job {
            message: Arc::new(Message {
                id: MessageId::new(),
                app_id: app,
                event_type: "user.created".into(),
                event_id: Some("evt-1".into()),
                payload: Bytes::from_static(b"{}"),
                channels: Vec::new(),
                tags: Vec::new(),
                created_at: now(),
                deliver_at: None,
                retain_payload_until: None,
            }),
            attempts_made: 3,
            manual,
        }
    }

    fn last() -> LastAttempt {
        LastAttempt {
            id: AttemptId::new(),
            response_status_code: 500,
            timestamp: now(),
        }
    }

    #[test]
    fn the_fourth_failure_of_a_scheduled_delivery_is_failing() {
        let endpoint = EndpointId::new();
        let update = DeliveryUpdate::RetryAt(now());
        let events = operational_events(&job(AppId::new(), false), &endpoint, &update, 4, &last());
        assert_eq!(events.len(), 1);
        let OperationalEvent::Attempt {
            event,
            msg_event_id,
            endpoint_id,
            ..
        } = &events[0]
        else {
            panic!("an attempt event: {events:?}");
        };
        assert_eq!(*event, operational::AttemptEvent::Failing);
        assert_eq!(msg_event_id.as_deref(), Some("evt-1"));
        assert_eq!(*endpoint_id, endpoint);
    }

    #[test]
    fn manual_attempts_and_operational_deliveries_raise_nothing() {
        let endpoint = EndpointId::new();
        let failed = DeliveryUpdate::Failed;
        let manual = job(AppId::new(), true);
        assert!(operational_events(&manual, &endpoint, &failed, 4, &last()).is_empty());
        let own = job(operational::operational_app(), false);
        assert!(operational_events(&own, &endpoint, &failed, 4, &last()).is_empty());
    }

    #[test]
    fn custom_headers_never_carry_proxy_credentials() {
        let at = now();
        let endpoint = Endpoint {
            // Stored before the API reserved the name.
            headers: [
                ("proxy-authorization", "Basic dGVuYW50OnBhc3M="),
                ("x-tenant", "acme"),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
            ..Endpoint::new(AppId::new(), "http://127.0.0.1:9/", at)
        };
        let message = Message {
            id: MessageId::new(),
            app_id: endpoint.app_id.clone(),
            event_type: "a".into(),
            event_id: None,
            payload: Bytes::from_static(b"{}"),
            channels: vec![],
            tags: vec![],
            created_at: at,
            deliver_at: None,
            retain_payload_until: None,
        };
        let headers = headers(&endpoint, &message, at.unix_timestamp(), false, at);
        assert_eq!(headers["x-tenant"], "acme");
        assert!(headers.get("proxy-authorization").is_none());
    }
}
