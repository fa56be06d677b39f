use std::collections::VecDeque;
use std::sync::Mutex;

use super::{HistoryRecord, HistoryStore, WindowTotals};

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
