//! The writer behind a durable store: the engine's calls push records onto a bounded
//! queue (a short lock, no I/O) and one thread per engine writes them in batches,
//! together with the learned views they changed, breaker changes, the emergency stop and
//! retention pruning. With a fleet store the same thread exchanges budgets, breakers and
//! the emergency stop with the other workers and folds their outcomes into this engine.
//!
//! While the store fails, records wait in the queue (oldest dropped past its bound, and
//! counted) and are written when it answers again.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::bayes::{KeyModel, Learner, Scope};
use crate::decide::Settings;
use crate::error::{Error, Result};
use crate::guard::GuardState;
use crate::store::{
    AuditRecord, Batch, HistoryRecord, HistoryStore, LearnedRow, MemoryHistory, OutcomeRecord, Restored,
    Store,
};

/// Records gathered before the writer is woken early.
const BATCH: usize = 512;
/// Most records of each kind in one store call (one transaction, one pipeline).
const MAX_WRITE: usize = 4_096;
/// How often the writer flushes (and a fleet store syncs) when traffic is light.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Longest pause between two attempts on a failing store.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Outcomes of other workers folded in per sync.
const PULL_MAX: usize = 10_000;
const DAY_MS: u64 = 86_400_000;

/// The engine's state the writer reads (learned views to persist) and, with a fleet
/// store, changes (other workers' outcomes, budgets, breakers, the emergency stop).
#[derive(Clone)]
pub(crate) struct Shared {
    pub learner: Arc<Learner>,
    pub history: Arc<MemoryHistory>,
    pub guard: Arc<Mutex<GuardState>>,
    pub emergency: Arc<AtomicBool>,
    pub settings: Arc<RwLock<Arc<Settings>>>,
    pub operator: Arc<super::operator::OperatorState>,
}

impl Shared {
    fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub(super) fn guard(&self) -> MutexGuard<'_, GuardState> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Learn from an outcome recorded elsewhere (another worker, or before a restart).
    pub fn learn(&self, o: &OutcomeRecord, s: &Settings) {
        for scope in o.scopes.iter().filter_map(|sc| Scope::parse(sc)) {
            self.learner.update(&o.job_type, &o.error_class, scope, |m| {
                m.observe(o.clock_ms.saturating_sub(o.delay_ms), o.clock_ms, o.success, &s.bayes)
            });
        }
        self.remember(o);
    }

    /// Count an outcome in the windowed statistics.
    pub fn remember(&self, o: &OutcomeRecord) {
        self.history.append(HistoryRecord {
            key: self.learner.key(&o.job_type, &o.error_class, Scope::Key),
            at_ms: o.at_ms,
            delay_ms: o.delay_ms,
            success: o.success,
        });
    }

    /// Take back what a store kept: learned views, recent history, open breakers, the
    /// emergency stop. Returns how many learned views were restored.
    pub fn restore(&self, restored: Restored) -> usize {
        let s = self.settings();
        let mut views = 0;
        for row in &restored.learned {
            let (Some(scope), Some(model)) =
                (Scope::parse(&row.scope), KeyModel::decode(&row.model, &s.bayes))
            else {
                continue;
            };
            self.learner.restore(&row.job_type, &row.error_class, scope, model);
            views += 1;
        }
        for o in &restored.outcomes {
            if restored.relearn {
                self.learn(o, &s);
            } else {
                self.remember(o);
            }
        }
        let g = &s.strategy.guardrails;
        let mut guard = self.guard();
        let now = crate::time::now_ms().max(guard.latest_ms());
        for b in restored.breakers {
            if let Some(until) = b.open_until_ms {
                guard.adopt_open_breaker(&b.key, until, now, g, &s.strategy.circuit_breaker);
            }
        }
        if restored.emergency_stop == Some(true) {
            self.emergency.store(true, Ordering::Relaxed);
        }
        views
    }
}

/// Counters of the store, for `metrics()`.
#[derive(Default)]
pub(crate) struct StoreStats {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub audit_shed: AtomicU64,
    pub errors: AtomicU64,
    pub fleet_applied: AtomicU64,
    /// The last write or sync failed: decisions run on local state only.
    pub degraded: AtomicBool,
    pub last_error: Mutex<Option<String>>,
}

#[derive(Default)]
struct Pending {
    outcomes: VecDeque<OutcomeRecord>,
    audits: VecDeque<AuditRecord>,
    emergency: Option<bool>,
    /// Records the writer has taken and not yet written (they count against the bound).
    in_flight: usize,
    shutdown: bool,
    /// Flush generations asked for and done.
    requested: u64,
    done: u64,
}

