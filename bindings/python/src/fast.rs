//! Direct extraction of `Features` and `Attempt` from a `dict`, for the per-failure hot
//! path (the generic route builds a `serde_json::Value` first and costs ~3× more).
//!
//! It only accepts the plain case: every key a known field, every value of the exact
//! type. Anything else (an unknown key, a wrong type, a missing field, a non-dict)
//! returns `None` and the caller takes the generic route, so errors, and fields the core
//! adds later, are always handled by the core's own deserializer (`from_value`).

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};
use smartretry::{Attempt, Features};

type Fast<T> = Result<T, ()>;

const FEATURE_KEYS: [&str; 22] = [
    "job_type",
    "attempt_number",
    "error_class",
    "error_code",
    "http_status",
    "queue",
    "tenant",
    "payload_size",
    "time_of_day",
    "job_id",
    "since_first_failure_ms",
    "since_last_failure_ms",
    "since_last_failure",
    "retry_after_ms",
    "retry_after",
    "idempotent",
    "priority",
    "worker_version",
    "health",
    "recent_failures",
    "avg_processing_time",
    "deadline_ms",
];

const ATTEMPT_KEYS: [&str; 19] = [
    "job_id",
    "job_type",
    "attempt_number",
    "success",
    "delay_ms",
    "error_class",
    "error_code",
    "http_status",
    "status",
    "queue",
    "tenant",
    "since_first_failure_ms",
    "payload_size",
    "time_of_day",
    "worker_version",
    "health",
    "timestamp",
    "now_ms",
    "processing_time",
];

static FEATURE_NAMES: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();
static ATTEMPT_NAMES: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();

/// The field a key names. Keys written as literals in Python code are interned, so
/// they are found by pointer comparison; other strings are compared by text (on
/// abi3-py39 reading a `str`'s text allocates, so this keeps the common case free).
fn key_name(
    k: &Bound<'_, PyAny>,
    cell: &PyOnceLock<Vec<Py<PyString>>>,
    keys: &'static [&'static str],
) -> Option<&'static str> {
    let py = k.py();
    let names = cell.get_or_init(py, || keys.iter().map(|n| PyString::intern(py, n).unbind()).collect());
    let ptr = k.as_ptr();
    if let Some(i) = names.iter().position(|n| n.as_ptr() == ptr) {
        return Some(keys[i]);
    }
    let text = k.cast::<PyString>().ok()?.to_cow().ok()?;
    keys.iter().find(|n| **n == text.as_ref()).copied()
}

fn string(v: &Bound<'_, PyAny>) -> Fast<String> {
    v.cast::<PyString>().map_err(|_| ())?.to_cow().map(|c| c.into_owned()).map_err(|_| ())
}

fn opt_string(v: &Bound<'_, PyAny>) -> Fast<Option<String>> {
    if v.is_none() {
        Ok(None)
    } else {
        string(v).map(Some)
    }
}

fn int<'a, T: FromPyObjectOwned<'a>>(v: &Bound<'a, PyAny>) -> Fast<T> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(());
    }
    v.extract::<T>().map_err(|_| ())
}

fn opt_int<'a, T: FromPyObjectOwned<'a>>(v: &Bound<'a, PyAny>) -> Fast<Option<T>> {
    if v.is_none() {
        Ok(None)
    } else {
        int(v).map(Some)
    }
}

fn boolean(v: &Bound<'_, PyAny>) -> Fast<bool> {
    v.cast::<PyBool>().map(|b| b.is_true()).map_err(|_| ())
}

fn opt_bool(v: &Bound<'_, PyAny>) -> Fast<Option<bool>> {
    if v.is_none() {
        Ok(None)
    } else {
        boolean(v).map(Some)
    }
}

/// `error_code` is text or an integer (the core's `string_or_number`).
fn code(v: &Bound<'_, PyAny>) -> Fast<Option<String>> {
    if v.is_none() {
        Ok(None)
    } else if v.is_instance_of::<PyInt>() && !v.is_instance_of::<PyBool>() {
        v.extract::<i64>().map(|i| Some(i.to_string())).map_err(|_| ())
    } else {
        string(v).map(Some)
    }
}

/// A priority by name; anything else (an index, a bad name) takes the core's route.
fn priority(v: &Bound<'_, PyAny>) -> Fast<Option<smartretry::Priority>> {
    match opt_string(v)? {
        None => Ok(None),
        Some(name) => smartretry::Priority::parse(&name).map(Some).map_err(|_| ()),
    }
}

