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

use serde::{Deserialize, Serialize};

use crate::api::check::check_label;
use crate::api::priority::Priority;
use crate::backoff::{Backoff, BackoffStrategy, Jitter};
use crate::error::{Error, Result};

/// The longest duration an option takes, in ms (2³¹−1: the longest timer every host can set).
pub const MAX_DURATION_MS: u64 = 2_147_483_647;
/// The range of `max_attempts` (that of the operator's hard cap, `guardrails.max_attempts`).
pub const MAX_ATTEMPTS: u32 = 100;

/// Which helper asks: how it spells option names and in which unit it takes durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host {
    /// snake_case; durations in seconds (`deadline=2.5`).
    Python,
    /// camelCase; durations in milliseconds.
    Node,
    /// camelCase; `kotlin.time.Duration`, handed over in milliseconds.
    Kotlin,
    /// PascalCase; `time.Duration`, handed over in milliseconds.
    Go,
}

impl Host {
    pub const ALL: [Host; 4] = [Host::Python, Host::Node, Host::Kotlin, Host::Go];

    pub fn as_str(self) -> &'static str {
        match self {
            Host::Python => "python",
            Host::Node => "node",
            Host::Kotlin => "kotlin",
            Host::Go => "go",
        }
    }

    pub fn parse(name: &str) -> Result<Host> {
        Host::ALL.into_iter().find(|h| h.as_str().eq_ignore_ascii_case(name)).ok_or_else(|| {
            Error::invalid("host", format!("expected python, node, kotlin or go, got {name:?}"))
        })
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Milliseconds per unit of the durations this host hands over.
    fn ms_per_unit(self) -> f64 {
        if self == Host::Python {
            1000.0
        } else {
            1.0
        }
    }

    fn unit(self) -> &'static str {
        if self == Host::Python {
            "seconds"
        } else {
            "ms"
        }
    }

    /// JavaScript has one number type: a fraction where an integer is due is a bad
    /// value there, but a float given for an int is a type error in Python.
    fn one_number_type(self) -> bool {
        self == Host::Node
    }
}

/// What an option holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A label the engine learns or counts under: 1–256 bytes, no control characters.
    Label,
    /// Attempts in total, the first included: an integer 1–[`MAX_ATTEMPTS`].
    Attempts,
    /// A duration > 0 and at most [`MAX_DURATION_MS`], in the host's unit.
    Duration,
    Bool,
    /// `low`, `normal`, `high` or `critical`.
    Priority,
    /// A per-call schedule: see [`BACKOFF_FIELDS`].
    Backoff,
    /// A function (a hook or a predicate).
    Function,
    /// A host object the host checks itself (what it must be, in words).
    HostValue(&'static str),
}

impl Type {
    /// In words, for errors and the documentation.
    pub fn describe(self) -> &'static str {
        match self {
            Type::Label => "a string of 1–256 bytes",
            Type::Attempts => "an integer 1–100",
            Type::Duration => "a duration > 0 (at most 24.8 days)",
            Type::Bool => "a boolean",
            Type::Priority => "low, normal, high or critical",
            Type::Backoff => "a schedule (strategy, base, max, multiplier, jitter)",
            Type::Function => "a function",
            Type::HostValue(what) => what,
        }
    }
}

/// One option: its canonical (snake_case) name, how each host spells it (Python, Node,
/// Kotlin, Go; `None` where a helper has no such option), type, default and meaning.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub spelled: [Option<&'static str>; 4],
    pub ty: Type,
    pub default: &'static str,
    pub meaning: &'static str,
}

impl Spec {
    pub fn spelled(&self, host: Host) -> Option<&'static str> {
        self.spelled[host.index()]
    }
}

const fn all(py: &'static str, js: &'static str, go: &'static str) -> [Option<&'static str>; 4] {
    [Some(py), Some(js), Some(js), Some(go)]
}

