//! What the store tests teach an engine and ask it.

use smartretry::{Attempt, Engine, Features};

/// 2023-11-14T22:13:20Z: any fixed instant will do.
pub const T0: u64 = 1_700_000_000_000;

/// Teach `job` (class `timeout`) that it recovers 6–12 s after its first failure.
pub fn teach(e: &Engine, job: &str, outcomes: u32) {
    for i in 0..outcomes {
        let t = T0 + u64::from(i) * 1_000;
        let fail = Attempt::new(format!("f{i}"), job, 2, false)
            .with_error_class("timeout")
            .with_delay_ms(2_000)
            .with_since_first_failure_ms(2_000);
        e.record(&fail, Some(t)).unwrap();
        let ok_at = 6_000 + u64::from(i % 7) * 1_000;
        let ok = Attempt::new(format!("s{i}"), job, 3, true)
            .with_error_class("timeout")
            .with_delay_ms(ok_at - 2_000)
            .with_since_first_failure_ms(ok_at);
        e.record(&ok, Some(t)).unwrap();
    }
}

/// A first failure of `job`, asked about on the learning clock.
pub fn failure(job: &str) -> Features {
    Features::new(job, 1).with_error_class("timeout").with_since_first_failure_ms(0)
}
