//! The options contract's shared vectors (`tests/vectors/options/retry_options.json`),
//! through `options::validate` for each host, as each helper hands its options over.
//! The helpers' own suites run the same file through `@smart_retry`, `retry()`,
//! `RetryOptions` and `Options`.

use std::path::PathBuf;

use serde_json::Value;
use smartretry::options::{validate, Given, Host, OPTIONS};

fn vectors() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/options/retry_options.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// A vector's value as `host` would hand it over.
fn given(v: &Value, host: Host) -> Given {
    match v.get("$").and_then(Value::as_str) {
        Some("nan") => Given::Float(f64::NAN),
        Some("inf") => Given::Float(f64::INFINITY),
        Some("-inf") => Given::Float(f64::NEG_INFINITY),
        Some("long") => Given::Str("x".repeat(v["length"].as_u64().unwrap_or(300) as usize)),
        _ => match v {
            // Kotlin and Go spell the schedule's fields their own way.
            Value::Object(map) if host == Host::Go => {
                Given::Map(map.iter().map(|(k, x)| (capitalise(k), given(x, host))).collect())
            }
            Value::Object(map) => Given::Map(map.iter().map(|(k, x)| (k.clone(), given(x, host))).collect()),
            // JSON numbers are floats in JS: an integral one is an integer there too.
            Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e15) => {
                Given::Int(n.as_f64().unwrap_or_default() as i128)
            }
            other => Given::from_json(other),
        },
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn hosts_of(case: &Value) -> Vec<Host> {
    match case.get("hosts").and_then(Value::as_array) {
        Some(names) => names.iter().map(|n| Host::parse(n.as_str().unwrap_or_default()).unwrap()).collect(),
        None => Host::ALL.to_vec(),
    }
}

fn spelled(option: &str, host: Host) -> &'static str {
    OPTIONS
        .iter()
        .find(|s| s.name == option)
        .and_then(|s| s.spelled(host))
        .unwrap_or_else(|| panic!("{option} is not an option of {host:?}"))
}

#[test]
fn invalid_options_are_refused_naming_the_option() {
    let v = vectors();
    let cases = v["invalid"].as_array().expect("invalid[]");
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for case in cases {
        for host in hosts_of(case) {
            let name = spelled(case["option"].as_str().unwrap(), host);
            let value = given(&case["value"], host);
            let err = validate(host, &[(name.to_string(), value)])
                .expect_err(&format!("{host:?} accepted {name} = {}", case["value"]));
            let field = match case.get("sub").and_then(Value::as_str) {
                Some(sub) if host == Host::Go => format!("{name}.{}", capitalise(sub)),
                Some(sub) => format!("{name}.{sub}"),
                None => name.to_string(),
            };
            assert_eq!(err.field(), Some(field.as_str()), "{host:?} {case}: {err}");
            assert_eq!(err.kind(), case["kind"].as_str().unwrap(), "{host:?} {case}: {err}");
        }
    }
}

#[test]
fn valid_options_are_accepted() {
    let v = vectors();
    for case in v["valid"].as_array().expect("valid[]") {
        for host in hosts_of(case) {
            let name = spelled(case["option"].as_str().unwrap(), host);
            let value = given(&case["value"], host);
            let out = validate(host, &[(name.to_string(), value)])
                .unwrap_or_else(|e| panic!("{host:?} refused {name} = {}: {e}", case["value"]));
            if let Some(ms) = case.get("expect_ms").and_then(|m| m.get(host.as_str())) {
                let got = out.deadline_ms.or(out.timeout_ms);
                assert_eq!(got, ms.as_u64(), "{host:?} {case}");
            }
            if let Some(n) = case.get("expect").and_then(|e| e.get("max_attempts")) {
                assert_eq!(out.max_attempts.map(u64::from), n.as_u64(), "{host:?} {case}");
            }
        }
    }
}
