//! The options of one retried call, defined once for every helper.
//!
//! `@smart_retry(...)` (Python), `retry(fn, options)` and `wrap` (Node), `RetryOptions(...)`
//! (Kotlin) and `Options` (Go) take the same options. [`OPTIONS`] names each one with its
//! type, range, default and meaning, and how each language spells it; [`validate`] checks
//! what a user gave when the helper is built (at decoration, when `retry` is called, in
//! the constructor, in `NewRetrier`), so a wrong value fails there, naming the option as
//! the user wrote it, and never later at the first failure.
//!
//! Options that hold host objects (functions, exception types, an engine, a signal) are
//! listed too: the core checks their form (a function where a function is due) and the
//! host checks what only it can see (that a class is an exception class, that an object
//! is an `AbortSignal`). Errors are [`Error::InvalidType`] for a value of the wrong type
//! (hosts raise their `TypeError`) and [`Error::InvalidInput`] for a value out of range or
//! an unknown option.
//!
//! The limits, and why:
//! - attempts are 1–100: the range of the operator's hard cap (`guardrails.max_attempts`);
//!   the engine still applies that cap, whatever the call asks for;
//! - durations are > 0 and at most 2³¹−1 ms (24.8 days): the longest timer every host can
//!   set (a longer `setTimeout` fires at once in Node);
//! - labels are the engine's (1–256 bytes, no control characters): they become learning keys.

mod call;
mod spec;
mod validate;

pub use call::{CallBackoff, CallOptions, Given};
pub use spec::{Host, Spec, Type, BACKOFF_FIELDS, MAX_ATTEMPTS, MAX_DURATION_MS, OPTIONS};
pub use validate::{check_one, parse_jitter, parse_strategy, validate};

#[cfg(test)]
mod tests {
    use super::validate::edit_distance;
    use super::*;
    use crate::api::priority::Priority;
    use crate::backoff::{BackoffStrategy, Jitter};
    use crate::error::Result;

    fn check(host: Host, key: &str, value: Given) -> Result<CallOptions> {
        validate(host, &[(key.to_string(), value)])
    }

