//! The one public error type of the engine. Every binding maps these kinds 1:1 to a
//! host exception, so each variant carries the field and the reason a user needs.

use std::borrow::Cow;

/// Errors returned by every public entry point of the engine.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request value is missing, malformed or out of range.
    #[error("invalid input: {field}: {reason}")]
    InvalidInput { field: Cow<'static, str>, reason: String },
    /// A value of the wrong type (a string where a number is due). Hosts with dynamic
    /// types raise their own type error for it (`TypeError` in Python and JavaScript).
    #[error("invalid type: {field}: {reason}")]
    InvalidType { field: Cow<'static, str>, reason: String },
    /// A configuration value (file, environment or update) is invalid.
    #[error("invalid config: {field}: {reason}")]
    Config { field: Cow<'static, str>, reason: String },
    /// A named thing (policy, key, model) does not exist.
    #[error("not found: {what}")]
    NotFound { what: String },
    /// The state store failed; the engine degraded to local state.
    #[error("store error: {0}")]
    Store(String),
    /// A model could not be loaded or run; the engine degraded to the tier below.
    #[error("model error: {0}")]
    Model(String),
}

impl Error {
    pub fn invalid(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Error::InvalidInput { field: field.into(), reason: reason.into() }
    }

    pub fn invalid_type(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Error::InvalidType { field: field.into(), reason: reason.into() }
    }

    pub fn config(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Error::Config { field: field.into(), reason: reason.into() }
    }

    /// The field an `InvalidInput` or `Config` error names, for structured host errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidInput { field, .. }
            | Error::InvalidType { field, .. }
            | Error::Config { field, .. } => Some(field),
            _ => None,
        }
    }

    /// A stable machine-readable kind, shared by every binding (`code` in Node, etc.).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_input",
            Error::InvalidType { .. } => "invalid_type",
            Error::Config { .. } => "config",
            Error::NotFound { .. } => "not_found",
            Error::Store(_) => "store",
            Error::Model(_) => "model",
        }
    }

    /// Prefix the field with a parent path, e.g. `guardrails` + `max_attempts`.
    pub fn within(self, parent: &str) -> Self {
        match self {
            Error::InvalidInput { field, reason } => {
                Error::InvalidInput { field: format!("{parent}.{field}").into(), reason }
            }
            Error::InvalidType { field, reason } => {
                Error::InvalidType { field: format!("{parent}.{field}").into(), reason }
            }
            Error::Config { field, reason } => {
                Error::Config { field: format!("{parent}.{field}").into(), reason }
            }
            other => other,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
