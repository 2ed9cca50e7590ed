//! The metrics catalog: every series `/metrics` exposes, registered at zero when the process
//! installs its recorder, so that a fresh node's first scrape already holds every name and
//! label set (dashboards and alerts need no traffic to work).
//!
//! Two kinds of gauges: **per node** (`webhookd_deliveries_in_memory`: what this process
//! holds) and **global**
//! (`webhookd_queue_depth`, `webhookd_endpoints`: read from the shared store every
//! [`GLOBAL_GAUGES_EVERY`] by every node, so each node reports the same value; aggregate them
//! with `max`, not `sum`).
//!
//! The series are incremented where things happen (`api` counts ingest, `delivery` attempts,
//! latency, operational webhooks and purges); this module only names them, describes them and
//! gives the histogram its buckets.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};
use webhookd_store::Store;

/// How often the global gauges are read from the store.
pub const GLOBAL_GAUGES_EVERY: Duration = Duration::from_secs(10);

/// Latency buckets, in seconds: 1 ms to 60 s, the range of a webhook from a local receiver to
/// a slow one near the request timeout.
/// The same bounds as the store's delivery rollup counts in (the console's overview).
pub const LATENCY_BUCKETS: [f64; 16] = webhookd_core::latency::BOUNDS_SECONDS;

/// Outcomes of an attempt (`outcome` label of `webhookd_attempts_total`).
pub const OUTCOMES: [&str; 3] = ["delivered", "retry", "failed"];

/// Status classes of an attempt's response (`status_class` label); `none` when there was no
/// response (timeout, connection error, refused destination).
pub const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// The operational events (`event_type` label of `webhookd_operational_webhooks_total`).
pub const OPERATIONAL_EVENTS: [&str; 9] = webhookd_core::operational::EVENT_TYPES;

/// A recorder with the latency buckets, not yet installed.
pub fn recorder() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("webhookd_delivery_latency_seconds".into()),
            &LATENCY_BUCKETS,
        )
        .expect("the latency buckets are not empty")
        .build_recorder()
}

/// Describes every series and registers it at zero. Call once the recorder is installed.
pub fn register_all() {
    metrics::describe_gauge!(
        "webhookd_build_info",
        "Always 1; the labels say which build runs."
    );
    metrics::gauge!("webhookd_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);

    metrics::describe_counter!(
        "webhookd_messages_ingested_total",
        "Messages accepted (202)."
    );
    metrics::counter!("webhookd_messages_ingested_total").absolute(0);

    metrics::describe_counter!(
        "webhookd_attempts_total",
        "Delivery attempts by outcome and response status class."
    );
    for outcome in OUTCOMES {
        for class in STATUS_CLASSES {
            metrics::counter!("webhookd_attempts_total", "outcome" => outcome, "status_class" => class)
                .absolute(0);
        }
    }
    metrics::describe_counter!(
        "webhookd_attempts_recorded_total",
        "Attempt records written to the store."
    );
    metrics::counter!("webhookd_attempts_recorded_total").absolute(0);
    metrics::describe_counter!(
        "webhookd_lease_releases_dropped_total",
        "Leases this node could not give back and could not keep to retry (its retry queue was \
         full): their deliveries stay leased to this node until it stops."
    );
    metrics::counter!("webhookd_lease_releases_dropped_total").absolute(0);

    metrics::describe_histogram!(
        "webhookd_delivery_latency_seconds",
        metrics::Unit::Seconds,
        "Time from ingest to a successful delivery."
    );
    // Registering the histogram makes its buckets appear, at zero, before the first sample.
    drop(metrics::histogram!("webhookd_delivery_latency_seconds"));

    metrics::describe_gauge!(
        "webhookd_queue_depth",
        "Pending deliveries in the store (global): due now, scheduled for later, leased by a node."
    );
    for state in ["due", "scheduled", "leased"] {
        metrics::gauge!("webhookd_queue_depth", "state" => state).set(0.0);
    }
    metrics::describe_gauge!(
        "webhookd_endpoints",
        "Endpoints failing (enabled, every attempt failing) and disabled (global)."
    );
    for health in ["failing", "disabled"] {
        metrics::gauge!("webhookd_endpoints", "health" => health).set(0.0);
    }
    metrics::describe_gauge!(
        "webhookd_deliveries_in_memory",
        "Deliveries this node holds in memory, queued or in flight (per node)."
    );
    metrics::gauge!("webhookd_deliveries_in_memory").set(0.0);

    metrics::describe_counter!(
        "webhookd_operational_webhooks_total",
        "Operational events emitted, by event type (each is delivered to the operational \
         endpoints that subscribe to it)."
    );
    for event_type in OPERATIONAL_EVENTS {
        metrics::counter!("webhookd_operational_webhooks_total", "event_type" => event_type)
            .absolute(0);
    }
    metrics::describe_counter!(
        "webhookd_retention_purged_total",
        "Rows purged by retention: message payloads erased and attempts deleted."
    );
    for what in ["payloads", "attempts"] {
        metrics::counter!("webhookd_retention_purged_total", "what" => what).absolute(0);
    }
}

/// Refreshes the global gauges from the store until the process ends. Every node runs it, so
/// each reports the cluster's values (aggregate with `max`).
pub async fn global_gauges(store: Arc<dyn Store>) {
    let mut every = tokio::time::interval(GLOBAL_GAUGES_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match store.queue_depth(webhookd_core::time::now()).await {
            Ok(depth) => {
                metrics::gauge!("webhookd_queue_depth", "state" => "due").set(depth.due as f64);
                metrics::gauge!("webhookd_queue_depth", "state" => "scheduled")
                    .set(depth.scheduled as f64);
                metrics::gauge!("webhookd_queue_depth", "state" => "leased")
                    .set(depth.leased as f64);
            }
            Err(error) => tracing::debug!(%error, "reading the queue depth failed"),
        }
        match store.endpoint_health_counts().await {
            Ok(counts) => {
                metrics::gauge!("webhookd_endpoints", "health" => "failing")
                    .set(counts.failing as f64);
                metrics::gauge!("webhookd_endpoints", "health" => "disabled")
                    .set(counts.disabled as f64);
            }
            Err(error) => tracing::debug!(%error, "reading endpoint health failed"),
        }
    }
}
