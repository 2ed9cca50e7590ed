//! Logs and metrics. Logs go through a non-blocking writer, so the info line of every attempt
//! costs the hot path a queue push, not a write; its thread writes whatever lines are waiting
//! with one write (a buffer it flushes each time the queue is empty), not one write a line.
//! Metrics use one process-wide Prometheus recorder, rendered at `/metrics`.

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::PrometheusHandle;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Bytes of log lines the writing thread gathers before it writes them, at the most.
const LOG_BUFFER: usize = 64 * 1024;

/// Sets up logging for the process; keep the guard alive until exit so the last lines are
/// written.
pub fn init_logging(format: LogFormat) -> WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::BufWriter::with_capacity(
            LOG_BUFFER,
            std::io::stdout(),
        ));
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

/// The render function of the process-wide recorder, installed on first use with every series
/// of the catalog registered at zero (see [`crate::metrics`]).
pub fn metrics_render() -> webhookd_api::MetricsRender {
    let handle = METRICS.get_or_init(|| {
        let recorder = crate::metrics::recorder();
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => {
                crate::metrics::register_all();
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
