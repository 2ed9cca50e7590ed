//! Logs and metrics. Logs go through a non-blocking writer, so the info line of every attempt
//! costs the hot path a queue push, not a write. Metrics use one process-wide Prometheus
//! recorder, rendered at `/metrics`.

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Sets up logging for the process; keep the guard alive until exit so the last lines are
/// written.
pub fn init_logging(format: LogFormat) -> WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stdout());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    if let Err(error) = result {
        eprintln!("logging was already set up: {error}");
    }
    guard
}

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The render function of the process-wide recorder, installed on first use.
pub fn metrics_render() -> webhookd_api::MetricsRender {
    let handle = METRICS.get_or_init(|| {
        // Latency is a histogram with the rollup's buckets, so that it adds up across nodes
        // and agrees with the console's overview.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("webhookd_delivery_latency_seconds".into()),
                &webhookd_core::latency::bounds_seconds(),
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => {
                describe();
                Some(handle)
            }
            Err(_) => None,
        }
    });
    let handle = handle.clone();
    Arc::new(move || {
        handle
            .as_ref()
            .map(PrometheusHandle::render)
            .unwrap_or_default()
    })
}

fn describe() {
    metrics::describe_counter!(
        "webhookd_messages_ingested_total",
        "Messages accepted (202)."
    );
    metrics::describe_counter!("webhookd_attempts_total", "Delivery attempts by outcome.");
    metrics::describe_counter!(
        "webhookd_attempts_recorded_total",
        "Attempt records written."
    );
    metrics::describe_histogram!(
        "webhookd_delivery_latency_seconds",
        "Time from ingest to a successful delivery."
    );
}
