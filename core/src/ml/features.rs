//! The feature contract between a trained model and the engine.
//!
//! A model is an ONNX graph with one float input `[N, width]` and a probability output
//! (`[N, 2]`: P(failure), P(success); or `[N, 1]`: P(success)). Its sidecar JSON lists the
//! columns in order. Each column is one of the names below; the engine builds the rows
//! from a failure's [`Features`] and a candidate delay, and the trainer builds the very
//! same rows from attempt history by calling this code (through the Python binding), so
//! training and serving cannot drift apart.
//!
//! | name | value (missing → 0) |
//! |---|---|
//! | `attempt_number` | the attempt that just failed (1-based) |
//! | `payload_size` | bytes |
//! | `time_of_day` | hour 0–23 (UTC; from the clock when absent) |
//! | `since_first_failure_ms` | time since the job's first failure |
//! | `since_last_failure_ms` | time since the previous failure (0 on the first) |
//! | `recent_failures` | the caller's count of recent failures |
//! | `http_status`, `retry_after_ms` | as given; `priority`: 0 (low) – 3 (critical), absent 0 |
//! | `idempotent` | 1 or 0 (default 1) |
//! | `health.<signal>` | the `health` map's value for `<signal>` |
//! | `candidate_delay_ms` | the delay being evaluated (required: it is what is chosen) |
//! | `retry_elapsed_ms` | `since_first_failure_ms` + `candidate_delay_ms`: when the retry would run on the downstream's recovery clock |
//! | `job_type`, `error_class`, `queue`, `tenant`, `worker_version` | categorical: `buckets` one-hot columns of a stable hash |
//!
//! A numeric column may say `"transform": "log1p"` (ln(1 + x), for durations and sizes).
//! A categorical column says `"encoding": "hash", "buckets": B` and takes B columns: the
//! column [`bucket`]`(value, B)` is set to 1 (an absent value sets none), so new values
//! need no vocabulary and the width stays fixed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::{Attempt, Features};
use crate::error::{Error, Result};
use crate::time;

/// Encoding version written into sidecars; a sidecar naming another one is refused.
pub const ENCODING: &str = "smartretry-features/1";
/// Columns of one categorical, at most (keeps a hostile sidecar from asking for gigabytes).
pub const MAX_BUCKETS: u32 = 4_096;
/// The candidate delay column's name.
pub const CANDIDATE_DELAY: &str = "candidate_delay_ms";

/// The retry's time on the recovery clock: since the first failure, plus the delay.
pub const RETRY_ELAPSED: &str = "retry_elapsed_ms";

const NUMERIC: [&str; 12] = [
    "attempt_number",
    "payload_size",
    "time_of_day",
    "since_first_failure_ms",
    "since_last_failure_ms",
    "recent_failures",
    "http_status",
    "retry_after_ms",
    "priority",
    "idempotent",
    CANDIDATE_DELAY,
    RETRY_ELAPSED,
];
const CATEGORICAL: [&str; 5] = ["job_type", "error_class", "queue", "tenant", "worker_version"];

/// One entry of the sidecar's `features` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureColumn {
    pub name: String,
    /// `none` (default) or `log1p`, numeric columns only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    /// `hash`, categorical columns only (and required for them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    AttemptNumber,
    PayloadSize,
    TimeOfDay,
    SinceFirstFailure,
    SinceLastFailure,
    RecentFailures,
    HttpStatus,
    RetryAfter,
    Priority,
    Idempotent,
    CandidateDelay,
    RetryElapsed,
    Health(usize),
    Category(Category, u32),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Category {
    JobType,
    ErrorClass,
    Queue,
    Tenant,
    WorkerVersion,
}

#[derive(Debug, Clone, PartialEq)]
struct Column {
    source: Source,
    log1p: bool,
}

/// A validated feature list: builds rows of `width()` floats.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpec {
    columns: Vec<Column>,
    health_names: Vec<String>,
    names: Vec<String>,
    width: usize,
    /// Columns that depend on the candidate delay: (offset, log1p, plus the time since
    /// the first failure).
    delay_columns: Vec<(usize, bool, bool)>,
}

