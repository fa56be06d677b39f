//! smartretry: a retry engine that learns when a failed job will succeed.
//!
//! A failure goes through one pipeline (`decide/`, in call order): hard refusals, then
//! the tiers — the server's `Retry-After`, the ML tier (an ONNX model, when one is
//! deployed), the Bayesian tier, the rules tier — then the controls and the guardrails,
//! and comes out as a [`Decision`]: retry or not, after how long, with a confidence, the
//! tier that decided, the guardrails that acted and a one-sentence reason. See
//! `docs/architecture.md` for the layers.
//!
//! ```
//! use smartretry::{Engine, Features};
//!
//! let engine = Engine::builder().seed(7).build()?;
//! let failure = Features::new("payment_capture", 1).with_http_status(503);
//! let d = engine.decide(&failure, Some(1_700_000_000_000))?;
//! assert!(d.should_retry);
//! assert_eq!(d.policy, "service_unavailable");
//! println!("{} ms: {}", d.delay_ms, d.rationale);
//! # Ok::<(), smartretry::Error>(())
//! ```
// Every type the API reaches can be named: re-exported here, or in `ml`, `options`, `store`.
#![warn(unnameable_types)]

mod api;
mod backoff;
mod bayes;
mod breaker;
mod classify;
mod config;
mod contexts;
mod decide;
mod dlq;
mod engine;
mod error;
mod events;
mod guard;
mod health;
pub mod ml;
pub mod options;
mod overrides;
mod policy;
mod reset;
mod say;
pub mod store;
pub mod time;
mod window;

pub use api::{
    from_json, from_json_strict, from_value, from_value_strict, Attempt, BucketStats, Decision, Features,
    Guardrail, Method, Preview, Priority, Stats, TimelineEntry, MAX_ATTEMPT_NUMBER, MAX_LABEL_LEN,
};
pub use backoff::{mix64, rand01, Backoff, BackoffStrategy, Jitter};
pub use bayes::BayesConfig;
pub use breaker::{BreakerConfig, BreakerSnapshot, BreakerState};
pub use classify::{classify, ErrorKind};
pub use config::{ApiConfig, CacheConfig, Config, DataCollection, Strategy};
pub use contexts::{Context, ContextBackoff};
pub use dlq::{
    DeadLetter, DeadLetterNote, DeadLetterQuery, DeadLetterStatus, NewDeadLetter,
    MAX_PAYLOAD_BYTES as MAX_DEAD_LETTER_PAYLOAD_BYTES,
};
pub use engine::builder::{EngineBuilder, EngineOptions};
pub use engine::metrics::MetricsSnapshot;
pub use engine::operator::{EmergencyStop, SettingsChange};
pub use engine::{AuditHook, Engine};
pub use error::{Error, Result};
pub use events::{Closed, Event, EventKind, Subscription};
pub use guard::{BudgetSnapshot, Guardrails, PriorityShares, DEFAULT_DEADLINE_MS};
pub use health::{HealthConfig, HealthReport, Signals};
pub use ml::{Deployment, MlSnapshot, MlStatus, ModelInfo, Sidecar};
pub use options::{CallBackoff, CallOptions, Host};
pub use overrides::Override;
pub use policy::Policy;
pub use say::fmt_ms;
pub use store::{AuditRecord, ModelRecord, OutcomeRecord, Store};

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}
    #[test]
    fn engine_is_send_and_sync() {
        assert_send_sync::<super::Engine>();
    }
}

/// The README's examples run as doctests, so they cannot go stale.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
