//! Checking what a call gave: every key an option of its host, every value of its type
//! and in its range; the first problem names the option as the user wrote it.

use crate::api::check::check_label;
use crate::api::priority::Priority;
use crate::backoff::{BackoffStrategy, Jitter};
use crate::error::{Error, Result};

use super::call::{CallBackoff, CallOptions, Given};
use super::spec::{Host, Type, BACKOFF_FIELDS, MAX_ATTEMPTS, MAX_DURATION_MS, OPTIONS};

/// Checks the options a call gave, as `host` spells them: every key must be an option of
/// that host, every value of its type and in its range. The first problem is the error,
/// naming the option (`wait.base`, `maxAttempts`, `Backoff.Max`…).
pub fn validate(host: Host, given: &[(String, Given)]) -> Result<CallOptions> {
    let mut out = CallOptions::default();
    for (key, value) in given {
        check_one(host, key, value, &mut out)?;
    }
    Ok(out)
}

/// One option: for hosts that remember the core's verdict per value (a call's options
/// object is new on every call in Node, Kotlin and Go).
pub fn check_one(host: Host, key: &str, value: &Given, out: &mut CallOptions) -> Result<()> {
    let spec = OPTIONS.iter().find(|s| s.spelled(host) == Some(key)).ok_or_else(|| unknown(host, key))?;
    if *value == Given::Absent {
        return Ok(());
    }
    let wrong = |expected: &str| {
        Error::invalid_type(key.to_string(), format!("expected {expected}, got {}", value.describe()))
    };
    match spec.ty {
        Type::Label => {
            let Given::Str(s) = value else { return Err(wrong("a string")) };
            check_label("option", s, true).map_err(|e| rename(e, key))?;
            let slot = match spec.name {
                "job_type" => &mut out.job_type,
                "tenant" => &mut out.tenant,
                _ => &mut out.job_id,
            };
            *slot = Some(s.clone());
        }
        Type::Attempts => out.max_attempts = Some(attempts(host, key, value)?),
        Type::Duration => {
            let ms = duration(host, key, value, false)?;
            match spec.name {
                "deadline" => out.deadline_ms = Some(ms),
                _ => out.timeout_ms = Some(ms),
            }
        }
        Type::Bool => {
            let Given::Bool(b) = value else { return Err(wrong("a boolean")) };
            // Go spells the inverse (NonIdempotent), so its zero value is the default.
            let idempotent = if host == Host::Go { !b } else { *b };
            if spec.name == "idempotent" {
                out.idempotent = Some(idempotent);
            }
        }
        Type::Priority => {
            let Given::Str(s) = value else { return Err(wrong("low, normal, high or critical")) };
            out.priority = Some(Priority::parse(s).map_err(|e| rename(e, key))?);
        }
        Type::Backoff => out.backoff = Some(backoff(host, key, value)?),
        Type::Function => {
            if *value != Given::Function {
                return Err(wrong("a function"));
            }
        }
        Type::HostValue(what) => {
            // The host checks the object itself; a plain data value is never one.
            if matches!(value, Given::Bool(_) | Given::Int(_) | Given::Float(_) | Given::Str(_))
                && spec.name != "fallback"
            {
                return Err(wrong(what));
            }
        }
    }
    Ok(())
}

