//! Operational webhooks: the events webhookd sends about itself (an endpoint created, disabled,
//! a delivery failing or exhausted, a background task finished), in Svix's shapes.
//!
//! They travel as ordinary messages of one reserved application, [`operational_app`], whose
//! endpoints are the operational endpoints: stored, fanned out by event type, signed, retried
//! and logged by the same engine as every other message. That application has no row of its
//! own, so no application route can reach it. Attempts to its endpoints never raise events,
//! so operational deliveries cannot feed on their own failures.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::id::{AppId, AttemptId, EndpointId, MessageId, TaskId};

/// Every operational event type, as operational endpoints filter on them.
pub const EVENT_TYPES: [&str; 9] = [
    "endpoint.created",
    "endpoint.updated",
    "endpoint.deleted",
    "endpoint.disabled",
    "endpoint.enabled",
    "message.attempt.exhausted",
    "message.attempt.failing",
    "message.attempt.recovered",
    "background_task.finished",
];

/// The failed attempt of one delivery on which `message.attempt.failing` is sent (Svix's).
pub const FAILING_AT_ATTEMPT: u32 = 4;

/// The reserved application whose endpoints are the operational endpoints.
pub fn operational_app() -> AppId {
    AppId::from_trusted(format!("{}{}", AppId::PREFIX, "0".repeat(26)))
}

/// Whether this application is the reserved one.
pub fn is_operational(app: &AppId) -> bool {
    app.as_str()
        .strip_prefix(AppId::PREFIX)
        .is_some_and(|rest| rest.bytes().all(|byte| byte == b'0'))
}

/// Why an endpoint was disabled (`trigger` of `endpoint.disabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisableTrigger {
    /// An operator's change through the API.
    Manual,
    /// Failing for `WEBHOOKD_DISABLE_AFTER`, or a 410.
    Automatic,
}

/// What happened to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointChange {
    Created,
    Updated,
    Deleted,
    Enabled,
    Disabled {
        trigger: DisableTrigger,
        fail_since: Option<OffsetDateTime>,
    },
}

/// What happened to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEvent {
    /// The 4th failed attempt.
    Failing,
    /// The last attempt failed; none follows.
    Exhausted,
    /// A success after `Failing` was sent.
    Recovered,
}

/// The last attempt, as the attempt events carry it (`MessageAttemptFailedData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastAttempt {
    pub id: AttemptId,
    pub response_status_code: u16,
    pub timestamp: OffsetDateTime,
}

/// One operational event. The application's `uid` is not part of it: the store reads it in
/// the transaction that emits the event (see [`OperationalEvent::payload`]).
#[derive(Debug, Clone, PartialEq)]
pub enum OperationalEvent {
    Endpoint {
        change: EndpointChange,
        app_id: AppId,
        endpoint_id: EndpointId,
        endpoint_uid: Option<String>,
    },
    Attempt {
        event: AttemptEvent,
        app_id: AppId,
        msg_id: MessageId,
        msg_event_id: Option<String>,
        endpoint_id: EndpointId,
        last_attempt: LastAttempt,
    },
    TaskFinished {
        task_id: TaskId,
        task: String,
        status: String,
        data: Value,
    },
}

fn rfc3339(at: OffsetDateTime) -> Value {
    at.format(&Rfc3339).map_or(Value::Null, Value::String)
}

