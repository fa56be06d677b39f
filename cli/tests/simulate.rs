//! The simulator's own output, asserted: reproducible from a seed, and what smartretry
//! already wins in every built-in scenario (margins included).

use smartretry_cli::sim::{self, Figures, Scenario};

fn figures(scenario: &Scenario, seed: u64) -> Vec<Figures> {
    sim::compare(scenario, seed, None).into_iter().map(|r| r.figures).collect()
}

fn row<'a>(rows: &'a [Figures], policy: &str) -> &'a Figures {
    rows.iter().find(|r| r.policy == policy).unwrap_or_else(|| panic!("{policy} missing"))
}

const STATIC: [&str; 4] = [
    "traditional_2s_doubling",
    "exponential_full_jitter",
    "tenacity_random_exponential",
    "api_fallback_policy",
];

#[test]
fn figures_are_deterministic_for_a_seed() {
    for scenario in sim::builtin() {
        assert_eq!(figures(&scenario, 7), figures(&scenario, 7), "{}", scenario.name);
    }
    let payment = &sim::builtin()[0];
    assert_ne!(figures(payment, 7), figures(payment, 8), "another seed, other jobs");
}

/// The issue's claim, on the simulator's own output: in every scenario smartretry gets
/// jobs to success sooner than every static baseline (restricted mean, so a policy that
/// loses slow jobs is not faster for it) and spends fewer retries per recovered job.
#[test]
fn smartretry_beats_every_static_baseline_on_time_to_success_and_retries_in_every_scenario() {
    for scenario in sim::builtin().iter().filter(|s| s.name != "validation_errors") {
        let rows = figures(scenario, 1);
        let smart = row(&rows, "smartretry");
        assert!(smart.horizon_ms > 0.0, "{}: no horizon", scenario.name);
        for baseline in STATIC {
            let b = row(&rows, baseline);
            assert!(
                smart.restricted_mean_tts_ms <= TIME_MARGIN * b.restricted_mean_tts_ms,
                "{}: smartretry {:.0} ms vs {baseline} {:.0} ms restricted mean time to success",
                scenario.name,
                smart.restricted_mean_tts_ms,
                b.restricted_mean_tts_ms
            );
            assert!(
                smart.retries_per_recovered_job <= RETRY_MARGIN * b.retries_per_recovered_job,
                "{}: smartretry {:.2} vs {baseline} {:.2} retries per recovered job",
                scenario.name,
                smart.retries_per_recovered_job,
                b.retries_per_recovered_job
            );
            assert!(smart.success_rate >= b.success_rate, "{}: success vs {baseline}", scenario.name);
            assert!(
                smart.wasted_retries_per_job < b.wasted_retries_per_job,
                "{}: wasted vs {baseline}",
                scenario.name
            );
        }
    }
}

/// At least this much faster (restricted mean time to success) and this much cheaper
/// (retries per recovered job) than every static baseline, in every scenario.
const TIME_MARGIN: f64 = 0.95;
const RETRY_MARGIN: f64 = 0.95;

#[test]
fn the_restricted_mean_counts_a_lost_job_at_the_horizon() {
    let scenario = sim::builtin().into_iter().find(|s| s.name == "long_outage").unwrap();
    let rows = figures(&scenario, 1);
    let slowest = rows.iter().map(|r| r.mean_time_to_success_ms).fold(0.0, f64::max);
    for r in &rows {
        assert_eq!(r.horizon_ms, rows[0].horizon_ms, "one horizon per scenario");
        assert!(r.horizon_ms >= slowest, "the horizon is the slowest recovery");
        // Every recovery counts in full and each lost job at the horizon.
        let expected = (r.mean_time_to_success_ms * f64::from(r.recovered)
            + r.horizon_ms * f64::from(r.lost))
            / f64::from(r.failed_jobs);
        assert!((r.restricted_mean_tts_ms - expected).abs() < 1.0, "{}: {expected}", r.policy);
    }
    let smart = row(&rows, "smartretry");
    assert_eq!(smart.paired_jobs, 0, "smartretry is not paired with itself");
    let doubling = row(&rows, "traditional_2s_doubling");
    assert!(doubling.lost > 0 && doubling.paired_jobs == doubling.recovered);
}

/// Learning never gives up on jobs the rules would have saved: at most 1 % of the failed
/// jobs apart (in the maintenance window both tiers lose the few jobs that fail in its
/// first seconds, before the outage is known, and which of them differs by a job or two).
#[test]
fn learning_loses_no_more_jobs_than_the_rules_alone() {
    for scenario in sim::builtin().iter().filter(|s| s.name != "validation_errors") {
        let rows = figures(scenario, 1);
        let (smart, rules) = (row(&rows, "smartretry"), row(&rows, "smartretry_rules_only"));
        assert!(
            smart.lost <= rules.lost + rules.failed_jobs / 100,
            "{}: {} lost vs {} with rules only",
            scenario.name,
            smart.lost,
            rules.lost
        );
    }
}

