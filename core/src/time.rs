//! Wall clock and the text formats for time the engine reads and writes.
//!
//! Everything here is UTC and epoch milliseconds (`u64`), because that is what the
//! engine stores and compares. The calendar maths is Howard Hinnant's
//! days-from-civil / civil-from-days, so no date crate is needed and formatting a
//! timestamp (done once per decision) costs one small allocation and no `format!`.

use std::time::{SystemTime, UNIX_EPOCH};

const MS_PER_SEC: u64 = 1_000;
const MS_PER_MIN: u64 = 60 * MS_PER_SEC;
const MS_PER_HOUR: u64 = 60 * MS_PER_MIN;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;

/// The last instant RFC 3339 can spell with a four-digit year: 9999-12-31T23:59:59.999Z.
pub const MAX_RFC3339_MS: u64 = 253_402_300_799_999;

/// Wall-clock time as Unix epoch milliseconds.
///
/// A clock set before 1970 yields 0 rather than an error: callers use this for
/// timestamps and rate windows, where "the epoch" is a harmless floor.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The UTC hour (0-23) of an epoch-millisecond instant, for time-of-day features.
pub fn hour_of_day(ms: u64) -> u8 {
    // Always < 24, so the narrowing cannot lose information.
    ((ms / MS_PER_HOUR) % 24) as u8
}

