//! The hot calls (decide, record) in a compact binary form, for the Go and Kotlin retry
//! helpers: no JSON and no generic marshalling on a failure's path.
//!
//! Input: a sequence of fields, each a tag byte then its value. Integers are i64, floats
//! f64, both little-endian; a string is a u32 length then UTF-8; a bool or an enum is one
//! byte. An absent optional field is left out. An unknown tag is an `invalid_input` error
//! naming it; a negative or too large number is one naming the field, as everywhere.
//!
//! Output of decide: should_retry (u8), method (u8: rules, bayesian, ml, guardrail,
//! breaker), has_check_in (u8), delay_ms, max_attempts, check_in_ms (i64), confidence,
//! estimated_success (f64), then the strings rationale, next_evaluation, error_class,
//! policy, then a u32 count of guardrails and each name. Errors are the C ABI's error
//! JSON ([`crate::ffi`]).

use std::ptr;
use std::sync::{Arc, Weak};

use smartretry::{Attempt, Decision, Engine, Features, Method, Priority};

use crate::error::{guarded, Result, SmartRetryError};
use crate::ffi::{error_json, SMARTRETRY_ERR, SMARTRETRY_NOW, SMARTRETRY_OK};

/// Field tags of a Features record.
pub mod features {
    pub const JOB_TYPE: u8 = 1;
    pub const ATTEMPT_NUMBER: u8 = 2;
    pub const ERROR_CLASS: u8 = 3;
    pub const ERROR_CODE: u8 = 4;
    pub const HTTP_STATUS: u8 = 5;
    pub const QUEUE: u8 = 6;
    pub const TENANT: u8 = 7;
    pub const PAYLOAD_SIZE: u8 = 8;
    pub const TIME_OF_DAY: u8 = 9;
    pub const JOB_ID: u8 = 10;
    pub const SINCE_FIRST_FAILURE_MS: u8 = 11;
    pub const SINCE_LAST_FAILURE_MS: u8 = 12;
    pub const RETRY_AFTER_MS: u8 = 13;
    pub const RETRY_AFTER: u8 = 14;
    pub const IDEMPOTENT: u8 = 15;
    /// One byte: low, normal, high, critical.
    pub const PRIORITY: u8 = 16;
    pub const WORKER_VERSION: u8 = 17;
    /// One entry of the health map: a string key, then an f64.
    pub const HEALTH: u8 = 18;
    pub const DEADLINE_MS: u8 = 19;
    pub const MAX_ATTEMPTS: u8 = 20;
    /// One byte: the caller named this failure's type to retry (`Features::expected`).
    pub const EXPECTED: u8 = 21;
    /// The call's own schedule, as the JSON `check_options` returned for it.
    pub const BACKOFF: u8 = 22;
}

/// Field tags of an Attempt record.
pub mod attempt {
    pub const JOB_ID: u8 = 1;
    pub const JOB_TYPE: u8 = 2;
    pub const ATTEMPT_NUMBER: u8 = 3;
    pub const SUCCESS: u8 = 4;
    pub const DELAY_MS: u8 = 5;
    pub const ERROR_CLASS: u8 = 6;
    pub const ERROR_CODE: u8 = 7;
    pub const HTTP_STATUS: u8 = 8;
    pub const QUEUE: u8 = 9;
    pub const TENANT: u8 = 10;
    pub const SINCE_FIRST_FAILURE_MS: u8 = 11;
    pub const PAYLOAD_SIZE: u8 = 12;
    pub const TIME_OF_DAY: u8 = 13;
    pub const WORKER_VERSION: u8 = 14;
    pub const TIMESTAMP: u8 = 15;
}

struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(SmartRetryError::invalid(self.what, "truncated compact encoding"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn i64(&mut self) -> Result<i64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(b))
    }

    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.i64()? as u64))
    }

    fn string(&mut self, field: &str) -> Result<String> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        let bytes = self.take(u32::from_le_bytes(b) as usize)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| SmartRetryError::invalid(field, "must be UTF-8"))
    }

    /// A number for an unsigned core field, or `InvalidInput` naming it.
    fn unsigned<T: TryFrom<i64>>(&mut self, field: &str) -> Result<T> {
        let value = self.i64()?;
        T::try_from(value).map_err(|_| {
            let reason = if value < 0 { "must not be negative" } else { "too large" };
            SmartRetryError::invalid(field, format!("{reason}, got {value}"))
        })
    }

    fn bool(&mut self) -> Result<bool> {
        Ok(self.byte()? != 0)
    }
}

fn unknown(what: &str, tag: u8) -> SmartRetryError {
    SmartRetryError::invalid(what, format!("unknown field tag {tag} in the compact encoding"))
}

/// A Features record from its compact encoding.
pub fn decode_features(bytes: &[u8]) -> Result<Features> {
    use features::*;
    let mut r = Reader { bytes, what: "features" };
    let mut f = Features::default();
    while !r.bytes.is_empty() {
        match r.byte()? {
            JOB_TYPE => f.job_type = r.string("job_type")?,
            ATTEMPT_NUMBER => f.attempt_number = r.unsigned("attempt_number")?,
            ERROR_CLASS => f.error_class = Some(r.string("error_class")?),
            ERROR_CODE => f.error_code = Some(r.string("error_code")?),
            HTTP_STATUS => f.http_status = Some(r.unsigned("http_status")?),
            QUEUE => f.queue = Some(r.string("queue")?),
            TENANT => f.tenant = Some(r.string("tenant")?),
            PAYLOAD_SIZE => f.payload_size = Some(r.unsigned("payload_size")?),
            TIME_OF_DAY => f.time_of_day = Some(r.unsigned("time_of_day")?),
            JOB_ID => f.job_id = Some(r.string("job_id")?),
            SINCE_FIRST_FAILURE_MS => f.since_first_failure_ms = Some(r.unsigned("since_first_failure_ms")?),
            SINCE_LAST_FAILURE_MS => f.since_last_failure_ms = Some(r.unsigned("since_last_failure_ms")?),
            RETRY_AFTER_MS => f.retry_after_ms = Some(r.unsigned("retry_after_ms")?),
            RETRY_AFTER => f.retry_after = Some(r.string("retry_after")?),
            IDEMPOTENT => f.idempotent = Some(r.bool()?),
            PRIORITY => {
                let p = r.byte()?;
                let all = Priority::ALL;
                let priority = all.get(usize::from(p)).ok_or_else(|| {
                    SmartRetryError::invalid(
                        "priority",
                        format!("unknown priority {p} in the compact encoding"),
                    )
                })?;
                f.priority = Some(*priority);
            }
            WORKER_VERSION => f.worker_version = Some(r.string("worker_version")?),
            HEALTH => {
                let key = r.string("health")?;
                f.health.insert(key, r.f64()?);
            }
            DEADLINE_MS => f.deadline_ms = Some(r.unsigned("deadline_ms")?),
            MAX_ATTEMPTS => f.max_attempts = Some(r.unsigned("max_attempts")?),
            EXPECTED => f.expected = Some(r.bool()?),
            BACKOFF => {
                let json = r.string("backoff")?;
                f.backoff = Some(smartretry::from_json(&json).map_err(|e| e.within("backoff"))?);
            }
            tag => return Err(unknown("features", tag)),
        }
    }
    Ok(f)
}

