//! A small C ABI over the engine, for Go's cgo (`bindings/go`). Objects cross as the
//! API document's snake_case JSON; the core parses them with its field-naming errors.
//!
//! Conventions, the same for every function:
//! - the return value is `SMARTRETRY_OK` (0) or `SMARTRETRY_ERR` (1);
//! - `out` receives a NUL-terminated string the caller frees with
//!   `smartretry_string_free`: the result's JSON on success (NULL for calls without a
//!   result), or on error `{"kind", "field", "reason", "message"}` (`kind` as the core's
//!   `Error::kind`, plus `internal` for a caught panic);
//! - `now_ms` = `SMARTRETRY_NOW` means the wall clock; optional numbers use
//!   `SMARTRETRY_NONE`; optional strings may be NULL.
//!
//! Pointers: `engine` is NULL or a live engine from `smartretry_engine_new`; string
//! arguments are NULL or NUL-terminated and outlive the call; `out` is NULL or a
//! valid `char **`. NULL where a value is required is an `invalid_input` error.
//!
//! No panic crosses: each body runs in [`guarded`]. `bindings/go/smartretry.h` is generated
//! from this file by cbindgen (the `header_is_current` test fails if it is stale).

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use serde::Serialize;
use smartretry::from_json;
use smartretry::{Attempt, Engine, EngineOptions, EventKind, Features, Policy, Subscription};

use crate::compact;
use crate::error::{guarded, Result, SmartRetryError};

/// The call succeeded.
pub const SMARTRETRY_OK: i32 = 0;
/// The call failed; `out` holds the error's JSON.
pub const SMARTRETRY_ERR: i32 = 1;
/// `now_ms` meaning "the wall clock".
pub const SMARTRETRY_NOW: u64 = u64::MAX;
/// An absent optional number (`window_ms`).
pub const SMARTRETRY_NONE: u64 = u64::MAX;

/// An engine; create with `smartretry_engine_new`, free with `smartretry_engine_free`.
/// Safe to use from many threads at once.
pub struct SmartretryEngine(Engine);

/// A subscription to lifecycle events; create with `smartretry_subscribe`, free with
/// `smartretry_subscription_free`. Poll it from one thread at a time.
pub struct SmartretrySubscription(Subscription);

#[derive(Serialize)]
struct ErrorJson<'a> {
    kind: &'a str,
    field: Option<&'a str>,
    reason: &'a str,
    message: String,
}

fn c_string(text: String) -> *mut c_char {
    // JSON escapes NUL, so this only fails on a bug; report it rather than panic.
    CString::new(text)
        .unwrap_or_else(|_| CString::from(c"{\"kind\":\"internal\",\"reason\":\"NUL in output\"}"))
        .into_raw()
}

pub(crate) fn error_json(e: &SmartRetryError) -> String {
    let body = ErrorJson { kind: e.kind(), field: e.field(), reason: e.reason(), message: e.to_string() };
    serde_json::to_string(&body).unwrap_or_else(|_| format!("{{\"kind\":\"{}\"}}", e.kind()))
}

/// Runs `body`; writes its JSON (or the error's) to `out` and returns the status.
fn call(out: *mut *mut c_char, body: impl FnOnce() -> Result<Option<String>>) -> i32 {
    let (status, text) = match guarded(body) {
        Ok(text) => (SMARTRETRY_OK, text),
        Err(e) => (SMARTRETRY_ERR, Some(error_json(&e))),
    };
    if !out.is_null() {
        // SAFETY: the caller passes a valid `char **` (or NULL, checked above).
        unsafe { *out = text.map_or(ptr::null_mut(), c_string) };
    }
    status
}

fn json<T: Serialize>(value: &T) -> Result<Option<String>> {
    serde_json::to_string(value).map(Some).map_err(|e| SmartRetryError::invalid("result", e.to_string()))
}

/// A C string argument as UTF-8, or `InvalidInput` naming it.
fn text<'a>(field: &str, s: *const c_char) -> Result<&'a str> {
    opt_text(field, s)?.ok_or_else(|| SmartRetryError::invalid(field, "must not be NULL"))
}

