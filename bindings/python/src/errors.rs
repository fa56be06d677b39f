//! The one place where core errors become Python exceptions, kind by kind.
//!
//! The classes live in `smartretry/errors.py` (they need multiple inheritance:
//! `ConfigError(Error, ValueError)`); this module only picks the class for each kind
//! and fills `message`, `field` and `reason`.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use smartretry::Error;

static INVALID_INPUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVALID_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CONFIG: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static NOT_FOUND: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static STORE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MODEL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static BASE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const MODULE: &str = "smartretry.errors";

/// `smartretry.InvalidInputError`, `InvalidTypeError`, `ConfigError`, `NotFoundError`, `StoreError`,
/// `ModelError`, or the base `smartretry.Error` for kinds added later.
pub fn to_py(py: Python<'_>, err: Error) -> PyErr {
    let (cell, name, field, reason) = match &err {
        Error::InvalidInput { field, reason } => {
            (&INVALID_INPUT, "InvalidInputError", Some(field.to_string()), reason.clone())
        }
        Error::InvalidType { field, reason } => {
            (&INVALID_TYPE, "InvalidTypeError", Some(field.to_string()), reason.clone())
        }
        Error::Config { field, reason } => (&CONFIG, "ConfigError", Some(field.to_string()), reason.clone()),
        Error::NotFound { what } => (&NOT_FOUND, "NotFoundError", None, what.clone()),
        Error::Store(reason) => (&STORE, "StoreError", None, reason.clone()),
        Error::Model(reason) => (&MODEL, "ModelError", None, reason.clone()),
        other => (&BASE, "Error", None, other.to_string()),
    };
    match cell.import(py, MODULE, name) {
        Ok(class) => PyErr::from_type(class.clone(), (err.to_string(), field, reason, err.kind())),
        Err(import_failed) => import_failed,
    }
}

/// Adds `.map_py(py)?` to core results.
pub trait IntoPyResult<T> {
    fn map_py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn map_py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}
