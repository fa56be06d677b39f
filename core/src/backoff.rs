//! Pure backoff maths: how long to wait before retry `n`.
//!
//! Nothing here reads a clock or a random generator. The engine owns randomness (so a
//! seeded run is reproducible) and passes a uniform `rand01` in; [`mix64`] and
//! [`rand01`] are the helpers it uses to derive that number from a seed. Every
//! function accepts any input, including NaN and infinities, and returns a delay
//! clamped to `[min_ms, max_ms]` instead of panicking or overflowing.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the base delay grows with the retry number `n` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffStrategy {
    /// `base × multiplier^(n-1)`: the default for transient server and network faults.
    Exponential,
    /// `base × n`: timeouts, where the load is usually ours and eases gradually.
    Linear,
    /// `base × fib(n)` with fib = 1, 2, 3, 5, 8…: gentler than doubling.
    Fibonacci,
    /// `base × 3^(n-1)`: rate limits, where hammering only extends the penalty.
    Aggressive,
    /// `base` every time.
    Constant,
}

/// Randomisation applied on top of the base delay so that many clients failing
/// together do not retry together.
///
/// Serde shape (externally tagged, snake_case): `"none"`, `"full"`, `"equal"`,
/// `"decorrelated"`, or `{"percent": 25.0}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// The base delay exactly.
    None,
    /// Uniform in `[0, d]`: the best spread, but may retry almost immediately.
    Full,
    /// Uniform in `[d/2, d]`: spread while keeping at least half the wait.
    Equal,
    /// AWS "decorrelated": uniform in `[first, 3 × previous]`, capped, ignoring the strategy.
    Decorrelated,
    /// `d × (1 ± p/100)`, uniform; `p` in `[0, 100]`.
    Percent(f64),
}

/// A user-supplied delay function of the retry number.
type CustomFn = Arc<dyn Fn(u32) -> u64 + Send + Sync>;

