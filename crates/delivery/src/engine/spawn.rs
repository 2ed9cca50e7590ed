//! Step 4 to 6 for one delivery: an attempt runs as a task of its own, its record goes to the
//! recorder, and its result comes back to the loop as [`Event::Done`]. A panic in an attempt
//! is caught here; the delivery keeps its lease and is tried again after it expires.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use webhookd_core::model::{Attempt, Endpoint, Message};
use webhookd_core::outcome::Outcome;

use super::{Driver, Event};
use crate::attempt::{self, Job};

impl Driver {
    pub(super) fn spawn_attempt(&self, endpoint: Arc<Endpoint>, job: Job, unproven: bool) {
        let config = Arc::clone(&self.config);
        let http = self.http.clone();
        let recorder = self.recorder.clone();
        let events = self.events.clone();
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let attempt =
                AssertUnwindSafe(attempt::run(&config, &http, &endpoint, &job)).catch_unwind();
            let (outcome, health, answered) = match attempt.await {
                Ok(finished) => {
                    observe(&finished.outcome, &finished.record.attempt, &job.message);
                    let health = finished.record.endpoint_health;
                    let answered = finished.record.attempt.response_status_code != 0;
                    recorder.record(finished.record).await;
                    (finished.outcome, health, answered)
                }
                Err(_) => {
                    // The delivery keeps its lease, no longer renewed, and is claimed again
                    // when it expires.
                    tracing::error!(endpoint = %endpoint.id, msg = %job.message.id, "an attempt panicked");
                    if !job.manual {
                        shared.held.let_go([(&job.message.id, &endpoint.id)]);
                    }
                    (
                        Outcome::Failed {
                            disable_endpoint: false,
                        },
                        None,
                        false,
                    )
                }
            };
            let _ = events.send(Event::Done {
                endpoint: endpoint.id.clone(),
                manual: job.manual,
                outcome,
                health,
                answered,
                unproven,
            });
        });
    }
}

/// Metrics of one finished attempt.
fn observe(outcome: &Outcome, attempt: &Attempt, message: &Message) {
    let label = match outcome {
        Outcome::Delivered => "delivered",
        Outcome::Retry { .. } => "retry",
        Outcome::Failed { .. } => "failed",
    };
    let status_class = match attempt.response_status_code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    };
    metrics::counter!("webhookd_attempts_total", "outcome" => label, "status_class" => status_class)
        .increment(1);
    if webhookd_core::operational::is_operational(&message.app_id) {
        metrics::counter!("webhookd_operational_webhooks_total", "event_type" => message.event_type.clone())
            .increment(1);
    }
    if *outcome == Outcome::Delivered {
        let latency = webhookd_core::time::now() - message.created_at;
        metrics::histogram!("webhookd_delivery_latency_seconds").record(latency.as_seconds_f64());
    }
}
