//! Lifecycle events: a retry scheduled, a retry that succeeded or failed, a job given up
//! on, a guardrail that acted, a circuit breaker that changed state.
//!
//! Subscribers get a bounded queue each. The engine only ever `try_send`s into it, so
//! a slow or stuck subscriber loses events (counted per subscription and in the
//! engine's metrics) and never slows a decision. With no subscriber, an event costs
//! one atomic increment (its counter) and nothing is built or allocated.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::api::Method;
use crate::breaker::BreakerState;
use crate::error::{Error, Result};
use crate::guard::Transition;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// `decide` granted a retry.
    RetryScheduled,
    /// A retry (attempt ≥ 2) was recorded as a success.
    RetrySucceeded,
    /// A retry (attempt ≥ 2) was recorded as a failure.
    RetryFailed,
    /// `decide` refused: the caller stops and the job is dead-lettered.
    GaveUp,
    /// A guardrail changed a decision (its names are in `guardrails`).
    GuardrailTriggered,
    /// A downstream's circuit breaker moved (`breaker_from` → `breaker_to`).
    BreakerStateChanged,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::RetryScheduled,
        EventKind::RetrySucceeded,
        EventKind::RetryFailed,
        EventKind::GaveUp,
        EventKind::GuardrailTriggered,
        EventKind::BreakerStateChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RetryScheduled => "retry_scheduled",
            EventKind::RetrySucceeded => "retry_succeeded",
            EventKind::RetryFailed => "retry_failed",
            EventKind::GaveUp => "gave_up",
            EventKind::GuardrailTriggered => "guardrail_triggered",
            EventKind::BreakerStateChanged => "breaker_state_changed",
        }
    }

    /// The snake_case name; an unknown one is `invalid_input` on `event`.
    pub fn parse(name: &str) -> Result<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name).ok_or_else(|| {
            let known: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            Error::invalid("event", format!("unknown event {name:?}; expected one of {}", known.join(", ")))
        })
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// One lifecycle event, in snake_case JSON with its kind under `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// When it happened (the call's `now_ms`).
    pub at_ms: u64,
    /// The job type (for a breaker, the downstream it guards).
    pub job_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    /// The delay of a scheduled retry, or the wait before a recorded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_from: Option<BreakerState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_to: Option<BreakerState>,
}

impl Event {
    pub fn new(kind: EventKind, at_ms: u64, job_type: &str) -> Event {
        Event {
            kind,
            at_ms,
            job_type: job_type.to_string(),
            job_id: None,
            tenant: None,
            queue: None,
            attempt_number: None,
            error_class: None,
            delay_ms: None,
            method: None,
            guardrails: Vec::new(),
            rationale: None,
            breaker_from: None,
            breaker_to: None,
        }
    }
}

/// Longest queue a subscription may ask for.
pub const MAX_CAPACITY: usize = 1 << 20;

struct Sender {
    id: u64,
    mask: u8,
    tx: SyncSender<Arc<Event>>,
    dropped: Arc<AtomicU64>,
}

/// The engine's side: counts every event and hands it to the subscribers that want it.
#[derive(Default)]
pub struct EventBus {
    /// Any subscriber at all: the one load an event costs when nobody listens.
    active: AtomicBool,
    /// Kinds some subscriber wants (bit per kind).
    wanted: std::sync::atomic::AtomicU8,
    senders: Mutex<Vec<Sender>>,
    next_id: AtomicU64,
    emitted: [AtomicU64; EventKind::ALL.len()],
    dropped: AtomicU64,
}

impl EventBus {
    /// Whether anybody listens for `kind` (a relaxed load: free when nobody does).
    #[inline]
    pub fn wants(&self, kind: EventKind) -> bool {
        self.active.load(Ordering::Relaxed) && self.wanted.load(Ordering::Relaxed) & kind.bit() != 0
    }

    /// Count an event of `kind`; build it (only if somebody listens) and offer it to
    /// each interested subscriber without waiting.
    /// Announce the breaker state changes a call caused.
    pub(crate) fn breaker_changes(&self, transitions: Vec<Transition>) {
        for (key, from, to, at) in transitions {
            self.emit(EventKind::BreakerStateChanged, || Event {
                breaker_from: Some(from),
                breaker_to: Some(to),
                ..Event::new(EventKind::BreakerStateChanged, at, &key)
            });
        }
    }

