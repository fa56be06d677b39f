//! The traffic both benchmarks learn from and decide on.

use smartretry::{Attempt, Features};

/// 2023-11-14T22:13:20Z: any fixed instant will do.
pub const T0: u64 = 1_700_000_000_000;
pub const CLASS: &str = "service_unavailable";

pub fn job_type(i: usize) -> String {
    format!("job{i}")
}

/// The `n`-th retry outcome of `job{i}`: failures 2 s after the first failure, successes
/// 6–12 s after it.
pub fn outcome(i: usize, n: u64) -> Attempt {
    let success = n % 2 == 1;
    let at = if success { 6_000 + (n % 7) * 1_000 } else { 2_000 + (n % 10) * 50 };
    Attempt::new(format!("job{i}-{n}"), job_type(i), 2, success)
        .with_error_class(CLASS)
        .with_delay_ms(at)
        .with_since_first_failure_ms(at)
}

/// The failure that `decide` is asked about for learned key `i`.
pub fn failure(i: usize) -> Features {
    Features::new(job_type(i), 1).with_http_status(503).with_since_first_failure_ms(0)
}
