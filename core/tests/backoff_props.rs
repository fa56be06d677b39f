//! Property tests for the pure backoff maths: whatever the input (extreme integers,
//! NaN, infinities, inverted ranges of random numbers), delays stay inside the
//! configured bounds and follow the documented shapes.

use proptest::prelude::*;
use smartretry::{mix64, rand01, Backoff, BackoffStrategy, Jitter};

fn strategy() -> impl proptest::strategy::Strategy<Value = BackoffStrategy> {
    prop_oneof![
        Just(BackoffStrategy::Exponential),
        Just(BackoffStrategy::Linear),
        Just(BackoffStrategy::Fibonacci),
        Just(BackoffStrategy::Aggressive),
        Just(BackoffStrategy::Constant),
    ]
}

/// Any f64 at all, weighted towards the awkward ones.
fn any_f64() -> impl proptest::strategy::Strategy<Value = f64> {
    prop_oneof![
        3 => any::<f64>(),
        3 => 0.0..1.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(1.0f64),
        1 => Just(-0.0f64),
    ]
}

fn jitter() -> impl proptest::strategy::Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        any_f64().prop_map(Jitter::Percent),
        (0.0..=100.0f64).prop_map(Jitter::Percent),
    ]
}

/// Any u64, weighted towards the edges where overflow would hide.
fn any_ms() -> impl proptest::strategy::Strategy<Value = u64> {
    prop_oneof![
        3 => any::<u64>(),
        3 => 0..100_000u64,
        1 => Just(0u64),
        1 => Just(u64::MAX),
        1 => (u64::MAX - 1_000)..=u64::MAX,
    ]
}

fn any_retry() -> impl proptest::strategy::Strategy<Value = u32> {
    prop_oneof![3 => 0..64u32, 1 => any::<u32>(), 1 => Just(u32::MAX)]
}

fn ordered(a: u64, b: u64) -> (u64, u64) {
    (a.min(b), a.max(b))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn delay_always_within_bounds(
        s in strategy(), base in any_ms(), mult in any_f64(), a in any_ms(), b in any_ms(),
        j in jitter(), retry in any_retry(), prev in any_ms(), r in any_f64(),
    ) {
        let (min, max) = ordered(a, b);
        let bo = Backoff::new(s, base).with_multiplier(mult).with_bounds(min, max).with_jitter(j);
        let d = bo.delay(retry, prev, r);
        prop_assert!(min <= d && d <= max, "{d} not in [{min}, {max}] for {bo:?}");
        let base_d = bo.base_delay(retry);
        prop_assert!(min <= base_d && base_d <= max);
        // Pure: the same inputs give the same output.
        prop_assert_eq!(d, bo.delay(retry, prev, r));
    }

    #[test]
    fn custom_delay_within_bounds(
        k in any_ms(), a in any_ms(), b in any_ms(), j in jitter(), retry in any_retry(), r in any_f64(),
    ) {
        let (min, max) = ordered(a, b);
        let bo = Backoff::custom(move |n| k.wrapping_mul(u64::from(n))).with_bounds(min, max).with_jitter(j);
        let d = bo.delay(retry, 0, r);
        prop_assert!(min <= d && d <= max);
    }

    #[test]
    fn growing_strategies_never_shrink_without_jitter(
        s in prop_oneof![
            Just(BackoffStrategy::Exponential), Just(BackoffStrategy::Linear),
            Just(BackoffStrategy::Fibonacci), Just(BackoffStrategy::Aggressive),
        ],
        base in any_ms(), mult in 1.0..100.0f64, a in any_ms(), b in any_ms(), retry in 0..200u32,
    ) {
        let (min, max) = ordered(a, b);
        let bo = Backoff::new(s, base).with_multiplier(mult).with_bounds(min, max);
        prop_assert!(bo.base_delay(retry) <= bo.base_delay(retry + 1), "{bo:?} at {retry}");
        prop_assert_eq!(bo.delay(retry, 0, 0.3), bo.base_delay(retry));
    }

    #[test]
    fn documented_shapes_scale_with_base(base in 1..1_000_000u64) {
        let shape = |s| Backoff::new(s, base).schedule(5).collect::<Vec<_>>();
        let times = |k: &[u64]| k.iter().map(|m| m * base).collect::<Vec<_>>();
        prop_assert_eq!(shape(BackoffStrategy::Exponential), times(&[1, 2, 4, 8, 16]));
        prop_assert_eq!(shape(BackoffStrategy::Aggressive), times(&[1, 3, 9, 27, 81]));
        prop_assert_eq!(shape(BackoffStrategy::Linear), times(&[1, 2, 3, 4, 5]));
        prop_assert_eq!(shape(BackoffStrategy::Fibonacci), times(&[1, 2, 3, 5, 8]));
        prop_assert_eq!(shape(BackoffStrategy::Constant), times(&[1, 1, 1, 1, 1]));
    }

    #[test]
    fn full_jitter_between_min_and_base(
        s in strategy(), base in any_ms(), a in any_ms(), b in any_ms(), retry in any_retry(), r in any_f64(),
    ) {
        let (min, max) = ordered(a, b);
        let bo = Backoff::new(s, base).with_bounds(min, max).with_jitter(Jitter::Full);
        let d = bo.base_delay(retry);
        let got = bo.delay(retry, 0, r);
        prop_assert!(min <= got && got <= d, "{got} not in [{min}, {d}]");
    }

    #[test]
    fn equal_jitter_keeps_half(
        s in strategy(), base in any_ms(), a in any_ms(), b in any_ms(), retry in any_retry(), r in any_f64(),
    ) {
        let (min, max) = ordered(a, b);
        let bo = Backoff::new(s, base).with_bounds(min, max).with_jitter(Jitter::Equal);
        let d = bo.base_delay(retry);
        let got = bo.delay(retry, 0, r);
        prop_assert!(d / 2 <= got && got <= d, "{got} not in [{}, {d}]", d / 2);
    }

    #[test]
    fn percent_jitter_within_band(
        s in strategy(), base in 0..1_000_000_000u64, p in 0.0..=100.0f64,
        a in any_ms(), b in any_ms(), retry in 0..40u32, r in 0.0..1.0f64,
    ) {
        let (min, max) = ordered(a, b);
        let bo = Backoff::new(s, base).with_bounds(min, max).with_jitter(Jitter::Percent(p));
        let d = bo.base_delay(retry) as f64;
        let clamp = |x: f64| (x as u64).max(min).min(max);
        let lo = clamp((d * (1.0 - p / 100.0)).floor() - 1.0);
        let hi = clamp((d * (1.0 + p / 100.0)).ceil() + 1.0);
        let got = bo.delay(retry, 0, r);
        prop_assert!(lo <= got && got <= hi, "{got} not in [{lo}, {hi}]");
    }

    #[test]
    fn decorrelated_between_first_and_three_times_prev(
        base in 1..1_000_000u64, prev in 0..1_000_000_000u64, retry in any_retry(), r in 0.0..1.0f64,
    ) {
        let bo = Backoff::new(BackoffStrategy::Exponential, base).with_jitter(Jitter::Decorrelated);
        let got = bo.delay(retry, prev, r);
        prop_assert!(base <= got && got <= prev.max(base) * 3, "{got} for prev {prev}");
    }

    #[test]
    fn rand01_is_unit_interval(bits in any::<u64>()) {
        let x = rand01(bits);
        prop_assert!((0.0..1.0).contains(&x));
        prop_assert!((0.0..1.0).contains(&rand01(mix64(bits))));
    }
}
