//! The checks every input shape shares: labels (bounded, no control characters),
//! attempt numbers, HTTP statuses.

use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};

/// Longest label (job type, error class, tenant…) accepted. Labels become learning keys,
/// so an unbounded label would be an unbounded allocation per key.
pub const MAX_LABEL_LEN: usize = 256;
/// Highest attempt number accepted; far above any sane policy, low enough that
/// backoff arithmetic stays exact.
pub const MAX_ATTEMPT_NUMBER: u32 = 10_000;

pub(super) fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        Text(String),
        Int(i64),
    }
    Ok(Option::<Code>::deserialize(d)?.map(|c| match c {
        Code::Text(t) => t,
        Code::Int(i) => i.to_string(),
    }))
}

pub(crate) fn check_label(field: &'static str, value: &str, required: bool) -> Result<()> {
    if required && value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_LABEL_LEN {
        return Err(Error::invalid(field, format!("at most {MAX_LABEL_LEN} bytes, got {}", value.len())));
    }
    let control = if value.is_ascii() {
        value.bytes().any(|b| b < 0x20 || b == 0x7f)
    } else {
        value.chars().any(char::is_control)
    };
    if control {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

pub(super) fn check_opt_label(field: &'static str, value: &Option<String>) -> Result<()> {
    match value {
        Some(v) => check_label(field, v, false),
        None => Ok(()),
    }
}

pub(super) fn check_attempt(field: &'static str, n: u32) -> Result<()> {
    if n == 0 || n > MAX_ATTEMPT_NUMBER {
        return Err(Error::invalid(field, format!("must be 1–{MAX_ATTEMPT_NUMBER}, got {n}")));
    }
    Ok(())
}

fn check_status(field: &'static str, status: u16) -> Result<()> {
    if !(100..=599).contains(&status) {
        return Err(Error::invalid(field, format!("must be an HTTP status 100–599, got {status}")));
    }
    Ok(())
}

/// The HTTP status and hour of day a failure and an attempt may both carry.
pub(super) fn check_status_and_hour(http_status: Option<u16>, time_of_day: Option<u8>) -> Result<()> {
    if let Some(s) = http_status {
        check_status("http_status", s)?;
    }
    match time_of_day {
        Some(h) if h > 23 => Err(Error::invalid("time_of_day", format!("must be 0–23, got {h}"))),
        _ => Ok(()),
    }
}
