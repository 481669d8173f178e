//! Durations as written in stack files: `90s`, `45m`, `2h`, or a plain number of seconds.

use std::time::Duration;

/// Parses `90s`, `45m`, `2h` or `90` (seconds). `None` for anything else, zero included.
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    if digits.is_empty() {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }?;
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// A duration the way a stack file writes it: `2h`, `45m` or `90s` (the largest whole unit).
pub fn show(d: Duration) -> String {
    let secs = d.as_secs();
    if secs > 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs > 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_plain_seconds() {
        assert_eq!(parse("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse("45m"), Some(Duration::from_secs(45 * 60)));
        assert_eq!(parse("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("30"), Some(Duration::from_secs(30)));
        for bad in [
            "",
            "0",
            "0s",
            "m",
            "1.5h",
            "-3",
            "3d",
            "3 m",
            "1h30m",
            "99999999999999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn shows_the_largest_whole_unit() {
        assert_eq!(show(Duration::from_secs(1800)), "30m");
        assert_eq!(show(Duration::from_secs(7200)), "2h");
        assert_eq!(show(Duration::from_secs(90)), "90s");
        assert_eq!(show(Duration::from_secs(5400)), "90m");
    }
}