fn opt_text<'a>(field: &str, s: *const c_char) -> Result<Option<&'a str>> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller passes a NUL-terminated string that outlives the call.
    let bytes = unsafe { CStr::from_ptr(s) };
    bytes.to_str().map(Some).map_err(|_| SmartRetryError::invalid(field, "must be UTF-8"))
}

fn engine<'a>(e: *const SmartretryEngine) -> Result<&'a Engine> {
    // SAFETY: a non-NULL pointer comes from smartretry_engine_new and is not yet freed.
    unsafe { e.as_ref() }.map(|e| &e.0).ok_or_else(|| SmartRetryError::invalid("engine", "must not be NULL"))
}

fn opt(value: u64) -> Option<u64> {
    (value != SMARTRETRY_NONE).then_some(value)
}

/// Creates an engine. `has_seed` says whether `seed` is used; `config_json` (may be
/// NULL) is the configuration file's JSON; `store` (may be NULL: the configuration's)
/// is where state lives: `memory`, `sqlite:///path.db`, `redis://host:port/db`. On
/// success `*engine` is set and `*out` NULL.
///
/// # Safety
/// `engine` and `out` are valid `*mut` pointers (or NULL); `config_json` and `store`
/// are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn smartretry_engine_new(
    seed: u64,
    has_seed: bool,
    config_json: *const c_char,
    store: *const c_char,
    engine: *mut *mut SmartretryEngine,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || {
        if engine.is_null() {
            return Err(SmartRetryError::invalid("engine", "must not be NULL"));
        }
        let options = EngineOptions {
            config_json: opt_text("config_json", config_json)?.map(str::to_string),
            store: opt_text("store", store)?.map(str::to_string),
            seed: has_seed.then_some(seed),
            ..EngineOptions::default()
        };
        let built = Box::into_raw(Box::new(SmartretryEngine(options.build()?)));
        // SAFETY: checked non-NULL above.
        unsafe { *engine = built };
        Ok(None)
    })
}

/// Frees an engine (NULL is ignored). It must not be in use by another thread.
///
/// # Safety
/// `engine` came from `smartretry_engine_new` and is freed once.
#[no_mangle]
pub unsafe extern "C" fn smartretry_engine_free(engine: *mut SmartretryEngine) {
    if !engine.is_null() {
        // SAFETY: the pointer came from smartretry_engine_new and is freed once.
        drop(unsafe { Box::from_raw(engine) });
    }
}

/// Frees a string this library returned (NULL is ignored).
///
/// # Safety
/// `s` came from this library and is freed once.
#[no_mangle]
pub unsafe extern "C" fn smartretry_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: the pointer came from CString::into_raw in this library.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Features JSON in, Decision JSON out.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_decide(
    engine: *const SmartretryEngine,
    features_json: *const c_char,
    now_ms: u64,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || {
        let features: Features = from_json(text("features", features_json)?)?;
        json(&self::engine(engine)?.decide(&features, opt(now_ms))?)
    })
}

/// Attempt JSON in; `*out` is NULL on success.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_record(
    engine: *const SmartretryEngine,
    attempt_json: *const c_char,
    now_ms: u64,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || {
        let attempt: Attempt = from_json(text("attempt", attempt_json)?)?;
        self::engine(engine)?.record(&attempt, opt(now_ms))?;
        Ok(None)
    })
}

/// `smartretry_decide` without JSON, for the Go helper's hot path: Features in the
/// compact encoding of `compact.rs` (`features_len` bytes), the Decision out in it. The
/// result (or the error's JSON) is written to `out` if it fits in `out_cap` bytes, else to
/// a new buffer in `*spill`, freed with `smartretry_bytes_free(*spill, *out_len)`;
/// `*out_len` is its length either way.
///
/// # Safety
/// `features` has `features_len` readable bytes, `out` has `out_cap` writable bytes,
/// `out_len` and `spill` are valid for a write (or NULL); see also "Pointers" above.
#[no_mangle]
pub unsafe extern "C" fn smartretry_decide_compact(
    engine: *const SmartretryEngine,
    features: *const u8,
    features_len: usize,
    now_ms: u64,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
    spill: *mut *mut u8,
) -> i32 {
    let output = compact::Output { buf: out, cap: out_cap, len: out_len, spill };
    // SAFETY: forwarded from this function's contract.
    unsafe {
        compact::call(features, features_len, output, compact::encode_error_json, |input| {
            compact::decide(self::engine(engine)?, input, now_ms)
        })
    }
}