/// Every option of a retried call.
pub const OPTIONS: &[Spec] = &[
    Spec {
        name: "job_type",
        spelled: all("job_type", "jobType", "JobType"),
        ty: Type::Label,
        default: "the function's name (required in Kotlin and Go)",
        meaning: "what the engine learns under: calls of one job type share a downstream",
    },
    Spec {
        name: "tenant",
        spelled: all("tenant", "tenant", "Tenant"),
        ty: Type::Label,
        default: "none",
        meaning: "whose traffic this is: retry budgets and fairness are kept per tenant",
    },
    Spec {
        name: "job_id",
        spelled: [None, Some("jobId"), Some("jobId"), Some("JobID")],
        ty: Type::Label,
        default: "generated per call",
        meaning: "identifies the call to the engine (concurrency caps, history)",
    },
    Spec {
        name: "max_attempts",
        spelled: all("max_attempts", "maxAttempts", "MaxAttempts"),
        ty: Type::Attempts,
        default: "the engine's: the matched policy's, within the guardrails",
        meaning: "attempts in total, the first included; the operator's hard cap \
                  (guardrails.max_attempts) still applies",
    },
    Spec {
        name: "deadline",
        spelled: all("deadline", "deadline", "Deadline"),
        ty: Type::Duration,
        default: "none: the engine's own limits",
        meaning: "time from the start of the first attempt after which no retry starts",
    },
    Spec {
        name: "timeout",
        spelled: [Some("timeout"), Some("timeout"), Some("timeout"), None],
        ty: Type::Duration,
        default: "none",
        meaning: "how long one attempt may run; it is then cancelled and fails as a timeout \
                  (Python: async functions only; Go: give fn a context with a timeout)",
    },
    Spec {
        name: "idempotent",
        spelled: all("idempotent", "idempotent", "NonIdempotent"),
        ty: Type::Bool,
        default: "true (Go: NonIdempotent false)",
        meaning: "false: never retried after a failure that may have taken effect \
                  (timeouts, 5xx, resets)",
    },
    Spec {
        name: "priority",
        spelled: all("priority", "priority", "Priority"),
        ty: Type::Priority,
        default: "none: not ranked",
        meaning: "when retry budgets or concurrency caps bind, higher priorities are served first",
    },
    Spec {
        name: "backoff",
        spelled: all("wait", "backoff", "Backoff"),
        ty: Type::Backoff,
        default: "none: the matched policy's backoff",
        meaning: "this call's own schedule: the engine uses it as the rules tier for the call \
                  (a confident learned plan may still change it; guardrails still bound it)",
    },
    Spec {
        name: "retry_on",
        spelled: [Some("retry_on"), Some("retryOn"), Some("retryExceptions"), None],
        ty: Type::HostValue("an exception type or a list of them"),
        default: "every exception (Python: Exception)",
        meaning: "only failures of these types are retried; naming a programming error's type \
                  (TypeError…) retries it",
    },
    Spec {
        name: "give_up_on",
        spelled: [Some("give_up_on"), Some("giveUpOn"), Some("ignoreExceptions"), None],
        ty: Type::HostValue("an exception type or a list of them"),
        default: "none",
        meaning: "failures of these types are never retried: raised after their attempt",
    },
    Spec {
        name: "retry_if",
        spelled: [Some("retry_if"), Some("retryIf"), Some("retryOn"), Some("RetryIf")],
        ty: Type::Function,
        default: "none",
        meaning: "a predicate on each failure (false: not retried) and, in Python and Node, \
                  on each result (true: a failure to retry); may be async in async code",
    },
    Spec {
        name: "stop_if",
        spelled: all("stop_if", "stopIf", "StopIf"),
        ty: Type::Function,
        default: "none",
        meaning: "a predicate on the call so far (attempts, elapsed time, last failure): \
                  true stops retrying; combines with max_attempts and deadline (any stops)",
    },
    Spec {
        name: "stop",
        spelled: [Some("stop"), None, None, None],
        ty: Type::HostValue("a Stop: stop_after_attempt(n) | stop_after_delay(s) | stop_when(f)"),
        default: "none",
        meaning: "tenacity's form of max_attempts, deadline and stop_if, combined with |",
    },
    Spec {
        name: "on_retry",
        spelled: all("on_retry", "onRetry", "OnRetry"),
        ty: Type::Function,
        default: "none",
        meaning: "called once a retry is decided, before the wait",
    },
    Spec {
        name: "on_give_up",
        spelled: all("on_give_up", "onGiveUp", "OnGiveUp"),
        ty: Type::Function,
        default: "none",
        meaning: "called once when retries end without success, with the whole history",
    },
    Spec {
        name: "before",
        spelled: [Some("before"), None, None, None],
        ty: Type::Function,
        default: "none",
        meaning: "called before each attempt",
    },
    Spec {
        name: "after",
        spelled: [Some("after"), None, None, None],
        ty: Type::Function,
        default: "none",
        meaning: "called after each attempt",
    },
    Spec {
        name: "fallback",
        spelled: [Some("fallback"), Some("fallback"), None, None],
        ty: Type::HostValue("a function of the give-up state (Node: or a value)"),
        default: "none: the last failure is raised",
        meaning: "what the call returns when retries end, instead of failing",
    },
    Spec {
        name: "raise_retry_error",
        spelled: [Some("raise_retry_error"), None, None, None],
        ty: Type::Bool,
        default: "false",
        meaning: "raise RetryError (with the history) instead of the last exception",
    },
    Spec {
        name: "engine",
        spelled: all("engine", "engine", "Engine"),
        ty: Type::HostValue("an Engine"),
        default: "the process-wide engine",
        meaning: "the engine that decides",
    },
    Spec {
        name: "signal",
        spelled: [None, Some("signal"), None, None],
        ty: Type::HostValue("an AbortSignal"),
        default: "none",
        meaning: "stops the call at once (an attempt or a wait); the last failure is the cause",
    },
    Spec {
        name: "clock",
        spelled: [None, Some("clock"), None, Some("Clock")],
        ty: Type::HostValue("a Clock"),
        default: "the real clock (tests: a virtual clock that skips waits)",
        meaning: "how the helper reads time and waits",
    },
];

