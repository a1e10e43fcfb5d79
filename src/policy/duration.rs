//! Durations as the ScanPolicy and the operator's flags write them.

use std::time::Duration;

/// Parses `30s`, `5m`, `6h`, `1h30m`, `7d`, `500ms`. Every step is checked:
/// a duration too long to represent is an error, never a panic.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration `{s}` (expected e.g. `30s`, `15m`, `6h`)");
    let too_long = || format!("duration `{s}` is too long");
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Some(Duration::from_millis(value)),
            "s" => Some(Duration::from_secs(value)),
            "m" => value.checked_mul(60).map(Duration::from_secs),
            "h" => value.checked_mul(3600).map(Duration::from_secs),
            "d" => value.checked_mul(86_400).map(Duration::from_secs),
            _ => return Err(invalid()),
        };
        total = part
            .and_then(|part| total.checked_add(part))
            .ok_or_else(too_long)?;
        rest = &rest[unit_len..];
    }
    if total.is_zero() {
        return Err(format!("duration `{s}` must be more than zero"));
    }
    Ok(total)
}

/// Parses `s` and checks that it lies within `min..=max`.
pub fn parse_bounded(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let duration = parse_duration(s)?;
    if duration < min || duration > max {
        return Err(format!(
            "duration `{s}` must be between {} and {}",
            human(min),
            human(max)
        ));
    }
    Ok(duration)
}

/// `90s` as `1m30s`, for messages.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, minutes, seconds) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let mut out = String::new();
    for (n, unit) in [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out = format!("{}ms", d.as_millis());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        for bad in ["", "h", "10", "5x", "0s", "-1s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn huge_durations_are_errors_not_panics() {
        // The largest number of seconds a `Duration` holds is taken (the
        // bounds of each use refuse it), one more is not.
        assert!(parse_duration("18446744073709551615s").is_ok());
        for huge in [
            "18446744073709551616s",
            "18446744073709551615m",
            "18446744073709551615d",
            "99999999999999999999999s",
            "18446744073709551615s18446744073709551615s",
        ] {
            let err = parse_duration(huge).unwrap_err();
            assert!(err.contains("too long"), "{huge}: {err}");
        }
    }

    #[test]
    fn bounds() {
        let (min, max) = (Duration::from_secs(60), Duration::from_secs(7 * 86_400));
        assert!(parse_bounded("1m", min, max).is_ok());
        assert!(parse_bounded("7d", min, max).is_ok());
        let err = parse_bounded("1ms", min, max).unwrap_err();
        assert_eq!(err, "duration `1ms` must be between 1m and 7d");
        assert!(parse_bounded("7d1s", min, max).is_err());
    }
}