impl FeatureSpec {
    /// Validate a sidecar's feature list; errors name the entry (`features[2].name`).
    pub fn new(columns: &[FeatureColumn]) -> Result<FeatureSpec> {
        let mut spec = FeatureSpec {
            columns: Vec::with_capacity(columns.len()),
            health_names: Vec::new(),
            names: Vec::with_capacity(columns.len()),
            width: 0,
            delay_columns: Vec::new(),
        };
        if columns.is_empty() {
            return Err(Error::invalid("features", "is empty: a model needs at least the candidate delay"));
        }
        for (i, c) in columns.iter().enumerate() {
            let field = |what: &str| format!("features[{i}].{what}");
            if spec.names.contains(&c.name) {
                return Err(Error::invalid(field("name"), format!("{:?} is listed twice", c.name)));
            }
            let log1p = match c.transform.as_deref() {
                None | Some("none") => false,
                Some("log1p") => true,
                Some(other) => {
                    return Err(Error::invalid(
                        field("transform"),
                        format!("unknown transform {other:?}; known: none, log1p"),
                    ))
                }
            };
            let source = if let Some(k) = CATEGORICAL.iter().position(|n| *n == c.name) {
                if c.encoding.as_deref() != Some("hash") {
                    return Err(Error::invalid(
                        field("encoding"),
                        format!("{} is categorical and needs \"encoding\": \"hash\"", c.name),
                    ));
                }
                let buckets = c.buckets.unwrap_or(0);
                if buckets == 0 || buckets > MAX_BUCKETS {
                    return Err(Error::invalid(field("buckets"), format!("must be 1–{MAX_BUCKETS}")));
                }
                if log1p {
                    return Err(Error::invalid(field("transform"), "applies to numeric features only"));
                }
                let category = [
                    Category::JobType,
                    Category::ErrorClass,
                    Category::Queue,
                    Category::Tenant,
                    Category::WorkerVersion,
                ][k];
                Source::Category(category, buckets)
            } else {
                if c.encoding.is_some() || c.buckets.is_some() {
                    return Err(Error::invalid(
                        field("encoding"),
                        format!("{} is numeric: encoding and buckets apply to categorical features", c.name),
                    ));
                }
                numeric_source(&c.name, &mut spec.health_names).ok_or_else(|| {
                    Error::invalid(
                        field("name"),
                        format!(
                            "unknown feature {:?}; known: {}, {}, health.<signal>",
                            c.name,
                            NUMERIC.join(", "),
                            CATEGORICAL.join(", ")
                        ),
                    )
                })?
            };
            if matches!(source, Source::CandidateDelay | Source::RetryElapsed) {
                spec.delay_columns.push((spec.width, log1p, source == Source::RetryElapsed));
            }
            spec.width += match source {
                Source::Category(_, b) => b as usize,
                _ => 1,
            };
            spec.columns.push(Column { source, log1p });
            spec.names.push(c.name.clone());
        }
        if !spec.columns.iter().any(|c| c.source == Source::CandidateDelay) {
            return Err(Error::invalid(
                "features",
                format!("must include {CANDIDATE_DELAY}: the model ranks delays by it"),
            ));
        }
        Ok(spec)
    }

    /// Floats per row (categoricals count their buckets).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Feature names in sidecar order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Append one row for `f` at `candidate_delay_ms` to `out`; `now_ms` supplies the hour
    /// of day when the features lack it.
    pub fn push_row(&self, f: &Features, candidate_delay_ms: u64, now_ms: u64, out: &mut Vec<f32>) {
        let start = out.len();
        out.resize(start + self.width, 0.0);
        let row = &mut out[start..];
        let mut at = 0;
        for c in &self.columns {
            let number = |x: f64| if c.log1p { x.max(0.0).ln_1p() } else { x } as f32;
            let ms = |x: Option<u64>| number(x.unwrap_or(0) as f64);
            match c.source {
                Source::Category(category, buckets) => {
                    let value = match category {
                        Category::JobType => Some(f.job_type.as_str()),
                        Category::ErrorClass => f.error_class.as_deref(),
                        Category::Queue => f.queue.as_deref(),
                        Category::Tenant => f.tenant.as_deref(),
                        Category::WorkerVersion => f.worker_version.as_deref(),
                    };
                    if let Some(v) = value {
                        row[at + bucket(v, buckets)] = 1.0;
                    }
                    at += buckets as usize;
                    continue;
                }
                Source::AttemptNumber => row[at] = number(f64::from(f.attempt_number)),
                Source::PayloadSize => row[at] = ms(f.payload_size),
                Source::TimeOfDay => {
                    row[at] = number(f64::from(f.time_of_day.unwrap_or_else(|| time::hour_of_day(now_ms))))
                }
                Source::SinceFirstFailure => row[at] = ms(f.since_first_failure_ms),
                Source::SinceLastFailure => row[at] = ms(f.since_last_failure_ms()),
                Source::RecentFailures => row[at] = number(f64::from(f.recent_failures.unwrap_or(0))),
                Source::HttpStatus => row[at] = number(f64::from(f.http_status.unwrap_or(0))),
                Source::RetryAfter => row[at] = ms(f.retry_after_ms(now_ms)),
                Source::Priority => row[at] = number(f64::from(f.priority.map_or(0, |p| p.index()))),
                Source::Idempotent => row[at] = number(if f.is_idempotent() { 1.0 } else { 0.0 }),
                Source::CandidateDelay => row[at] = ms(Some(candidate_delay_ms)),
                Source::RetryElapsed => {
                    row[at] =
                        ms(Some(f.since_first_failure_ms.unwrap_or(0).saturating_add(candidate_delay_ms)))
                }
                Source::Health(k) => {
                    row[at] = number(f.health.get(&self.health_names[k]).copied().unwrap_or(0.0))
                }
            }
            at += 1;
        }
    }