    pub fn emit(&self, kind: EventKind, build: impl FnOnce() -> Event) {
        self.emitted[kind as usize].fetch_add(1, Ordering::Relaxed);
        if !self.wants(kind) {
            return;
        }
        let event = Arc::new(build());
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        let before = senders.len();
        senders.retain(|s| {
            if s.mask & kind.bit() == 0 {
                return true;
            }
            match s.tx.try_send(Arc::clone(&event)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    s.dropped.fetch_add(1, Ordering::Relaxed);
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
        if senders.len() != before {
            self.refresh(&senders);
        }
    }

    fn refresh(&self, senders: &[Sender]) {
        let mask = senders.iter().fold(0u8, |m, s| m | s.mask);
        self.wanted.store(mask, Ordering::Relaxed);
        self.active.store(!senders.is_empty(), Ordering::Relaxed);
    }

    /// A new subscription to `kinds` (all when empty) with a queue of `capacity` events.
    pub fn subscribe(self: &Arc<Self>, kinds: &[EventKind], capacity: usize) -> Result<Subscription> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(Error::invalid("capacity", format!("must be 1–{MAX_CAPACITY}, got {capacity}")));
        }
        let mask = if kinds.is_empty() { u8::MAX } else { kinds.iter().fold(0, |m, k| m | k.bit()) };
        let (tx, rx) = sync_channel(capacity);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        senders.push(Sender { id, mask, tx, dropped: Arc::clone(&dropped) });
        self.refresh(&senders);
        Ok(Subscription { id, rx: Mutex::new(rx), bus: Arc::downgrade(self), dropped })
    }

    fn unsubscribe(&self, id: u64) {
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        senders.retain(|s| s.id != id);
        self.refresh(&senders);
    }

    /// Events of each kind so far (with or without subscribers).
    pub fn counts(&self) -> Vec<(EventKind, u64)> {
        EventKind::ALL.iter().map(|k| (*k, self.emitted[*k as usize].load(Ordering::Relaxed))).collect()
    }

    /// Events a full subscriber queue had to drop.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn subscribers(&self) -> usize {
        self.senders.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The subscriber's side: a bounded queue of events. Dropping it (or [`close`]) ends
/// the subscription, and a receive blocked on it then returns `None`.
///
/// [`close`]: Subscription::close
pub struct Subscription {
    id: u64,
    rx: Mutex<Receiver<Arc<Event>>>,
    bus: Weak<EventBus>,
    dropped: Arc<AtomicU64>,
}

impl Subscription {
    /// The next event, waiting up to `timeout` (forever when `None`). `Ok(None)` means
    /// the wait timed out; `Err(Closed)` that the subscription ended.
    pub fn recv(&self, timeout: Option<Duration>) -> std::result::Result<Option<Arc<Event>>, Closed> {
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
        match timeout {
            None => rx.recv().map(Some).map_err(|_| Closed),
            Some(t) => match rx.recv_timeout(t) {
                Ok(e) => Ok(Some(e)),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected) => Err(Closed),
            },
        }
    }

    /// Every event queued now, without waiting.
    pub fn drain(&self) -> Vec<Arc<Event>> {
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        loop {
            match rx.try_recv() {
                Ok(e) => out.push(e),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return out,
            }
        }
    }

    /// Events lost because this queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stop receiving: queued events can still be drained; a blocked `recv` returns.
    pub fn close(&self) {
        if let Some(bus) = self.bus.upgrade() {
            bus.unsubscribe(self.id);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.close();
    }
}

/// The subscription was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event::new(kind, 1, "pay")
    }

    #[test]
    fn subscribers_get_the_kinds_they_asked_for() {
        let bus = Arc::new(EventBus::default());
        let all = bus.subscribe(&[], 8).unwrap();
        let gave_up = bus.subscribe(&[EventKind::GaveUp], 8).unwrap();
        bus.emit(EventKind::RetryScheduled, || event(EventKind::RetryScheduled));
        bus.emit(EventKind::GaveUp, || event(EventKind::GaveUp));
        let kinds = |s: &Subscription| s.drain().iter().map(|e| e.kind).collect::<Vec<_>>();
        assert_eq!(kinds(&all), [EventKind::RetryScheduled, EventKind::GaveUp]);
        assert_eq!(kinds(&gave_up), [EventKind::GaveUp]);
    }

    #[test]
    fn nothing_is_built_without_a_subscriber_but_everything_is_counted() {
        let bus = Arc::new(EventBus::default());
        bus.emit(EventKind::GaveUp, || panic!("built an event nobody listens to"));
        let sub = bus.subscribe(&[EventKind::RetryFailed], 8).unwrap();
        bus.emit(EventKind::GaveUp, || panic!("built an event of an unwanted kind"));
        drop(sub);
        bus.emit(EventKind::RetryFailed, || panic!("built an event after unsubscribe"));
        assert_eq!(bus.counts()[EventKind::GaveUp as usize], (EventKind::GaveUp, 2));
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let bus = Arc::new(EventBus::default());
        let slow = bus.subscribe(&[], 2).unwrap();
        for _ in 0..5 {
            bus.emit(EventKind::RetryScheduled, || event(EventKind::RetryScheduled));
        }
        assert_eq!(slow.drain().len(), 2);
        assert_eq!((slow.dropped(), bus.dropped()), (3, 3));
    }

    #[test]
    fn close_wakes_a_blocked_receiver() {
        let bus = Arc::new(EventBus::default());
        let sub = Arc::new(bus.subscribe(&[], 8).unwrap());
        let waiting = {
            let sub = Arc::clone(&sub);
            std::thread::spawn(move || sub.recv(None))
        };
        sub.close();
        assert_eq!(waiting.join().unwrap().unwrap_err(), Closed);
        assert_eq!(bus.subscribers(), 0);
    }

    #[test]
    fn kinds_parse_by_name() {
        assert_eq!(EventKind::parse("gave_up").unwrap(), EventKind::GaveUp);
        assert_eq!(EventKind::parse("nope").unwrap_err().field(), Some("event"));
        assert!(Arc::new(EventBus::default()).subscribe(&[], 0).is_err());
    }
}