/// The bounded queue between the engine's calls and the writer thread.
pub(crate) struct Queue {
    pending: Mutex<Pending>,
    wake: Condvar,
    flushed: Condvar,
    capacity: usize,
    pub stats: StoreStats,
    /// Audit records admitted in the current second: `(second << 32) | count`.
    audit_window: AtomicU64,
    /// The writer's clock for `audit_window` (real time, whatever clock decisions use).
    epoch: Instant,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append to one of the pending queues; past the bound (counting what the writer
    /// holds) the oldest waiting record is dropped and counted.
    fn push<T>(&self, item: T, queue: impl FnOnce(&mut Pending) -> &mut VecDeque<T>) {
        let mut p = self.lock();
        let total = p.outcomes.len() + p.audits.len() + p.in_flight;
        let q = queue(&mut p);
        if total >= self.capacity && q.pop_front().is_some() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        } else if total >= self.capacity {
            // Nothing of this kind waiting: the newcomer is the one that does not fit.
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        q.push_back(item);
        let wake = q.len() == BATCH;
        drop(p);
        if wake {
            self.wake.notify_one();
        }
    }

    pub fn push_outcome(&self, o: OutcomeRecord) {
        self.push(o, |p| &mut p.outcomes);
    }

    pub fn push_audit(&self, a: AuditRecord) {
        self.push(a, |p| &mut p.audits);
    }

    /// Whether one more audit record fits in this second's `cap` (0: no cap); a refusal is
    /// counted. Checked before the record is built, so a shed one costs nothing.
    pub fn admit_audit(&self, cap: u32) -> bool {
        if cap == 0 {
            return true;
        }
        let second = self.epoch.elapsed().as_secs();
        let mut window = self.audit_window.load(Ordering::Relaxed);
        loop {
            let next = if window >> 32 == second {
                if window & 0xffff_ffff >= u64::from(cap) {
                    self.stats.audit_shed.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                window + 1
            } else {
                (second << 32) | 1
            };
            match self.audit_window.compare_exchange_weak(window, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => window = seen,
            }
        }
    }

    pub fn set_emergency(&self, on: bool) {
        self.lock().emergency = Some(on);
        self.wake.notify_one();
    }

    pub fn buffered(&self) -> u64 {
        let p = self.lock();
        (p.outcomes.len() + p.audits.len() + p.in_flight) as u64
    }

    /// The writer has written `n` of the records it took.
    fn settle(&self, n: usize) {
        let mut p = self.lock();
        p.in_flight = p.in_flight.saturating_sub(n);
    }

    /// Put back what a failed write held, ahead of anything newer, within the bound.
    fn requeue(&self, outcomes: Vec<OutcomeRecord>, audits: Vec<AuditRecord>, emergency: Option<bool>) {
        let mut p = self.lock();
        p.in_flight = p.in_flight.saturating_sub(outcomes.len() + audits.len());
        let room = self.capacity.saturating_sub(p.outcomes.len() + p.audits.len());
        let audit_room = room.saturating_sub(outcomes.len());
        put_back(&mut p.outcomes, outcomes, room, &self.stats.dropped);
        put_back(&mut p.audits, audits, audit_room, &self.stats.dropped);
        if p.emergency.is_none() {
            p.emergency = emergency;
        }
    }
}

/// Older records go in front of `q`; past `room` the oldest are dropped and counted.
fn put_back<T>(q: &mut VecDeque<T>, older: Vec<T>, room: usize, dropped: &AtomicU64) {
    let skip = older.len().saturating_sub(room);
    dropped.fetch_add(skip as u64, Ordering::Relaxed);
    for item in older.into_iter().skip(skip).rev() {
        q.push_front(item);
    }
}

/// The writer thread and its queue; dropping it writes what is left and stops the thread.
pub(crate) struct Persister {
    pub queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
}

impl Persister {
    pub fn start(
        store: Arc<dyn Store>,
        shared: Shared,
        capacity: usize,
        cursor: String,
    ) -> Result<Persister> {
        let queue = Arc::new(Queue {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            flushed: Condvar::new(),
            capacity: capacity.max(1),
            stats: StoreStats::default(),
            audit_window: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let writer = Writer {
            store,
            shared,
            queue: Arc::clone(&queue),
            adopted: HashSet::new(),
            taken_outcomes: VecDeque::new(),
            taken_audits: VecDeque::new(),
            unsent_breakers: Vec::new(),
            cursor,
            settings_checked: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("smartretry-store".into())
            .spawn(move || writer.run())
            .map_err(|e| Error::Store(format!("could not start the store writer thread: {e}")))?;
        Ok(Persister { queue, thread: Some(thread) })
    }

    /// Wait until everything queued so far is written (or the store failed, or `timeout`).
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let q = &self.queue;
        let mut p = q.lock();
        p.requested += 1;
        let target = p.requested;
        q.wake.notify_one();
        let deadline = Instant::now() + timeout;
        while p.done < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Store("flush timed out: the store is slow or unreachable".into()));
            }
            p = q.flushed.wait_timeout(p, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        drop(p);
        if q.stats.degraded.load(Ordering::Relaxed) {
            let why = q.stats.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
            return Err(Error::Store(why.unwrap_or_else(|| "the store is unreachable".into())));
        }
        Ok(())
    }
}

impl Drop for Persister {
    fn drop(&mut self) {
        self.queue.lock().shutdown = true;
        self.queue.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Writer {
    store: Arc<dyn Store>,
    shared: Shared,
    queue: Arc<Queue>,
    /// Fleet breaker openings already adopted (not re-adopted every sync).
    adopted: HashSet<(String, u64)>,
    /// What the writer took from the queue this round (kept between rounds, empty, so
    /// their capacity is reused).
    taken_outcomes: VecDeque<OutcomeRecord>,
    taken_audits: VecDeque<AuditRecord>,
    /// Breaker changes a failed write did not store.
    unsent_breakers: Vec<crate::breaker::BreakerSnapshot>,
    /// Where this worker is in the fleet's outcome stream.
    cursor: String,
    /// When the operators' settings were last looked for.
    settings_checked: Instant,
}

/// How often the writer looks for a newer version of the operators' settings.
pub const SETTINGS_EVERY: Duration = Duration::from_millis(250);

impl Writer {
    fn run(mut self) {
        let mut backoff = FLUSH_INTERVAL;
        let mut failing = false;
        loop {
            let (emergency, shutdown, generation) = {
                let q = &self.queue;
                let mut p = q.lock();
                let wait = if failing { backoff } else { FLUSH_INTERVAL };
                let started = Instant::now();
                while !p.shutdown
                    && p.requested == p.done
                    && (failing || (p.outcomes.len() < BATCH && p.audits.len() < BATCH))
                {
                    let left = wait.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        break;
                    }
                    p = q.wake.wait_timeout(p, left).unwrap_or_else(|e| e.into_inner()).0;
                }
                // Swap in the drained queues of the last round: O(1) under the lock, and
                // the callers' next pushes find room already allocated.
                std::mem::swap(&mut p.outcomes, &mut self.taken_outcomes);
                std::mem::swap(&mut p.audits, &mut self.taken_audits);
                p.in_flight = self.taken_outcomes.len() + self.taken_audits.len();
                (p.emergency.take(), p.shutdown, p.requested)
            };
            let wrote = self.write_taken(emergency);
            let synced = wrote && self.sync_fleet() && self.sync_operator_settings();
            failing = !synced;
            backoff = if failing { (backoff * 2).min(MAX_BACKOFF) } else { FLUSH_INTERVAL };
            {
                let mut p = self.queue.lock();
                p.done = p.done.max(generation);
            }
            self.queue.flushed.notify_all();
            if shutdown {
                return;
            }
        }
    }

    /// Apply a newer version of the operators' settings (every [`SETTINGS_EVERY`]).
    fn sync_operator_settings(&mut self) -> bool {
        if self.settings_checked.elapsed() < SETTINGS_EVERY {
            return true;
        }
        self.settings_checked = Instant::now();
        match self.shared.sync_operator_settings(&*self.store) {
            Ok(_) => true,
            Err(e) => {
                self.fail(&e);
                false
            }
        }
    }

    fn fail(&self, e: &Error) {
        let stats = &self.queue.stats;
        stats.errors.fetch_add(1, Ordering::Relaxed);
        stats.degraded.store(true, Ordering::Relaxed);
        *stats.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    /// Write what was taken, at most [`MAX_WRITE`] records of each kind per store call;
    /// on a failure, put back what is left (in order) and stop.
    fn write_taken(&mut self, mut emergency: Option<bool>) -> bool {
        loop {
            let outcomes: Vec<_> = {
                let n = self.taken_outcomes.len().min(MAX_WRITE);
                self.taken_outcomes.drain(..n).collect()
            };
            let audits: Vec<_> = {
                let n = self.taken_audits.len().min(MAX_WRITE);
                self.taken_audits.drain(..n).collect()
            };
            let n = outcomes.len() + audits.len();
            if let Err(failed) = self.write(outcomes, audits, emergency.take()) {
                let rest_outcomes: Vec<_> = self.taken_outcomes.drain(..).collect();
                let rest_audits: Vec<_> = self.taken_audits.drain(..).collect();
                self.queue.requeue(rest_outcomes, rest_audits, None);
                self.queue.requeue(failed.outcomes, failed.audits, failed.emergency_stop);
                return false;
            }
            self.queue.settle(n);
            if self.taken_outcomes.is_empty() && self.taken_audits.is_empty() {
                return true;
            }
        }
    }

    /// One store call; on failure the batch comes back to be put back in the queue.
    fn write(
        &mut self,
        outcomes: Vec<OutcomeRecord>,
        audits: Vec<AuditRecord>,
        emergency: Option<bool>,
    ) -> std::result::Result<(), Batch> {
        let s = self.shared.settings();
        // The learned views these outcomes changed, as they stand now.
        let mut keys = HashSet::new();
        let learned = outcomes
            .iter()
            .flat_map(|o| o.scopes.iter().map(move |sc| (o, sc)))
            .filter(|(o, sc)| keys.insert((o.job_type.as_str(), o.error_class.as_str(), sc.as_str())))
            .filter_map(|(o, sc)| {
                let model = self.shared.learner.encoded(&o.job_type, &o.error_class, Scope::parse(sc)?)?;
                Some(LearnedRow {
                    job_type: o.job_type.clone(),
                    error_class: o.error_class.clone(),
                    scope: sc.clone(),
                    model,
                })
            })
            .collect();
        let mut breakers = std::mem::take(&mut self.unsent_breakers);
        let newer = self.shared.guard().take_breaker_changes();
        breakers.retain(|old| newer.iter().all(|b| b.key != old.key));
        breakers.extend(newer);
        let latest = outcomes.iter().map(|o| o.at_ms).chain(audits.iter().map(|a| a.at_ms)).max();
        let retention = u64::from(s.strategy.data_collection.retention_days).saturating_mul(DAY_MS);
        let mut batch = Batch {
            outcomes,
            audits,
            learned,
            breakers,
            emergency_stop: emergency,
            prune_before_ms: latest.map(|t| t.saturating_sub(retention)).filter(|&t| t > 0),
        };
        match self.store.write(&batch) {
            Ok(()) => {
                let n = (batch.outcomes.len() + batch.audits.len()) as u64;
                self.queue.stats.written.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.fail(&e);
                self.unsent_breakers = std::mem::take(&mut batch.breakers);
                Err(batch)
            }
        }
    }

    /// Exchange budgets, breakers and the emergency stop with the fleet, and fold in the
    /// other workers' outcomes. True when there is no fleet or the exchange worked.
    fn sync_fleet(&mut self) -> bool {
        let Some(fleet) = self.store.fleet() else {
            self.queue.stats.degraded.store(false, Ordering::Relaxed);
            return true;
        };
        let s = self.shared.settings();
        let result = fleet.pull_outcomes(&mut self.cursor, PULL_MAX).and_then(|theirs| {
            for o in &theirs {
                self.shared.learn(o, &s);
            }
            self.queue.stats.fleet_applied.fetch_add(theirs.len() as u64, Ordering::Relaxed);
            let (mine, now) = {
                let mut guard = self.shared.guard();
                let now = guard.latest_ms();
                (guard.own_counts(now), now)
            };
            fleet.exchange(&mine, now)
        });
        match result {
            Ok(view) => {
                let g = &s.strategy.guardrails;
                let mut guard = self.shared.guard();
                let now = guard.latest_ms();
                guard.set_fleet(view.others);
                for (key, until) in view.open_breakers {
                    if self.adopted.insert((key.clone(), until)) {
                        guard.adopt_open_breaker(&key, until, now, g, &s.strategy.circuit_breaker);
                    }
                }
                drop(guard);
                if let Some(on) = view.emergency_stop {
                    // A change made here and not yet written wins over what was read.
                    if self.queue.lock().emergency.is_none() {
                        self.shared.emergency.store(on, Ordering::Relaxed);
                    }
                }
                self.queue.stats.degraded.store(false, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.fail(&e);
                false
            }
        }
    }
}