/// `smartretry_record` without JSON: an Attempt in the compact encoding; buffers as in
/// `smartretry_decide_compact` (only an error has output).
///
/// # Safety
/// As `smartretry_decide_compact`.
#[no_mangle]
pub unsafe extern "C" fn smartretry_record_compact(
    engine: *const SmartretryEngine,
    attempt: *const u8,
    attempt_len: usize,
    now_ms: u64,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
    spill: *mut *mut u8,
) -> i32 {
    let output = compact::Output { buf: out, cap: out_cap, len: out_len, spill };
    // SAFETY: forwarded from this function's contract.
    unsafe {
        compact::call(attempt, attempt_len, output, compact::encode_error_json, |input| {
            compact::record(self::engine(engine)?, input, now_ms)
        })
    }
}

/// Frees a buffer a compact call returned in `*spill` (NULL is ignored).
///
/// # Safety
/// `bytes` came from `*spill` with length `len`, and is freed once.
#[no_mangle]
pub unsafe extern "C" fn smartretry_bytes_free(bytes: *mut u8, len: usize) {
    // SAFETY: forwarded from this function's contract.
    unsafe { compact::free_bytes(bytes, len) }
}

/// Counts `count` first attempts of `job_type` (and `tenant`, may be NULL) that succeeded.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_record_successes(
    engine: *const SmartretryEngine,
    job_type: *const c_char,
    tenant: *const c_char,
    count: u64,
    now_ms: u64,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || {
        let (job_type, tenant) = (text("job_type", job_type)?, opt_text("tenant", tenant)?);
        self::engine(engine)?.record_successes(job_type, tenant, count, opt(now_ms))?;
        Ok(None)
    })
}

/// Has `job_type`'s downstream come back since a job's attempt failed at `failed_at_ms`
/// (Unix ms, when it called decide)? `*out` is `true` (retry at once) or `false`. Ask at
/// each of a decision's `check_in_ms`.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_released(
    engine: *const SmartretryEngine,
    job_type: *const c_char,
    failed_at_ms: u64,
    now_ms: u64,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || {
        json(&self::engine(engine)?.released(text("job_type", job_type)?, failed_at_ms, opt(now_ms))?)
    })
}

/// Features JSON in, Preview JSON out.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_preview(
    engine: *const SmartretryEngine,
    features_json: *const c_char,
    max_attempts: u32,
    now_ms: u64,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || {
        let features: Features = from_json(text("features", features_json)?)?;
        json(&self::engine(engine)?.preview(&features, max_attempts, opt(now_ms))?)
    })
}

/// Stats JSON for (job_type, error_class); `window_ms` may be `SMARTRETRY_NONE` (24 h).
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_stats(
    engine: *const SmartretryEngine,
    job_type: *const c_char,
    error_class: *const c_char,
    window_ms: u64,
    now_ms: u64,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || {
        let (job_type, error_class) = (text("job_type", job_type)?, text("error_class", error_class)?);
        json(&self::engine(engine)?.stats(job_type, error_class, opt(window_ms), opt(now_ms))?)
    })
}

/// The policies as a JSON array, highest priority first.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_policies(engine: *const SmartretryEngine, out: *mut *mut c_char) -> i32 {
    call(out, || json(&self::engine(engine)?.policies()))
}

/// Policy JSON in; `*out` is NULL on success.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_add_policy(
    engine: *const SmartretryEngine,
    policy_json: *const c_char,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || {
        let policy: Policy = from_json(text("policy", policy_json)?)?;
        self::engine(engine)?.add_policy(policy)?;
        Ok(None)
    })
}