/// An Attempt record from its compact encoding.
pub fn decode_attempt(bytes: &[u8]) -> Result<Attempt> {
    use attempt::*;
    let mut r = Reader { bytes, what: "attempt" };
    let mut a = Attempt::default();
    while !r.bytes.is_empty() {
        match r.byte()? {
            JOB_ID => a.job_id = r.string("job_id")?,
            JOB_TYPE => a.job_type = r.string("job_type")?,
            ATTEMPT_NUMBER => a.attempt_number = r.unsigned("attempt_number")?,
            SUCCESS => a.success = r.bool()?,
            DELAY_MS => a.delay_ms = r.unsigned("delay_ms")?,
            ERROR_CLASS => a.error_class = Some(r.string("error_class")?),
            ERROR_CODE => a.error_code = Some(r.string("error_code")?),
            HTTP_STATUS => a.http_status = Some(r.unsigned("http_status")?),
            QUEUE => a.queue = Some(r.string("queue")?),
            TENANT => a.tenant = Some(r.string("tenant")?),
            SINCE_FIRST_FAILURE_MS => a.since_first_failure_ms = Some(r.unsigned("since_first_failure_ms")?),
            PAYLOAD_SIZE => a.payload_size = Some(r.unsigned("payload_size")?),
            TIME_OF_DAY => a.time_of_day = Some(r.unsigned("time_of_day")?),
            WORKER_VERSION => a.worker_version = Some(r.string("worker_version")?),
            TIMESTAMP => a.timestamp = Some(r.string("timestamp")?),
            tag => return Err(unknown("attempt", tag)),
        }
    }
    Ok(a)
}

fn method_byte(m: Method) -> u8 {
    match m {
        Method::Rules => 0,
        Method::Bayesian => 1,
        Method::Ml => 2,
        Method::Guardrail => 3,
        Method::Breaker => 4,
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    // A string over 4 GiB cannot come out of the engine (rationales are one sentence).
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_i64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&i64::try_from(v).unwrap_or(i64::MAX).to_le_bytes());
}

/// A decision in its compact encoding, appended to `out`.
pub fn encode_decision(d: &Decision, out: &mut Vec<u8>) {
    out.push(u8::from(d.should_retry));
    out.push(method_byte(d.method));
    out.push(u8::from(d.check_in_ms.is_some()));
    put_i64(out, d.delay_ms);
    put_i64(out, u64::from(d.max_attempts));
    put_i64(out, d.check_in_ms.unwrap_or(0));
    out.extend_from_slice(&d.confidence.to_le_bytes());
    out.extend_from_slice(&d.estimated_success.to_le_bytes());
    for s in [&d.rationale, &d.next_evaluation, &d.error_class, &d.policy] {
        put_string(out, s);
    }
    out.extend_from_slice(&u32::try_from(d.policy_guardrails.len()).unwrap_or(u32::MAX).to_le_bytes());
    for g in &d.policy_guardrails {
        put_string(out, g.as_str());
    }
}

/// `decide`: compact Features in, compact Decision out.
pub(crate) fn decide(engine: &Engine, input: &[u8], now_ms: u64) -> Result<Vec<u8>> {
    let features = decode_features(input)?;
    let decision = engine.decide(&features, (now_ms != SMARTRETRY_NOW).then_some(now_ms))?;
    let mut out = Vec::with_capacity(256);
    encode_decision(&decision, &mut out);
    Ok(out)
}

/// `record`: compact Attempt in, nothing out.
pub(crate) fn record(engine: &Engine, input: &[u8], now_ms: u64) -> Result<Vec<u8>> {
    engine.record(&decode_attempt(input)?, (now_ms != SMARTRETRY_NOW).then_some(now_ms))?;
    Ok(Vec::new())
}

/// An error for the JVM: its kind's index (invalid_input, config, not_found, store, model,
/// internal), then the strings field (or what is not found; "" if none) and reason.
pub(crate) fn encode_error(e: &SmartRetryError) -> Vec<u8> {
    let (kind, field, reason) = match e {
        SmartRetryError::InvalidInput { field, reason } => (0, field.as_str(), reason.as_str()),
        SmartRetryError::Config { field, reason } => (1, field.as_str(), reason.as_str()),
        SmartRetryError::NotFound { what } => (2, what.as_str(), ""),
        SmartRetryError::Store { reason } => (3, "", reason.as_str()),
        SmartRetryError::Model { reason } => (4, "", reason.as_str()),
        SmartRetryError::Internal { reason } => (5, "", reason.as_str()),
    };
    let mut out = vec![kind];
    put_string(&mut out, field);
    put_string(&mut out, reason);
    out
}

