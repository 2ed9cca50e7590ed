//! `/metrics`: every series of the catalog, with its type and label sets, on a fresh node (the
//! real binary, so nothing else in this process has counted anything) and on the same node once
//! busy.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::harness::{
    Backend, HOOK, Receiver, Reply, ServerProcess, TestDatabase, eventually, free_port,
};

/// One scrape: each family's type, and each sample's labels and value.
struct Scrape {
    types: BTreeMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = value.parse().expect("a numeric sample");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("label=value");
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            samples.push((name.to_owned(), labels, value));
        }
        Self { types, samples }
    }

    fn label_sets(&self, name: &str) -> BTreeSet<BTreeMap<String, String>> {
        self.samples
            .iter()
            .filter(|(sample, _, _)| sample == name)
            .map(|(_, labels, _)| labels.clone())
            .collect()
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .find(|(sample, have, _)| {
                sample == name
                    && labels.len() == have.len()
                    && labels
                        .iter()
                        .all(|(key, value)| have.get(*key).map(String::as_str) == Some(*value))
            })
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
            .2
    }

    /// Every family of the catalog, with its type and every label set.
    fn assert_catalog(&self) {
        let expected_types = [
            ("webhookd_build_info", "gauge"),
            ("webhookd_messages_ingested_total", "counter"),
            ("webhookd_attempts_total", "counter"),
            ("webhookd_attempts_recorded_total", "counter"),
            ("webhookd_lease_releases_dropped_total", "counter"),
            ("webhookd_delivery_latency_seconds", "histogram"),
            ("webhookd_queue_depth", "gauge"),
            ("webhookd_endpoints", "gauge"),
            ("webhookd_deliveries_in_memory", "gauge"),
            ("webhookd_operational_webhooks_total", "counter"),
            ("webhookd_retention_purged_total", "counter"),
        ];
        for (name, kind) in expected_types {
            assert_eq!(
                self.types.get(name).map(String::as_str),
                Some(kind),
                "the type of {name}"
            );
        }
        let sets = |label: &str, values: &[&str]| -> BTreeSet<BTreeMap<String, String>> {
            values
                .iter()
                .map(|value| BTreeMap::from([(label.to_owned(), (*value).to_owned())]))
                .collect()
        };
        let mut attempts = BTreeSet::new();
        for outcome in ["delivered", "retry", "failed"] {
            for class in ["1xx", "2xx", "3xx", "4xx", "5xx", "none"] {
                attempts.insert(BTreeMap::from([
                    ("outcome".to_owned(), outcome.to_owned()),
                    ("status_class".to_owned(), class.to_owned()),
                ]));
            }
        }
        assert_eq!(self.label_sets("webhookd_attempts_total"), attempts);
        assert_eq!(
            self.label_sets("webhookd_queue_depth"),
            sets("state", &["due", "scheduled", "leased"])
        );
        assert_eq!(
            self.label_sets("webhookd_endpoints"),
            sets("health", &["failing", "disabled"])
        );
        assert_eq!(
            self.label_sets("webhookd_retention_purged_total"),
            sets("what", &["payloads", "attempts"])
        );
        assert_eq!(
            self.label_sets("webhookd_operational_webhooks_total"),
            sets(
                "event_type",
                &[
                    "endpoint.created",
                    "endpoint.updated",
                    "endpoint.deleted",
                    "endpoint.disabled",
                    "endpoint.enabled",
                    "message.attempt.exhausted",
                    "message.attempt.failing",
                    "message.attempt.recovered",
                    "background_task.finished",
                ]
            )
        );
        let version = self.label_sets("webhookd_build_info");
        assert_eq!(version.len(), 1);
        assert!(version.iter().all(|labels| labels.contains_key("version")));
        let buckets: BTreeSet<String> = self
            .label_sets("webhookd_delivery_latency_seconds_bucket")
            .into_iter()
            .map(|labels| labels["le"].clone())
            .collect();
        for le in ["0.001", "0.01", "0.1", "1", "10", "60", "+Inf"] {
            assert!(buckets.contains(le), "bucket le={le} in {buckets:?}");
        }
        for part in ["_sum", "_count"] {
            let name = format!("webhookd_delivery_latency_seconds{part}");
            assert_eq!(self.label_sets(&name).len(), 1, "{name}");
        }
        for name in [
            "webhookd_messages_ingested_total",
            "webhookd_attempts_recorded_total",
            "webhookd_deliveries_in_memory",
        ] {
            assert_eq!(self.label_sets(name).len(), 1, "{name} has one series");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_series_is_there_on_a_fresh_node_and_on_a_busy_one() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let node = ServerProcess::start(&database, free_port(), &[]).await;

    let fresh = Scrape::parse(&node.metrics_text().await);
    fresh.assert_catalog();
    for (name, labels, value) in &fresh.samples {
        let expected = if name == "webhookd_build_info" {
            1.0
        } else {
            0.0
        };
        assert_eq!(*value, expected, "{name} {labels:?} on a fresh node");
    }

    let receiver = Receiver::start().await;
    receiver.fallback(HOOK, Reply::status(200));
    receiver.fallback("/gone", Reply::status(410));
    let app = node.create_app().await;
    node.create_endpoint(&app, json!({ "url": receiver.url(HOOK) }))
        .await;
    node.create_endpoint(&app, json!({ "url": receiver.url("/gone") }))
        .await;
    for n in 0..10 {
        node.send_event(&app, json!({ "n": n })).await;
    }
    receiver.wait_for_count(HOOK, 10).await;
    let busy = eventually("the busy node's metrics to count every attempt", || {
        let node = &node;
        async move {
            let busy = Scrape::parse(&node.metrics_text().await);
            let delivered = busy.value(
                "webhookd_attempts_total",
                &[("outcome", "delivered"), ("status_class", "2xx")],
            );
            let gone = busy.value(
                "webhookd_attempts_total",
                &[("outcome", "failed"), ("status_class", "4xx")],
            );
            let disabled = busy.value("webhookd_endpoints", &[("health", "disabled")]);
            if delivered >= 10.0 && gone >= 1.0 && disabled >= 1.0 {
                Ok(busy)
            } else {
                Err(format!(
                    "delivered {delivered}, 410s {gone}, disabled {disabled}"
                ))
            }
        }
    })
    .await;
    busy.assert_catalog();
    assert_eq!(busy.value("webhookd_messages_ingested_total", &[]), 10.0);
    assert!(busy.value("webhookd_delivery_latency_seconds_count", &[]) >= 10.0);
    assert!(
        busy.value(
            "webhookd_delivery_latency_seconds_bucket",
            &[("le", "+Inf")]
        ) >= 10.0
    );
}
