//! The options contract (`smartretry::options`) for Python: the user's values as the
//! core's `Given`, checked by the core; and the integer arguments of `Engine` methods,
//! converted with errors that name the argument (a negative `now_ms` is an
//! `InvalidInputError`, not a bare `OverflowError`).

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString};
use smartretry::options::{self, Given, Host, Type, BACKOFF_FIELDS, OPTIONS};
use smartretry::Error;

use crate::convert;
use crate::errors::IntoPyResult;

/// A Python value as the core sees an option's value.
fn given(obj: &Bound<'_, PyAny>) -> Given {
    if obj.is_none() {
        Given::Absent
    } else if let Ok(b) = obj.cast::<PyBool>() {
        Given::Bool(b.is_true())
    } else if obj.is_instance_of::<PyInt>() {
        // Beyond i128 only the sign matters: it is out of every range.
        obj.extract::<i128>().map(Given::Int).unwrap_or_else(|_| {
            let negative = obj.lt(0).unwrap_or(false);
            Given::Float(if negative { f64::NEG_INFINITY } else { f64::INFINITY })
        })
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        Given::Float(f.value())
    } else if let Ok(s) = obj.cast::<PyString>() {
        Given::Str(s.to_cow().map(|c| c.into_owned()).unwrap_or_default())
    } else if obj.is_instance_of::<PyDict>() || obj.cast::<PyMapping>().is_ok() {
        let items = obj.call_method0("items").and_then(|i| i.try_iter()).map(|it| {
            it.filter_map(Result::ok)
                .filter_map(|pair| pair.extract::<(String, Bound<'_, PyAny>)>().ok())
                .map(|(k, v)| (k, given(&v)))
                .collect::<Vec<_>>()
        });
        items.map(Given::Map).unwrap_or_else(|_| Given::Object("mapping".into()))
    } else if obj.is_callable() {
        Given::Function
    } else {
        Given::Object(obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into()))
    }
}

/// Checks the options of `@smart_retry` / `retrying` (a dict of the options given, by
/// their Python names) and returns them in the engine's units: `deadline_ms`,
/// `timeout_ms`, `backoff` (the schedule as `Features.backoff` takes it)…
#[pyfunction]
pub fn validate_retry_options<'py>(
    py: Python<'py>,
    options: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let given: Vec<(String, Given)> =
        options.iter().map(|(k, v)| Ok((k.extract::<String>()?, given(&v)))).collect::<PyResult<_>>()?;
    let checked = options::validate(Host::Python, &given).map_py(py)?;
    convert::serialize_to_py(py, &checked)
}

/// The options contract as Python spells it: one dict per option (`name`, `type`,
/// `kind`, `default`, `meaning`), and the schedule's fields under `wait`.
#[pyfunction]
pub fn retry_options(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for spec in OPTIONS {
        let Some(name) = spec.spelled(Host::Python) else { continue };
        let d = PyDict::new(py);
        d.set_item("name", name)?;
        d.set_item("canonical", spec.name)?;
        d.set_item("type", spec.ty.describe())?;
        let kind = match spec.ty {
            Type::Label => "label",
            Type::Attempts => "attempts",
            Type::Duration => "duration",
            Type::Bool => "bool",
            Type::Priority => "priority",
            Type::Backoff => "schedule",
            Type::Function => "function",
            Type::HostValue(_) => "host",
        };
        d.set_item("kind", kind)?;
        d.set_item("default", spec.default)?;
        d.set_item("meaning", spec.meaning)?;
        if spec.ty == Type::Backoff {
            let fields: Vec<(&str, &str)> = BACKOFF_FIELDS.iter().map(|(n, _, m)| (*n, *m)).collect();
            d.set_item("fields", fields)?;
        }
        list.append(d)?;
    }
    Ok(list)
}

/// An integer argument ≥ 0, or an error naming it: `InvalidTypeError` for a non-int,
/// `InvalidInputError` for a negative or huge one.
fn unsigned<T: TryFrom<u128>>(obj: &Bound<'_, PyAny>, name: &'static str) -> PyResult<T> {
    let py = obj.py();
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        let type_name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        return Err(Error::invalid_type(name, format!("expected an integer, got {type_name}"))).map_py(py);
    }
    let too_large = || Error::invalid(name, format!("too large: {obj}"));
    match obj.extract::<i128>() {
        Ok(n) if n < 0 => Err(Error::invalid(name, format!("must be ≥ 0, got {n}"))).map_py(py),
        Ok(n) => T::try_from(n as u128).map_err(|_| too_large()).map_py(py),
        Err(_) if obj.lt(0).unwrap_or(false) => Err(Error::invalid(name, "must be ≥ 0")).map_py(py),
        Err(_) => Err(too_large()).map_py(py),
    }
}

/// `#[pyo3(from_py_with = …)]` extractors, one per argument name.
macro_rules! arguments {
    ($($name:ident: $t:ty),* $(,)?) => {$(
        pub fn $name(obj: &Bound<'_, PyAny>) -> PyResult<$t> {
            unsigned(obj, stringify!($name))
        }
    )*};
}
macro_rules! optional_arguments {
    ($($name:ident: $t:ty),* $(,)?) => {$(
        pub fn $name(obj: &Bound<'_, PyAny>) -> PyResult<Option<$t>> {
            if obj.is_none() { Ok(None) } else { unsigned(obj, stringify!($name)).map(Some) }
        }
    )*};
}

pub mod arg {
    use super::*;
    arguments!(count: u64, max_attempts: u32, capacity: usize, limit: usize, offset: usize, timeout_ms: u64);
    pub mod opt {
        use super::super::*;
        optional_arguments!(now_ms: u64, seed: u64, window_ms: u64);
    }
}