/// The fields of a per-call schedule ([`Type::Backoff`]): (name, Python/Node/Kotlin
/// spelling, Go spelling, meaning).
pub const BACKOFF_FIELDS: &[(&str, &str, &str)] = &[
    ("strategy", "Strategy", "exponential (default), linear, fibonacci, aggressive (×3) or constant"),
    ("base", "Base", "the first delay, a duration ≥ 0 (default 1 s)"),
    ("max", "Max", "the longest delay, a duration ≥ base (default: the guardrails' max delay)"),
    ("multiplier", "Multiplier", "growth per retry of exponential, 1–100 (default 2)"),
    ("jitter", "Jitter", "none (default), full, equal, decorrelated, or a percentage 0–100"),
];

/// A value as a host gave it, before any conversion: what the bindings build from the
/// user's objects (a Python value, a JS value, a Kotlin or Go field).
#[derive(Debug, Clone, PartialEq)]
pub enum Given {
    /// `None`, `null`, `undefined`: the option's default.
    Absent,
    Bool(bool),
    /// An integer: a Python `int`, a JS number without a fraction, a Kotlin or Go integer.
    Int(i128),
    Float(f64),
    Str(String),
    /// A mapping with string keys (a dict, a plain object): a schedule.
    Map(Vec<(String, Given)>),
    /// A function.
    Function,
    /// Any other host object, by its type name.
    Object(String),
}

impl Given {
    /// What it is, for "expected X, got Y".
    fn describe(&self) -> String {
        match self {
            Given::Absent => "nothing".into(),
            Given::Bool(b) => format!("the boolean {b}"),
            Given::Int(i) => format!("the integer {i}"),
            Given::Float(f) => format!("the number {f}"),
            Given::Str(s) if s.chars().count() > 40 => "a string".into(),
            Given::Str(s) => format!("the string {s:?}"),
            Given::Map(_) => "a mapping".into(),
            Given::Function => "a function".into(),
            Given::Object(t) => format!("a {t}"),
        }
    }

    /// From JSON (the Kotlin and Go bindings hand options over as JSON).
    pub fn from_json(value: &serde_json::Value) -> Given {
        use serde_json::Value;
        match value {
            Value::Null => Given::Absent,
            Value::Bool(b) => Given::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Given::Int(i.into()),
                (None, Some(u)) => Given::Int(u.into()),
                _ => Given::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Given::Str(s.clone()),
            Value::Array(_) => Given::Object("list".into()),
            Value::Object(map) => {
                Given::Map(map.iter().map(|(k, v)| (k.clone(), Given::from_json(v))).collect())
            }
        }
    }
}

