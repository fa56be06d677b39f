//! Writing a rationale without `core::fmt`: every decision writes one sentence, and the
//! formatting machinery cost more than the decision itself. `say!(out, "a", Ms(1500), …)`
//! appends each piece in turn.

/// Something a rationale can contain.
pub trait Say {
    fn say(&self, out: &mut String);
}

impl Say for &str {
    fn say(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Say for String {
    fn say(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Say for u64 {
    fn say(&self, out: &mut String) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = *self;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &digit in &digits[i..] {
            out.push(char::from(digit));
        }
    }
}

impl Say for u32 {
    fn say(&self, out: &mut String) {
        u64::from(*self).say(out);
    }
}

const DAY_MS: u64 = 86_400_000;
const YEAR_MS: u64 = 365 * DAY_MS;

/// A duration for people: `150ms`, `8.2s`, `2m30s`, `1h5m`, `3d4h`, `317y`.
#[derive(Debug, Clone, Copy)]
pub struct Ms(pub u64);

impl Say for Ms {
    fn say(&self, out: &mut String) {
        let ms = self.0;
        let (whole, rest, unit, rest_unit) = if ms < 1_000 {
            (ms, 0, "ms", "")
        } else if ms < 60_000 {
            let tenths = (ms + 50) / 100;
            (tenths / 10, tenths % 10, "s", ".")
        } else if ms < 3_600_000 {
            let s = (ms + 500) / 1_000;
            (s / 60, s % 60, "m", "s")
        } else if ms < 2 * DAY_MS {
            let m = (ms + 30_000) / 60_000;
            (m / 60, m % 60, "h", "m")
        } else if ms < 2 * YEAR_MS {
            let h = ms.saturating_add(1_800_000) / 3_600_000;
            (h / 24, h % 24, "d", "h")
        } else {
            (ms.saturating_add(YEAR_MS / 2) / YEAR_MS, 0, "y", "")
        };
        whole.say(out);
        match (rest, rest_unit) {
            (0, _) | (_, "") => out.push_str(unit),
            (r, ".") => {
                out.push('.');
                r.say(out);
                out.push_str(unit);
            }
            (r, after) => {
                out.push_str(unit);
                r.say(out);
                out.push_str(after);
            }
        }
    }
}

/// A probability as a whole percentage: `87%`.
pub struct Pct(pub f64);

impl Say for Pct {
    fn say(&self, out: &mut String) {
        ((self.0 * 100.0).round().clamp(0.0, 100.0) as u64).say(out);
        out.push('%');
    }
}

/// A number from 0 to 1 with two decimals: `0.87`.
pub struct Two(pub f64);

impl Say for Two {
    fn say(&self, out: &mut String) {
        let hundredths = (self.0 * 100.0).round().clamp(0.0, 100.0) as u64;
        (hundredths / 100).say(out);
        out.push('.');
        if hundredths % 100 < 10 {
            out.push('0');
        }
        (hundredths % 100).say(out);
    }
}

/// The same pieces in `format!` and friends, for the paths where speed does not matter.
macro_rules! display_via_say {
    ($($t:ty),+) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut s = String::with_capacity(8);
                self.say(&mut s);
                f.write_str(&s)
            }
        }
    )+};
}

display_via_say!(Ms, Pct, Two);

/// A duration for people (`150ms`, `8.2s`, `2m30s`, `1h5m`).
pub fn fmt_ms(ms: u64) -> String {
    Ms(ms).to_string()
}

/// Append each piece to `out`, in order.
#[macro_export]
#[doc(hidden)]
macro_rules! say {
    ($out:expr, $($piece:expr),+ $(,)?) => {{
        let out: &mut String = $out;
        $( $crate::say::Say::say(&$piece, out); )+
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_ms(150), "150ms");
        assert_eq!(fmt_ms(8_000), "8s");
        assert_eq!(fmt_ms(8_240), "8.2s");
        assert_eq!(fmt_ms(150_000), "2m30s");
        assert_eq!(fmt_ms(3_900_000), "1h5m");
    }

    fn said(piece: impl Say) -> String {
        let mut s = String::new();
        piece.say(&mut s);
        s
    }

    #[test]
    fn durations_percentages_and_numbers_read_well() {
        assert_eq!(said(Ms(150)), "150ms");
        assert_eq!(said(Ms(8_000)), "8s");
        assert_eq!(said(Ms(8_240)), "8.2s");
        assert_eq!(said(Ms(59_990)), "60s");
        assert_eq!(said(Ms(150_000)), "2m30s");
        assert_eq!(said(Ms(120_000)), "2m");
        assert_eq!(said(Ms(3_900_000)), "1h5m");
        assert_eq!(said(Ms(47 * 3_600_000)), "47h");
        assert_eq!(said(Ms(76 * 3_600_000)), "3d4h");
        assert_eq!(said(Ms(99_999_999_999_000)), "3171y");
        assert_eq!(said(Ms(u64::MAX)), "584942417y");
        assert_eq!(said(Pct(0.874)), "87%");
        assert_eq!(said(Two(0.9)), "0.90");
        assert_eq!(said(Two(0.05)), "0.05");
        assert_eq!(said(Two(1.0)), "1.00");
        assert_eq!(said(0u64), "0");
        assert_eq!(said(u64::MAX), "18446744073709551615");
        let mut s = String::new();
        say!(&mut s, "retry ", 2u32, " in ", Ms(1_500));
        assert_eq!(s, "retry 2 in 1.5s");
    }
}