fn unknown(host: Host, key: &str) -> Error {
    let known: Vec<&str> = OPTIONS.iter().filter_map(|s| s.spelled(host)).collect();
    let squash = |s: &str| {
        s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect::<String>()
    };
    let near = known.iter().find(|k| {
        let (a, b) = (squash(k), squash(key));
        a == b || edit_distance(&a, &b) <= 2
    });
    let reason = match near {
        Some(k) => format!("unknown option (did you mean {k}?)"),
        None => format!("unknown option; the options are {}", known.join(", ")),
    };
    Error::invalid(key.to_string(), reason)
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The same error under the option's own name.
fn rename(e: Error, key: &str) -> Error {
    match e {
        Error::InvalidInput { reason, .. } | Error::Config { reason, .. } => {
            Error::invalid(key.to_string(), reason)
        }
        other => other,
    }
}

fn attempts(host: Host, key: &str, value: &Given) -> Result<u32> {
    let n = match value {
        Given::Int(n) => *n,
        Given::Float(f) if host.one_number_type() => {
            return Err(Error::invalid(
                key.to_string(),
                format!("must be a whole number 1–{MAX_ATTEMPTS}, got {f}"),
            ));
        }
        other => {
            return Err(Error::invalid_type(
                key.to_string(),
                format!("expected an integer 1–{MAX_ATTEMPTS}, got {}", other.describe()),
            ))
        }
    };
    u32::try_from(n).ok().filter(|n| (1..=MAX_ATTEMPTS).contains(n)).ok_or_else(|| {
        Error::invalid(
            key.to_string(),
            format!("must be 1–{MAX_ATTEMPTS} (attempts in total, the first included), got {n}"),
        )
    })
}

/// A duration in the host's unit as ms, rounded up (a positive duration never becomes 0).
fn duration(host: Host, key: &str, value: &Given, zero_ok: bool) -> Result<u64> {
    let x = match value {
        Given::Int(n) => *n as f64,
        Given::Float(f) => *f,
        other => {
            return Err(Error::invalid_type(
                key.to_string(),
                format!("expected a number of {}, got {}", host.unit(), other.describe()),
            ))
        }
    };
    let ms = (x * host.ms_per_unit()).ceil();
    let low_ok = if zero_ok { x >= 0.0 } else { x > 0.0 };
    if !(low_ok && ms <= MAX_DURATION_MS as f64) {
        let low = if zero_ok { "≥ 0" } else { "> 0" };
        let max = MAX_DURATION_MS as f64 / host.ms_per_unit();
        return Err(Error::invalid(
            key.to_string(),
            format!("must be a number of {} {low} and at most {max} (24.8 days), got {x}", host.unit()),
        ));
    }
    Ok(ms as u64)
}

fn backoff(host: Host, key: &str, value: &Given) -> Result<CallBackoff> {
    let Given::Map(fields) = value else {
        return Err(Error::invalid_type(
            key.to_string(),
            format!(
                "expected a schedule (strategy, base, max, multiplier, jitter), got {}",
                value.describe()
            ),
        ));
    };
    let mut b = CallBackoff::default();
    let mut max = None;
    for (name, v) in fields {
        let sub = format!("{key}.{name}");
        let field = BACKOFF_FIELDS
            .iter()
            .find(|(n, go, _)| if host == Host::Go { go == name } else { n == name })
            .map(|(n, _, _)| *n)
            .ok_or_else(|| {
                let names: Vec<&str> =
                    BACKOFF_FIELDS.iter().map(|(n, go, _)| if host == Host::Go { *go } else { *n }).collect();
                Error::invalid(sub.clone(), format!("unknown field; the fields are {}", names.join(", ")))
            })?;
        if *v == Given::Absent {
            continue;
        }
        match field {
            "strategy" => {
                let Given::Str(s) = v else {
                    return Err(Error::invalid_type(
                        sub,
                        format!("expected a strategy name, got {}", v.describe()),
                    ));
                };
                b.strategy = strategy(s).ok_or_else(|| {
                    Error::invalid(
                        sub,
                        format!("expected exponential, linear, fibonacci, aggressive or constant, got {s:?}"),
                    )
                })?;
            }
            "base" => b.base_ms = duration(host, &sub, v, true)?,
            "max" => max = Some((duration(host, &sub, v, true)?, sub)),
            "multiplier" => {
                let m = match v {
                    Given::Int(n) => *n as f64,
                    Given::Float(f) => *f,
                    other => {
                        return Err(Error::invalid_type(
                            sub,
                            format!("expected a number, got {}", other.describe()),
                        ))
                    }
                };
                if !(m.is_finite() && (1.0..=100.0).contains(&m)) {
                    return Err(Error::invalid(sub, format!("must be a number from 1 to 100, got {m}")));
                }
                b.multiplier = m;
            }
            _ => b.jitter = jitter(&sub, v)?,
        }
    }
    if let Some((ms, sub)) = max {
        if ms < b.base_ms {
            return Err(Error::invalid(sub, "must be ≥ base"));
        }
        b.max_ms = Some(ms);
    }
    Ok(b)
}

/// A strategy by its name (`exponential`, `linear`, `fibonacci`, `aggressive`,
/// `constant`, any case), for bindings that take it as text.
pub fn parse_strategy(name: &str) -> Result<BackoffStrategy> {
    strategy(name).ok_or_else(|| {
        Error::invalid(
            "strategy",
            format!("expected exponential, linear, fibonacci, aggressive or constant, got {name:?}"),
        )
    })
}

/// A jitter by its name (`none`, `full`, `equal`, `decorrelated`) or as a percentage
/// (`"25%"`), for bindings that take it as text.
pub fn parse_jitter(text: &str) -> Result<Jitter> {
    jitter("jitter", &Given::Str(text.to_string()))
}

fn strategy(name: &str) -> Option<BackoffStrategy> {
    use BackoffStrategy::*;
    [
        ("exponential", Exponential),
        ("linear", Linear),
        ("fibonacci", Fibonacci),
        ("aggressive", Aggressive),
        ("constant", Constant),
    ]
    .into_iter()
    .find(|(n, _)| n.eq_ignore_ascii_case(name))
    .map(|(_, s)| s)
}

fn jitter(sub: &str, v: &Given) -> Result<Jitter> {
    let percent = |p: f64| {
        if (0.0..=100.0).contains(&p) {
            Ok(Jitter::Percent(p))
        } else {
            Err(Error::invalid(sub.to_string(), format!("a percentage must be 0–100, got {p}")))
        }
    };
    match v {
        Given::Str(s) => match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Jitter::None),
            "full" => Ok(Jitter::Full),
            "equal" => Ok(Jitter::Equal),
            "decorrelated" => Ok(Jitter::Decorrelated),
            // A percentage written as text ("25%"): how typed hosts (Go, Kotlin) give one.
            text => match text.strip_suffix('%').map(|n| n.trim().parse::<f64>()) {
                Some(Ok(p)) if p.is_finite() => percent(p),
                _ => Err(Error::invalid(
                    sub.to_string(),
                    format!("expected none, full, equal, decorrelated or a percentage (\"25%\"), got {s:?}"),
                )),
            },
        },
        Given::Int(n) => percent(*n as f64),
        Given::Float(f) => percent(*f),
        other => Err(Error::invalid_type(
            sub.to_string(),
            format!("expected a jitter name or a percentage, got {}", other.describe()),
        )),
    }
}
