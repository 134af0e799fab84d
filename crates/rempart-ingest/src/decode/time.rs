//! Timestamp parsing for the many ways telemetry writes time.
//!
//! Times without a zone are read as UTC: Windows `UtcTime`, Zeek and most collectors write UTC,
//! and a guess in local time would differ between machines.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, fmt::strtime};
use serde_json::Value;

/// Parses a timestamp written as RFC 3339 / ISO 8601 (with or without zone, `T` or space,
/// `+0000` or `+00:00`), or as Unix epoch seconds, milliseconds, microseconds or nanoseconds.
pub fn parse(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return epoch_text(s);
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    if let Some(fixed) = colon_offset(s)
        && let Ok(ts) = fixed.parse::<Timestamp>()
    {
        return Some(ts);
    }
    if let Ok(dt) = s.trim_end_matches('Z').parse::<DateTime>() {
        return dt.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
    }
    parse_named_month(s)
}

/// A JSON value as a timestamp: a string in any form [`parse`] reads, or an epoch number.
pub fn from_value(v: &Value) -> Option<Timestamp> {
    match v {
        Value::String(s) => parse(s),
        Value::Number(n) if n.as_f64().is_some_and(|f| f >= 0.0) => epoch_text(&n.to_string()),
        _ => None,
    }
}

/// An epoch written in decimal, read exactly (no floating-point rounding of the fraction).
fn epoch_text(s: &str) -> Option<Timestamp> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || int.len() > 19 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return epoch(s.parse::<f64>().ok()?);
    }
    let whole: i128 = int.parse().ok()?;
    // Scale by magnitude as `epoch` does, then add the fraction at that scale.
    let (scale_digits, unit) = match whole {
        w if w < 100_000_000_000 => (9, 1_000_000_000i128),
        w if w < 100_000_000_000_000 => (6, 1_000_000),
        w if w < 100_000_000_000_000_000 => (3, 1_000),
        _ => (0, 1),
    };
    let frac_digits: String = frac.chars().take(scale_digits).collect();
    let frac_nanos: i128 = if frac_digits.is_empty() {
        0
    } else {
        frac_digits.parse::<i128>().ok()? * 10i128.pow((scale_digits - frac_digits.len()) as u32)
    };
    Timestamp::from_nanosecond(whole.checked_mul(unit)? + frac_nanos).ok()
}

/// Epoch in seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude
/// (any real event time in seconds is below 10^11, i.e. before the year 5138).
pub fn epoch(v: f64) -> Option<Timestamp> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let nanos = if v < 1e11 {
        v * 1e9
    } else if v < 1e14 {
        v * 1e6
    } else if v < 1e17 {
        v * 1e3
    } else {
        v
    };
    if nanos > i64::MAX as f64 {
        return None;
    }
    Timestamp::from_nanosecond(nanos as i128).ok()
}

/// Turns a trailing `+hhmm` / `-hhmm` into `+hh:mm` (Suricata writes `+0000`).
fn colon_offset(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let n = bytes.len();
    if n < 5 {
        return None;
    }
    let sign = bytes[n - 5];
    if (sign == b'+' || sign == b'-') && bytes[n - 4..].iter().all(u8::is_ascii_digit) {
        Some(format!("{}:{}", &s[..n - 2], &s[n - 2..]))
    } else {
        None
    }
}

/// `Oct 11 2024 22:14:15`, `Oct 11 2024 22:14:15.123`, `2024 Oct 11 22:14:15` (CEF `rt`).
fn parse_named_month(s: &str) -> Option<Timestamp> {
    for fmt in ["%b %d %Y %H:%M:%S%.f", "%b %d %Y %H:%M:%S", "%Y %b %d %H:%M:%S"] {
        if let Ok(dt) = strtime::parse(fmt, s).and_then(|t| t.to_datetime()) {
            return dt.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
        }
    }
    None
}

/// An RFC 3164 timestamp, `Mmm dd hh:mm:ss`, which has no year: the year is the one that puts
/// it closest before `now` (a December event read in January belongs to last year).
pub fn parse_bsd(s: &str, now: Timestamp) -> Option<Timestamp> {
    // `Oct  1` pads the day with a space.
    let normalized: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let year = now.to_zoned(TimeZone::UTC).year();
    let parsed = strtime::parse("%b %d %H:%M:%S%.f", &normalized)
        .or_else(|_| strtime::parse("%b %d %H:%M:%S", &normalized))
        .ok()?;
    let month = parsed.month()?;
    let day = parsed.day()?;
    let time = parsed.to_time().ok()?;
    let at = |y: i16| -> Option<Timestamp> {
        let date = Date::new(y, month, day).ok()?;
        date.to_datetime(time)
            .to_zoned(TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    };
    let this_year = at(year)?;
    // Allow a day of clock skew into the future before calling it last year.
    if this_year > now + jiff::SignedDuration::from_hours(24) {
        at(year - 1)
    } else {
        Some(this_year)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn reads_rfc3339_and_its_relatives() {
        assert_eq!(parse("2020-06-10T02:50:56.537Z"), Some(ts("2020-06-10T02:50:56.537Z")));
        assert_eq!(parse("2020-06-10T04:50:56+02:00"), Some(ts("2020-06-10T02:50:56Z")));
        assert_eq!(
            parse("2021-03-04T10:00:00.123456+0000"),
            Some(ts("2021-03-04T10:00:00.123456Z"))
        );
        assert_eq!(parse("2020-06-10 02:50:54.631"), Some(ts("2020-06-10T02:50:54.631Z")));
        assert_eq!(parse("Oct 11 2024 22:14:15"), Some(ts("2024-10-11T22:14:15Z")));
        assert_eq!(parse("not a time"), None);
    }

    #[test]
    fn reads_epochs_of_every_precision() {
        let want = ts("2020-04-30T00:06:39.824370Z");
        for s in [
            "1588205199.82437",
            "1588205199824.37",
            "1588205199824370",
            "1588205199824370000",
        ] {
            let got = parse(s).map(|t| t.as_microsecond());
            assert_eq!(got, Some(want.as_microsecond()), "{s}");
        }
    }

    #[test]
    fn bsd_timestamps_take_the_closest_past_year() {
        let now = ts("2026-01-02T00:00:00Z");
        assert_eq!(parse_bsd("Dec 31 23:59:59", now), Some(ts("2025-12-31T23:59:59Z")));
        assert_eq!(parse_bsd("Jan  1 10:00:00", now), Some(ts("2026-01-01T10:00:00Z")));
        assert_eq!(parse_bsd("Foo 1 10:00:00", now), None);
    }
}
