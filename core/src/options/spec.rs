//! The options table: every option with its type, range, default, meaning and how each
//! language spells it.

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
    pub(super) fn ms_per_unit(self) -> f64 {
        if self == Host::Python {
            1000.0
        } else {
            1.0
        }
    }

    pub(super) fn unit(self) -> &'static str {
        if self == Host::Python {
            "seconds"
        } else {
            "ms"
        }
    }

    /// JavaScript has one number type: a fraction where an integer is due is a bad
    /// value there, but a float given for an int is a type error in Python.
    pub(super) fn one_number_type(self) -> bool {
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
