//! smartretry: a retry engine that learns when a failed job will succeed.
//!
//! A failure goes through `classify` → rules tier (`policy`) → Bayesian tier (`bayes`)
//! → ML tier (`ml`, an ONNX model, when one is deployed) → guardrails (`guard`, `breaker`) and comes out as a [`Decision`]: retry or not,
//! after how long, with a confidence, the tier that decided and a one-sentence reason.
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

pub mod backoff;
pub mod bayes;
pub mod breaker;
pub mod classify;
pub mod config;
pub mod contexts;
mod decide;
pub mod dlq;
pub mod engine;
pub mod error;
pub mod events;
pub mod guard;
pub mod health;
pub mod ml;
pub mod model;
pub mod options;
pub mod overrides;
pub mod policy;
pub mod reset;
pub mod say;
pub mod store;
pub mod time;
mod window;

pub use backoff::{Backoff, Jitter, Strategy as BackoffStrategy};
pub use breaker::{BreakerConfig, BreakerSnapshot, BreakerState};
pub use classify::ErrorKind;
pub use config::{Config, Strategy};
pub use contexts::Context;
pub use dlq::{DeadLetter, DeadLetterNote, DeadLetterQuery, DeadLetterStatus, NewDeadLetter};
pub use engine::builder::EngineBuilder;
pub use engine::metrics::MetricsSnapshot;
pub use engine::operator::{EmergencyStop, SettingsChange};
pub use engine::{AuditHook, Engine};
pub use error::{Error, Result};
pub use events::{Event, EventKind, Subscription};
pub use guard::{BudgetSnapshot, Guardrails};
pub use health::{HealthConfig, HealthReport};
pub use ml::{Deployment, MlSnapshot, MlStatus, ModelInfo, Sidecar};
pub use model::{Attempt, Decision, Features, Guardrail, Method, Preview, Priority, Stats, TimelineEntry};
pub use options::{CallBackoff, CallOptions, Host};
pub use overrides::Override;
pub use policy::Policy;
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
