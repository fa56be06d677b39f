//! The built-in scenarios: the product documents' cases, and the workloads where a
//! retry policy's limits show (long outages, drift under an attempt cap, bursty rate
//! limits, a cold start, a host that reports failures only).

use super::scenario::{
    After, Burst, Daily, Downstream, Failure, Recovery, Scenario, Tenant, Window, DEFAULT_DEADLINE_MS,
    DEFAULT_START_MS,
};

fn uniform(weight: f64, min_ms: u64, max_ms: u64) -> Recovery {
    Recovery { weight, after: After::Uniform { min_ms, max_ms } }
}

fn never(weight: f64) -> Recovery {
    Recovery { weight, after: After::Never }
}

/// A scenario with the defaults: one job type, exponential gaps, 20 % warm-up, a
/// 30-minute deadline, first successes reported.
fn base(
    name: &str,
    description: &str,
    job_type: &str,
    calls: u32,
    arrival_ms: u64,
    downstream: Downstream,
) -> Scenario {
    Scenario {
        name: name.into(),
        description: description.into(),
        job_type: job_type.into(),
        job_types: 1,
        calls,
        arrival_ms,
        burst: None,
        start_ms: DEFAULT_START_MS,
        warmup: 0.2,
        tenants: Vec::new(),
        downstream,
        deadline_ms: DEFAULT_DEADLINE_MS,
        reports_first_successes: true,
    }
}

/// 503s on 30 % of calls, recovering as `recovery` says.
fn unavailable(recovery: Vec<Recovery>) -> Failure {
    Failure { probability: 0.3, status: Some(503), error_class: "service_unavailable".into(), recovery }
}

/// 503s that recover in 2–4 s until halfway, then in `min_ms`–`max_ms`.
fn drift(name: &str, description: &str, min_ms: u64, max_ms: u64) -> Scenario {
    base(
        name,
        description,
        "inventory_update",
        8_000,
        500,
        Downstream::Transient {
            failure: unavailable(vec![uniform(1.0, 2_000, 4_000)]),
            drift: Some(unavailable(vec![uniform(1.0, min_ms, max_ms)])),
            drift_after: 0.5,
        },
    )
}

