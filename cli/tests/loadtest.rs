//! `smartretry loadtest` end to end: it starts its own server, drives it, and reports
//! throughput, latency percentiles, memory and CPU (the numbers themselves are for
//! docs/performance.md, not asserted here).

use std::process::Command;

#[test]
fn a_short_load_test_reports_what_it_measured() {
    let out = Command::new(env!("CARGO_BIN_EXE_smartretry"))
        .args(["loadtest", "--duration", "1s", "--connections", "2", "--job-types", "5", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let recommendations = report["recommendations"].as_u64().unwrap();
    assert!(recommendations > 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["ok"].as_u64().unwrap() + report["refused_429"].as_u64().unwrap(), recommendations);
    assert!(report["attempts_recorded"].as_u64().unwrap() > 0, "outcomes are recorded too: {report}");
    let p = |k: &str| report[k].as_f64().unwrap();
    assert!(p("p50_ms") <= p("p99_ms") && p("p99_ms") <= p("max_ms"), "{report}");
    assert!(!report["rss_kb"].as_array().unwrap().is_empty(), "the spawned server's memory is sampled");
    assert!(stdout.contains("recommendations (") && stdout.contains("latency: p50"), "{stdout}");
}

#[test]
fn bad_arguments_are_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_smartretry"))
        .args(["loadtest", "--duration", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--duration"));
}
