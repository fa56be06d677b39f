//! `smartretry._native`: the Rust engine as Python sees it. Translation only: every
//! method converts its arguments, calls the same-named `smartretry::Engine` method and
//! converts the answer back. Decisions, ranges and validation all live in the core.
//!
//! Engine calls release the GIL while the core works (`decide` and `record` take a few
//! microseconds under the engine's locks; previews, statistics and configuration files
//! longer), so other Python threads run meanwhile. `record_successes` and the small
//! getters keep it: detaching would cost more than they do.

mod convert;
mod errors;
mod fast;
mod options;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use smartretry::from_value_strict;
use smartretry::{
    Attempt, DeadLetterQuery, DeadLetterStatus, EngineOptions, Features, Guardrails, NewDeadLetter, Override,
    Policy,
};
use smartretry::{Closed, EventKind};

use crate::errors::IntoPyResult;

/// The retry engine. One per process is usual; every method is thread-safe.
#[pyclass(frozen, module = "smartretry._native")]
struct Engine(smartretry::Engine);

/// The engine's answer to a failure: retry or not, after how long, and why.
#[pyclass(frozen, module = "smartretry._native")]
struct Decision(smartretry::Decision);

/// The schedule the engine would follow if every retry failed.
#[pyclass(frozen, module = "smartretry._native")]
struct Preview(smartretry::Preview);

/// What the engine has seen for one (job_type, error_class).
#[pyclass(frozen, module = "smartretry._native")]
struct Stats(smartretry::Stats);

/// A bounded queue of lifecycle events. Iterate it (blocking, the GIL released) or call
/// `get`/`drain`; `close()` (or leaving a `with` block) ends it.
#[pyclass(frozen, module = "smartretry._native")]
struct Subscription {
    inner: smartretry::Subscription,
    closed: AtomicBool,
}

fn event_kinds(py: Python<'_>, names: Option<Vec<String>>) -> PyResult<Vec<EventKind>> {
    names.unwrap_or_default().iter().map(|n| EventKind::parse(n)).collect::<Result<_, _>>().map_py(py)
}