    /// Change the candidate delay of a row [`push_row`](Self::push_row) built for `f`.
    pub fn set_delay(&self, row: &mut [f32], f: &Features, candidate_delay_ms: u64) {
        for &(at, log1p, elapsed) in &self.delay_columns {
            let since = if elapsed { f.since_first_failure_ms.unwrap_or(0) } else { 0 };
            let x = since.saturating_add(candidate_delay_ms) as f64;
            row[at] = if log1p { x.ln_1p() } else { x } as f32;
        }
    }
}

fn numeric_source(name: &str, health: &mut Vec<String>) -> Option<Source> {
    if let Some(signal) = name.strip_prefix("health.").filter(|s| !s.is_empty()) {
        health.push(signal.to_string());
        return Some(Source::Health(health.len() - 1));
    }
    Some(match name {
        "attempt_number" => Source::AttemptNumber,
        "payload_size" => Source::PayloadSize,
        "time_of_day" => Source::TimeOfDay,
        "since_first_failure_ms" => Source::SinceFirstFailure,
        "since_last_failure_ms" => Source::SinceLastFailure,
        "recent_failures" => Source::RecentFailures,
        "http_status" => Source::HttpStatus,
        "retry_after_ms" => Source::RetryAfter,
        "priority" => Source::Priority,
        "idempotent" => Source::Idempotent,
        RETRY_ELAPSED => Source::RetryElapsed,
        CANDIDATE_DELAY => Source::CandidateDelay,
        _ => return None,
    })
}

/// The one-hot column of a categorical value: SplitMix64's finalizer over the value's
/// 64-bit FNV-1a hash, modulo `buckets`. (FNV-1a alone spreads short, similar labels
/// badly over its low bits: `payment_capture` and `nightly_sync` share them.)
pub fn bucket(value: &str, buckets: u32) -> usize {
    (crate::backoff::mix64(fnv1a(value)) % u64::from(buckets.max(1))) as usize
}

/// 64-bit FNV-1a: stable across processes, platforms and languages.
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Training examples from attempt history: each retry (attempt ≥ 2) is the failure it
/// retried — rebuilt as the [`Features`] the engine saw when it decided — plus the delay
/// waited (the candidate) and whether it succeeded (the label).
///
/// Attempts are grouped by `job_id` to recover the time since the previous failure.
/// First attempts teach nothing about delays and are skipped.
pub fn training_examples(history: &[Attempt]) -> Vec<(Features, u64, bool)> {
    let mut previous_delay: BTreeMap<(&str, u32), u64> = BTreeMap::new();
    for a in history {
        previous_delay.insert((a.job_id.as_str(), a.attempt_number), a.delay_ms);
    }
    history
        .iter()
        .filter(|a| a.attempt_number >= 2)
        .map(|a| {
            let failed_at = a.time_ms(0).saturating_sub(a.delay_ms);
            let features = Features {
                job_type: a.job_type.clone(),
                attempt_number: a.attempt_number - 1,
                error_class: a.error_class.clone(),
                error_code: a.error_code.clone(),
                http_status: a.http_status,
                queue: a.queue.clone(),
                tenant: a.tenant.clone(),
                payload_size: a.payload_size,
                time_of_day: a.time_of_day.or_else(|| (failed_at > 0).then(|| time::hour_of_day(failed_at))),
                job_id: Some(a.job_id.clone()),
                since_first_failure_ms: a.since_first_failure_ms.map(|s| s.saturating_sub(a.delay_ms)),
                since_last_failure_ms: Some(
                    previous_delay.get(&(a.job_id.as_str(), a.attempt_number - 1)).copied().unwrap_or(0),
                ),
                worker_version: a.worker_version.clone(),
                health: a.health.clone(),
                ..Features::default()
            };
            (features, a.delay_ms, a.success)
        })
        .collect()
}

/// Training data built from attempt history under a feature spec.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainingData {
    /// Row-major, `labels.len()` rows of `width` floats.
    pub rows: Vec<f32>,
    pub width: usize,
    /// Whether each retry succeeded.
    pub labels: Vec<bool>,
    /// The job of each row (to split by job: no job in both training and hold-out).
    pub job_ids: Vec<String>,
    /// The delay each retry waited.
    pub delays_ms: Vec<u64>,
}