/// A per-call schedule in the engine's units: what [`Features::backoff`] carries to the
/// engine on each failure of the call. JSON: `{"strategy": "exponential", "base_ms":
/// 1000, "max_ms": 30000, "multiplier": 2, "jitter": "full"}`.
///
/// [`Features::backoff`]: crate::Features::backoff
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallBackoff {
    #[serde(default = "exponential")]
    pub strategy: BackoffStrategy,
    #[serde(default = "one_second")]
    pub base_ms: u64,
    /// `None`: the guardrails' `max_delay_ms` bounds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<u64>,
    #[serde(default = "two")]
    pub multiplier: f64,
    #[serde(default = "no_jitter")]
    pub jitter: Jitter,
}

fn exponential() -> BackoffStrategy {
    BackoffStrategy::Exponential
}
fn one_second() -> u64 {
    1000
}
fn two() -> f64 {
    2.0
}
fn no_jitter() -> Jitter {
    Jitter::None
}

impl Default for CallBackoff {
    fn default() -> Self {
        CallBackoff {
            strategy: BackoffStrategy::Exponential,
            base_ms: one_second(),
            max_ms: None,
            multiplier: 2.0,
            jitter: Jitter::None,
        }
    }
}

impl CallBackoff {
    /// The schedule the rules tier follows for the call.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.strategy, self.base_ms)
            .with_multiplier(self.multiplier)
            .with_bounds(0, self.max_ms.unwrap_or(u64::MAX))
            .with_jitter(self.jitter)
    }

    /// The same checks [`validate`] makes, for a schedule that came as JSON (the HTTP API).
    pub fn validate(&self) -> Result<()> {
        let field = |f: &str| format!("backoff.{f}");
        if self.base_ms > MAX_DURATION_MS {
            return Err(Error::invalid(field("base_ms"), format!("at most {MAX_DURATION_MS} ms")));
        }
        if let Some(max) = self.max_ms {
            if max < self.base_ms || max > MAX_DURATION_MS {
                return Err(Error::invalid(
                    field("max_ms"),
                    format!("must be from base_ms ({}) to {MAX_DURATION_MS}", self.base_ms),
                ));
            }
        }
        if !(self.multiplier.is_finite() && (1.0..=100.0).contains(&self.multiplier)) {
            return Err(Error::invalid(field("multiplier"), "must be a number from 1 to 100"));
        }
        if let Jitter::Percent(p) = self.jitter {
            if !(0.0..=100.0).contains(&p) {
                return Err(Error::invalid(field("jitter"), "a percentage must be 0–100"));
            }
        }
        Ok(())
    }
}

/// The options a call gave, checked and in the engine's units. Absent = the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<CallBackoff>,
}

/// Checks the options a call gave, as `host` spells them: every key must be an option of
/// that host, every value of its type and in its range. The first problem is the error,
/// naming the option (`wait.base`, `maxAttempts`, `Backoff.Max`…).
pub fn validate(host: Host, given: &[(String, Given)]) -> Result<CallOptions> {
    let mut out = CallOptions::default();
    for (key, value) in given {
        check_one(host, key, value, &mut out)?;
    }
    Ok(out)
}

/// One option: for hosts that remember the core's verdict per value (a call's options
/// object is new on every call in Node, Kotlin and Go).
pub fn check_one(host: Host, key: &str, value: &Given, out: &mut CallOptions) -> Result<()> {
    let spec = OPTIONS.iter().find(|s| s.spelled(host) == Some(key)).ok_or_else(|| unknown(host, key))?;
    if *value == Given::Absent {
        return Ok(());
    }
    let wrong = |expected: &str| {
        Error::invalid_type(key.to_string(), format!("expected {expected}, got {}", value.describe()))
    };
    match spec.ty {
        Type::Label => {
            let Given::Str(s) = value else { return Err(wrong("a string")) };
            check_label("option", s, true).map_err(|e| rename(e, key))?;
            let slot = match spec.name {
                "job_type" => &mut out.job_type,
                "tenant" => &mut out.tenant,
                _ => &mut out.job_id,
            };
            *slot = Some(s.clone());
        }
        Type::Attempts => out.max_attempts = Some(attempts(host, key, value)?),
        Type::Duration => {
            let ms = duration(host, key, value, false)?;
            match spec.name {
                "deadline" => out.deadline_ms = Some(ms),
                _ => out.timeout_ms = Some(ms),
            }
        }
        Type::Bool => {
            let Given::Bool(b) = value else { return Err(wrong("a boolean")) };
            // Go spells the inverse (NonIdempotent), so its zero value is the default.
            let idempotent = if host == Host::Go { !b } else { *b };
            if spec.name == "idempotent" {
                out.idempotent = Some(idempotent);
            }
        }
        Type::Priority => {
            let Given::Str(s) = value else { return Err(wrong("low, normal, high or critical")) };
            out.priority = Some(Priority::parse(s).map_err(|e| rename(e, key))?);
        }
        Type::Backoff => out.backoff = Some(backoff(host, key, value)?),
        Type::Function => {
            if *value != Given::Function {
                return Err(wrong("a function"));
            }
        }
        Type::HostValue(what) => {
            // The host checks the object itself; a plain data value is never one.
            if matches!(value, Given::Bool(_) | Given::Int(_) | Given::Float(_) | Given::Str(_))
                && spec.name != "fallback"
            {
                return Err(wrong(what));
            }
        }
    }
    Ok(())
}