/// A dict a caller wrote: an unknown (misspelt) key is refused, named.
fn parse<T: serde::de::DeserializeOwned>(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<T> {
    convert::to_value(obj, "").and_then(from_value_strict).map_py(py)
}

fn features(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Features> {
    match fast::features(obj) {
        Some(f) => Ok(f),
        None => parse(py, obj),
    }
}

fn attempt(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Attempt> {
    match fast::attempt(obj) {
        Some(a) => Ok(a),
        None => parse(py, obj),
    }
}

#[pymethods]
impl Engine {
    /// `config`: a dict in the configuration file's shape, or a path to such a JSON file.
    /// `env`: apply `RETRY_*` environment variables over it. `store`: `"memory"` (default),
    /// `"sqlite:///path.db"` or `"redis://host:port/db"`.
    /// `ml_runtime`: the ONNX Runtime library for the ML tier (default: found installed).
    #[new]
    #[pyo3(signature = (seed = None, config = None, store = None, env = false, ml_runtime = None))]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = options::arg::opt::seed)] seed: Option<u64>,
        config: Option<&Bound<'_, PyAny>>,
        store: Option<&str>,
        env: bool,
        ml_runtime: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        let mut options = EngineOptions {
            env,
            store: store.map(str::to_string),
            seed,
            ml_runtime,
            ..EngineOptions::default()
        };
        match config {
            None => {}
            Some(c) if c.is_instance_of::<PyString>() || c.hasattr("__fspath__")? => {
                options.config_path = Some(c.extract()?);
            }
            Some(c) => options.config_json = Some(convert::to_value(c, "").map_py(py)?.to_string()),
        }
        py.detach(|| options.build()).map(Engine).map_py(py)
    }

    /// The seed every random choice derives from.
    #[getter]
    fn seed(&self) -> u64 {
        self.0.seed()
    }

    /// Should this failure be retried, and after how long?
    #[pyo3(signature = (features, now_ms = None))]
    fn decide(
        &self,
        py: Python<'_>,
        features: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Decision> {
        let f = self::features(py, features)?;
        py.detach(|| self.0.decide(&f, now_ms)).map(Decision).map_py(py)
    }

    /// Learn from what happened on an attempt.
    #[pyo3(signature = (attempt, now_ms = None))]
    fn record(
        &self,
        py: Python<'_>,
        attempt: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<()> {
        let a = self::attempt(py, attempt)?;
        py.detach(|| self.0.record(&a, now_ms)).map_py(py)
    }

    /// First attempts that succeeded, counted in one call.
    #[pyo3(signature = (job_type, tenant = None, count = 1, now_ms = None))]
    fn record_successes(
        &self,
        py: Python<'_>,
        job_type: &str,
        tenant: Option<&str>,
        #[pyo3(from_py_with = options::arg::count)] count: u64,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<()> {
        self.0.record_successes(job_type, tenant, count, now_ms).map_py(py)
    }

    /// Probe-and-release: has `job_type`'s downstream come back since `failed_at_ms` (when
    /// a waiting job's attempt failed)? Ask every `Decision.check_in_ms`; retry now if so.
    #[pyo3(signature = (job_type, failed_at_ms, now_ms = None))]
    fn released(
        &self,
        py: Python<'_>,
        job_type: &str,
        failed_at_ms: i64,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<bool> {
        u64::try_from(failed_at_ms)
            .map_err(|_| smartretry::Error::invalid("failed_at_ms", "must be a Unix time in ms (>= 0)"))
            .and_then(|at| self.0.released(job_type, at, now_ms))
            .map_py(py)
    }

    /// The schedule the engine would follow from this failure if every retry failed.
    #[pyo3(signature = (features, max_attempts = 5, now_ms = None))]
    fn preview(
        &self,
        py: Python<'_>,
        features: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = options::arg::max_attempts)] max_attempts: u32,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Preview> {
        let f = self::features(py, features)?;
        py.detach(|| self.0.preview(&f, max_attempts, now_ms)).map(Preview).map_py(py)
    }

    /// What was seen for (job_type, error_class) over the last `window_ms` (default 24 h).
    #[pyo3(signature = (job_type, error_class, window_ms = None, now_ms = None))]
    fn stats(
        &self,
        py: Python<'_>,
        job_type: &str,
        error_class: &str,
        #[pyo3(from_py_with = options::arg::opt::window_ms)] window_ms: Option<u64>,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Stats> {
        py.detach(|| self.0.stats(job_type, error_class, window_ms, now_ms)).map(Stats).map_py(py)
    }

    /// Refit the Bayesian model of one key now.
    fn refit(&self, py: Python<'_>, job_type: &str, error_class: &str) -> PyResult<()> {
        py.detach(|| self.0.refit(job_type, error_class)).map_py(py)
    }

    /// The rules tier's policies, highest priority first.
    fn policies<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialize_to_py(py, &self.0.policies())
    }

    /// Add (or replace) a policy, given in the API document's shape.
    fn add_policy(&self, py: Python<'_>, policy: &Bound<'_, PyAny>) -> PyResult<()> {
        let p: Policy = parse(py, policy)?;
        self.0.add_policy(p).map_py(py)
    }

    /// Remove a policy by name and return it.
    fn remove_policy<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let removed = self.0.remove_policy(name).map_py(py)?;
        convert::serialize_to_py(py, &removed)
    }

    /// The guardrails in force.
    fn guardrails<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialize_to_py(py, &self.0.guardrails())
    }

    /// Change some guardrail fields (a partial update); returns the guardrails now in force.
    fn update_guardrails<'py>(
        &self,
        py: Python<'py>,
        guardrails: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let patch = convert::to_value(guardrails, "guardrails").map_py(py)?;
        let next: Guardrails = self.0.patch_guardrails(&patch).map_py(py)?;
        convert::serialize_to_py(py, &next)
    }

    /// The emergency stop: while on, nothing is retried.
    #[pyo3(signature = (on = true))]
    fn emergency_stop(&self, on: bool) {
        self.0.emergency_stop(on)
    }

    fn is_emergency_stopped(&self) -> bool {
        self.0.is_emergency_stopped()
    }

    /// The strategy in force (policies, guardrails, thresholds).
    fn strategy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialize_to_py(py, &self.0.strategy())
    }

    /// Circuit breakers by downstream.
    #[pyo3(signature = (now_ms = None))]
    fn breakers<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        convert::serialize_to_py(py, &self.0.breakers(now_ms))
    }

    /// The engine's counters.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialize_to_py(py, &self.0.metrics())
    }

    /// The operator overrides in force, most specific first.
    #[pyo3(signature = (now_ms = None))]
    fn overrides<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        convert::serialize_to_py(py, &self.0.overrides(now_ms))
    }

    /// Add an override (one of the same name is replaced and returned).
    #[pyo3(signature = (override_, now_ms = None))]
    fn add_override<'py>(
        &self,
        py: Python<'py>,
        override_: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let o: Override = parse(py, override_)?;
        let replaced = self.0.add_override(o, now_ms).map_py(py)?;
        convert::serialize_to_py(py, &replaced)
    }

    /// Remove an override by name and return it.
    fn remove_override<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let removed = self.0.remove_override(name).map_py(py)?;
        convert::serialize_to_py(py, &removed)
    }

    /// The health of a job type's downstream (score 0–100, delay factor, what it saw).
    #[pyo3(signature = (job_type, now_ms = None))]
    fn health<'py>(
        &self,
        py: Python<'py>,
        job_type: &str,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let report = self.0.health(job_type, now_ms).map_py(py)?;
        convert::serialize_to_py(py, &report)
    }

    /// Lifecycle events of the named kinds (all when None), in a queue of `capacity`.
    #[pyo3(signature = (events = None, capacity = 1024))]
    fn subscribe(
        &self,
        py: Python<'_>,
        events: Option<Vec<String>>,
        #[pyo3(from_py_with = options::arg::capacity)] capacity: usize,
    ) -> PyResult<Subscription> {
        let kinds = event_kinds(py, events)?;
        let inner = self.0.subscribe(&kinds, capacity).map_py(py)?;
        Ok(Subscription { inner, closed: AtomicBool::new(false) })
    }

    /// Call `callback(event)` for each event of kind `event` ("*" = all), from a
    /// dispatcher thread, so a slow callback never holds up a decision. Returns a
    /// function that unsubscribes (and waits for the events already queued).
    #[pyo3(signature = (event, callback, capacity = 1024))]
    fn on<'py>(
        &self,
        py: Python<'py>,
        event: &str,
        callback: Bound<'py, PyAny>,
        #[pyo3(from_py_with = options::arg::capacity)] capacity: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let names = (event != "*").then(|| vec![event.to_string()]);
        let subscription = Bound::new(py, self.subscribe(py, names, capacity)?)?;
        py.import("smartretry._events")?.call_method1("listen", (subscription, callback))
    }

    /// Add a model version: an ONNX file and its sidecar JSON (default: beside it, `.json`).
    #[pyo3(signature = (model, sidecar = None, now_ms = None))]
    fn register_model<'py>(
        &self,
        py: Python<'py>,
        model: std::path::PathBuf,
        sidecar: Option<std::path::PathBuf>,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let info =
            py.detach(|| self.0.register_model_files(&model, sidecar.as_deref(), now_ms)).map_py(py)?;
        convert::serialize_to_py(py, &info)
    }

    /// Registered model versions with their metrics and deployment state.
    fn models<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialize_to_py(py, &self.0.models())
    }

    /// Serve `version` to `canary_percent` % of jobs (sticky per job id).
    #[pyo3(signature = (version, canary_percent = 100.0, now_ms = None))]
    fn deploy_model<'py>(
        &self,
        py: Python<'py>,
        version: &str,
        canary_percent: f64,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let d = py.detach(|| self.0.deploy_model(version, canary_percent, now_ms)).map_py(py)?;
        convert::serialize_to_py(py, &d)
    }

    /// Run `version` in shadow (compared, never served); `None` stops the shadow.
    #[pyo3(signature = (version, now_ms = None))]
    fn shadow_model<'py>(
        &self,
        py: Python<'py>,
        version: Option<&str>,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let d = py.detach(|| self.0.shadow_model(version, now_ms)).map_py(py)?;
        convert::serialize_to_py(py, &d)
    }

    /// Back to the previous deployment.
    #[pyo3(signature = (now_ms = None))]
    fn rollback_model<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let d = py.detach(|| self.0.rollback_model(now_ms)).map_py(py)?;
        convert::serialize_to_py(py, &d)
    }

    /// No model serves or watches: decisions come from the Bayesian tier.
    #[pyo3(signature = (now_ms = None))]
    fn rollback_to_bayesian<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let d = self.0.rollback_to_bayesian(now_ms).map_py(py)?;
        convert::serialize_to_py(py, &d)
    }

    /// The ML tier: runtime, deployment, versions, ML-vs-Bayesian comparison, failures.
    fn ml_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let status = py.detach(|| self.0.ml_status());
        convert::serialize_to_py(py, &status)
    }

    /// The model registry as JSON text, for a store to persist.
    fn ml_snapshot(&self, py: Python<'_>) -> String {
        py.detach(|| self.0.ml_snapshot().to_json())
    }

    /// Replace the model registry from `ml_snapshot()`'s JSON.
    fn restore_ml(&self, py: Python<'_>, snapshot: &str) -> PyResult<()> {
        py.detach(|| smartretry::MlSnapshot::from_json(snapshot).and_then(|s| self.0.restore_ml(s)))
            .map_py(py)
    }

    /// Wait until every outcome and audit record so far is in the store.
    #[pyo3(signature = (timeout_ms = 10_000))]
    fn flush(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = options::arg::timeout_ms)] timeout_ms: u64,
    ) -> PyResult<()> {
        py.detach(|| self.0.flush(std::time::Duration::from_millis(timeout_ms))).map_py(py)
    }

    /// The most recent sampled decisions, newest first (empty with the memory store).
    #[pyo3(signature = (limit = 100))]
    fn audit_trail<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = options::arg::limit)] limit: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let trail = py.detach(|| self.0.audit_trail(limit)).map_py(py)?;
        convert::serialize_to_py(py, &trail)
    }

    /// Put a job in the dead-letter queue; returns the entry with its `id`.
    #[pyo3(signature = (entry, now_ms = None))]
    fn add_dead_letter<'py>(
        &self,
        py: Python<'py>,
        entry: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let new: NewDeadLetter = parse(py, entry)?;
        let added = py.detach(|| self.0.add_dead_letter(new, now_ms)).map_py(py)?;
        convert::serialize_to_py(py, &added)
    }

    /// Dead letters, newest first.
    #[pyo3(signature = (status = None, job_type = None, limit = 100, offset = 0))]
    fn dead_letters<'py>(
        &self,
        py: Python<'py>,
        status: Option<&str>,
        job_type: Option<String>,
        #[pyo3(from_py_with = options::arg::limit)] limit: usize,
        #[pyo3(from_py_with = options::arg::offset)] offset: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let status = status.map(DeadLetterStatus::parse).transpose().map_py(py)?;
        let query = DeadLetterQuery { status, job_type, limit, offset };
        let listed = py.detach(|| self.0.dead_letters(&query)).map_py(py)?;
        convert::serialize_to_py(py, &listed)
    }

    /// One dead letter with its attempt history.
    fn dead_letter<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyAny>> {
        let entry = py.detach(|| self.0.dead_letter(id)).map_py(py)?;
        convert::serialize_to_py(py, &entry)
    }

    /// Mark a dead letter retried and return it (with its payload) for re-enqueueing.
    #[pyo3(signature = (id, now_ms = None))]
    fn retry_dead_letter<'py>(
        &self,
        py: Python<'py>,
        id: &str,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let entry = py.detach(|| self.0.retry_dead_letter(id, now_ms)).map_py(py)?;
        convert::serialize_to_py(py, &entry)
    }

    /// Close a dead letter with a note.
    #[pyo3(signature = (id, note, now_ms = None))]
    fn resolve_dead_letter<'py>(
        &self,
        py: Python<'py>,
        id: &str,
        note: &str,
        #[pyo3(from_py_with = options::arg::opt::now_ms)] now_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let entry = py.detach(|| self.0.resolve_dead_letter(id, note, now_ms)).map_py(py)?;
        convert::serialize_to_py(py, &entry)
    }

    /// How many dead letters there are (with this status, or in all).
    #[pyo3(signature = (status = None))]
    fn dead_letter_count(&self, py: Python<'_>, status: Option<&str>) -> PyResult<u64> {
        let status = status.map(DeadLetterStatus::parse).transpose().map_py(py)?;
        py.detach(|| self.0.dead_letter_count(status)).map_py(py)
    }

    fn __repr__(&self) -> String {
        format!("Engine(seed={})", self.0.seed())
    }
}

