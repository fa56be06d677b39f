//! The server's own counters beside the engine's: the decision-latency histogram,
//! refusals, alerts, auth refusals, store transitions (rendered by `prometheus.rs`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in microseconds (10 µs … 100 ms).
const BOUNDS_US: [u64; 14] =
    [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 1_000_000];

/// A lock-free latency histogram (cumulative on render, like Prometheus wants).
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: std::time::Duration) {
        let us = elapsed.as_micros() as u64;
        let i = BOUNDS_US.iter().position(|&b| us <= b).unwrap_or(BOUNDS_US.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(super) fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in BOUNDS_US.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cumulative}", *bound as f64 / 1e6);
        }
        cumulative += self.buckets[BOUNDS_US.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9);
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Counters the server keeps beside the engine's.
#[derive(Default)]
pub struct ServerMetrics {
    pub decision_latency: Histogram,
    pub refused_429: AtomicU64,
    pub alerts: AtomicU64,
    /// Requests refused for a missing, invalid or read-only token.
    pub auth_refused: AtomicU64,
    /// Changes of the store's state (up → degraded → up).
    pub store_transitions: AtomicU64,
    /// Durable acknowledgements the store did not confirm in time (answered 503).
    pub durable_unconfirmed: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn histogram_is_cumulative_and_counts_everything() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(5));
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_secs(3));
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.00001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.0005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }
}