/// The training data of `history` under `spec`.
pub fn training_data(spec: &FeatureSpec, history: &[Attempt]) -> TrainingData {
    let examples = training_examples(history);
    let mut data = TrainingData {
        rows: Vec::with_capacity(examples.len() * spec.width()),
        width: spec.width(),
        ..TrainingData::default()
    };
    for (features, delay, success) in examples {
        spec.push_row(&features, delay, 0, &mut data.rows);
        data.labels.push(success);
        data.job_ids.push(features.job_id.unwrap_or_default());
        data.delays_ms.push(delay);
    }
    data
}

/// Attempt history from JSON lines (blank lines skipped); errors name the line.
pub fn parse_history(jsonl: &str) -> Result<Vec<Attempt>> {
    jsonl
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let attempt = Attempt::from_json(line).map_err(|e| e.within(&format!("line {}", i + 1)))?;
            attempt.validate().map_err(|e| e.within(&format!("line {}", i + 1)))?;
            Ok(attempt)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> FeatureColumn {
        FeatureColumn { name: name.into(), transform: None, encoding: None, buckets: None }
    }

    fn hashed(name: &str, buckets: u32) -> FeatureColumn {
        FeatureColumn { encoding: Some("hash".into()), buckets: Some(buckets), ..col(name) }
    }

    #[test]
    fn rows_follow_the_sidecar_order_and_encoding() {
        let spec = FeatureSpec::new(&[
            col("attempt_number"),
            FeatureColumn { transform: Some("log1p".into()), ..col(CANDIDATE_DELAY) },
            hashed("error_class", 4),
            col("health.cpu"),
        ])
        .unwrap();
        assert_eq!(spec.width(), 7);
        let mut f = Features::new("pay", 2).with_error_class("timeout");
        f.health.insert("cpu".into(), 0.75);
        let mut rows = Vec::new();
        spec.push_row(&f, 1_000, 0, &mut rows);
        assert_eq!(rows[0], 2.0);
        assert!((rows[1] - 1_001f32.ln()).abs() < 1e-4);
        let one_hot = &rows[2..6];
        assert_eq!(one_hot.iter().sum::<f32>(), 1.0);
        assert_eq!(one_hot[bucket("timeout", 4)], 1.0);
        assert_eq!(rows[6], 0.75);
        spec.set_delay(&mut rows, &f, 0);
        assert_eq!(rows[1], 0.0);
    }

    #[test]
    fn the_recovery_clock_moves_with_the_candidate() {
        let spec = FeatureSpec::new(&[col(CANDIDATE_DELAY), col(RETRY_ELAPSED)]).unwrap();
        let f = Features::new("pay", 2).with_since_first_failure_ms(3_000);
        let mut row = Vec::new();
        spec.push_row(&f, 1_000, 0, &mut row);
        assert_eq!(row, [1_000.0, 4_000.0]);
        spec.set_delay(&mut row, &f, 5_000);
        assert_eq!(row, [5_000.0, 8_000.0]);
    }

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn similar_labels_land_in_different_buckets() {
        assert_ne!(bucket("payment_capture", 16), bucket("nightly_sync", 16));
        assert_eq!(bucket("payment_capture", 16), bucket("payment_capture", 16));
    }

    #[test]
    fn a_bad_feature_list_names_the_entry() {
        let err = FeatureSpec::new(&[col(CANDIDATE_DELAY), col("moon_phase")]).unwrap_err();
        assert_eq!(err.field(), Some("features[1].name"));
        let err = FeatureSpec::new(&[col(CANDIDATE_DELAY), col("tenant")]).unwrap_err();
        assert_eq!(err.field(), Some("features[1].encoding"));
        let err = FeatureSpec::new(&[col("attempt_number")]).unwrap_err();
        assert!(err.to_string().contains(CANDIDATE_DELAY), "{err}");
        let err = FeatureSpec::new(&[hashed(CANDIDATE_DELAY, 3)]).unwrap_err();
        assert_eq!(err.field(), Some("features[0].encoding"));
        let err = FeatureSpec::new(&[col(CANDIDATE_DELAY), hashed("queue", 0)]).unwrap_err();
        assert_eq!(err.field(), Some("features[1].buckets"));
    }

    #[test]
    fn history_becomes_the_failures_it_retried() {
        let history = vec![
            Attempt::new("j1", "pay", 2, false).with_delay_ms(1_000).with_since_first_failure_ms(1_000),
            Attempt::new("j1", "pay", 3, true).with_delay_ms(4_000).with_since_first_failure_ms(5_000),
            Attempt::new("j2", "pay", 1, false),
        ];
        let examples = training_examples(&history);
        assert_eq!(examples.len(), 2);
        let (f, delay, ok) = &examples[1];
        assert_eq!((f.attempt_number, *delay, *ok), (2, 4_000, true));
        assert_eq!(f.since_first_failure_ms, Some(1_000));
        assert_eq!(f.since_last_failure_ms, Some(1_000));
        assert_eq!(examples[0].0.since_last_failure_ms, Some(0));
    }
}