fn health(v: &Bound<'_, PyAny>) -> Fast<BTreeMap<String, f64>> {
    let d = v.cast::<PyDict>().map_err(|_| ())?;
    let mut out = BTreeMap::new();
    for (k, x) in d.iter() {
        let value = if let Ok(f) = x.cast::<PyFloat>() {
            f.value()
        } else if x.is_instance_of::<PyInt>() && !x.is_instance_of::<PyBool>() {
            x.extract::<i64>().map_err(|_| ())? as f64
        } else {
            return Err(());
        };
        out.insert(string(&k)?, value);
    }
    Ok(out)
}

pub fn features(obj: &Bound<'_, PyAny>) -> Option<Features> {
    let d = obj.cast_exact::<PyDict>().ok()?;
    let (mut job_type, mut attempt_number) = (None, None);
    let mut f = Features::default();
    for (k, v) in d.iter() {
        let key = key_name(&k, &FEATURE_NAMES, &FEATURE_KEYS)?;
        let ok: Fast<()> = (|| {
            match key {
                "job_type" => job_type = Some(string(&v)?),
                "attempt_number" => attempt_number = Some(int::<u32>(&v)?),
                "error_class" => f.error_class = opt_string(&v)?,
                "error_code" => f.error_code = code(&v)?,
                "http_status" => f.http_status = opt_int(&v)?,
                "queue" => f.queue = opt_string(&v)?,
                "tenant" => f.tenant = opt_string(&v)?,
                "payload_size" => f.payload_size = opt_int(&v)?,
                "time_of_day" => f.time_of_day = opt_int(&v)?,
                "job_id" => f.job_id = opt_string(&v)?,
                "since_first_failure_ms" => f.since_first_failure_ms = opt_int(&v)?,
                "since_last_failure_ms" => f.since_last_failure_ms = opt_int(&v)?,
                "since_last_failure" => f.since_last_failure = opt_string(&v)?,
                "retry_after_ms" => f.retry_after_ms = opt_int(&v)?,
                "retry_after" => f.retry_after = opt_string(&v)?,
                "idempotent" => f.idempotent = opt_bool(&v)?,
                "priority" => f.priority = priority(&v)?,
                "worker_version" => f.worker_version = opt_string(&v)?,
                "health" => f.health = health(&v)?,
                "recent_failures" => f.recent_failures = opt_int(&v)?,
                "avg_processing_time" => f.avg_processing_time = opt_string(&v)?,
                "deadline_ms" => f.deadline_ms = opt_int(&v)?,
                _ => return Err(()),
            }
            Ok(())
        })();
        ok.ok()?;
    }
    f.job_type = job_type?;
    f.attempt_number = attempt_number?;
    Some(f)
}

pub fn attempt(obj: &Bound<'_, PyAny>) -> Option<Attempt> {
    let d = obj.cast_exact::<PyDict>().ok()?;
    let (mut job_id, mut job_type, mut attempt_number, mut success) = (None, None, None, None);
    let mut a = Attempt::default();
    for (k, v) in d.iter() {
        let key = key_name(&k, &ATTEMPT_NAMES, &ATTEMPT_KEYS)?;
        let ok: Fast<()> = (|| {
            match key {
                "job_id" => job_id = Some(string(&v)?),
                "job_type" => job_type = Some(string(&v)?),
                "attempt_number" => attempt_number = Some(int::<u32>(&v)?),
                "success" => success = Some(boolean(&v)?),
                "delay_ms" => a.delay_ms = int(&v)?,
                "error_class" => a.error_class = opt_string(&v)?,
                "error_code" => a.error_code = code(&v)?,
                "http_status" => a.http_status = opt_int(&v)?,
                "status" => a.status = opt_string(&v)?,
                "queue" => a.queue = opt_string(&v)?,
                "tenant" => a.tenant = opt_string(&v)?,
                "since_first_failure_ms" => a.since_first_failure_ms = opt_int(&v)?,
                "payload_size" => a.payload_size = opt_int(&v)?,
                "time_of_day" => a.time_of_day = opt_int(&v)?,
                "worker_version" => a.worker_version = opt_string(&v)?,
                "health" => a.health = health(&v)?,
                "timestamp" => a.timestamp = opt_string(&v)?,
                "now_ms" => a.now_ms = opt_int(&v)?,
                "processing_time" => a.processing_time = opt_string(&v)?,
                _ => return Err(()),
            }
            Ok(())
        })();
        ok.ok()?;
    }
    a.job_id = job_id?;
    a.job_type = job_type?;
    a.attempt_number = attempt_number?;
    a.success = success?;
    Some(a)
}
