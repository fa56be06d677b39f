//! Node bindings for the smartretry engine (napi-rs): conversions only.
//!
//! `NativeEngine` wraps `smartretry::Engine` and maps its methods 1:1. Objects cross
//! the boundary as JSON text in the API document's snake_case shape: the package's
//! JavaScript layer calls `JSON.stringify`/`JSON.parse`, and the core parses with its
//! own field-naming errors. That is faster than walking JS objects property by
//! property through N-API (measurements in `node/README.md`, "Performance").
//!
//! Two methods take positional arguments instead of JSON, for the retry loop's hot
//! path: `decideFailure` (= `decide`) and `recordAttempt` (= `record`). They build the
//! same core `Features`/`Attempt` and call the same core methods; nothing is decided
//! here. Numbers from JS become the core's integers only if they are exact
//! non-negative integers (else `invalid_input` naming the field). Every method catches
//! panics (`catch_unwind`), so none crosses into Node.

use std::sync::Arc;

use napi::bindgen_prelude::{Env, Function, ObjectFinalize};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::Result;
use napi_derive::napi;
use serde::Serialize;
use smartretry::from_json_strict;
use smartretry::options::{self, Given, Host};
use smartretry::EventKind;
use smartretry::{
    Attempt, DeadLetterQuery, DeadLetterStatus, Engine, EngineOptions, Features, NewDeadLetter, Override,
    Policy,
};

mod error;

/// A `Float64Array` the caller passes in for small results. An alias, because
/// `#[napi]` reads a `&mut` argument as a borrowed class instance.
type OutParams<'a> = &'a mut [f64];

/// The largest integer a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A JS number as the core's `u64`, or an `invalid_input` error naming `field`.
fn int(env: &Env, field: &str, value: f64) -> Result<u64> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= MAX_SAFE_INTEGER {
        Ok(value as u64)
    } else {
        Err(error::invalid(env, field, &format!("expected a non-negative integer, got {value}")))
    }
}

fn opt_int(env: &Env, field: &str, value: Option<f64>) -> Result<Option<u64>> {
    value.map(|v| int(env, field, v)).transpose()
}

fn opt_u32(env: &Env, field: &str, value: Option<f64>) -> Result<Option<u32>> {
    opt_int(env, field, value)?
        .map(|v| u32::try_from(v).map_err(|_| error::invalid(env, field, &format!("too large: {v}"))))
        .transpose()
}

fn status(env: &Env, value: Option<u32>) -> Result<Option<u16>> {
    value
        .map(|s| u16::try_from(s).map_err(|_| error::invalid(env, "http_status", &format!("got {s}"))))
        .transpose()
}

fn core<T>(env: &Env, result: smartretry::Result<T>) -> Result<T> {
    result.map_err(|e| error::to_js(env, e))
}

/// An object a caller wrote: an unknown (misspelt) field is refused, named.
fn parse<T: serde::de::DeserializeOwned>(env: &Env, json: &str) -> Result<T> {
    core(env, from_json_strict(json))
}

fn json<T: Serialize>(env: &Env, value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| error::to_js(env, smartretry::Error::invalid("result", e.to_string())))
}

/// The retry engine. Use the package's `Engine` class, which converts objects.
/// `close()` drops the core engine at once (its memory, threads and store
/// connections) instead of when the garbage collector gets to the JS object.
#[napi(custom_finalize)]
pub struct NativeEngine(Option<Engine>);

/// What an engine holds (≈ 70 KB measured with 20,000 live engines), told to V8 so its
/// collector weighs a forgotten `Engine` by what it really costs.
const ENGINE_BYTES: i64 = 72 * 1024;

impl ObjectFinalize for NativeEngine {
    fn finalize(self, env: Env) -> Result<()> {
        if self.0.is_some() {
            env.adjust_external_memory(-ENGINE_BYTES)?;
        }
        Ok(())
    }
}

impl NativeEngine {
    /// The engine, or a `closed` error once `close()` was called.
    fn engine(&self, env: &Env) -> Result<&Engine> {
        self.0.as_ref().ok_or_else(|| error::closed(env))
    }
}