#[test]
fn validation_errors_are_never_retried() {
    let scenario = sim::builtin().into_iter().find(|s| s.name == "validation_errors").unwrap();
    let rows = figures(&scenario, 1);
    for policy in ["smartretry", "smartretry_rules_only"] {
        assert_eq!(row(&rows, policy).retries_on_permanent_failures, 0, "{policy}");
    }
    assert!(
        row(&rows, "traditional_2s_doubling").retries_on_permanent_failures > 0,
        "the baseline does retry them"
    );
}

#[test]
fn rate_limits_are_met_at_the_reset_the_server_announces() {
    let scenario = sim::builtin().into_iter().find(|s| s.name == "rate_limit_429").unwrap();
    let rows = figures(&scenario, 1);
    let smart = row(&rows, "smartretry");
    assert_eq!(smart.lost, 0);
    assert!(smart.retries_per_recovered_job <= 1.05, "{}", smart.retries_per_recovered_job);
    for baseline in STATIC {
        assert!(smart.wasted_retries_per_job <= row(&rows, baseline).wasted_retries_per_job);
    }
}

#[test]
fn user_scenarios_are_validated_with_the_field_named() {
    let err = Scenario::from_json(r#"{"name":"x","job_type":"y","calls":10}"#).unwrap_err();
    assert!(err.contains("arrival_ms"), "{err}");
    let mut bad = sim::builtin().remove(0);
    bad.calls = 0;
    let err = Scenario::from_json(&serde_json::to_string(&bad).unwrap()).unwrap_err();
    assert!(err.contains("calls"), "{err}");
    let ok = Scenario::from_json(&serde_json::to_string(&sim::builtin()[1]).unwrap()).unwrap();
    assert_eq!(ok.name, "db_maintenance");
}

/// The best-schedule bound: what no policy blind to a job's own recovery time can beat.
#[test]
fn the_bound_shows_where_the_goal_is_out_of_reach_and_how_close_smartretry_comes() {
    for scenario in sim::builtin() {
        let Some(bound) = sim::bound(&scenario, 1) else { continue };
        let runs = sim::compare(&scenario, 1, None);
        let find = |name: &str| runs.iter().find(|r| r.figures.policy == name).map(|r| &r.figures);
        let (smart, bounded, oracle) =
            (find("smartretry").unwrap(), find("best_schedule_bound").unwrap(), find("oracle").unwrap());
        assert!(bound.retries_per_recovered <= sim::BOUND_RETRY_CAP + 1e-9, "{}", scenario.name);
        assert!(bounded.mean_time_to_success_ms >= oracle.mean_time_to_success_ms, "{}", scenario.name);
        // Learning stays within a quarter of the oracle's time of the bound at its own
        // retries per recovered job: a regression guard on the quality of the curve.
        let at_its_retries = bound.ratio_at(smart.retries_per_recovered_job).unwrap();
        let ratio = smart.mean_time_to_success_ms / oracle.mean_time_to_success_ms;
        assert!(ratio <= at_its_retries + 0.25, "{}: {ratio:.2} vs bound {at_its_retries:.2}", scenario.name);
    }
    // 85 % within 6–12 s, 12 % within 12–30 s, 3 % never: no blind policy reaches 1.2× the
    // oracle with 1.5 retries per recovered job.
    let payment = sim::bound(&sim::builtin()[0], 1).unwrap();
    assert!(payment.ratio > 1.2, "{:.3}", payment.ratio);
}

/// Shared outages, where every job waits for the same event: probe-and-release (jobs
/// take turns to probe, the rest check in and go when a call gets through) brings
/// smartretry within 15 % of the oracle, which retries each job exactly at the return.
#[test]
fn probe_and_release_meets_shared_outages_close_to_the_oracle() {
    for name in ["db_maintenance", "long_outage"] {
        let scenario = sim::builtin().into_iter().find(|s| s.name == name).unwrap();
        let rows: Vec<Figures> = sim::ablations(&scenario, 1).into_iter().map(|r| r.figures).collect();
        let (smart, without, oracle) =
            (row(&rows, "smartretry"), row(&rows, "without_probe_and_release"), row(&rows, "oracle"));
        let ratio = smart.restricted_mean_tts_ms / oracle.restricted_mean_tts_ms;
        assert!(ratio <= 1.15, "{name}: {ratio:.2}× the oracle");
        assert!(
            smart.restricted_mean_tts_ms <= 0.85 * without.restricted_mean_tts_ms,
            "{name}: {} with it, {} without",
            smart.restricted_mean_tts_ms,
            without.restricted_mean_tts_ms
        );
        assert!(smart.retries_per_recovered_job < without.retries_per_recovered_job, "{name}");
        assert!(smart.lost <= without.lost, "{name}: {} lost vs {}", smart.lost, without.lost);
    }
}
