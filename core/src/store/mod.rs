//! Where attempt history lives. Memory is the default: a fixed-capacity ring of compact
//! records, enough for windowed statistics without unbounded growth.

mod memory;

pub use memory::MemoryHistory;

/// One attempt, as kept for statistics (32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRecord {
    /// The engine's hash of (job_type, error_class).
    pub key: u64,
    pub at_ms: u64,
    pub delay_ms: u64,
    pub success: bool,
}

/// Totals of one key over a time window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowTotals {
    pub attempts: u64,
    pub successes: u64,
    pub delay_sum_ms: u64,
    pub last_ms: Option<u64>,
}

/// Attempt history: append-only, queried by key and window.
pub trait HistoryStore: Send + Sync {
    fn append(&self, record: HistoryRecord);
    fn totals(&self, key: u64, from_ms: u64, to_ms: u64) -> WindowTotals;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