#[napi]
impl NativeEngine {
    /// `configJson`: the configuration file's JSON; `seed`: makes random choices reproducible;
    /// `mlRuntime`: the ONNX Runtime library for the ML tier (default: found installed);
    /// `store`: `memory` (default), `sqlite:///path.db`, `redis://host:port/db`.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        env: &Env,
        seed: Option<f64>,
        config_json: Option<String>,
        ml_runtime: Option<String>,
        store: Option<String>,
    ) -> Result<Self> {
        let options = EngineOptions {
            config_json,
            store,
            seed: seed.map(|s| int(env, "seed", s)).transpose()?,
            ml_runtime: ml_runtime.map(Into::into),
            ..EngineOptions::default()
        };
        let engine = core(env, options.build())?;
        env.adjust_external_memory(ENGINE_BYTES)?;
        Ok(NativeEngine(Some(engine)))
    }

    /// Drops the core engine now; every later call throws `code: 'closed'`. Idempotent.
    #[napi(catch_unwind)]
    pub fn close(&mut self, env: &Env) -> Result<()> {
        if self.0.take().is_some() {
            env.adjust_external_memory(-ENGINE_BYTES)?;
        }
        Ok(())
    }

    /// Whether `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.0.is_none()
    }

    /// `Engine::decide`: Features JSON in, Decision JSON out.
    #[napi(catch_unwind)]
    pub fn decide(&self, env: &Env, features_json: String, now_ms: Option<f64>) -> Result<String> {
        let features: Features = parse(env, &features_json)?;
        let now = opt_int(env, "nowMs", now_ms)?;
        json(env, &core(env, self.engine(env)?.decide(&features, now))?)
    }

    /// `Engine::decide` with the features a retry loop knows, as arguments. Also writes
    /// `[should_retry ? 1 : 0, delay_ms, check_in_ms or 0]` into `out` (a `Float64Array`
    /// of length 3), so the loop can act at once and parse the returned Decision JSON
    /// only if asked.
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn decide_failure(
        &self,
        env: &Env,
        #[napi(ts_arg_type = "Float64Array")] out: OutParams<'_>,
        job_type: String,
        attempt_number: u32,
        job_id: Option<String>,
        tenant: Option<String>,
        http_status: Option<u32>,
        error_class: Option<String>,
        error_code: Option<String>,
        retry_after: Option<String>,
        idempotent: Option<bool>,
        since_first_failure_ms: Option<f64>,
        deadline_ms: Option<f64>,
        max_attempts: Option<f64>,
        #[napi(ts_arg_type = "'low' | 'normal' | 'high' | 'critical' | undefined | null")] priority: Option<
            String,
        >,
        backoff_json: Option<String>,
        expected: Option<bool>,
        now_ms: Option<f64>,
    ) -> Result<String> {
        let priority = core(env, priority.as_deref().map(smartretry::Priority::parse).transpose())?;
        let backoff = backoff_json.map(|text| parse(env, &text)).transpose()?;
        let features = Features {
            job_type,
            attempt_number,
            job_id,
            tenant,
            http_status: status(env, http_status)?,
            error_class,
            error_code,
            retry_after,
            idempotent,
            since_first_failure_ms: opt_int(env, "since_first_failure_ms", since_first_failure_ms)?,
            deadline_ms: opt_int(env, "deadline_ms", deadline_ms)?,
            max_attempts: opt_u32(env, "max_attempts", max_attempts)?,
            priority,
            backoff,
            expected,
            ..Features::default()
        };
        let now = opt_int(env, "nowMs", now_ms)?;
        let decision = core(env, self.engine(env)?.decide(&features, now))?;
        match out {
            [retry, delay, check_in, ..] => {
                *retry = f64::from(u8::from(decision.should_retry));
                *delay = decision.delay_ms as f64;
                *check_in = decision.check_in_ms.unwrap_or(0) as f64;
            }
            _ => return Err(error::invalid(env, "out", "expected a Float64Array of length 3")),
        }
        json(env, &decision)
    }

    /// `Engine::record`: Attempt JSON in.
    #[napi(catch_unwind)]
    pub fn record(&self, env: &Env, attempt_json: String, now_ms: Option<f64>) -> Result<()> {
        let attempt: Attempt = parse(env, &attempt_json)?;
        let now = opt_int(env, "nowMs", now_ms)?;
        core(env, self.engine(env)?.record(&attempt, now))
    }

    /// `Engine::record` with the outcome a retry loop knows, as arguments. The failure
    /// being retried is described by `http_status`, `error_class` and `error_code`, so
    /// the core learns under the same key it decided under.
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn record_attempt(
        &self,
        env: &Env,
        job_id: String,
        job_type: String,
        attempt_number: u32,
        success: bool,
        delay_ms: f64,
        tenant: Option<String>,
        http_status: Option<u32>,
        error_class: Option<String>,
        error_code: Option<String>,
        since_first_failure_ms: Option<f64>,
        now_ms: Option<f64>,
    ) -> Result<()> {
        let attempt = Attempt {
            job_id,
            job_type,
            attempt_number,
            success,
            delay_ms: int(env, "delay_ms", delay_ms)?,
            tenant,
            http_status: status(env, http_status)?,
            error_class,
            error_code,
            since_first_failure_ms: opt_int(env, "since_first_failure_ms", since_first_failure_ms)?,
            ..Attempt::default()
        };
        let now = opt_int(env, "nowMs", now_ms)?;
        core(env, self.engine(env)?.record(&attempt, now))
    }

    /// `Engine::released`: has the downstream come back since `failed_at_ms`?
    #[napi(catch_unwind)]
    pub fn released(
        &self,
        env: &Env,
        job_type: String,
        failed_at_ms: f64,
        now_ms: Option<f64>,
    ) -> Result<bool> {
        let failed_at = int(env, "failedAtMs", failed_at_ms)?;
        let now = opt_int(env, "nowMs", now_ms)?;
        core(env, self.engine(env)?.released(&job_type, failed_at, now))
    }

    /// `Engine::record_successes`: first attempts that succeeded, in one call.
    #[napi(catch_unwind)]
    pub fn record_successes(
        &self,
        env: &Env,
        job_type: String,
        tenant: Option<String>,
        count: f64,
        now_ms: Option<f64>,
    ) -> Result<()> {
        let count = int(env, "count", count)?;
        let now = opt_int(env, "nowMs", now_ms)?;
        core(env, self.engine(env)?.record_successes(&job_type, tenant.as_deref(), count, now))
    }

    /// `Engine::preview`: Features JSON in, Preview JSON out.
    #[napi(catch_unwind)]
    pub fn preview(
        &self,
        env: &Env,
        features_json: String,
        max_attempts: f64,
        now_ms: Option<f64>,
    ) -> Result<String> {
        let features: Features = parse(env, &features_json)?;
        let max = opt_u32(env, "maxAttempts", Some(max_attempts))?.unwrap_or_default();
        let now = opt_int(env, "nowMs", now_ms)?;
        json(env, &core(env, self.engine(env)?.preview(&features, max, now))?)
    }

    /// `Engine::stats`: Stats JSON out.
    #[napi(catch_unwind)]
    pub fn stats(
        &self,
        env: &Env,
        job_type: String,
        error_class: String,
        window_ms: Option<f64>,
        now_ms: Option<f64>,
    ) -> Result<String> {
        let window = opt_int(env, "windowMs", window_ms)?;
        let now = opt_int(env, "nowMs", now_ms)?;
        json(env, &core(env, self.engine(env)?.stats(&job_type, &error_class, window, now))?)
    }

    /// `Engine::policies`: a JSON array of policies.
    #[napi(catch_unwind)]
    pub fn policies(&self, env: &Env) -> Result<String> {
        json(env, &self.engine(env)?.policies())
    }

    /// `Engine::add_policy`: Policy JSON in.
    #[napi(catch_unwind)]
    pub fn add_policy(&self, env: &Env, policy_json: String) -> Result<()> {
        let policy: Policy = parse(env, &policy_json)?;
        core(env, self.engine(env)?.add_policy(policy))
    }

    /// `Engine::remove_policy`: the removed policy as JSON.
    #[napi(catch_unwind)]
    pub fn remove_policy(&self, env: &Env, name: String) -> Result<String> {
        json(env, &core(env, self.engine(env)?.remove_policy(&name))?)
    }

    /// `Engine::guardrails`: Guardrails JSON out.
    #[napi(catch_unwind)]
    pub fn guardrails(&self, env: &Env) -> Result<String> {
        json(env, &self.engine(env)?.guardrails())
    }

    /// `Engine::patch_guardrails`: some guardrail fields as JSON in, all of them out.
    #[napi(catch_unwind)]
    pub fn update_guardrails(&self, env: &Env, patch_json: String) -> Result<String> {
        let patch: serde_json::Value = parse(env, &patch_json)?;
        json(env, &core(env, self.engine(env)?.patch_guardrails(&patch))?)
    }

    /// `Engine::emergency_stop`: while on, nothing is retried.
    #[napi(catch_unwind)]
    pub fn emergency_stop(&self, env: &Env, on: bool) -> Result<()> {
        self.engine(env)?.emergency_stop(on);
        Ok(())
    }

    /// `Engine::is_emergency_stopped`.
    #[napi(catch_unwind)]
    pub fn is_emergency_stopped(&self, env: &Env) -> Result<bool> {
        Ok(self.engine(env)?.is_emergency_stopped())
    }

    /// `Engine::metrics`: the counters as JSON.
    #[napi(catch_unwind)]
    pub fn metrics(&self, env: &Env) -> Result<String> {
        json(env, &self.engine(env)?.metrics())
    }

    /// `Engine::overrides`: a JSON array, most specific first.
    #[napi(catch_unwind)]
    pub fn overrides(&self, env: &Env, now_ms: Option<f64>) -> Result<String> {
        let now = opt_int(env, "nowMs", now_ms)?;
        json(env, &self.engine(env)?.overrides(now))
    }

    /// `Engine::add_override`: Override JSON in; the one it replaced (or null) out.
    #[napi(catch_unwind)]
    pub fn add_override(&self, env: &Env, override_json: String, now_ms: Option<f64>) -> Result<String> {
        let o: Override = parse(env, &override_json)?;
        let now = opt_int(env, "nowMs", now_ms)?;
        json(env, &core(env, self.engine(env)?.add_override(o, now))?)
    }

    /// `Engine::remove_override`: the removed override as JSON.
    #[napi(catch_unwind)]
    pub fn remove_override(&self, env: &Env, name: String) -> Result<String> {
        json(env, &core(env, self.engine(env)?.remove_override(&name))?)
    }

    /// `Engine::health`: a downstream's health report as JSON.
    #[napi(catch_unwind)]
    pub fn health(&self, env: &Env, job_type: String, now_ms: Option<f64>) -> Result<String> {
        let now = opt_int(env, "nowMs", now_ms)?;
        json(env, &core(env, self.engine(env)?.health(&job_type, now))?)
    }

    /// `Engine::subscribe`: `callback(eventJson)` for each event of `kinds` (all when
    /// empty), called on the event loop. A thread waits on the core's bounded queue and
    /// hands events over without blocking, so neither a busy loop nor a slow listener
    /// ever holds up a decision (events that do not fit are dropped and counted). The
    /// callback does not keep the process alive.
    #[napi(
        catch_unwind,
        ts_args_type = "kinds: string[], capacity: number, callback: (eventJson: string) => void"
    )]
    pub fn subscribe(
        &self,
        env: &Env,
        kinds: Vec<String>,
        capacity: u32,
        callback: Function<String, ()>,
    ) -> Result<NativeSubscription> {
        let kinds =
            core(env, kinds.iter().map(|k| EventKind::parse(k)).collect::<smartretry::Result<Vec<_>>>())?;
        let subscription = Arc::new(core(env, self.engine(env)?.subscribe(&kinds, capacity as usize))?);
        let tsfn = callback
            .build_threadsafe_function::<String>()
            .callee_handled::<false>()
            .weak::<true>()
            .max_queue_size::<4096>()
            .build()?;
        let source = Arc::clone(&subscription);
        std::thread::Builder::new()
            .name("smartretry-events".into())
            .spawn(move || {
                while let Ok(next) = source.recv(None) {
                    if let Some(event) = next {
                        if let Ok(text) = serde_json::to_string(&*event) {
                            tsfn.call(text, ThreadsafeFunctionCallMode::NonBlocking);
                        }
                    }
                }
            })
            .map_err(|e| error::to_js(env, smartretry::Error::invalid("subscribe", e.to_string())))?;
        Ok(NativeSubscription(subscription))
    }

    /// `Engine::register_model_files`: ModelInfo JSON out.
    #[napi(catch_unwind)]
    pub fn register_model(
        &self,
        env: &Env,
        model_path: String,
        sidecar_path: Option<String>,
        now_ms: Option<f64>,
    ) -> Result<String> {
        let now = opt_int(env, "nowMs", now_ms)?;
        let sidecar = sidecar_path.as_deref().map(std::path::Path::new);
        json(env, &core(env, self.engine(env)?.register_model_files(&model_path, sidecar, now))?)
    }

    /// `Engine::models`: a JSON array of ModelInfo.
    #[napi(catch_unwind)]
    pub fn models(&self, env: &Env) -> Result<String> {
        json(env, &self.engine(env)?.models())
    }

    /// `Engine::deploy_model`: Deployment JSON out.
    #[napi(catch_unwind)]
    pub fn deploy_model(
        &self,
        env: &Env,
        version: String,
        canary_percent: f64,
        now_ms: Option<f64>,
    ) -> Result<String> {
        let now = opt_int(env, "nowMs", now_ms)?;
        json(env, &core(env, self.engine(env)?.deploy_model(&version, canary_percent, now))?)
    }

    /// `Engine::shadow_model` (`null` stops the shadow): Deployment JSON out.
    #[napi(catch_unwind)]
    pub fn shadow_model(&self, env: &Env, version: Option<String>, now_ms: Option<f64>) -> Result<String> {
        let now = opt_int(env, "nowMs", now_ms)?;
        json(env, &core(env, self.engine(env)?.shadow_model(version.as_deref(), now))?)
    }

    /// `Engine::rollback_model`: Deployment JSON out.
    #[napi(catch_unwind)]
    pub fn rollback_model(&self, env: &Env, now_ms: Option<f64>) -> Result<String> {
        let now = opt_int(env, "nowMs", now_ms)?;
        json(env, &core(env, self.engine(env)?.rollback_model(now))?)
    }

    /// `Engine::rollback_to_bayesian`: Deployment JSON out.
    #[napi(catch_unwind)]
    pub fn rollback_to_bayesian(&self, env: &Env, now_ms: Option<f64>) -> Result<String> {
        let now = opt_int(env, "nowMs", now_ms)?;
        json(env, &core(env, self.engine(env)?.rollback_to_bayesian(now))?)
    }

    /// `Engine::ml_status`: MlStatus JSON out.
    #[napi(catch_unwind)]
    pub fn ml_status(&self, env: &Env) -> Result<String> {
        json(env, &self.engine(env)?.ml_status())
    }

    /// `Engine::ml_snapshot`: the registry as JSON.
    #[napi(catch_unwind)]
    pub fn ml_snapshot(&self, env: &Env) -> Result<String> {
        Ok(self.engine(env)?.ml_snapshot().to_json())
    }

    /// `Engine::restore_ml` from `mlSnapshot()`'s JSON.
    #[napi(catch_unwind)]
    pub fn restore_ml(&self, env: &Env, snapshot_json: String) -> Result<()> {
        let snapshot = core(env, smartretry::MlSnapshot::from_json(&snapshot_json))?;
        core(env, self.engine(env)?.restore_ml(snapshot))
    }

    /// `Engine::flush`: waits (this thread) until the store has every record so far.
    #[napi(catch_unwind)]
    pub fn flush(&self, env: &Env, timeout_ms: f64) -> Result<()> {
        let ms = int(env, "timeoutMs", timeout_ms)?;
        core(env, self.engine(env)?.flush(std::time::Duration::from_millis(ms)))
    }

    /// `Engine::audit_trail`, as JSON.
    #[napi(catch_unwind)]
    pub fn audit_trail(&self, env: &Env, limit: u32) -> Result<String> {
        json(env, &core(env, self.engine(env)?.audit_trail(limit as usize))?)
    }

    /// `Engine::add_dead_letter`: NewDeadLetter JSON in, DeadLetter JSON out.
    #[napi(catch_unwind)]
    pub fn add_dead_letter(&self, env: &Env, entry_json: String, now_ms: Option<f64>) -> Result<String> {
        let entry: NewDeadLetter = parse(env, &entry_json)?;
        let now = opt_int(env, "nowMs", now_ms)?;
        json(env, &core(env, self.engine(env)?.add_dead_letter(entry, now))?)
    }

    /// `Engine::dead_letters`: DeadLetterQuery JSON in, a JSON array out.
    #[napi(catch_unwind)]
    pub fn dead_letters(&self, env: &Env, query_json: String) -> Result<String> {
        let query: DeadLetterQuery = parse(env, &query_json)?;
        json(env, &core(env, self.engine(env)?.dead_letters(&query))?)
    }

    /// `Engine::dead_letter`, as JSON.
    #[napi(catch_unwind)]
    pub fn dead_letter(&self, env: &Env, id: String) -> Result<String> {
        json(env, &core(env, self.engine(env)?.dead_letter(&id))?)
    }

    /// `Engine::retry_dead_letter`, as JSON.
    #[napi(catch_unwind)]
    pub fn retry_dead_letter(&self, env: &Env, id: String, now_ms: Option<f64>) -> Result<String> {
        let now = opt_int(env, "nowMs", now_ms)?;
        json(env, &core(env, self.engine(env)?.retry_dead_letter(&id, now))?)
    }

    /// `Engine::resolve_dead_letter`, as JSON.
    #[napi(catch_unwind)]
    pub fn resolve_dead_letter(
        &self,
        env: &Env,
        id: String,
        note: String,
        now_ms: Option<f64>,
    ) -> Result<String> {
        let now = opt_int(env, "nowMs", now_ms)?;
        json(env, &core(env, self.engine(env)?.resolve_dead_letter(&id, &note, now))?)
    }

    /// `Engine::dead_letter_count`.
    #[napi(catch_unwind)]
    pub fn dead_letter_count(&self, env: &Env, status: Option<String>) -> Result<f64> {
        let status = core(env, status.as_deref().map(DeadLetterStatus::parse).transpose())?;
        Ok(core(env, self.engine(env)?.dead_letter_count(status))? as f64)
    }
}

