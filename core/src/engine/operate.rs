//! Making and applying the operators' changes (see `operator.rs` for the document):
//! an engine's own change is applied here and committed as the next version; the
//! writer applies a newer version another engine committed.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::overrides::OverrideSet;
use crate::policy::PolicySet;
use crate::time;

use super::operator::{EmergencyStop, OperatorSettings, SettingsChange, COMMIT_TRIES};
use super::writer::Shared;
use super::Engine;

impl Shared {
    /// Take the stored document if it is not the one applied (the writer calls this
    /// every quarter second; the builder once at start). Returns whether it changed.
    pub(crate) fn sync_operator_settings(&self, store: &dyn crate::store::Store) -> Result<bool> {
        let Some((version, doc)) = store.settings_load()? else { return Ok(false) };
        if version == self.operator.version() {
            return Ok(false);
        }
        let doc: OperatorSettings = crate::api::from_json(&doc).map_err(|e| {
            Error::Store(format!("the stored operator settings (version {version}) are unreadable: {e}"))
        })?;
        self.apply_operator_settings(doc, version)?;
        Ok(true)
    }

    fn apply_operator_settings(&self, doc: OperatorSettings, version: u64) -> Result<()> {
        let policies = PolicySet::new(doc.policies)?;
        let mut overrides = OverrideSet::default();
        for o in doc.overrides {
            overrides.upsert(o);
        }
        let mut guardrails = doc.guardrails;
        guardrails.emergency_stop = doc.emergency.enabled;
        guardrails.validate()?;
        self.guard().reconfigure(&guardrails);
        {
            let mut slot = self.settings.write().unwrap_or_else(|p| p.into_inner());
            *slot = Arc::new(slot.to_changed(|s| {
                s.strategy.policies = policies.list();
                s.policies = policies;
                s.overrides = overrides;
                s.strategy.guardrails = guardrails;
                Ok(())
            })?);
        }
        self.emergency.store(doc.emergency.enabled, Ordering::Relaxed);
        *self.operator.emergency() = doc.emergency;
        self.operator.applied.store(version, Ordering::Release);
        Ok(())
    }
}

impl Engine {
    /// The document as this engine has it now.
    fn operator_settings(&self) -> OperatorSettings {
        let s = self.settings();
        OperatorSettings {
            guardrails: self.guardrails(),
            policies: s.policies.list(),
            overrides: s.overrides.list(),
            emergency: self.emergency_state(),
        }
    }

    /// Make an operator's change: applied here, then (with a durable store) written as
    /// the next version, which every engine on the store applies. Against a concurrent
    /// writer the newer document is taken first and the change made again on top of it.
    pub(crate) fn operate<T>(
        &self,
        by: Option<&str>,
        change: impl Fn(&Engine) -> Result<(T, String)>,
    ) -> Result<T> {
        if self.persist.is_none() {
            return change(self).map(|(out, _)| out);
        }
        let _one_at_a_time = self.operator.changing.lock().unwrap_or_else(|p| p.into_inner());
        let by = by.map(str::trim).filter(|b| !b.is_empty()).unwrap_or("unknown");
        if by.len() > crate::api::MAX_LABEL_LEN {
            return Err(Error::invalid("by", format!("at most {} bytes", crate::api::MAX_LABEL_LEN)));
        }
        for _ in 0..COMMIT_TRIES {
            self.shared().sync_operator_settings(self.store())?;
            let (out, what) = change(self)?;
            let expected = self.operator.version();
            let now = time::now_ms();
            let entry = SettingsChange {
                version: expected + 1,
                at: time::format_rfc3339(now),
                at_ms: now,
                by: by.to_string(),
                what,
            };
            let doc =
                serde_json::to_string(&self.operator_settings()).map_err(|e| Error::Store(e.to_string()))?;
            let entry = serde_json::to_string(&entry).map_err(|e| Error::Store(e.to_string()))?;
            if self.store().settings_commit(expected, &doc, &entry)? {
                self.operator.applied.store(expected + 1, Ordering::Release);
                return Ok(out);
            }
        }
        Err(Error::Store(format!("{COMMIT_TRIES} other changes landed first: try again")))
    }

    /// The emergency stop with its reason, who and when.
    pub fn emergency_state(&self) -> EmergencyStop {
        let mut state = self.operator.emergency().clone();
        state.enabled = self.is_emergency_stopped();
        state
    }

    /// Turn the emergency stop on or off, saying why and who (kept with the state).
    pub fn set_emergency_stop(&self, enabled: bool, reason: Option<&str>, by: Option<&str>) -> Result<()> {
        if reason.is_some_and(|r| r.len() > crate::dlq::MAX_NOTE_BYTES) {
            return Err(Error::invalid("reason", format!("at most {} bytes", crate::dlq::MAX_NOTE_BYTES)));
        }
        self.operate(by, |e| {
            e.switch_emergency(enabled);
            let now = time::now_ms();
            *e.operator.emergency() = EmergencyStop {
                enabled,
                reason: reason.map(str::to_string),
                by: by.map(str::to_string),
                at: Some(time::format_rfc3339(now)),
            };
            let what = format!(
                "emergency stop {}{}",
                if enabled { "on" } else { "off" },
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            );
            Ok(((), what))
        })
    }

    /// The version of the operators' settings this engine applied (0: none stored).
    pub fn settings_version(&self) -> u64 {
        self.operator.version()
    }

    /// The store's list of changes to the operators' settings, newest first.
    pub fn settings_changes(&self, limit: usize) -> Result<Vec<SettingsChange>> {
        let rows = self.store().settings_audit(limit)?;
        Ok(rows.iter().filter_map(|r| serde_json::from_str(r).ok()).collect())
    }
}
