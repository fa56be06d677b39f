//! The operators' settings as state: guardrails, policies, overrides and the emergency
//! stop (with its reason, who and when) are one versioned document in a durable store.
//! A change made through any engine is written as the next version (compare-and-set:
//! two engines changing at once both land, one after the other) with an entry in the
//! store's list of changes; every engine on the store looks for a newer version every
//! quarter second (its writer thread) and applies it whole. So a restart keeps them, and
//! a fleet on one Redis agrees within a second.
//!
//! This file holds the document and what an engine knows of it; `operate.rs` makes and
//! applies changes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::guard::Guardrails;
use crate::overrides::Override;
use crate::policy::Policy;

/// The emergency stop as operators see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmergencyStop {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who changed it last (as the caller said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// When it was changed last (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// One change of the operators' settings, as the store's list keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsChange {
    /// The version this change made.
    pub version: u64,
    pub at: String,
    pub at_ms: u64,
    pub by: String,
    /// What changed, in words (`guardrails: max_attempts 10 → 4`).
    pub what: String,
}

/// The versioned document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct OperatorSettings {
    pub(super) guardrails: Guardrails,
    pub(super) policies: Vec<Policy>,
    pub(super) overrides: Vec<Override>,
    pub(super) emergency: EmergencyStop,
}

/// What an engine knows of the document: the version it applied, the emergency stop's
/// story, and a lock so that one engine's own changes go out one at a time.
#[derive(Default)]
pub(crate) struct OperatorState {
    pub(super) applied: AtomicU64,
    emergency: Mutex<EmergencyStop>,
    pub(super) changing: Mutex<()>,
}

/// Most tries of one change against concurrent writers before giving up.
pub(super) const COMMIT_TRIES: usize = 8;

impl OperatorState {
    pub(crate) fn version(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    pub(super) fn emergency(&self) -> std::sync::MutexGuard<'_, EmergencyStop> {
        self.emergency.lock().unwrap_or_else(|p| p.into_inner())
    }
}