#[pymethods]
impl Decision {
    #[getter]
    fn should_retry(&self) -> bool {
        self.0.should_retry
    }
    #[getter]
    fn delay_ms(&self) -> u64 {
        self.0.delay_ms
    }
    #[getter]
    fn max_attempts(&self) -> u32 {
        self.0.max_attempts
    }
    #[getter]
    fn confidence(&self) -> f64 {
        self.0.confidence
    }
    #[getter]
    fn rationale(&self) -> &str {
        &self.0.rationale
    }
    #[getter]
    fn method(&self) -> &'static str {
        self.0.method.as_str()
    }
    #[getter]
    fn estimated_success(&self) -> f64 {
        self.0.estimated_success
    }
    #[getter]
    fn next_evaluation(&self) -> &str {
        &self.0.next_evaluation
    }
    /// Set while the downstream is down for every caller: check in (`Engine.released`)
    /// this often while waiting, and retry as soon as it says so.
    #[getter]
    fn check_in_ms(&self) -> Option<u64> {
        self.0.check_in_ms
    }
    #[getter]
    fn policy_guardrails(&self) -> Vec<&str> {
        self.0.policy_guardrails.iter().map(|g| g.as_ref()).collect()
    }
    #[getter]
    fn error_class(&self) -> &str {
        &self.0.error_class
    }
    #[getter]
    fn policy(&self) -> &str {
        &self.0.policy
    }
    /// The API document's JSON shape, as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialize_to_py(py, &self.0)
    }
    fn __repr__(&self) -> String {
        let d = &self.0;
        format!(
            "Decision(should_retry={}, delay_ms={}, method={:?}, confidence={}, rationale={:?})",
            if d.should_retry { "True" } else { "False" },
            d.delay_ms,
            d.method.as_str(),
            d.confidence,
            d.rationale
        )
    }
}

