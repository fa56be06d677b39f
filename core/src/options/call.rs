//! What a call gave ([`Given`], as the host had it) and what it means in the engine's
//! units ([`CallOptions`], with a call's own schedule, [`CallBackoff`]).

use serde::{Deserialize, Serialize};

use crate::api::priority::Priority;
use crate::backoff::{Backoff, BackoffStrategy, Jitter};
use crate::error::{Error, Result};

use super::spec::MAX_DURATION_MS;

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
    pub(super) fn describe(&self) -> String {
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