/// The built-in scenarios, drawn from the product documents and from what users met.
pub fn builtin() -> Vec<Scenario> {
    vec![
        base(
            "payment_503_peak",
            "Payment API 503s at peak: 85 % recover within 6–12 s, 12 % within 12–30 s, 3 % never",
            "payment_capture",
            6_000,
            500,
            Downstream::Transient {
                failure: unavailable(vec![
                    uniform(0.85, 6_000, 12_000),
                    uniform(0.12, 12_000, 30_000),
                    never(0.03),
                ]),
                drift: None,
                drift_after: 0.5,
            },
        ),
        Scenario {
            start_ms: DEFAULT_START_MS,
            ..base(
                "db_maintenance",
                "Database timeouts during a daily 02:00–02:15 UTC maintenance window, quick blips otherwise",
                "nightly_sync",
                26_000,
                10_000,
                Downstream::Outages {
                    windows: Vec::new(),
                    daily: Some(Daily { hour: 2, minute: 0, duration_ms: 900_000 }),
                    status: None,
                    error_class: "timeout".into(),
                    background: Some(Failure {
                        probability: 0.02,
                        status: None,
                        error_class: "timeout".into(),
                        recovery: vec![uniform(1.0, 500, 3_000)],
                    }),
                },
            )
        },
        base(
            "rate_limit_429",
            "Third-party API: 40 calls per 10 s window against ~33 arriving; 429 with Retry-After on half",
            "crm_sync",
            6_000,
            300,
            Downstream::RateLimit { window_ms: 10_000, limit: 40, retry_after_probability: 0.5 },
        ),
        drift("recovery_drift", "Recovery takes 2–4 s, then halfway through drifts to 10–20 s", 10_000, 20_000),
        Scenario {
            tenants: vec![
                Tenant {
                    name: "noisy".into(),
                    weight: 0.4,
                    failure: Some(Failure {
                        probability: 0.6,
                        status: Some(503),
                        error_class: "service_unavailable".into(),
                        recovery: vec![uniform(1.0, 20_000, 40_000)],
                    }),
                },
                Tenant { name: "quiet_a".into(), weight: 0.3, failure: None },
                Tenant { name: "quiet_b".into(), weight: 0.3, failure: None },
            ],
            ..base(
                "noisy_tenant",
                "One tenant's jobs fail often and recover in 20–40 s; quiet tenants' recover in 1–3 s",
                "report_render",
                8_000,
                400,
                Downstream::Transient {
                    failure: Failure {
                        probability: 0.1,
                        status: Some(503),
                        error_class: "service_unavailable".into(),
                        recovery: vec![uniform(1.0, 1_000, 3_000)],
                    },
                    drift: None,
                    drift_after: 0.5,
                },
            )
        },
        base(
            "validation_errors",
            "10 % of calls are invalid (400): no retry can help",
            "signup",
            3_000,
            500,
            Downstream::Transient {
                failure: Failure {
                    probability: 0.1,
                    status: Some(400),
                    error_class: "validation".into(),
                    recovery: vec![never(1.0)],
                },
                drift: None,
                drift_after: 0.5,
            },
        ),
        outage("long_outage", "A 10-minute outage", 600_000),
        outage(
            "outage_15m",
            "A 15-minute outage (longer than two 5-minute holds)",
            900_000,
        ),
        outage("outage_30m", "A 30-minute outage (as long as the deadline)", 1_800_000),
        drift(
            "recovery_drift_slow",
            "Recovery takes 2–4 s, then halfway through drifts to 40–90 s: beyond the 6 s that three attempts of \
             a 2 s doubling schedule reach, so a capped policy must place its few retries where the new curve says",
            40_000,
            90_000,
        ),
        burst_rate_limit("none", 0.0),
        burst_rate_limit("half", 0.5),
        burst_rate_limit("all", 1.0),
        Scenario {
            job_types: 50,
            warmup: 0.0,
            ..base(
                "cold_start",
                "A fresh engine and 50 job types, each its own downstream, each seeing its first failures: 20 % of \
                 calls get a quick 503 that clears in 1–5 s, about 8 failures per type (nothing learned yet)",
                "webhook",
                2_000,
                500,
                Downstream::Transient {
                    failure: Failure { probability: 0.2, ..unavailable(vec![uniform(1.0, 1_000, 5_000)]) },
                    drift: None,
                    drift_after: 0.5,
                },
            )
        },
        Scenario {
            reports_first_successes: false,
            ..base(
                "failures_only_host",
                "An HTTP API user: the host records retries but never first-attempt successes; payment-like 503s on \
                 30 % of calls that clear in 2–10 s",
                "charge",
                6_000,
                500,
                Downstream::Transient {
                    failure: unavailable(vec![uniform(1.0, 2_000, 10_000)]),
                    drift: None,
                    drift_after: 0.5,
                },
            )
        },
    ]
}

/// An outage (503) of `length_ms` an hour into a two-hour run, 3 % quick blips otherwise.
fn outage(name: &str, what: &str, length_ms: u64) -> Scenario {
    base(
        name,
        &format!("{what} (503) an hour into a two-hour run, 3 % quick blips (1–4 s) otherwise"),
        "webhook_delivery",
        7_200,
        1_000,
        Downstream::Outages {
            windows: vec![Window { from_ms: 3_600_000, to_ms: 3_600_000 + length_ms }],
            daily: None,
            status: Some(503),
            error_class: "service_unavailable".into(),
            background: Some(Failure {
                probability: 0.03,
                status: Some(503),
                error_class: "service_unavailable".into(),
                recovery: vec![uniform(1.0, 1_000, 4_000)],
            }),
        },
    )
}

/// Bursts of calls against a rate limit: 200 calls within 2 s every minute against 50
/// per 10 s window, so the 150 turned away fill the next windows again when they return
/// (a 429 always recovers, if the job keeps trying). `Retry-After` on `share` of the 429s.
fn burst_rate_limit(which: &str, share: f64) -> Scenario {
    Scenario {
        burst: Some(Burst { every_ms: 60_000, size: 200, spread_ms: 2_000 }),
        ..base(
            &format!("burst_rate_limit_{which}_retry_after"),
            &format!(
                "Bursts of 200 calls within 2 s every minute against 50 calls per 10 s window: the 429s' retries \
                 fill the next windows again; Retry-After on {which} of the 429s"
            ),
            "crm_import",
            6_000,
            0,
            Downstream::RateLimit { window_ms: 10_000, limit: 50, retry_after_probability: share },
        )
    }
}