#[pymethods]
impl Preview {
    #[getter]
    fn job_id(&self) -> &str {
        &self.0.job_id
    }
    #[getter]
    fn current_attempt(&self) -> u32 {
        self.0.current_attempt
    }
    #[getter]
    fn features<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialize_to_py(py, &self.0.features)
    }
    #[getter]
    fn recommendations(&self) -> Vec<Decision> {
        self.0.recommendations.iter().cloned().map(Decision).collect()
    }
    #[getter]
    fn timeline<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialize_to_py(py, &self.0.timeline)
    }
    #[getter]
    fn generated_at(&self) -> &str {
        &self.0.generated_at
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialize_to_py(py, &self.0)
    }
    fn __repr__(&self) -> String {
        format!("Preview(job_id={:?}, retries={})", self.0.job_id, self.0.timeline.len())
    }
}

#[pymethods]
impl Stats {
    #[getter]
    fn job_type(&self) -> &str {
        &self.0.job_type
    }
    #[getter]
    fn error_class(&self) -> &str {
        &self.0.error_class
    }
    #[getter]
    fn total_attempts(&self) -> u64 {
        self.0.total_attempts
    }
    #[getter]
    fn successful_retries(&self) -> u64 {
        self.0.successful_retries
    }
    #[getter]
    fn failed_retries(&self) -> u64 {
        self.0.failed_retries
    }
    #[getter]
    fn avg_delay_ms(&self) -> f64 {
        self.0.avg_delay_ms
    }
    #[getter]
    fn success_rate(&self) -> f64 {
        self.0.success_rate
    }
    #[getter]
    fn last_updated(&self) -> Option<&str> {
        self.0.last_updated.as_deref()
    }
    #[getter]
    fn window_start(&self) -> &str {
        &self.0.window_start
    }
    #[getter]
    fn window_end(&self) -> &str {
        &self.0.window_end
    }
    #[getter]
    fn buckets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialize_to_py(py, &self.0.buckets)
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialize_to_py(py, &self.0)
    }
    fn __repr__(&self) -> String {
        let s = &self.0;
        format!(
            "Stats(job_type={:?}, error_class={:?}, total_attempts={}, success_rate={})",
            s.job_type, s.error_class, s.total_attempts, s.success_rate
        )
    }
}

