//! The dead-letter queue's operations: jobs that ran out of retries, kept in the
//! engine's store for a person to review, retry by hand or resolve with a note (the
//! types and their validation are in [`crate::dlq`]).

use crate::dlq::{
    DeadLetter, DeadLetterNote, DeadLetterQuery, DeadLetterStatus, NewDeadLetter, MAX_LIST, MAX_NOTES,
    MAX_NOTE_BYTES,
};
use crate::error::{Error, Result};
use crate::time;

use super::Engine;

impl Engine {
    /// Put a job in the dead-letter queue; returns it with its id.
    pub fn add_dead_letter(&self, new: NewDeadLetter, now_ms: Option<u64>) -> Result<DeadLetter> {
        new.validate()?;
        let now = now_ms.unwrap_or_else(time::now_ms);
        let entry = DeadLetter {
            id: format!("dlq_{:016x}", self.unique_bits(now)),
            job_id: new.job_id,
            job_type: new.job_type,
            error_class: new.error_class,
            tenant: new.tenant,
            failure_reason: new.failure_reason,
            attempts: new.attempts,
            payload_ref: new.payload_ref,
            payload: new.payload,
            status: DeadLetterStatus::Open,
            added_ms: now,
            added_at: time::format_rfc3339(now),
            updated_ms: now,
            manual_retries: 0,
            last_retried_at: None,
            resolution_note: None,
            resolved_at: None,
            notes: Vec::new(),
        };
        self.store().dlq_put(&entry)?;
        Ok(entry)
    }

    /// Dead letters, newest first.
    pub fn dead_letters(&self, query: &DeadLetterQuery) -> Result<Vec<DeadLetter>> {
        if query.limit == 0 || query.limit > MAX_LIST {
            return Err(Error::invalid("limit", format!("must be 1–{MAX_LIST}, got {}", query.limit)));
        }
        self.store().dlq_list(query)
    }

    /// One dead letter with its attempt history.
    pub fn dead_letter(&self, id: &str) -> Result<DeadLetter> {
        self.store().dlq_get(id)?.ok_or_else(|| Error::NotFound { what: format!("dead letter {id:?}") })
    }

    /// Send a dead letter back to be tried again: marks it `retried` and returns it (with
    /// its payload or payload reference) for the caller to re-enqueue.
    pub fn retry_dead_letter(&self, id: &str, now_ms: Option<u64>) -> Result<DeadLetter> {
        let now = now_ms.unwrap_or_else(time::now_ms);
        let mut entry = self.dead_letter(id)?;
        if entry.status == DeadLetterStatus::Resolved {
            return Err(Error::invalid(
                "status",
                format!("dead letter {id:?} is resolved; it cannot be retried"),
            ));
        }
        entry.status = DeadLetterStatus::Retried;
        entry.manual_retries += 1;
        entry.last_retried_at = Some(time::format_rfc3339(now));
        entry.updated_ms = now;
        self.store().dlq_put(&entry)?;
        Ok(entry)
    }

    /// Close a dead letter with a note saying what was done (by nobody in particular).
    pub fn resolve_dead_letter(&self, id: &str, note: &str, now_ms: Option<u64>) -> Result<DeadLetter> {
        self.note_dead_letter(id, note, None, true, now_ms)
    }

    /// Add a note to a dead letter's notes (append-only: an earlier one is never
    /// overwritten), saying who wrote it; with `resolve`, the note also closes it.
    pub fn note_dead_letter(
        &self,
        id: &str,
        text: &str,
        by: Option<&str>,
        resolve: bool,
        now_ms: Option<u64>,
    ) -> Result<DeadLetter> {
        if text.trim().is_empty() {
            let why = if resolve { "must say how it was resolved" } else { "must not be empty" };
            return Err(Error::invalid("note", why));
        }
        if text.len() > MAX_NOTE_BYTES {
            return Err(Error::invalid("note", format!("must be at most {MAX_NOTE_BYTES} bytes")));
        }
        let by = by.map(str::trim).filter(|b| !b.is_empty()).unwrap_or("unknown");
        if by.len() > crate::api::MAX_LABEL_LEN {
            return Err(Error::invalid("by", format!("must be at most {} bytes", crate::api::MAX_LABEL_LEN)));
        }
        let now = now_ms.unwrap_or_else(time::now_ms);
        let mut entry = self.dead_letter(id)?;
        if entry.notes.len() >= MAX_NOTES {
            return Err(Error::invalid("note", format!("dead letter {id:?} already has {MAX_NOTES} notes")));
        }
        let at = time::format_rfc3339(now);
        entry.notes.push(DeadLetterNote {
            by: by.to_string(),
            at: at.clone(),
            at_ms: now,
            text: text.to_string(),
            resolved: resolve,
        });
        if resolve {
            entry.status = DeadLetterStatus::Resolved;
            entry.resolution_note = Some(text.to_string());
            entry.resolved_at = Some(at);
        }
        entry.updated_ms = now;
        self.store().dlq_put(&entry)?;
        Ok(entry)
    }

    /// How many dead letters there are (with this status, or in all).
    pub fn dead_letter_count(&self, status: Option<DeadLetterStatus>) -> Result<u64> {
        self.store().dlq_count(status)
    }
}