impl OperationalEvent {
    /// The event type, one of [`EVENT_TYPES`].
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Endpoint { change, .. } => match change {
                EndpointChange::Created => "endpoint.created",
                EndpointChange::Updated => "endpoint.updated",
                EndpointChange::Deleted => "endpoint.deleted",
                EndpointChange::Enabled => "endpoint.enabled",
                EndpointChange::Disabled { .. } => "endpoint.disabled",
            },
            Self::Attempt { event, .. } => match event {
                AttemptEvent::Failing => "message.attempt.failing",
                AttemptEvent::Exhausted => "message.attempt.exhausted",
                AttemptEvent::Recovered => "message.attempt.recovered",
            },
            Self::TaskFinished { .. } => "background_task.finished",
        }
    }

    /// The application the event is about, whose `uid` goes into the payload.
    pub fn app_id(&self) -> Option<&AppId> {
        match self {
            Self::Endpoint { app_id, .. } | Self::Attempt { app_id, .. } => Some(app_id),
            Self::TaskFinished { .. } => None,
        }
    }

    /// A key that makes emitting the same event twice store it once (the message's
    /// `eventId` in the operational application), when the event has a natural identity.
    pub fn idempotency_key(&self) -> Option<String> {
        match self {
            Self::Attempt { last_attempt, .. } => {
                Some(format!("{}.{}", self.event_type(), last_attempt.id))
            }
            Self::TaskFinished { task_id, .. } => Some(format!("{}.{task_id}", self.event_type())),
            Self::Endpoint { .. } => None,
        }
    }

    /// The JSON body delivered: `{"type": …, "data": {…}}`, field names as Svix spells them.
    pub fn payload(&self, app_uid: Option<&str>) -> Value {
        let data = match self {
            Self::Endpoint {
                change,
                app_id,
                endpoint_id,
                endpoint_uid,
            } => {
                let mut data = Map::new();
                data.insert("appId".into(), json!(app_id.as_str()));
                data.insert("appUid".into(), json!(app_uid));
                data.insert("endpointId".into(), json!(endpoint_id.as_str()));
                data.insert("endpointUid".into(), json!(endpoint_uid));
                if let EndpointChange::Disabled {
                    trigger,
                    fail_since,
                } = change
                {
                    data.insert("failSince".into(), fail_since.map_or(Value::Null, rfc3339));
                    let trigger = match trigger {
                        DisableTrigger::Manual => "manual",
                        DisableTrigger::Automatic => "automatic",
                    };
                    data.insert("trigger".into(), json!(trigger));
                }
                Value::Object(data)
            }
            Self::Attempt {
                app_id,
                msg_id,
                msg_event_id,
                endpoint_id,
                last_attempt,
                ..
            } => json!({
                "appId": app_id.as_str(),
                "appUid": app_uid,
                "msgId": msg_id.as_str(),
                "msgEventId": msg_event_id,
                "endpointId": endpoint_id.as_str(),
                "lastAttempt": {
                    "id": last_attempt.id.as_str(),
                    "responseStatusCode": last_attempt.response_status_code,
                    "timestamp": rfc3339(last_attempt.timestamp),
                },
            }),
            Self::TaskFinished {
                task_id,
                task,
                status,
                data,
            } => json!({
                "taskId": task_id.as_str(),
                "task": task,
                "status": status,
                "data": data,
            }),
        };
        json!({ "type": self.event_type(), "data": data })
    }
}

/// The attempt events one scheduled attempt raises: `failing` on the 4th failure (also when it
/// is the last), `exhausted` when no attempt follows, `recovered` on a success after the 4th
/// failure. `attempts_made` counts this attempt.
pub fn attempt_events(attempts_made: u32, delivered: bool, last: bool) -> Vec<AttemptEvent> {
    let mut events = Vec::new();
    if delivered {
        if attempts_made > FAILING_AT_ATTEMPT {
            events.push(AttemptEvent::Recovered);
        }
        return events;
    }
    if attempts_made == FAILING_AT_ATTEMPT {
        events.push(AttemptEvent::Failing);
    }
    if last {
        events.push(AttemptEvent::Exhausted);
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_is_the_fourth_failure_and_recovered_follows_it() {
        assert!(attempt_events(3, false, false).is_empty());
        assert_eq!(attempt_events(4, false, false), [AttemptEvent::Failing]);
        assert_eq!(
            attempt_events(4, false, true),
            [AttemptEvent::Failing, AttemptEvent::Exhausted]
        );
        assert_eq!(attempt_events(2, false, true), [AttemptEvent::Exhausted]);
        assert!(attempt_events(4, true, false).is_empty());
        assert_eq!(attempt_events(5, true, false), [AttemptEvent::Recovered]);
        assert!(attempt_events(1, true, false).is_empty());
    }

    #[test]
    fn the_reserved_application_is_recognised() {
        let app = operational_app();
        assert!(is_operational(&app));
        assert_eq!(app.as_str().len(), 30);
        assert!(app.as_str().parse::<AppId>().is_ok());
        assert!(!is_operational(&AppId::new()));
    }

    #[test]
    fn payloads_use_svix_field_names() {
        let event = OperationalEvent::Endpoint {
            change: EndpointChange::Disabled {
                trigger: DisableTrigger::Automatic,
                fail_since: None,
            },
            app_id: AppId::new(),
            endpoint_id: EndpointId::new(),
            endpoint_uid: None,
        };
        let payload = event.payload(Some("joe"));
        assert_eq!(payload["type"], "endpoint.disabled");
        assert_eq!(payload["data"]["appUid"], "joe");
        assert_eq!(payload["data"]["trigger"], "automatic");
        assert!(payload["data"]["failSince"].is_null());
        assert!(payload["data"]["endpointUid"].is_null());
    }
}