#[pymethods]
impl Subscription {
    /// The next event as a dict, waiting up to `timeout` seconds (forever when None);
    /// None when the wait timed out or the subscription is closed.
    #[pyo3(signature = (timeout = None))]
    fn get<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let wait = match timeout {
            None => None,
            Some(t) if t.is_finite() && t >= 0.0 => Some(Duration::from_secs_f64(t.min(1e9))),
            Some(t) => {
                return Err(errors::to_py(
                    py,
                    smartretry::Error::invalid("timeout", format!("must be ≥ 0, got {t}")),
                ))
            }
        };
        match py.detach(|| self.inner.recv(wait)) {
            Ok(Some(event)) => convert::serialize_to_py(py, &*event).map(Some),
            Ok(None) => Ok(None),
            Err(Closed) => {
                self.closed.store(true, Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    /// Every event queued now, without waiting.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.inner.drain().iter().map(|e| convert::serialize_to_py(py, &**e)).collect()
    }

    /// Stop receiving; events already queued can still be read.
    fn close(&self) {
        self.inner.close();
    }

    /// True once the subscription is closed and its queue read to the end.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Events lost because the queue was full.
    #[getter]
    fn dropped(&self) -> u64 {
        self.inner.dropped()
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Blocks (GIL released) for the next event; stops when the subscription is closed.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        loop {
            if let Some(event) = self.get(py, Some(0.25))? {
                return Ok(Some(event));
            }
            if self.closed() {
                return Ok(None);
            }
            py.check_signals()?;
        }
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (exc_type = None, exc = None, tb = None))]
    fn __exit__(
        &self,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc: Option<&Bound<'_, PyAny>>,
        tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        let _ = (exc_type, exc, tb);
        self.close();
        false
    }
}

/// The trainer's rows, built by the engine's own feature code from JSON-lines attempt
/// history and a sidecar's feature list (JSON): `(rows, n, width, labels, job_ids,
/// delays_ms)`, `rows` as little-endian float32 (row-major) and `labels` one byte each.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn ml_training_matrix<'py>(
    py: Python<'py>,
    history_jsonl: &str,
    features_json: &str,
) -> PyResult<(Bound<'py, PyBytes>, usize, usize, Bound<'py, PyBytes>, Vec<String>, Vec<u64>)> {
    use smartretry::ml::features::{parse_history, training_data, FeatureColumn, FeatureSpec};
    let data = py
        .detach(|| -> smartretry::Result<_> {
            let columns: Vec<FeatureColumn> =
                smartretry::from_json(features_json).map_err(|e| e.within("features"))?;
            let spec = FeatureSpec::new(&columns)?;
            Ok(training_data(&spec, &parse_history(history_jsonl)?))
        })
        .map_py(py)?;
    let rows: Vec<u8> = data.rows.iter().flat_map(|x| x.to_le_bytes()).collect();
    let labels: Vec<u8> = data.labels.iter().map(|&l| u8::from(l)).collect();
    Ok((
        PyBytes::new(py, &rows),
        data.labels.len(),
        data.width,
        PyBytes::new(py, &labels),
        data.job_ids,
        data.delays_ms,
    ))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ml_training_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(options::validate_retry_options, m)?)?;
    m.add_function(wrap_pyfunction!(options::retry_options, m)?)?;
    m.add_class::<Engine>()?;
    m.add_class::<Decision>()?;
    m.add_class::<Preview>()?;
    m.add_class::<Stats>()?;
    m.add_class::<Subscription>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