/// The error JSON of the C ABI, for Go.
pub(crate) fn encode_error_json(e: &SmartRetryError) -> Vec<u8> {
    error_json(e).into_bytes()
}

/// Where a compact call writes its output: `buf` (`cap` bytes) when it fits, else a new
/// buffer in `*spill`; its length in `*len` either way.
pub(crate) struct Output {
    pub buf: *mut u8,
    pub cap: usize,
    pub len: *mut usize,
    pub spill: *mut *mut u8,
}

/// Runs a compact call: its result (or the error, by `encode_err`) goes to `out` when it fits in
/// `out_cap` bytes, else to a new buffer in `*spill` (freed with `smartretry_bytes_free`);
/// `*out_len` is its length either way. Returns `SMARTRETRY_OK` or `SMARTRETRY_ERR`.
///
/// # Safety
/// `input` is NULL or `input_len` readable bytes; `out` is NULL or `out_cap` writable
/// bytes; `out_len` and `spill` are NULL or valid for a write.
pub(crate) unsafe fn call(
    input: *const u8,
    input_len: usize,
    output: Output,
    encode_err: fn(&SmartRetryError) -> Vec<u8>,
    body: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> i32 {
    let input = if input.is_null() || input_len == 0 {
        &[][..]
    } else {
        // SAFETY: the caller passes `input_len` readable bytes.
        unsafe { std::slice::from_raw_parts(input, input_len) }
    };
    let (status, bytes) = match guarded(|| body(input)) {
        Ok(bytes) => (SMARTRETRY_OK, bytes),
        Err(e) => (SMARTRETRY_ERR, encode_err(&e)),
    };
    if !output.len.is_null() {
        // SAFETY: checked non-NULL; the caller passes a valid `size_t *`.
        unsafe { *output.len = bytes.len() };
    }
    if bytes.len() <= output.cap && !output.buf.is_null() {
        // SAFETY: `buf` has `cap` writable bytes, and `bytes` fits.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), output.buf, bytes.len()) };
    } else if !output.spill.is_null() {
        // SAFETY: checked non-NULL; freed by smartretry_bytes_free with this length.
        unsafe { *output.spill = Box::into_raw(bytes.into_boxed_slice()).cast::<u8>() };
    }
    status
}

/// Frees a buffer a compact call returned in `*spill`.
///
/// # Safety
/// `bytes` came from `*spill` with length `len`, and is freed once.
pub(crate) unsafe fn free_bytes(bytes: *mut u8, len: usize) {
    if !bytes.is_null() {
        // SAFETY: the buffer is a boxed slice of `len` bytes made by `call`.
        drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(bytes, len)) });
    }
}

// The JVM's entry points (bindings/kotlin calls them through JNA's direct mapping, with
// plain integers only: no structures or generic marshalling). An engine is named by a weak
// handle from `Engine.hot_handle`: a call after the engine is closed is a `closed` error,
// never a dangling pointer.

pub(crate) fn hot_handle(engine: &Arc<crate::Engine>) -> i64 {
    Weak::into_raw(Arc::downgrade(engine)) as i64
}

fn with_handle(handle: i64, body: impl FnOnce(&Engine) -> Result<Vec<u8>>) -> Result<Vec<u8>> {
    let weak = handle as *const crate::Engine;
    if weak.is_null() {
        return Err(SmartRetryError::invalid("engine", "must not be NULL"));
    }
    // SAFETY: a non-NULL handle came from `hot_handle` and is not yet released: the Weak
    // it holds is borrowed here (ManuallyDrop: not released by this call).
    let weak = std::mem::ManuallyDrop::new(unsafe { Weak::from_raw(weak) });
    let engine = weak.upgrade().ok_or_else(|| SmartRetryError::invalid("engine", "is closed"))?;
    body(engine.core())
}