/// A backoff schedule. `retry` is the 1-based retry number (1 = first retry, i.e.
/// after attempt 1 failed); 0 is treated as 1.
///
/// Defaults from [`Backoff::new`]: multiplier 2, bounds `[0, u64::MAX]` (unbounded;
/// policies set a cap), no jitter.
#[derive(Clone)]
pub struct Backoff {
    pub strategy: BackoffStrategy,
    pub base_ms: u64,
    /// Growth factor, used by [`BackoffStrategy::Exponential`] only.
    pub multiplier: f64,
    pub min_ms: u64,
    pub max_ms: u64,
    pub jitter: Jitter,
    custom: Option<CustomFn>,
}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backoff")
            .field("strategy", &self.strategy)
            .field("base_ms", &self.base_ms)
            .field("multiplier", &self.multiplier)
            .field("min_ms", &self.min_ms)
            .field("max_ms", &self.max_ms)
            .field("jitter", &self.jitter)
            .field("custom", &self.custom.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

impl Backoff {
    pub const fn new(strategy: BackoffStrategy, base_ms: u64) -> Self {
        Backoff {
            strategy,
            base_ms,
            multiplier: 2.0,
            min_ms: 0,
            max_ms: u64::MAX,
            jitter: Jitter::None,
            custom: None,
        }
    }

    /// A schedule from a user function of the retry number. `strategy`, `base_ms` and
    /// `multiplier` are then ignored for the base delay, but jitter and bounds still
    /// apply, so a buggy function cannot escape the policy's cap.
    pub fn custom(f: impl Fn(u32) -> u64 + Send + Sync + 'static) -> Self {
        Backoff { custom: Some(Arc::new(f)), ..Backoff::new(BackoffStrategy::Constant, 0) }
    }

    pub const fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    pub const fn with_bounds(mut self, min_ms: u64, max_ms: u64) -> Self {
        self.min_ms = min_ms;
        self.max_ms = max_ms;
        self
    }

    pub const fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    pub fn is_custom(&self) -> bool {
        self.custom.is_some()
    }

    /// Rejects settings that make the schedule meaningless. The delay functions never
    /// panic even on an invalid schedule; this exists so users hear about mistakes.
    ///
    /// `base_ms` is not checked: every value is meaningful (0 = retry immediately) and
    /// is clamped into the bounds anyway.
    pub fn validate(&self) -> Result<()> {
        if !(self.multiplier.is_finite() && self.multiplier > 0.0) {
            return Err(Error::invalid(
                "multiplier",
                format!("must be a finite number > 0, got {}", self.multiplier),
            ));
        }
        if self.min_ms > self.max_ms {
            return Err(Error::invalid(
                "min_ms",
                format!("must be <= max_ms ({}), got {}", self.max_ms, self.min_ms),
            ));
        }
        if let Jitter::Percent(p) = self.jitter {
            if !(0.0..=100.0).contains(&p) {
                return Err(Error::invalid("jitter_percent", format!("must be 0-100, got {p}")));
            }
        }
        Ok(())
    }

    /// The delay before retry `retry` without jitter, clamped to `[min_ms, max_ms]`.
    pub fn base_delay(&self, retry: u32) -> u64 {
        let n = retry.max(1);
        let raw = match (&self.custom, self.strategy) {
            (Some(f), _) => f(n),
            (None, BackoffStrategy::Constant) => self.base_ms,
            (None, BackoffStrategy::Linear) => self.base_ms.saturating_mul(u64::from(n)),
            (None, BackoffStrategy::Fibonacci) => self.base_ms.saturating_mul(fib(n)),
            (None, BackoffStrategy::Aggressive) => self.base_ms.saturating_mul(3u64.saturating_pow(n - 1)),
            (None, BackoffStrategy::Exponential) => {
                if self.base_ms == 0 {
                    0 // avoid 0 × inf = NaN for huge exponents
                } else {
                    let exp = i32::try_from(n - 1).unwrap_or(i32::MAX);
                    f64_to_ms(self.base_ms as f64 * self.multiplier.powi(exp))
                }
            }
        };
        self.clamp(raw)
    }

    /// The delay before retry `retry` with jitter, clamped to `[min_ms, max_ms]`.
    ///
    /// `rand01` is a uniform random number in `[0, 1)` supplied by the caller (values
    /// outside are clamped into `[0, 1]`, NaN counts as 0). `prev_delay_ms` is the delay
    /// actually used before the previous retry (0 if none); only
    /// [`Jitter::Decorrelated`] reads it, taking `base_delay(1)` as its floor.
    pub fn delay(&self, retry: u32, prev_delay_ms: u64, rand01: f64) -> u64 {
        let r = if rand01 >= 0.0 { rand01.min(1.0) } else { 0.0 }; // NaN fails `>=`
        let d = self.base_delay(retry);
        let jittered = match self.jitter {
            Jitter::None => d,
            Jitter::Full => f64_to_ms(r * d as f64).min(d),
            Jitter::Equal => {
                let half = d / 2;
                half.saturating_add(f64_to_ms(r * (d - half) as f64)).min(d)
            }
            Jitter::Decorrelated => {
                let first = self.base_delay(1);
                let upper = prev_delay_ms.max(first).saturating_mul(3);
                first.saturating_add(f64_to_ms(r * (upper - first) as f64))
            }
            Jitter::Percent(p) => {
                let p = if p >= 0.0 { p.min(100.0) } else { 0.0 };
                f64_to_ms(d as f64 * (1.0 + (2.0 * r - 1.0) * p / 100.0))
            }
        };
        self.clamp(jittered)
    }

    /// Base delays for retries `1..=retries`, e.g. to preview a policy.
    pub fn schedule(&self, retries: u32) -> impl Iterator<Item = u64> + '_ {
        (1..=retries).map(move |n| self.base_delay(n))
    }

    /// Into `[min_ms, max_ms]`; if the bounds are inverted (an invalid schedule) the
    /// cap wins rather than panicking like `Ord::clamp`.
    fn clamp(&self, ms: u64) -> u64 {
        ms.max(self.min_ms).min(self.max_ms)
    }
}

/// fib(1) = 1, fib(2) = 2, fib(3) = 3, 5, 8… saturating at `u64::MAX`.
fn fib(n: u32) -> u64 {
    let (mut a, mut b) = (1u64, 1u64);
    // Saturates after ~92 steps, so the loop is bounded regardless of `n`.
    for _ in 0..n.min(100) {
        (a, b) = (b, a.saturating_add(b));
    }
    a
}

/// f64 milliseconds to u64: `as` already saturates (negatives to 0, huge to MAX); NaN,
/// which `as` would turn into 0, means the maths broke, so wait the longest instead.
fn f64_to_ms(x: f64) -> u64 {
    if x.is_nan() {
        u64::MAX
    } else {
        x as u64
    }
}

