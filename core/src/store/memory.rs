use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use super::contract::{
    AuditRecord, Batch, HistoryRecord, HistoryStore, ModelRecord, OutcomeRecord, Restored, Store,
    WindowTotals,
};
use crate::dlq::{DeadLetter, DeadLetterQuery, DeadLetterStatus};
use crate::error::{Error, Result};

/// Most dead letters a memory store holds (a durable store has no such cap).
pub const MEMORY_DLQ_CAPACITY: usize = 100_000;

/// The default store: dead letters and model versions in this process only. The attempt
/// history is the engine's own ring ([`MemoryHistory`]); nothing is written behind.
#[derive(Default)]
pub struct MemoryStore {
    dead_letters: Mutex<BTreeMap<String, DeadLetter>>,
    models: Mutex<BTreeMap<String, ModelRecord>>,
    settings: Mutex<BTreeMap<String, String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store for MemoryStore {
    fn url(&self) -> String {
        "memory".into()
    }

    fn durable(&self) -> bool {
        false
    }

    fn write(&self, _batch: &Batch) -> Result<()> {
        Ok(())
    }

    fn restore(&self, _history_limit: usize) -> Result<Restored> {
        Ok(Restored::default())
    }

    fn outcomes(&self, _since_ms: u64, _limit: usize) -> Result<Vec<OutcomeRecord>> {
        Ok(Vec::new())
    }

    fn audit(&self, _limit: usize) -> Result<Vec<AuditRecord>> {
        Ok(Vec::new())
    }

    fn dlq_put(&self, entry: &DeadLetter) -> Result<()> {
        let mut dlq = lock(&self.dead_letters);
        if dlq.len() >= MEMORY_DLQ_CAPACITY && !dlq.contains_key(&entry.id) {
            return Err(Error::Store(format!(
                "memory: the dead-letter queue holds {MEMORY_DLQ_CAPACITY} entries; resolve some or use a durable store"
            )));
        }
        dlq.insert(entry.id.clone(), entry.clone());
        Ok(())
    }

    fn dlq_get(&self, id: &str) -> Result<Option<DeadLetter>> {
        Ok(lock(&self.dead_letters).get(id).cloned())
    }

    fn dlq_list(&self, query: &DeadLetterQuery) -> Result<Vec<DeadLetter>> {
        let dlq = lock(&self.dead_letters);
        let mut all: Vec<&DeadLetter> = dlq.values().filter(|e| query.matches(e)).collect();
        all.sort_by(|a, b| b.added_ms.cmp(&a.added_ms).then_with(|| b.id.cmp(&a.id)));
        Ok(all.into_iter().skip(query.offset).take(query.limit).cloned().collect())
    }

    fn dlq_count(&self, status: Option<DeadLetterStatus>) -> Result<u64> {
        let dlq = lock(&self.dead_letters);
        Ok(dlq.values().filter(|e| status.is_none_or(|s| s == e.status)).count() as u64)
    }

    fn model_put(&self, model: &ModelRecord) -> Result<()> {
        lock(&self.models).insert(model.version.clone(), model.clone());
        Ok(())
    }

    fn model_get(&self, version: &str) -> Result<Option<ModelRecord>> {
        Ok(lock(&self.models).get(version).cloned())
    }

    fn setting_get(&self, key: &str) -> Result<Option<String>> {
        Ok(lock(&self.settings).get(key).cloned())
    }

    fn setting_put(&self, key: &str, json: &str) -> Result<()> {
        lock(&self.settings).insert(key.to_string(), json.to_string());
        Ok(())
    }

    fn model_list(&self) -> Result<Vec<ModelRecord>> {
        let mut all: Vec<ModelRecord> =
            lock(&self.models).values().map(|m| ModelRecord { bytes: None, ..m.clone() }).collect();
        all.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then_with(|| a.version.cmp(&b.version)));
        Ok(all)
    }
}

/// A ring of the most recent `capacity` attempts; the oldest are dropped first.
pub struct MemoryHistory {
    capacity: usize,
    ring: Mutex<VecDeque<HistoryRecord>>,
}

impl MemoryHistory {
    pub fn new(capacity: usize) -> Self {
        MemoryHistory { capacity, ring: Mutex::new(VecDeque::with_capacity(capacity.min(4_096))) }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, VecDeque<HistoryRecord>> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl HistoryStore for MemoryHistory {
    fn append(&self, record: HistoryRecord) {
        if self.capacity == 0 {
            return;
        }
        let mut ring = self.ring();
        if ring.len() >= self.capacity {
            ring.pop_front();
        }
        ring.push_back(record);
    }

    fn totals(&self, key: u64, from_ms: u64, to_ms: u64) -> WindowTotals {
        let ring = self.ring();
        ring.iter().filter(|r| r.key == key && (from_ms..=to_ms).contains(&r.at_ms)).fold(
            WindowTotals::default(),
            |t, r| WindowTotals {
                attempts: t.attempts + 1,
                successes: t.successes + u64::from(r.success),
                delay_sum_ms: t.delay_sum_ms.saturating_add(r.delay_ms),
                last_ms: t.last_ms.max(Some(r.at_ms)),
            },
        )
    }

    fn len(&self) -> usize {
        self.ring().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_sums_a_window() {
        let h = MemoryHistory::new(3);
        for (i, success) in [true, false, true, true].into_iter().enumerate() {
            h.append(HistoryRecord { key: 7, at_ms: i as u64 * 10, delay_ms: 100, success });
        }
        h.append(HistoryRecord { key: 8, at_ms: 35, delay_ms: 1, success: false });
        assert_eq!(h.len(), 3);
        let t = h.totals(7, 0, 100);
        assert_eq!((t.attempts, t.successes, t.delay_sum_ms, t.last_ms), (2, 2, 200, Some(30)));
        assert_eq!(h.totals(7, 25, 100).attempts, 1);
    }
}