/// `decide` for the JVM. See [`call`] for the buffers.
///
/// # Safety
/// `handle` came from `Engine.hot_handle` and was not released; buffers as in [`call`].
#[no_mangle]
pub unsafe extern "C" fn smartretry_jvm_decide(
    handle: i64,
    input: *const u8,
    input_len: usize,
    now_ms: u64,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
    spill: *mut *mut u8,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        call(input, input_len, Output { buf: out, cap: out_cap, len: out_len, spill }, encode_error, |i| {
            with_handle(handle, |e| decide(e, i, now_ms))
        })
    }
}

/// `record` for the JVM. See [`call`] for the buffers.
///
/// # Safety
/// As [`smartretry_jvm_decide`].
#[no_mangle]
pub unsafe extern "C" fn smartretry_jvm_record(
    handle: i64,
    input: *const u8,
    input_len: usize,
    now_ms: u64,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
    spill: *mut *mut u8,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        call(input, input_len, Output { buf: out, cap: out_cap, len: out_len, spill }, encode_error, |i| {
            with_handle(handle, |e| record(e, i, now_ms))
        })
    }
}

/// Releases a handle from `Engine.hot_handle` (0 is ignored).
///
/// # Safety
/// `handle` came from `Engine.hot_handle` and is released once.
#[no_mangle]
pub unsafe extern "C" fn smartretry_jvm_release(handle: i64) {
    if handle != 0 {
        // SAFETY: the handle is a Weak made by `hot_handle`, released once.
        drop(unsafe { Weak::from_raw(handle as *const crate::Engine) });
    }
}

/// Frees a buffer a JVM call returned in `*spill`.
///
/// # Safety
/// As [`free_bytes`].
#[no_mangle]
pub unsafe extern "C" fn smartretry_jvm_bytes_free(bytes: *mut u8, len: usize) {
    // SAFETY: forwarded from this function's contract.
    unsafe { free_bytes(bytes, len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, tag: u8, s: &str) {
        out.push(tag);
        put_string(out, s);
    }

    fn int(out: &mut Vec<u8>, tag: u8, v: i64) {
        out.push(tag);
        out.extend_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn features_decode_every_field() {
        let mut b = Vec::new();
        string(&mut b, features::JOB_TYPE, "pay");
        int(&mut b, features::ATTEMPT_NUMBER, 2);
        int(&mut b, features::HTTP_STATUS, 503);
        string(&mut b, features::TENANT, "acme");
        b.extend_from_slice(&[features::IDEMPOTENT, 0, features::PRIORITY, 3]);
        string(&mut b, features::HEALTH, "cpu");
        b.extend_from_slice(&0.5f64.to_le_bytes());
        int(&mut b, features::DEADLINE_MS, 1000);
        let f = decode_features(&b).unwrap();
        assert_eq!((f.job_type.as_str(), f.attempt_number, f.http_status), ("pay", 2, Some(503)));
        assert_eq!(
            (f.tenant.as_deref(), f.idempotent, f.priority),
            (Some("acme"), Some(false), Some(Priority::Critical))
        );
        assert_eq!((f.health.get("cpu"), f.deadline_ms), (Some(&0.5), Some(1000)));
    }

    #[test]
    fn bad_input_names_the_field() {
        let mut b = Vec::new();
        int(&mut b, features::HTTP_STATUS, -1);
        let e = decode_features(&b).unwrap_err();
        assert_eq!((e.field(), e.reason()), (Some("http_status"), "must not be negative, got -1"));
        let e = decode_features(&[99]).unwrap_err();
        assert_eq!(e.field(), Some("features"));
        let e = decode_attempt(&[attempt::DELAY_MS, 1, 2]).unwrap_err();
        assert_eq!((e.field(), e.reason()), (Some("attempt"), "truncated compact encoding"));
    }
}