/// Checks one option of `retry()`/`wrap()` against the core's options contract
/// (`smartretry::options`): `name` as Node spells it, `value_json` the value as the
/// package describes it (`JSON.stringify` of `describeOption(value)`: a non-finite
/// number as `{"$": "NaN"}`, a function as `{"$": "function"}`, another object as
/// `{"$": "object", "type": "AbortSignal"}`). Throws the core's error naming the
/// option; returns a schedule's JSON as `decideFailure` takes it (else null).
#[napi(catch_unwind)]
pub fn check_retry_option(env: Env, name: String, value_json: String) -> Result<Option<String>> {
    let value: serde_json::Value = parse(&env, &value_json)?;
    let mut out = smartretry::CallOptions::default();
    core(&env, options::check_one(Host::Node, &name, &given(&value), &mut out))?;
    out.backoff.map(|b| json(&env, &b)).transpose()
}

/// The options contract as Node spells it: `[{name, kind, type, default, meaning}]` JSON.
#[napi(catch_unwind)]
pub fn retry_options(env: Env) -> Result<String> {
    let table: Vec<serde_json::Value> = options::OPTIONS
        .iter()
        .filter_map(|spec| {
            let name = spec.spelled(Host::Node)?;
            let kind = match spec.ty {
                options::Type::Function => "function",
                options::Type::HostValue(_) => "host",
                options::Type::Backoff => "schedule",
                _ => "data",
            };
            Some(serde_json::json!({
                "name": name, "canonical": spec.name, "kind": kind, "type": spec.ty.describe(),
                "default": spec.default, "meaning": spec.meaning,
            }))
        })
        .collect();
    json(&env, &table)
}

