//! `webhookd bench` runs end to end as a user runs it: the real binary starts its sink and a
//! server child, sends through the public API and reports zero lost. No timing is asserted:
//! figures live in BENCHMARKS.md.

use std::process::Command;

use serde_json::Value;

/// Runs `webhookd bench` with `flags`; answers the exit code and the JSON report.
fn bench(flags: &[&str]) -> (i32, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_webhookd"))
        .arg("bench")
        .args(flags)
        .env_remove("WEBHOOKD_DATABASE_URL")
        .env_remove("WEBHOOKD_API_TOKENS")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("the report is JSON ({error}): {stdout}\nstderr: {stderr}"));
    (output.status.code().expect("the bench exits"), report)
}

#[test]
fn end_to_end_run_delivers_every_message_once() {
    let (code, report) = bench(&["--messages", "300", "--concurrency", "8"]);
    assert_eq!(report["acked"], 300, "{report:#}");
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_eq!(report["lost"], 0, "{report:#}");
    assert_eq!(report["duplicates"], 0, "{report:#}");
    assert_eq!(report["delivered"], 300, "{report:#}");
    assert!(report["latency_ms"]["p99"].is_number(), "{report:#}");
    assert!(report["server"]["peak_rss_mib"].is_number(), "{report:#}");
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn ingest_only_run_awaits_nothing_at_the_sink() {
    let (code, report) = bench(&["--endpoints", "0", "--messages", "200"]);
    assert_eq!(report["mode"], "ingest", "{report:#}");
    assert_eq!(report["acked"], 200, "{report:#}");
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_eq!(report["lost"], 0, "{report:#}");
    assert!(report["latency_ms"].is_null(), "{report:#}");
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn bad_flags_exit_with_a_usage_error() {
    let status = Command::new(env!("CARGO_BIN_EXE_webhookd"))
        .args(["bench", "--rate", "0"])
        .output()
        .expect("the binary runs");
    assert_eq!(status.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&status.stderr).contains("--rate"));
}

#[test]
fn console_run_seeds_and_times_every_page() {
    let (code, report) = bench(&["--console", "2000"]);
    assert_eq!(report["mode"], "console", "{report:#}");
    assert_eq!(report["messages"], 2000, "{report:#}");
    let calls = report["calls"].as_array().expect("the timed calls");
    assert!(calls.len() >= 20, "{report:#}");
    for call in calls {
        assert!(call["p50_ms"].is_number(), "{call}");
        // Every list finds something in the seeded data: each filter matches some messages.
        if let Some(items) = call["items"].as_u64() {
            assert!(items > 0, "nothing found by {call}");
        }
    }
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(code, 0, "{report:#}");

    let refused = Command::new(env!("CARGO_BIN_EXE_webhookd"))
        .args(["bench", "--console", "0"])
        .output()
        .expect("the binary runs");
    assert_eq!(refused.status.code(), Some(2));
}
