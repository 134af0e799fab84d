//! Durations as people write them in playbooks: `90s`, `30m`, `4h`, `2d`.

use std::time::Duration;

/// Parses `<n><unit>` with unit `s`, `m`, `h` or `d` (one unit; no fractions).
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as `90s`, `30m`, `4h` or `2d`"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3_600),
        "d" => n.checked_mul(86_400),
        _ => return Err(format!("`{text}`: the unit must be `s`, `m`, `h` or `d`")),
    }
    .ok_or_else(|| format!("`{text}` is too long"))?;
    Ok(Duration::from_secs(secs))
}

/// Writes a duration the way [`parse`] reads it, in the largest exact unit.
pub fn format(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_unit() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse("4h"), Ok(Duration::from_secs(14_400)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in ["", "m", "30", "30 minutes", "1.5h", "-1h", "99999999999999999999d"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn format_reads_back() {
        for s in [0, 59, 60, 3_600, 5_400, 86_400, 90_000] {
            let d = Duration::from_secs(s);
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
