//! The result of a run: one JSON object on stdout, and whether the run passed.
//!
//! Rates are taken over wall time: `ingest_rate` is acknowledged messages over the time from
//! the first send to the last answer; `delivered_rate` is deliveries over the time from the
//! first send to the last arrival. Latency is from the start of a message's POST to its first
//! arrival at the sink, over every (acknowledged message, endpoint) that arrived, in an HDR
//! histogram. A field that does not apply (latency with no endpoint, the server's figures with
//! `--url`) is `null`.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::load::Ledger;
use super::sink::Recorder;

const NANOS_PER_SECOND: f64 = 1e9;
const KIB_PER_MIB: f64 = 1024.0;

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// `end-to-end`, `ingest` or `backlog`.
    pub(crate) mode: &'static str,
    pub(crate) messages: u64,
    pub(crate) acked: u64,
    pub(crate) failed: u64,
    /// Failed messages by final status code or reason.
    pub(crate) failures: BTreeMap<String, u64>,
    pub(crate) apps: usize,
    pub(crate) endpoints: usize,
    /// With `--ordered`: the endpoints deliver in order.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) ordered: bool,
    pub(crate) concurrency: Option<usize>,
    pub(crate) rate: Option<f64>,
    pub(crate) payload_bytes: usize,
    pub(crate) ingest_seconds: f64,
    pub(crate) ingest_rate: f64,
    pub(crate) delivered: Option<u64>,
    pub(crate) delivered_rate: Option<f64>,
    pub(crate) latency_ms: Option<Latency>,
    pub(crate) lost: Option<u64>,
    pub(crate) duplicates: Option<u64>,
    /// Requests at the sink that named no expected delivery.
    pub(crate) unexpected: Option<u64>,
    /// With `--verify`: deliveries whose signature did not verify.
    pub(crate) bad_signatures: Option<u64>,
    /// Whether every expected delivery arrived before `--timeout`.
    pub(crate) timed_out: bool,
    pub(crate) server: Option<ServerFigures>,
    /// With `--backlog`: the dead endpoint's delivery counts from the API.
    pub(crate) endpoint_stats: Option<serde_json::Value>,
    /// The bench process itself (load generator and sink), which shares the cores.
    pub(crate) bench: Option<ProcessFigures>,
    /// The whole machine during the run, to tell a clean run from one that shared the cores.
    pub(crate) machine: Option<MachineFigures>,
}

impl Report {
    /// A run passes when nothing was lost, nothing failed and every signature verified.
    pub(crate) fn passed(&self) -> bool {
        self.failed == 0 && self.lost.unwrap_or(0) == 0 && self.bad_signatures.unwrap_or(0) == 0
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServerFigures {
    /// Resident memory right after the health check passed, before any load.
    pub(crate) idle_rss_mib: f64,
    pub(crate) peak_rss_mib: f64,
    /// Resident memory at the end of the run.
    pub(crate) rss_mib: f64,
    pub(crate) cpu_seconds: f64,
    pub(crate) database_bytes: u64,
    /// The server's busiest threads and their CPU seconds: one near the run's wall time is
    /// the bound.
    pub(crate) busiest_threads: Vec<ThreadFigures>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ThreadFigures {
    pub(crate) name: String,
    pub(crate) cpu_seconds: f64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct ProcessFigures {
    pub(crate) peak_rss_mib: f64,
    pub(crate) cpu_seconds: f64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct MachineFigures {
    pub(crate) cores: usize,
    pub(crate) wall_seconds: f64,
    /// CPU seconds spent by every process during the run.
    pub(crate) busy_cpu_seconds: f64,
    /// The part of it that was neither the local server nor the bench: other work on the
    /// machine, which a clean run keeps near 0 (with `--url`, a server on this machine counts
    /// here).
    pub(crate) other_cpu_seconds: Option<f64>,
}

/// What the sink's recorder and the ledger say about deliveries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deliveries {
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) latency: Option<Latency>,
}

/// Matches every acknowledged message's send with its arrivals.
pub(crate) fn deliveries(
    ledger: &Ledger,
    recorder: &Recorder,
    messages: u64,
    endpoints: u64,
) -> Deliveries {
    // Microseconds from 1 µs to an hour, 3 significant digits.
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).ok();
    let (mut delivered, mut lost) = (0, 0);
    for seq in 0..messages {
        let Some(sent) = ledger.acked_send(seq) else {
            continue;
        };
        for endpoint in 0..endpoints {
            match recorder.arrival(seq, endpoint) {
                Some(arrived) => {
                    delivered += 1;
                    let micros = arrived.saturating_sub(sent) / 1_000;
                    if let Some(histogram) = histogram.as_mut() {
                        histogram.saturating_record(micros.max(1));
                    }
                }
                None => lost += 1,
            }
        }
    }
    let latency = histogram
        .filter(|histogram| !histogram.is_empty())
        .map(|histogram| {
            let ms = |micros: u64| round3(micros as f64 / 1_000.0);
            Latency {
                p50: ms(histogram.value_at_quantile(0.50)),
                p90: ms(histogram.value_at_quantile(0.90)),
                p99: ms(histogram.value_at_quantile(0.99)),
                max: ms(histogram.max()),
            }
        });
    Deliveries {
        delivered,
        lost,
        latency,
    }
}

/// Seconds between two [`super::Clock`] readings.
pub(crate) fn seconds(from: u64, to: u64) -> f64 {
    to.saturating_sub(from) as f64 / NANOS_PER_SECOND
}

/// `count / seconds`, 0 when no time passed.
pub(crate) fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        round3(count as f64 / seconds)
    } else {
        0.0
    }
}

pub(crate) fn mib(kib: u64) -> f64 {
    round3(kib as f64 / KIB_PER_MIB)
}

pub(crate) fn round3(value: f64) -> f64 {
    (value * 1_000.0).round() / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_sizes_are_rounded() {
        assert_eq!(rate(10, 0.0), 0.0);
        assert_eq!(rate(10, 3.0), 3.333);
        assert_eq!(mib(1536), 1.5);
        assert_eq!(seconds(1_000_000_000, 3_500_000_000), 2.5);
    }
}