/// Formats epoch milliseconds as RFC 3339 UTC: `2025-01-15T14:30:08Z`, or
/// `2025-01-15T14:30:08.250Z` when there are milliseconds.
///
/// Instants after [`MAX_RFC3339_MS`] (e.g. `u64::MAX` used as "never") are clamped to
/// it, because RFC 3339 has no spelling for years past 9999 and the output must stay
/// parseable by [`parse_rfc3339`].
pub fn format_rfc3339(ms: u64) -> String {
    let ms = ms.min(MAX_RFC3339_MS);
    let (year, month, day) = civil_from_days(ms / MS_PER_DAY);
    let in_day = ms % MS_PER_DAY;
    let mut out = String::with_capacity(24);
    push_digits(&mut out, year, 4);
    out.push('-');
    push_digits(&mut out, month, 2);
    out.push('-');
    push_digits(&mut out, day, 2);
    out.push('T');
    push_digits(&mut out, in_day / MS_PER_HOUR, 2);
    out.push(':');
    push_digits(&mut out, in_day % MS_PER_HOUR / MS_PER_MIN, 2);
    out.push(':');
    push_digits(&mut out, in_day % MS_PER_MIN / MS_PER_SEC, 2);
    let frac = ms % MS_PER_SEC;
    if frac != 0 {
        out.push('.');
        push_digits(&mut out, frac, 3);
    }
    out.push('Z');
    out
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|z|±HH:MM)` into epoch milliseconds.
///
/// Accepts `t` or a space instead of `T` (RFC 3339 §5.6 allows both). Fractions beyond
/// milliseconds are truncated. A leap second (`:60`) is read as the first second of
/// the next minute, since epoch time has no slot for it. Instants before the Unix
/// epoch are rejected because the engine's timestamps are unsigned.
pub fn parse_rfc3339(s: &str) -> Result<u64, String> {
    let b = s.as_bytes();
    let year = digits_at(b, 0, 4, "year")?;
    expect_at(b, 4, b'-', "'-' after the year")?;
    let month = digits_at(b, 5, 2, "month")?;
    expect_at(b, 7, b'-', "'-' after the month")?;
    let day = digits_at(b, 8, 2, "day")?;
    match b.get(10) {
        Some(b'T' | b't' | b' ') => {}
        _ => return Err("expected 'T' or a space between date and time".into()),
    }
    let hour = digits_at(b, 11, 2, "hour")?;
    expect_at(b, 13, b':', "':' after the hour")?;
    let minute = digits_at(b, 14, 2, "minute")?;
    expect_at(b, 16, b':', "':' after the minute")?;
    let second = digits_at(b, 17, 2, "second")?;

    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let (value, len) = leading_fraction_ms(&b[i..]);
        if len == 0 {
            return Err("expected digits after the decimal point".into());
        }
        millis = value;
        i += len;
    }

    let offset_ms: i64 = match b.get(i) {
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits_at(b, i + 1, 2, "offset hour")?;
            expect_at(b, i + 3, b':', "':' in the offset")?;
            let om = digits_at(b, i + 4, 2, "offset minute")?;
            if oh > 23 || om > 59 {
                return Err(format!("offset {oh:02}:{om:02} is out of range"));
            }
            i += 6;
            let off = (oh * MS_PER_HOUR + om * MS_PER_MIN) as i64;
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        None => return Err("missing timezone: expected 'Z' or ±HH:MM".into()),
        Some(_) => return Err("expected 'Z', '+HH:MM' or '-HH:MM' after the time".into()),
    };
    if i != b.len() {
        return Err("unexpected characters after the timezone".into());
    }

    if !(1..=12).contains(&month) {
        return Err(format!("month {month:02} is out of range 01-12"));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(format!("day {day:02} does not exist in {year:04}-{month:02}"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!("time {hour:02}:{minute:02}:{second:02} is out of range"));
    }

    // Year <= 9999, so every term fits comfortably in i64.
    let days = days_from_civil(year as i64, month, day);
    let local = days * MS_PER_DAY as i64
        + (hour * MS_PER_HOUR + minute * MS_PER_MIN + second * MS_PER_SEC + millis) as i64;
    u64::try_from(local - offset_ms)
        .map_err(|_| "timestamp is before 1970-01-01T00:00:00Z (the Unix epoch)".to_string())
}

/// Parses an HTTP date (IMF-fixdate, RFC 850 or asctime) into epoch milliseconds.
///
/// Returns `None` for anything unparseable or before the epoch: the only caller is
/// `Retry-After` handling, where a bad date simply means "no hint".
pub fn parse_http_date(s: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Parses a human duration into milliseconds.
///
/// Accepted forms:
/// - unit sums: `250ms`, `5s`, `5m`, `24h`, `30d`, `1h30m`, `1.5s` (units `ms`, `s`,
///   `m`, `h`, `d`, case-insensitive, optional spaces between parts; sub-millisecond
///   remainders are truncated);
/// - a bare string of digits, read as **milliseconds** (`"1500"`). Only whole numbers
///   qualify: `"1.5"` is rejected because a unitless fraction is almost always a
///   mistake for seconds;
/// - clock forms `HH:MM:SS[.fff]` and `MM:SS[.fff]` (`00:02:30`, `00:05.250`); the
///   leading field may exceed 59/23, the others are two digits below 60.
///
/// Empty, negative, unknown units, trailing garbage and values that overflow `u64`
/// milliseconds are errors with a reason.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.starts_with('-') {
        return Err("negative durations are not allowed".into());
    }
    if t.bytes().all(|c| c.is_ascii_digit()) {
        return t.parse::<u64>().map_err(|_| overflow());
    }
    if t.contains(':') {
        parse_clock(t)
    } else {
        parse_unit_sum(t)
    }
}

fn overflow() -> String {
    "duration is too large (overflows u64 milliseconds)".into()
}

const UNITS: [(&str, u64); 5] =
    [("ms", 1), ("s", MS_PER_SEC), ("m", MS_PER_MIN), ("h", MS_PER_HOUR), ("d", MS_PER_DAY)];

/// `1h30m`, `1.5s`, `250ms`...
fn parse_unit_sum(t: &str) -> Result<u64, String> {
    let b = t.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    while i < b.len() {
        if b[i] == b' ' {
            i += 1;
            continue;
        }
        let num_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_part = &t[num_start..i];
        let mut frac_part = "";
        if i < b.len() && b[i] == b'.' {
            let frac_start = i + 1;
            i = frac_start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac_part = &t[frac_start..i];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(format!("expected a number at byte {num_start}"));
        }
        let unit_start = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &t[unit_start..i];
        let unit_ms = match UNITS.iter().find(|(name, _)| name.eq_ignore_ascii_case(unit)) {
            Some(&(_, ms)) => ms,
            None if unit.is_empty() => {
                return Err(format!("number {:?} has no unit (ms, s, m, h or d)", &t[num_start..i]))
            }
            None => return Err(format!("unknown unit {unit:?} (use ms, s, m, h or d)")),
        };
        total = total.checked_add(scaled(int_part, frac_part, unit_ms)?).ok_or_else(overflow)?;
    }
    Ok(total)
}

/// `int.frac` × `unit_ms`, exact in integers (no float rounding), truncating below 1 ms.
fn scaled(int_part: &str, frac_part: &str, unit_ms: u64) -> Result<u64, String> {
    let int: u64 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| overflow())? };
    // Nine fractional digits times the largest unit (a day) still fits in u64.
    let frac_digits = &frac_part[..frac_part.len().min(9)];
    let mut frac: u64 = 0;
    let mut scale: u64 = 1;
    for c in frac_digits.bytes() {
        frac = frac * 10 + u64::from(c - b'0');
        scale *= 10;
    }
    int.checked_mul(unit_ms).and_then(|v| v.checked_add(frac * unit_ms / scale)).ok_or_else(overflow)
}

/// `HH:MM:SS[.fff]` or `MM:SS[.fff]`.
fn parse_clock(t: &str) -> Result<u64, String> {
    let mut fields = [""; 3];
    let mut n = 0;
    for part in t.split(':') {
        if n == fields.len() {
            return Err("clock durations have at most three fields (HH:MM:SS)".into());
        }
        fields[n] = part;
        n += 1;
    }
    if n < 2 {
        return Err("clock durations need at least MM:SS".into());
    }
    let (last, frac) = match fields[n - 1].split_once('.') {
        Some((sec, frac)) => (sec, Some(frac)),
        None => (fields[n - 1], None),
    };
    fields[n - 1] = last;

    let mut total: u64 = 0;
    for (idx, field) in fields[..n].iter().enumerate() {
        let leading = idx == 0;
        let ok_shape = field.bytes().all(|c| c.is_ascii_digit())
            && if leading { !field.is_empty() } else { field.len() == 2 };
        if !ok_shape {
            return Err(format!("clock field {field:?} must be digits (two after the first field)"));
        }
        let value: u64 = field.parse().map_err(|_| overflow())?;
        if !leading && value > 59 {
            return Err(format!("clock field {field} must be below 60"));
        }
        total = total.checked_mul(60).and_then(|v| v.checked_add(value)).ok_or_else(overflow)?;
    }
    // `total` is in the unit of the last field, which is always seconds.
    let mut ms = total.checked_mul(MS_PER_SEC).ok_or_else(overflow)?;
    if let Some(frac) = frac {
        let (value, len) = leading_fraction_ms(frac.as_bytes());
        if len == 0 || len != frac.len() {
            return Err("fraction of seconds must be digits".into());
        }
        ms = ms.checked_add(value).ok_or_else(overflow)?;
    }
    Ok(ms)
}

/// Reads the digit run at the start of `b` as a decimal fraction of a second and
/// returns (milliseconds, digits consumed). Digits past the third are truncated.
fn leading_fraction_ms(b: &[u8]) -> (u64, usize) {
    let len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut ms = 0;
    for k in 0..3 {
        let digit = b.get(k).filter(|_| k < len).map_or(0, |c| u64::from(c - b'0'));
        ms = ms * 10 + digit;
    }
    (ms, len)
}

fn digits_at(b: &[u8], at: usize, n: usize, what: &str) -> Result<u64, String> {
    match b.get(at..at + n) {
        Some(d) if d.iter().all(u8::is_ascii_digit) => {
            Ok(d.iter().fold(0, |acc, c| acc * 10 + u64::from(c - b'0')))
        }
        _ => Err(format!("expected {n} digits for the {what} at byte {at}")),
    }
}

fn expect_at(b: &[u8], at: usize, want: u8, what: &str) -> Result<(), String> {
    if b.get(at) == Some(&want) {
        Ok(())
    } else {
        Err(format!("expected {what} at byte {at}"))
    }
}

fn push_digits(out: &mut String, value: u64, width: u32) {
    let mut div = 10u64.pow(width - 1);
    while div > 0 {
        out.push(char::from(b'0' + (value / div % 10) as u8));
        div /= 10;
    }
}

fn is_leap(year: u64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u64, day: u64) -> i64 {
    let (month, day) = (month as i64, day as i64);
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) for a count of days since 1970-01-01 (Hinnant's
/// `civil_from_days`), unsigned because the engine never stores pre-epoch times.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_736_951_408_000), "2025-01-15T14:30:08Z");
        assert_eq!(format_rfc3339(1_736_951_408_250), "2025-01-15T14:30:08.250Z");
        assert_eq!(format_rfc3339(1_736_951_408_007), "2025-01-15T14:30:08.007Z");
        assert_eq!(format_rfc3339(1_709_164_800_000), "2024-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(951_868_800_000), "2000-03-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_399_999), "2000-02-28T23:59:59.999Z");
        assert_eq!(format_rfc3339(4_107_542_400_000), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn format_clamps_beyond_year_9999() {
        assert_eq!(format_rfc3339(MAX_RFC3339_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_rfc3339(u64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(parse_rfc3339(&format_rfc3339(u64::MAX)), Ok(MAX_RFC3339_MS));
    }

    #[test]
    fn parses_known_instants_and_offsets() {
        assert_eq!(parse_rfc3339("2025-01-15T14:30:08Z"), Ok(1_736_951_408_000));
        assert_eq!(parse_rfc3339("2025-01-15t14:30:08z"), Ok(1_736_951_408_000));
        assert_eq!(parse_rfc3339("2025-01-15 14:30:08Z"), Ok(1_736_951_408_000));
        assert_eq!(parse_rfc3339("2025-01-15T16:30:08+02:00"), Ok(1_736_951_408_000));
        assert_eq!(parse_rfc3339("2025-01-15T09:00:08-05:30"), Ok(1_736_951_408_000));
        assert_eq!(parse_rfc3339("2025-01-15T14:30:08.25Z"), Ok(1_736_951_408_250));
        assert_eq!(parse_rfc3339("2025-01-15T14:30:08.123999Z"), Ok(1_736_951_408_123));
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        // A leap second lands on the next minute.
        assert_eq!(parse_rfc3339("2016-12-31T23:59:60Z"), parse_rfc3339("2017-01-01T00:00:00Z"));
    }

    #[test]
    fn rejects_malformed_and_pre_epoch() {
        for bad in [
            "",
            "2025-01-15",
            "2025-01-15T14:30:08",
            "2025-13-01T00:00:00Z",
            "2025-00-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2025-04-31T00:00:00Z",
            "2025-01-15T24:00:00Z",
            "2025-01-15T14:60:00Z",
            "2025-01-15T14:30:08.Z",
            "2025-01-15T14:30:08+2:00",
            "2025-01-15T14:30:08+24:00",
            "2025-01-15T14:30:08Zjunk",
            "2025/01/15T14:30:08Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:30:00+01:00",
            "２０２５-01-15T14:30:08Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?} should be rejected");
        }
        let msg = parse_rfc3339("2025-13-01T00:00:00Z").unwrap_err();
        assert!(msg.contains("month 13"), "{msg}");
    }

    #[test]
    fn format_parse_round_trip() {
        // Walk ~700 years in irregular steps so every month/leap case is crossed.
        let mut ms = 0u64;
        while ms < MAX_RFC3339_MS - 1_000_000_000_000 {
            let text = format_rfc3339(ms);
            assert_eq!(parse_rfc3339(&text), Ok(ms), "{text}");
            ms += 12_345_678_901;
        }
    }

    #[test]
    fn http_dates() {
        let want = Some(784_111_777_000);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT "), want);
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date(""), None);
    }

    #[test]
    fn hour_of_day_is_utc() {
        assert_eq!(hour_of_day(0), 0);
        assert_eq!(hour_of_day(1_736_951_408_000), 14);
        assert_eq!(hour_of_day(MS_PER_DAY - 1), 23);
        assert!(hour_of_day(u64::MAX) < 24);
    }

    #[test]
    fn now_is_after_2024() {
        assert!(now_ms() > 1_704_067_200_000);
    }

    #[test]
    fn durations_in_units() {
        let cases = [
            ("250ms", 250),
            ("5s", 5_000),
            ("5m", 300_000),
            ("24h", 86_400_000),
            ("720h", 2_592_000_000),
            ("30d", 2_592_000_000),
            ("1h30m", 5_400_000),
            ("1h 30m", 5_400_000),
            ("1.5s", 1_500),
            ("0.5ms", 0),
            (".5s", 500),
            ("1.5h", 5_400_000),
            ("2S", 2_000),
            ("1d2h3m4s5ms", 93_784_005),
            (" 5s ", 5_000),
            ("1500", 1_500),
            ("0", 0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration_ms(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn durations_in_clock_form() {
        assert_eq!(parse_duration_ms("00:02:30"), Ok(150_000));
        assert_eq!(parse_duration_ms("00:05.250"), Ok(5_250));
        assert_eq!(parse_duration_ms("01:02:03.5"), Ok(3_723_500));
        assert_eq!(parse_duration_ms("36:00:00"), Ok(129_600_000));
        assert_eq!(parse_duration_ms("90:00"), Ok(5_400_000));
    }

    #[test]
    fn durations_rejected() {
        for bad in [
            "",
            "  ",
            "-5s",
            "-1",
            "abc",
            "5x",
            "5 s s",
            "1.5",
            "h",
            "s5",
            "1h30",
            "1..5s",
            "00:60",
            "1:2:3",
            "1:02:03:04",
            "00:05.",
            "00:05.2x",
            "00:a0",
            ":30",
            "18446744073709551616",
            "99999999999999999999d",
            "213503982335d",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_duration_ms("-5s").unwrap_err().contains("negative"));
        assert!(parse_duration_ms("5x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration_ms("1.5").unwrap_err().contains("no unit"));
        assert!(parse_duration_ms("213503982335d").unwrap_err().contains("too large"));
    }
}
