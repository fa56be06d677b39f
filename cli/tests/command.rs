//! The `smartretry simulate` command as a user runs it: a scenario of their own, the
//! report files, the exported history, and clear errors.

use std::process::Command;

fn smartretry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smartretry"))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("smartretry-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A scenario of the user's own in `dir`: 503s that recover 3–5 s after the first failure.
fn user_scenario(dir: &std::path::Path, calls: u32) -> std::path::PathBuf {
    let scenario = dir.join("mine.json");
    let json = r#"{"name": "my_api", "job_type": "sync_orders", "calls": CALLS, "arrival_ms": 300,
        "downstream": {"kind": "transient", "failure": {"probability": 0.3, "status": 503,
          "error_class": "service_unavailable",
          "recovery": [{"weight": 1, "after": "uniform", "min_ms": 3000, "max_ms": 5000}]}}}"#;
    std::fs::write(&scenario, json.replace("CALLS", &calls.to_string())).unwrap();
    scenario
}

#[test]
fn a_user_scenario_yields_table_csv_chart_and_history() {
    let dir = temp_dir("user");
    let scenario = user_scenario(&dir, 800);
    let out = smartretry()
        .args(["simulate", "--file"])
        .arg(&scenario)
        .arg("--out")
        .arg(&dir)
        .arg("--export")
        .arg(dir.join("history.jsonl"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("== my_api (seed 1, deadline 30m)")
            && stdout.contains("smartretry ")
            && stdout.contains("lost recoverable")
            && stdout.contains("oracle"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(dir.join("report.csv")).unwrap();
    // Four baselines, smartretry rules-only, as users get it and with 6 attempts, the
    // best-schedule bound, the oracle.
    assert!(csv.starts_with("scenario,policy,seed,") && csv.lines().count() == 10, "{csv}");
    assert!(csv.contains(",smartretry_document_attempts,1,") && csv.contains(",lost_recoverable,"), "{csv}");
    assert!(csv.contains(",best_schedule_bound,") && stdout.contains("bound: "), "{csv}");
    assert!(std::fs::read_to_string(dir.join("report.svg")).unwrap().contains("<svg"));
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let attempts: Vec<smartretry::Attempt> =
        history.lines().map(|l| smartretry::Attempt::from_json(l).unwrap()).collect();
    assert!(
        attempts.len() > 50 && attempts.iter().all(|a| a.job_type == "sync_orders" && a.attempt_number >= 2)
    );
}

#[test]
fn bad_input_is_named_and_fails_cleanly() {
    let dir = temp_dir("bad");
    let scenario = dir.join("bad.json");
    std::fs::write(&scenario, r#"{"name": "x", "job_type": "y", "calls": 10, "arrival_ms": 0,
        "downstream": {"kind": "rate_limit", "window_ms": 1000, "limit": 5, "retry_after_probability": 0.5}}"#)
    .unwrap();
    let out = smartretry().args(["simulate", "--file"]).arg(&scenario).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("arrival_ms"));
    let out = smartretry().args(["simulate", "--scenario", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("payment_503_peak"), "lists the built-in ones");
    let out = smartretry().args(["simulate", "--seeds", "6-1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seeds: \"6-1\""), "{out:?}");
}

#[test]
fn several_seeds_make_a_summary_to_paste() {
    let dir = temp_dir("seeds");
    let scenario = user_scenario(&dir, 400);
    let out = smartretry()
        .args(["simulate", "--seeds", "1-2", "--markdown", "--file"])
        .arg(&scenario)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("### my_api — ") && stdout.contains("(deadline 30m, seeds 1–2)"), "{stdout}");
    assert!(
        stdout.contains("| policy | restricted ×oracle |") && stdout.contains("| --- | ---: |"),
        "{stdout}"
    );
    assert!(stdout.contains("| 1 | ") && stdout.contains("| 2 | "), "{stdout}");
    assert!(stdout.contains("### all scenarios") && stdout.contains("| my_api | "), "{stdout}");
    let csv = std::fs::read_to_string(dir.join("seeds.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.starts_with("my_api,smartretry,1,")).count(), 1, "{csv}");
    assert_eq!(csv.lines().filter(|l| l.starts_with("my_api,smartretry,2,")).count(), 1, "{csv}");
}

#[test]
fn the_listing_documents_every_field_beside_the_scenarios() {
    let out = smartretry().args(["simulate", "--list"]).output().unwrap();
    assert!(out.status.success());
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listing["fields"]["burst"].as_str().unwrap().contains("every_ms"), "{listing}");
    assert!(listing["fields"]["deadline_ms"].as_str().unwrap().contains("30 min"), "{listing}");
    let scenarios = listing["scenarios"].as_array().unwrap();
    assert!(scenarios.len() >= 15);
    let bursty = scenarios.iter().find(|s| s["name"] == "burst_rate_limit_half_retry_after").unwrap();
    assert_eq!(bursty["burst"]["size"], 200);
}

#[test]
fn the_ml_row_needs_a_model_and_says_why_there_is_none() {
    let dir = temp_dir("ml");
    let scenario = user_scenario(&dir, 300);
    let run = |extra: &[&std::ffi::OsStr]| {
        let out = smartretry()
            .args(["simulate", "--file"])
            .arg(&scenario)
            .arg("--out")
            .arg(&dir)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stdout = run(&[]);
    assert!(stdout.contains("ML tier: no row (pass --model MODEL.onnx"), "{stdout}");
    assert!(!stdout.contains("smartretry_ml"), "{stdout}");
    // A model that cannot be registered is named with the reason; the run completes.
    let model = dir.join("broken.onnx");
    std::fs::write(&model, b"not a model").unwrap();
    let stdout = run(&["--model".as_ref(), model.as_os_str()]);
    assert!(stdout.contains("ML tier: no row,") && stdout.contains("broken.json"), "{stdout}");
    assert!(!stdout.contains("smartretry_ml") && stdout.contains("oracle"), "{stdout}");
}