/// A described JS value (see `check_retry_option`) as the core's `Given`.
fn given(value: &serde_json::Value) -> Given {
    use serde_json::Value;
    match value {
        Value::Object(map) => match map.get("$").and_then(Value::as_str) {
            Some("NaN") => Given::Float(f64::NAN),
            Some("Infinity") => Given::Float(f64::INFINITY),
            Some("-Infinity") => Given::Float(f64::NEG_INFINITY),
            Some("function") => Given::Function,
            Some("object") => {
                Given::Object(map.get("type").and_then(Value::as_str).unwrap_or("object").into())
            }
            _ => Given::Map(map.iter().map(|(k, v)| (k.clone(), given(v))).collect()),
        },
        // A JS number without a fraction is an integer (and JSON gives it as one, or as
        // a float like 1e21 beyond i64).
        Value::Number(n)
            if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e30)
                && !n.is_i64()
                && !n.is_u64() =>
        {
            Given::Int(n.as_f64().unwrap_or_default() as i128)
        }
        other => Given::from_json(other),
    }
}

/// A subscription made by `NativeEngine.subscribe`.
#[napi]
pub struct NativeSubscription(Arc<smartretry::Subscription>);

#[napi]
impl NativeSubscription {
    /// Stops the events; the waiting thread ends.
    #[napi(catch_unwind)]
    pub fn close(&self) {
        self.0.close();
    }

    /// Events lost because the queue was full.
    #[napi(catch_unwind)]
    pub fn dropped(&self) -> f64 {
        self.0.dropped() as f64
    }
}
