//! A mirror's lifecycle: copying packages between mirrors ([`copy`], promotion of a pull
//! request's mirror into the main one), removing what no kept stack needs ([`prune`]) and
//! checking that every tag resolves and every blob matches ([`verify`]).
//!
//! These work on any mirror through the storage core ([`crate::mirror::Mirror`]) and the
//! probed abilities ([`crate::mirror::probe`]); [`graph`] reads what manifests name and
//! which tags hang off a manifest (signatures, referrers).

pub mod copy;
pub mod graph;
pub mod prune;
pub mod verify;

use std::time::Duration;

/// Parses an age or a grace period: `0`, `90s`, `45m`, `2h`, `30d`, `2w`, or a number of
/// seconds; zero is allowed.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (examples: 0, 90s, 45m, 2h, 30d, 2w)"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (use s, m, h, d or w)")),
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("0"), Ok(Duration::ZERO));
        assert_eq!(parse_age("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_age("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_age("5y").unwrap_err().contains("unknown unit"));
        assert!(parse_age("h").is_err());
        assert!(parse_age("-1s").is_err());
    }
}