/// 53 random bits to a uniform f64 in `[0, 1)` (the top bits of `bits` are used).
pub fn rand01(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// SplitMix64 of `x` (golden-ratio increment, then the finaliser): a fast, well-mixed
/// hash so the engine can derive independent reproducible streams from a seed, e.g.
/// `rand01(mix64(seed ^ attempt))`. `mix64(0)` is SplitMix64's first output for seed 0.
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(b: &Backoff, n: u32) -> Vec<u64> {
        b.schedule(n).collect()
    }

    #[test]
    fn documented_shapes() {
        assert_eq!(shape(&Backoff::new(BackoffStrategy::Exponential, 1000), 4), [1000, 2000, 4000, 8000]);
        assert_eq!(shape(&Backoff::new(BackoffStrategy::Aggressive, 1000), 3), [1000, 3000, 9000]);
        assert_eq!(shape(&Backoff::new(BackoffStrategy::Linear, 1000), 3), [1000, 2000, 3000]);
        assert_eq!(
            shape(&Backoff::new(BackoffStrategy::Fibonacci, 1000), 6),
            [1000, 2000, 3000, 5000, 8000, 13000]
        );
        assert_eq!(shape(&Backoff::new(BackoffStrategy::Constant, 700), 3), [700, 700, 700]);
        let x15 = Backoff::new(BackoffStrategy::Exponential, 1000).with_multiplier(1.5);
        assert_eq!(shape(&x15, 3), [1000, 1500, 2250]);
    }

    #[test]
    fn retry_zero_is_first_retry() {
        let b = Backoff::new(BackoffStrategy::Exponential, 1000);
        assert_eq!(b.base_delay(0), b.base_delay(1));
    }

    #[test]
    fn clamps_to_bounds() {
        let b = Backoff::new(BackoffStrategy::Exponential, 1000).with_bounds(1500, 5000);
        assert_eq!(shape(&b, 5), [1500, 2000, 4000, 5000, 5000]);
        // Inverted bounds never panic; the cap wins.
        let inverted = Backoff::new(BackoffStrategy::Constant, 10).with_bounds(100, 50);
        assert_eq!(inverted.delay(1, 0, 0.5), 50);
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        for s in [
            BackoffStrategy::Exponential,
            BackoffStrategy::Linear,
            BackoffStrategy::Fibonacci,
            BackoffStrategy::Aggressive,
        ] {
            let b = Backoff::new(s, u64::MAX / 2).with_multiplier(f64::MAX);
            assert_eq!(b.base_delay(u32::MAX), u64::MAX, "{s:?}");
            assert_eq!(b.delay(u32::MAX, u64::MAX, 0.99), u64::MAX, "{s:?}");
        }
        let zero = Backoff::new(BackoffStrategy::Exponential, 0).with_multiplier(f64::INFINITY);
        assert_eq!(zero.base_delay(u32::MAX), 0);
        let nan = Backoff::new(BackoffStrategy::Exponential, 10).with_multiplier(f64::NAN).with_bounds(0, 9);
        assert_eq!(nan.base_delay(2), 9);
    }

    #[test]
    fn jitter_modes() {
        let b = |j| Backoff::new(BackoffStrategy::Constant, 1000).with_jitter(j);
        assert_eq!(b(Jitter::None).delay(1, 0, 0.7), 1000);
        assert_eq!(b(Jitter::Full).delay(1, 0, 0.0), 0);
        assert_eq!(b(Jitter::Full).delay(1, 0, 0.5), 500);
        assert_eq!(b(Jitter::Equal).delay(1, 0, 0.0), 500);
        assert_eq!(b(Jitter::Equal).delay(1, 0, 0.5), 750);
        assert_eq!(b(Jitter::Percent(20.0)).delay(1, 0, 0.0), 800);
        assert_eq!(b(Jitter::Percent(20.0)).delay(1, 0, 0.5), 1000);
        assert_eq!(b(Jitter::Percent(20.0)).delay(1, 0, 0.75), 1100);
        // Decorrelated: uniform in [base, 3 × max(prev, base)].
        assert_eq!(b(Jitter::Decorrelated).delay(1, 0, 0.0), 1000);
        assert_eq!(b(Jitter::Decorrelated).delay(1, 0, 0.5), 2000);
        assert_eq!(b(Jitter::Decorrelated).delay(2, 4000, 0.5), 6500);
        let capped = b(Jitter::Decorrelated).with_bounds(0, 3000);
        assert_eq!(capped.delay(2, 4000, 0.5), 3000);
    }

    #[test]
    fn bad_random_numbers_are_clamped() {
        let b = Backoff::new(BackoffStrategy::Constant, 1000).with_jitter(Jitter::Full);
        assert_eq!(b.delay(1, 0, f64::NAN), 0);
        assert_eq!(b.delay(1, 0, -3.0), 0);
        assert_eq!(b.delay(1, 0, 7.0), 1000);
        assert_eq!(b.delay(1, 0, f64::INFINITY), 1000);
        let p = Backoff::new(BackoffStrategy::Constant, 1000).with_jitter(Jitter::Percent(f64::NAN));
        assert_eq!(p.delay(1, 0, 0.0), 1000);
        let p = Backoff::new(BackoffStrategy::Constant, 1000).with_jitter(Jitter::Percent(1e9));
        assert_eq!(p.delay(1, 0, 0.0), 0);
    }

    #[test]
    fn custom_function_is_jittered_and_clamped() {
        let b = Backoff::custom(|n| u64::from(n) * 100).with_bounds(150, 350);
        assert!(b.is_custom());
        assert_eq!(shape(&b, 4), [150, 200, 300, 350]);
        let j = Backoff::custom(|_| 1000).with_jitter(Jitter::Equal);
        assert_eq!(j.delay(3, 0, 0.0), 500);
        assert!(format!("{b:?}").contains("<fn>"));
        assert!(!format!("{:?}", Backoff::new(BackoffStrategy::Linear, 1)).contains("<fn>"));
    }

    #[test]
    fn validate_names_the_field() {
        let ok = Backoff::new(BackoffStrategy::Exponential, 100).with_bounds(10, 1000);
        assert!(ok.validate().is_ok());
        let field = |b: Backoff| b.validate().unwrap_err().field().map(str::to_owned);
        assert_eq!(field(ok.clone().with_multiplier(f64::NAN)).as_deref(), Some("multiplier"));
        assert_eq!(field(ok.clone().with_multiplier(0.0)).as_deref(), Some("multiplier"));
        assert_eq!(field(ok.clone().with_multiplier(-2.0)).as_deref(), Some("multiplier"));
        assert_eq!(field(ok.clone().with_bounds(5, 4)).as_deref(), Some("min_ms"));
        let pct = |p| field(ok.clone().with_jitter(Jitter::Percent(p)));
        assert_eq!(pct(101.0).as_deref(), Some("jitter_percent"));
        assert_eq!(pct(-1.0).as_deref(), Some("jitter_percent"));
        assert_eq!(pct(f64::NAN).as_deref(), Some("jitter_percent"));
        assert!(ok.with_jitter(Jitter::Percent(100.0)).validate().is_ok());
    }

    #[test]
    fn serde_shapes() {
        let json = |j: Jitter| serde_json::to_string(&j).unwrap();
        assert_eq!(json(Jitter::None), r#""none""#);
        assert_eq!(json(Jitter::Decorrelated), r#""decorrelated""#);
        assert_eq!(json(Jitter::Percent(25.0)), r#"{"percent":25.0}"#);
        let back: Jitter = serde_json::from_str(r#"{"percent": 10}"#).unwrap();
        assert_eq!(back, Jitter::Percent(10.0));
        let full: Jitter = serde_json::from_str(r#""full""#).unwrap();
        assert_eq!(full, Jitter::Full);
        assert!(serde_json::from_str::<Jitter>(r#""sometimes""#).is_err());
        assert_eq!(serde_json::to_string(&BackoffStrategy::Aggressive).unwrap(), r#""aggressive""#);
        let s: BackoffStrategy = serde_json::from_str(r#""fibonacci""#).unwrap();
        assert_eq!(s, BackoffStrategy::Fibonacci);
    }

    #[test]
    fn random_helpers() {
        assert_eq!(mix64(0), 0xE220_A839_7B1D_CDAF);
        assert_ne!(mix64(1), mix64(2));
        assert_eq!(rand01(0), 0.0);
        assert!(rand01(u64::MAX) < 1.0);
        assert_eq!(rand01(1 << 63), 0.5);
    }
}