/// Removes a policy by name; `*out` is the removed policy's JSON.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_remove_policy(
    engine: *const SmartretryEngine,
    name: *const c_char,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || json(&self::engine(engine)?.remove_policy(text("name", name)?)?))
}

/// The operator overrides in force, as a JSON array.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_overrides(
    engine: *const SmartretryEngine,
    now_ms: u64,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || json(&self::engine(engine)?.overrides(opt(now_ms))))
}

/// Override JSON in; `*out` is the override it replaced, as JSON, or `null`.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_add_override(
    engine: *const SmartretryEngine,
    override_json: *const c_char,
    now_ms: u64,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || {
        let o = from_json(text("override", override_json)?)?;
        json(&self::engine(engine)?.add_override(o, opt(now_ms))?)
    })
}

/// Removes an override by name; `*out` is the removed override's JSON.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_remove_override(
    engine: *const SmartretryEngine,
    name: *const c_char,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || json(&self::engine(engine)?.remove_override(text("name", name)?)?))
}

/// What the engine knows of a job type's downstream health, as JSON.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_health(
    engine: *const SmartretryEngine,
    job_type: *const c_char,
    now_ms: u64,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || json(&self::engine(engine)?.health(text("job_type", job_type)?, opt(now_ms))?))
}

/// The guardrails as JSON.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_guardrails(
    engine: *const SmartretryEngine,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || json(&self::engine(engine)?.guardrails()))
}

/// The engine's counters (decisions, guardrails, events, the store) as JSON.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_metrics(engine: *const SmartretryEngine, out: *mut *mut c_char) -> i32 {
    call(out, || json(&self::engine(engine)?.metrics()))
}

/// Checks the options of Go's `Do`/`NewRetrier` (a JSON object of the options given, by
/// their Go names, durations in ms) against the core's options contract; `*out` is them
/// in the engine's units (`job_type`, `deadline_ms`, `backoff`…), or the error naming
/// the option (`MaxAttempts`, `Backoff.Max`).
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_check_options(options_json: *const c_char, out: *mut *mut c_char) -> i32 {
    call(out, || json(&crate::check_options(smartretry::options::Host::Go, text("options", options_json)?)?))
}

/// Changes the guardrail fields present in a JSON object; `*out` is all of them.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_update_guardrails(
    engine: *const SmartretryEngine,
    patch_json: *const c_char,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || {
        let patch: serde_json::Value = from_json(text("guardrails", patch_json)?)?;
        json(&self::engine(engine)?.patch_guardrails(&patch)?)
    })
}

/// Turns the emergency stop on or off: while on, nothing is retried.
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_emergency_stop(
    engine: *const SmartretryEngine,
    on: bool,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || {
        self::engine(engine)?.emergency_stop(on);
        Ok(None)
    })
}

/// Whether the emergency stop is on (false for a NULL engine).
///
/// # Safety
/// See "Pointers" in the module docs.
#[no_mangle]
pub unsafe extern "C" fn smartretry_is_emergency_stopped(engine: *const SmartretryEngine) -> bool {
    guarded(|| Ok(self::engine(engine)?.is_emergency_stopped())).unwrap_or(false)
}

/// Subscribes to lifecycle events. `kinds_json` is a JSON array of event names
/// (`["retry_scheduled", "gave_up"]`; NULL or `[]` = all); `capacity` bounds the queue
/// (events beyond it are dropped and counted, never waited for). On success
/// `*subscription` is set and `*out` NULL. It outlives nothing: free it before the engine
/// or after, either is safe (a subscription of a freed engine just receives nothing).
///
/// # Safety
/// See "Pointers" in the module docs; `subscription` is a valid `*mut` pointer or NULL.
#[no_mangle]
pub unsafe extern "C" fn smartretry_subscribe(
    engine: *const SmartretryEngine,
    kinds_json: *const c_char,
    capacity: usize,
    subscription: *mut *mut SmartretrySubscription,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || {
        if subscription.is_null() {
            return Err(SmartRetryError::invalid("subscription", "must not be NULL"));
        }
        let names: Vec<String> = match opt_text("kinds_json", kinds_json)? {
            Some(text) => from_json(text)?,
            None => Vec::new(),
        };
        let kinds = names.iter().map(|n| EventKind::parse(n)).collect::<smartretry::Result<Vec<_>>>()?;
        let sub = self::engine(engine)?.subscribe(&kinds, capacity)?;
        // SAFETY: checked non-NULL above.
        unsafe { *subscription = Box::into_raw(Box::new(SmartretrySubscription(sub))) };
        Ok(None)
    })
}