    #[test]
    fn every_option_is_spelled_by_some_host_and_names_are_unique() {
        for host in Host::ALL {
            let mut names: Vec<&str> = OPTIONS.iter().filter_map(|s| s.spelled(host)).collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "{host:?}: two options share a name");
        }
        for spec in OPTIONS {
            assert!(spec.spelled.iter().any(Option::is_some), "{}", spec.name);
        }
    }

    #[test]
    fn durations_in_the_hosts_unit() {
        let py = check(Host::Python, "deadline", Given::Float(2.5)).unwrap();
        assert_eq!(py.deadline_ms, Some(2500));
        let js = check(Host::Node, "deadline", Given::Int(2500)).unwrap();
        assert_eq!(js.deadline_ms, Some(2500));
        // Rounded up: a positive duration never becomes 0.
        assert_eq!(check(Host::Python, "timeout", Given::Float(0.0001)).unwrap().timeout_ms, Some(1));
        for bad in [Given::Float(f64::INFINITY), Given::Float(f64::NAN), Given::Int(-1), Given::Int(0)] {
            let e = check(Host::Python, "deadline", bad.clone()).unwrap_err();
            assert_eq!((e.kind(), e.field()), ("invalid_input", Some("deadline")), "{bad:?}");
        }
        let e = check(Host::Python, "deadline", Given::Str("5".into())).unwrap_err();
        assert_eq!((e.kind(), e.field()), ("invalid_type", Some("deadline")));
        assert!(e.to_string().contains("seconds"), "{e}");
        // The longest timer every host can set, in either unit.
        assert!(check(Host::Node, "timeout", Given::Int(2_147_483_647)).is_ok());
        assert!(check(Host::Node, "timeout", Given::Int(2_147_483_648)).is_err());
    }

    #[test]
    fn attempts_up_to_the_hard_cap() {
        assert_eq!(check(Host::Node, "maxAttempts", Given::Int(100)).unwrap().max_attempts, Some(100));
        for n in [0, -1, 101, i128::MAX] {
            let e = check(Host::Node, "maxAttempts", Given::Int(n)).unwrap_err();
            assert_eq!((e.kind(), e.field()), ("invalid_input", Some("maxAttempts")), "{n}");
        }
        // A fraction: a bad value in JavaScript, a wrong type in Python.
        assert_eq!(check(Host::Node, "maxAttempts", Given::Float(2.5)).unwrap_err().kind(), "invalid_input");
        assert_eq!(
            check(Host::Python, "max_attempts", Given::Float(3.0)).unwrap_err().kind(),
            "invalid_type"
        );
        assert_eq!(
            check(Host::Python, "max_attempts", Given::Bool(true)).unwrap_err().kind(),
            "invalid_type"
        );
    }

    #[test]
    fn unknown_options_are_named_with_a_suggestion() {
        let e = check(Host::Node, "maxAtempts", Given::Int(3)).unwrap_err();
        assert_eq!(e.field(), Some("maxAtempts"));
        assert!(e.to_string().contains("did you mean maxAttempts?"), "{e}");
        // Another host's spelling is not this host's option.
        let e = check(Host::Node, "max_attempts", Given::Int(3)).unwrap_err();
        assert!(e.to_string().contains("maxAttempts"), "{e}");
        let e = check(Host::Node, "colour", Given::Int(3)).unwrap_err();
        assert!(e.to_string().contains("the options are"), "{e}");
    }

    #[test]
    fn labels_bools_priorities_functions() {
        assert_eq!(
            check(Host::Node, "jobType", Given::Str(String::new())).unwrap_err().field(),
            Some("jobType")
        );
        assert_eq!(check(Host::Node, "jobType", Given::Int(3)).unwrap_err().kind(), "invalid_type");
        let e = check(Host::Python, "idempotent", Given::Str("no".into())).unwrap_err();
        assert_eq!((e.kind(), e.field()), ("invalid_type", Some("idempotent")));
        assert_eq!(check(Host::Go, "NonIdempotent", Given::Bool(true)).unwrap().idempotent, Some(false));
        assert_eq!(
            check(Host::Node, "priority", Given::Str("HIGH".into())).unwrap().priority,
            Some(Priority::High)
        );
        assert_eq!(
            check(Host::Node, "priority", Given::Str("urgent".into())).unwrap_err().kind(),
            "invalid_input"
        );
        assert_eq!(check(Host::Node, "onRetry", Given::Int(1)).unwrap_err().kind(), "invalid_type");
        assert!(check(Host::Node, "onRetry", Given::Function).is_ok());
        assert!(check(Host::Node, "signal", Given::Object("AbortSignal".into())).is_ok());
        assert_eq!(check(Host::Node, "signal", Given::Str("x".into())).unwrap_err().kind(), "invalid_type");
        assert!(check(Host::Node, "fallback", Given::Int(0)).is_ok());
        assert!(check(Host::Node, "signal", Given::Absent).is_ok());
    }

    #[test]
    fn schedules() {
        let map = |fields: &[(&str, Given)]| {
            Given::Map(fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
        };
        let ok = check(
            Host::Python,
            "wait",
            map(&[
                ("strategy", Given::Str("linear".into())),
                ("base", Given::Float(0.5)),
                ("max", Given::Int(10)),
                ("jitter", Given::Str("full".into())),
            ]),
        )
        .unwrap()
        .backoff
        .unwrap();
        assert_eq!(
            ok,
            CallBackoff {
                strategy: BackoffStrategy::Linear,
                base_ms: 500,
                max_ms: Some(10_000),
                multiplier: 2.0,
                jitter: Jitter::Full
            }
        );
        assert!(ok.validate().is_ok());
        let e =
            check(Host::Python, "wait", map(&[("base", Given::Int(5)), ("max", Given::Int(1))])).unwrap_err();
        assert_eq!(e.field(), Some("wait.max"));
        let e = check(Host::Go, "Backoff", map(&[("base", Given::Int(5))])).unwrap_err();
        assert_eq!(e.field(), Some("Backoff.base"));
        let e = check(Host::Node, "backoff", map(&[("jitter", Given::Int(150))])).unwrap_err();
        assert_eq!(e.field(), Some("backoff.jitter"));
        assert_eq!(parse_jitter("25%").unwrap(), Jitter::Percent(25.0));
        assert_eq!(parse_jitter("FULL").unwrap(), Jitter::Full);
        assert_eq!(parse_jitter("150%").unwrap_err().field(), Some("jitter"));
        assert_eq!(parse_strategy("Linear").unwrap(), BackoffStrategy::Linear);
        let e = check(Host::Node, "backoff", map(&[("strategy", Given::Str("random".into()))])).unwrap_err();
        assert_eq!(e.field(), Some("backoff.strategy"));
        let e = check(Host::Node, "backoff", Given::Int(3)).unwrap_err();
        assert_eq!((e.kind(), e.field()), ("invalid_type", Some("backoff")));
        // The JSON form the engine receives round-trips, and rejects unknown fields.
        let json = serde_json::to_string(&ok).unwrap();
        assert_eq!(serde_json::from_str::<CallBackoff>(&json).unwrap(), ok);
        assert!(serde_json::from_str::<CallBackoff>(r#"{"base":1}"#).is_err());
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("maxattempts", "maxatempts"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
