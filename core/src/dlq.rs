//! The dead-letter queue: jobs that ran out of retries (or were refused one), kept with
//! their full attempt history and a reference to their payload for a person to review,
//! retry by hand, or resolve with a note. Entries live in the engine's store (memory,
//! SQLite or Redis), so a durable store keeps them across restarts. These are the
//! types and their validation; the operations are the engine's (`engine/dlq.rs`).

use serde::{Deserialize, Serialize};

use crate::api::{Attempt, Features};
use crate::error::{Error, Result};

/// Most attempts kept with one dead letter, and most bytes of its text fields.
pub const MAX_DEAD_LETTER_ATTEMPTS: usize = 1_000;
pub const MAX_NOTE_BYTES: usize = 4_096;
/// Largest inline payload (as JSON); bigger payloads belong behind `payload_ref`.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Most entries one listing returns.
pub const MAX_LIST: usize = 1_000;
/// Most notes one dead letter keeps (append-only: nothing is overwritten).
pub const MAX_NOTES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterStatus {
    /// Waiting for a person.
    #[default]
    Open,
    /// Sent back to be tried again by hand (the caller re-enqueued it).
    Retried,
    /// Closed with a note.
    Resolved,
}

impl DeadLetterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterStatus::Open => "open",
            DeadLetterStatus::Retried => "retried",
            DeadLetterStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "open" => Ok(DeadLetterStatus::Open),
            "retried" => Ok(DeadLetterStatus::Retried),
            "resolved" => Ok(DeadLetterStatus::Resolved),
            _ => Err(Error::invalid("status", format!("expected open, retried or resolved, got {s:?}"))),
        }
    }
}

/// A job in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    pub job_id: String,
    pub job_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Why it was given up on (typically the last decision's rationale).
    pub failure_reason: String,
    /// Every attempt, first to last.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Where the original payload lives (a queue message id, an object-store key…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_ref: Option<String>,
    /// The payload itself, when small enough to keep inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    pub status: DeadLetterStatus,
    pub added_ms: u64,
    pub added_at: String,
    pub updated_ms: u64,
    /// How many times it was retried by hand.
    #[serde(default)]
    pub manual_retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_retried_at: Option<String>,
    /// The latest resolution's note (also the last of `notes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    /// Everything people wrote about it, oldest first: who, when, what. Append-only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<DeadLetterNote>,
}

/// One note on a dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterNote {
    /// Who wrote it (as the caller says; `unknown` when nobody said).
    pub by: String,
    pub at: String,
    pub at_ms: u64,
    pub text: String,
    /// This note resolved the dead letter.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resolved: bool,
}

/// What a caller gives to put a job in the queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewDeadLetter {
    pub job_id: String,
    pub job_type: String,
    #[serde(default)]
    pub error_class: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    /// Why it was given up on: required, a person reading the queue needs it.
    pub failure_reason: String,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(default)]
    pub payload_ref: Option<String>,
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
}

/// Which dead letters to list (newest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeadLetterQuery {
    pub status: Option<DeadLetterStatus>,
    pub job_type: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

impl Default for DeadLetterQuery {
    fn default() -> Self {
        DeadLetterQuery { status: None, job_type: None, limit: 100, offset: 0 }
    }
}

impl DeadLetterQuery {
    /// Whether an entry passes the filters (for stores that filter in memory).
    pub fn matches(&self, e: &DeadLetter) -> bool {
        self.status.is_none_or(|s| s == e.status) && self.job_type.as_ref().is_none_or(|j| *j == e.job_type)
    }
}

impl NewDeadLetter {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.job_id.trim().is_empty() {
            return Err(Error::invalid("job_id", "must not be empty"));
        }
        Features::new(self.job_type.clone(), 1).validate()?;
        if self.failure_reason.trim().is_empty() {
            return Err(Error::invalid("failure_reason", "must say why the job was given up on"));
        }
        if self.failure_reason.len() > MAX_NOTE_BYTES {
            return Err(Error::invalid("failure_reason", format!("must be at most {MAX_NOTE_BYTES} bytes")));
        }
        if self.attempts.len() > MAX_DEAD_LETTER_ATTEMPTS {
            return Err(Error::invalid(
                "attempts",
                format!("at most {MAX_DEAD_LETTER_ATTEMPTS} attempts, got {}", self.attempts.len()),
            ));
        }
        for (i, a) in self.attempts.iter().enumerate() {
            a.validate().map_err(|e| e.within(&format!("attempts[{i}]")))?;
        }
        if self.payload_ref.as_ref().is_some_and(|r| r.len() > MAX_NOTE_BYTES) {
            return Err(Error::invalid("payload_ref", format!("must be at most {MAX_NOTE_BYTES} bytes")));
        }
        if let Some(p) = &self.payload {
            let size = serde_json::to_vec(p).map(|v| v.len()).unwrap_or(usize::MAX);
            if size > MAX_PAYLOAD_BYTES {
                return Err(Error::invalid(
                    "payload",
                    format!(
                        "{size} bytes is over {MAX_PAYLOAD_BYTES}: keep it elsewhere and pass payload_ref"
                    ),
                ));
            }
        }
        Ok(())
    }
}