/// Waits up to `timeout_ms` for an event, then takes every event queued: `*out` is
/// their JSON array (`[]` when none came in time), oldest first.
///
/// # Safety
/// `subscription` is NULL or a live one from `smartretry_subscribe`; `out` as above.
#[no_mangle]
pub unsafe extern "C" fn smartretry_subscription_poll(
    subscription: *const SmartretrySubscription,
    timeout_ms: u64,
    out: *mut *mut c_char,
) -> i32 {
    call(out, || {
        // SAFETY: a non-NULL pointer comes from smartretry_subscribe and is not yet freed.
        let sub = unsafe { subscription.as_ref() }
            .ok_or_else(|| SmartRetryError::invalid("subscription", "must not be NULL"))?;
        let events = crate::poll_events(&sub.0, timeout_ms).unwrap_or_default();
        json(&events.iter().map(|e| &**e).collect::<Vec<_>>())
    })
}

/// Ends a subscription and frees it (NULL is ignored). No poll may be running on it.
///
/// # Safety
/// `subscription` came from `smartretry_subscribe` and is freed once.
#[no_mangle]
pub unsafe extern "C" fn smartretry_subscription_free(subscription: *mut SmartretrySubscription) {
    if !subscription.is_null() {
        // SAFETY: the pointer came from smartretry_subscribe and is freed once.
        drop(unsafe { Box::from_raw(subscription) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(s: *mut c_char) -> Option<String> {
        if s.is_null() {
            return None;
        }
        let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_string();
        unsafe { smartretry_string_free(s) };
        Some(text)
    }

    #[test]
    fn a_subscription_polls_the_events_of_its_kinds_as_json() {
        let (mut e, mut sub, mut out) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        assert_eq!(
            unsafe { smartretry_engine_new(7, true, ptr::null(), ptr::null(), &mut e, &mut out) },
            SMARTRETRY_OK
        );
        let kinds = c"[\"retry_scheduled\"]";
        assert_eq!(unsafe { smartretry_subscribe(e, kinds.as_ptr(), 16, &mut sub, &mut out) }, SMARTRETRY_OK);
        let f = c"{\"job_type\":\"pay\",\"job_id\":\"j1\",\"attempt_number\":1,\"http_status\":503}";
        assert_eq!(unsafe { smartretry_decide(e, f.as_ptr(), 1_700_000_000_000, &mut out) }, SMARTRETRY_OK);
        take(out);
        assert_eq!(unsafe { smartretry_subscription_poll(sub, 1000, &mut out) }, SMARTRETRY_OK);
        let events: serde_json::Value = serde_json::from_str(&take(out).unwrap()).unwrap();
        assert_eq!(events.as_array().map(Vec::len), Some(1));
        assert_eq!(events[0]["type"], "retry_scheduled");
        assert_eq!(events[0]["job_id"], "j1");
        assert_eq!(unsafe { smartretry_subscription_poll(sub, 0, &mut out) }, SMARTRETRY_OK);
        assert_eq!(take(out).unwrap(), "[]");
        let bad = c"[\"retried\"]";
        assert_eq!(unsafe { smartretry_subscribe(e, bad.as_ptr(), 16, &mut sub, &mut out) }, SMARTRETRY_ERR);
        assert!(take(out).unwrap().contains("\"field\":\"event\""));
        unsafe { smartretry_subscription_free(sub) };
        unsafe { smartretry_engine_free(e) };
    }

    #[test]
    fn decide_round_trip_and_named_errors() {
        let (mut e, mut out) = (ptr::null_mut(), ptr::null_mut());
        assert_eq!(
            unsafe { smartretry_engine_new(7, true, ptr::null(), ptr::null(), &mut e, &mut out) },
            SMARTRETRY_OK
        );
        assert!(out.is_null());
        let f = c"{\"job_type\":\"pay\",\"attempt_number\":1,\"http_status\":503}";
        assert_eq!(unsafe { smartretry_decide(e, f.as_ptr(), 1_700_000_000_000, &mut out) }, SMARTRETRY_OK);
        let d: serde_json::Value = serde_json::from_str(&take(out).unwrap()).unwrap();
        assert_eq!(d["should_retry"], true);
        let bad = c"{\"job_type\":\"pay\",\"attempt_number\":0}";
        assert_eq!(unsafe { smartretry_decide(e, bad.as_ptr(), SMARTRETRY_NOW, &mut out) }, SMARTRETRY_ERR);
        let err: serde_json::Value = serde_json::from_str(&take(out).unwrap()).unwrap();
        assert_eq!(err["kind"], "invalid_input");
        assert_eq!(err["field"], "attempt_number");
        assert_eq!(
            unsafe { smartretry_decide(ptr::null(), f.as_ptr(), SMARTRETRY_NOW, &mut out) },
            SMARTRETRY_ERR
        );
        assert!(take(out).unwrap().contains("\"field\":\"engine\""));
        unsafe { smartretry_engine_free(e) };
    }

    #[test]
    fn released_answers_json_booleans_and_named_errors() {
        let (mut e, mut out) = (ptr::null_mut(), ptr::null_mut());
        assert_eq!(
            unsafe { smartretry_engine_new(7, true, ptr::null(), ptr::null(), &mut e, &mut out) },
            SMARTRETRY_OK
        );
        let now = 1_700_000_000_000;
        let pay = c"pay";
        assert_eq!(unsafe { smartretry_released(e, pay.as_ptr(), now - 10, now, &mut out) }, SMARTRETRY_OK);
        assert_eq!(take(out).as_deref(), Some("false"));
        assert_eq!(unsafe { smartretry_record_successes(e, pay.as_ptr(), ptr::null(), 1, now, &mut out) }, 0);
        assert_eq!(unsafe { smartretry_released(e, pay.as_ptr(), now - 10, now, &mut out) }, SMARTRETRY_OK);
        assert_eq!(take(out).as_deref(), Some("true"));
        assert_eq!(unsafe { smartretry_released(e, pay.as_ptr(), now + 1, now, &mut out) }, SMARTRETRY_ERR);
        assert!(take(out).unwrap().contains("\"field\":\"failed_at_ms\""));
        assert_eq!(unsafe { smartretry_released(e, ptr::null(), now, now, &mut out) }, SMARTRETRY_ERR);
        assert!(take(out).unwrap().contains("\"field\":\"job_type\""));
        unsafe { smartretry_engine_free(e) };
    }

    /// `bindings/go/smartretry.h` is what cbindgen makes of this file; regenerate it with
    /// `SMARTRETRY_BLESS=1 cargo test -p smartretry-uniffi header_is_current`.
    #[test]
    fn header_is_current() {
        let crate_dir = env!("CARGO_MANIFEST_DIR");
        let path = std::path::Path::new(crate_dir).join("../go/smartretry.h");
        let config = cbindgen::Config::from_file(std::path::Path::new(crate_dir).join("cbindgen.toml"))
            .expect("cbindgen.toml");
        let mut generated = Vec::new();
        cbindgen::Builder::new()
            .with_config(config)
            .with_src(std::path::Path::new(crate_dir).join("src/ffi.rs"))
            .generate()
            .expect("cbindgen generates the header")
            .write(&mut generated);
        let generated = String::from_utf8(generated).unwrap();
        if std::env::var("SMARTRETRY_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is stale: run SMARTRETRY_BLESS=1 cargo test -p smartretry-uniffi header_is_current",
            path.display()
        );
    }
}
