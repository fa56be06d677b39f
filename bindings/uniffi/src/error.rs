//! The one error type both foreign surfaces share: uniffi turns it into the Kotlin
//! `SmartRetryException` hierarchy, and the C ABI writes it as `{kind, field, reason,
//! message}` JSON for Go. A panic inside the engine is caught here and becomes
//! `Internal`, so none crosses the boundary.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Why a call failed: the core's error kinds 1:1, plus `Internal` for a caught panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum SmartRetryError {
    /// A request value is missing, malformed or out of range.
    #[error("invalid input: {field}: {reason}")]
    InvalidInput { field: String, reason: String },
    /// A configuration value is invalid.
    #[error("invalid config: {field}: {reason}")]
    Config { field: String, reason: String },
    /// A named thing (a policy) does not exist.
    #[error("not found: {what}")]
    NotFound { what: String },
    /// The state store failed.
    #[error("store error: {reason}")]
    Store { reason: String },
    /// A model could not be loaded or run.
    #[error("model error: {reason}")]
    Model { reason: String },
    /// A bug: the engine panicked. The call had no effect the caller can rely on.
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

impl SmartRetryError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SmartRetryError::InvalidInput { field: field.into(), reason: reason.into() }
    }

    /// The core's stable kind names, plus `internal`.
    pub fn kind(&self) -> &'static str {
        match self {
            SmartRetryError::InvalidInput { .. } => "invalid_input",
            SmartRetryError::Config { .. } => "config",
            SmartRetryError::NotFound { .. } => "not_found",
            SmartRetryError::Store { .. } => "store",
            SmartRetryError::Model { .. } => "model",
            SmartRetryError::Internal { .. } => "internal",
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            SmartRetryError::InvalidInput { field, .. } | SmartRetryError::Config { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            SmartRetryError::InvalidInput { reason, .. }
            | SmartRetryError::Config { reason, .. }
            | SmartRetryError::Store { reason }
            | SmartRetryError::Model { reason }
            | SmartRetryError::Internal { reason } => reason,
            SmartRetryError::NotFound { what } => what,
        }
    }
}

impl From<smartretry::Error> for SmartRetryError {
    fn from(e: smartretry::Error) -> Self {
        match e {
            // Kotlin and Go types cannot hold a value of the wrong type: one that arrives
            // as JSON (a vector, a config) is bad input like any other.
            smartretry::Error::InvalidInput { field, reason }
            | smartretry::Error::InvalidType { field, reason } => {
                SmartRetryError::InvalidInput { field: field.into_owned(), reason }
            }
            smartretry::Error::Config { field, reason } => {
                SmartRetryError::Config { field: field.into_owned(), reason }
            }
            smartretry::Error::NotFound { what } => SmartRetryError::NotFound { what },
            smartretry::Error::Store(reason) => SmartRetryError::Store { reason },
            smartretry::Error::Model(reason) => SmartRetryError::Model { reason },
            // The core's error is non-exhaustive: a kind added later is still reported.
            other => SmartRetryError::Internal { reason: other.to_string() },
        }
    }
}

pub type Result<T, E = SmartRetryError> = std::result::Result<T, E>;

/// Runs `f`, turning a panic into `Internal` instead of unwinding into the host.
pub fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let reason = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the engine panicked".to_string());
        Err(SmartRetryError::Internal { reason })
    })
}