fn unknown(host: Host, key: &str) -> Error {
    let known: Vec<&str> = OPTIONS.iter().filter_map(|s| s.spelled(host)).collect();
    let squash = |s: &str| {
        s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect::<String>()
    };
    let near = known.iter().find(|k| {
        let (a, b) = (squash(k), squash(key));
        a == b || edit_distance(&a, &b) <= 2
    });
    let reason = match near {
        Some(k) => format!("unknown option (did you mean {k}?)"),
        None => format!("unknown option; the options are {}", known.join(", ")),
    };
    Error::invalid(key.to_string(), reason)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The same error under the option's own name.
fn rename(e: Error, key: &str) -> Error {
    match e {
        Error::InvalidInput { reason, .. } | Error::Config { reason, .. } => {
            Error::invalid(key.to_string(), reason)
        }
        other => other,
    }
}

fn attempts(host: Host, key: &str, value: &Given) -> Result<u32> {
    let n = match value {
        Given::Int(n) => *n,
        Given::Float(f) if host.one_number_type() => {
            return Err(Error::invalid(
                key.to_string(),
                format!("must be a whole number 1–{MAX_ATTEMPTS}, got {f}"),
            ));
        }
        other => {
            return Err(Error::invalid_type(
                key.to_string(),
                format!("expected an integer 1–{MAX_ATTEMPTS}, got {}", other.describe()),
            ))
        }
    };
    u32::try_from(n).ok().filter(|n| (1..=MAX_ATTEMPTS).contains(n)).ok_or_else(|| {
        Error::invalid(
            key.to_string(),
            format!("must be 1–{MAX_ATTEMPTS} (attempts in total, the first included), got {n}"),
        )
    })
}

/// A duration in the host's unit as ms, rounded up (a positive duration never becomes 0).
fn duration(host: Host, key: &str, value: &Given, zero_ok: bool) -> Result<u64> {
    let x = match value {
        Given::Int(n) => *n as f64,
        Given::Float(f) => *f,
        other => {
            return Err(Error::invalid_type(
                key.to_string(),
                format!("expected a number of {}, got {}", host.unit(), other.describe()),
            ))
        }
    };
    let ms = (x * host.ms_per_unit()).ceil();
    let low_ok = if zero_ok { x >= 0.0 } else { x > 0.0 };
    if !(low_ok && ms <= MAX_DURATION_MS as f64) {
        let low = if zero_ok { "≥ 0" } else { "> 0" };
        let max = MAX_DURATION_MS as f64 / host.ms_per_unit();
        return Err(Error::invalid(
            key.to_string(),
            format!("must be a number of {} {low} and at most {max} (24.8 days), got {x}", host.unit()),
        ));
    }
    Ok(ms as u64)
}

fn backoff(host: Host, key: &str, value: &Given) -> Result<CallBackoff> {
    let Given::Map(fields) = value else {
        return Err(Error::invalid_type(
            key.to_string(),
            format!(
                "expected a schedule (strategy, base, max, multiplier, jitter), got {}",
                value.describe()
            ),
        ));
    };
    let mut b = CallBackoff::default();
    let mut max = None;
    for (name, v) in fields {
        let sub = format!("{key}.{name}");
        let field = BACKOFF_FIELDS
            .iter()
            .find(|(n, go, _)| if host == Host::Go { go == name } else { n == name })
            .map(|(n, _, _)| *n)
            .ok_or_else(|| {
                let names: Vec<&str> =
                    BACKOFF_FIELDS.iter().map(|(n, go, _)| if host == Host::Go { *go } else { *n }).collect();
                Error::invalid(sub.clone(), format!("unknown field; the fields are {}", names.join(", ")))
            })?;
        if *v == Given::Absent {
            continue;
        }
        match field {
            "strategy" => {
                let Given::Str(s) = v else {
                    return Err(Error::invalid_type(
                        sub,
                        format!("expected a strategy name, got {}", v.describe()),
                    ));
                };
                b.strategy = strategy(s).ok_or_else(|| {
                    Error::invalid(
                        sub,
                        format!("expected exponential, linear, fibonacci, aggressive or constant, got {s:?}"),
                    )
                })?;
            }
            "base" => b.base_ms = duration(host, &sub, v, true)?,
            "max" => max = Some((duration(host, &sub, v, true)?, sub)),
            "multiplier" => {
                let m = match v {
                    Given::Int(n) => *n as f64,
                    Given::Float(f) => *f,
                    other => {
                        return Err(Error::invalid_type(
                            sub,
                            format!("expected a number, got {}", other.describe()),
                        ))
                    }
                };
                if !(m.is_finite() && (1.0..=100.0).contains(&m)) {
                    return Err(Error::invalid(sub, format!("must be a number from 1 to 100, got {m}")));
                }
                b.multiplier = m;
            }
            _ => b.jitter = jitter(&sub, v)?,
        }
    }
    if let Some((ms, sub)) = max {
        if ms < b.base_ms {
            return Err(Error::invalid(sub, "must be ≥ base"));
        }
        b.max_ms = Some(ms);
    }
    Ok(b)
}

/// A strategy by its name (`exponential`, `linear`, `fibonacci`, `aggressive`,
/// `constant`, any case), for bindings that take it as text.
pub fn parse_strategy(name: &str) -> Result<BackoffStrategy> {
    strategy(name).ok_or_else(|| {
        Error::invalid(
            "strategy",
            format!("expected exponential, linear, fibonacci, aggressive or constant, got {name:?}"),
        )
    })
}

/// A jitter by its name (`none`, `full`, `equal`, `decorrelated`) or as a percentage
/// (`"25%"`), for bindings that take it as text.
pub fn parse_jitter(text: &str) -> Result<Jitter> {
    jitter("jitter", &Given::Str(text.to_string()))
}

fn strategy(name: &str) -> Option<BackoffStrategy> {
    use BackoffStrategy::*;
    [
        ("exponential", Exponential),
        ("linear", Linear),
        ("fibonacci", Fibonacci),
        ("aggressive", Aggressive),
        ("constant", Constant),
    ]
    .into_iter()
    .find(|(n, _)| n.eq_ignore_ascii_case(name))
    .map(|(_, s)| s)
}

fn jitter(sub: &str, v: &Given) -> Result<Jitter> {
    let percent = |p: f64| {
        if (0.0..=100.0).contains(&p) {
            Ok(Jitter::Percent(p))
        } else {
            Err(Error::invalid(sub.to_string(), format!("a percentage must be 0–100, got {p}")))
        }
    };
    match v {
        Given::Str(s) => match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Jitter::None),
            "full" => Ok(Jitter::Full),
            "equal" => Ok(Jitter::Equal),
            "decorrelated" => Ok(Jitter::Decorrelated),
            // A percentage written as text ("25%"): how typed hosts (Go, Kotlin) give one.
            text => match text.strip_suffix('%').map(|n| n.trim().parse::<f64>()) {
                Some(Ok(p)) if p.is_finite() => percent(p),
                _ => Err(Error::invalid(
                    sub.to_string(),
                    format!("expected none, full, equal, decorrelated or a percentage (\"25%\"), got {s:?}"),
                )),
            },
        },
        Given::Int(n) => percent(*n as f64),
        Given::Float(f) => percent(*f),
        other => Err(Error::invalid_type(
            sub.to_string(),
            format!("expected a jitter name or a percentage, got {}", other.describe()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
