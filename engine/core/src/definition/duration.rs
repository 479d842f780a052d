//! ISO 8601 durations (`PT4H`, `P3D`, `PT1H30M`, `P1DT12H`), the form used by stage
//! deadlines and at-risk thresholds. Years and months are refused: their length depends
//! on the calendar, and an SLA must mean the same number of hours every time.

use chrono::TimeDelta;

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not an ISO 8601 duration such as PT4H, P3D or PT1H30M: {reason}")]
pub struct DurationError {
    /// The text as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses `P[nW][nD][T[nH][nM][nS]]` into a time delta.
///
/// # Errors
/// Returns [`DurationError`] for anything else, including years and months (`P1Y`, `P1M`),
/// an empty duration (`P`, `PT`), and fractions other than on seconds.
pub fn parse_iso_duration(text: &str) -> Result<TimeDelta, DurationError> {
    let err = |reason| DurationError {
        text: text.to_owned(),
        reason,
    };
    let rest = text
        .strip_prefix('P')
        .ok_or_else(|| err("it must start with 'P'"))?;
    if rest.is_empty() {
        return Err(err("it names no amount"));
    }
    let mut total_ms: i64 = 0;
    let mut in_time = false;
    let mut number = String::new();
    let mut saw_unit = false;
    let mut saw_time_unit = false;
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'T' if !in_time && number.is_empty() => in_time = true,
            unit => {
                if number.is_empty() {
                    return Err(err("a unit has no number before it"));
                }
                let value: f64 = number.parse().map_err(|_| err("a number is malformed"))?;
                if number.contains('.') && !(in_time && unit == 'S') {
                    return Err(err("only seconds may have a fraction"));
                }
                let unit_ms: f64 = match (in_time, unit) {
                    (false, 'W') => 7.0 * 86_400_000.0,
                    (false, 'D') => 86_400_000.0,
                    (true, 'H') => 3_600_000.0,
                    (true, 'M') => 60_000.0,
                    (true, 'S') => 1_000.0,
                    (false, 'Y') | (false, 'M') => {
                        return Err(err("years and months have no fixed length; use days"))
                    }
                    _ => {
                        return Err(err(
                            "it has an unknown unit (use W, D, then T with H, M, S)",
                        ))
                    }
                };
                let ms = value * unit_ms;
                if !ms.is_finite() || ms > 1.0e15 {
                    return Err(err("it is too long"));
                }
                total_ms += ms as i64;
                number.clear();
                saw_unit = true;
                saw_time_unit |= in_time;
            }
        }
    }
    if !number.is_empty() {
        return Err(err("a number has no unit after it"));
    }
    if in_time && !saw_time_unit {
        return Err(err("'T' must be followed by hours, minutes or seconds"));
    }
    if !saw_unit {
        return Err(err("it names no amount"));
    }
    Ok(TimeDelta::milliseconds(total_ms))
}

/// Writes a delta as an ISO 8601 duration (`PT36H`, `P2DT4H30M`, `PT0S`).
pub fn format_iso_duration(delta: TimeDelta) -> String {
    let negative = delta < TimeDelta::zero();
    let mut ms = delta.num_milliseconds().unsigned_abs();
    let days = ms / 86_400_000;
    ms %= 86_400_000;
    let hours = ms / 3_600_000;
    ms %= 3_600_000;
    let minutes = ms / 60_000;
    ms %= 60_000;
    let mut out = String::from(if negative { "-P" } else { "P" });
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if hours > 0 || minutes > 0 || ms > 0 || days == 0 {
        out.push('T');
        if hours > 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if ms > 0 || (hours == 0 && minutes == 0) {
            if ms % 1000 == 0 {
                out.push_str(&format!("{}S", ms / 1000));
            } else {
                out.push_str(&format!("{}.{:03}S", ms / 1000, ms % 1000));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_sla_durations_parse() {
        assert_eq!(parse_iso_duration("PT1H").unwrap(), TimeDelta::hours(1));
        assert_eq!(parse_iso_duration("PT4H").unwrap(), TimeDelta::hours(4));
        assert_eq!(parse_iso_duration("P3D").unwrap(), TimeDelta::days(3));
        assert_eq!(parse_iso_duration("P1DT12H").unwrap(), TimeDelta::hours(36));
        assert_eq!(
            parse_iso_duration("PT1H30M").unwrap(),
            TimeDelta::minutes(90)
        );
        assert_eq!(
            parse_iso_duration("PT0.5S").unwrap(),
            TimeDelta::milliseconds(500)
        );
        assert_eq!(parse_iso_duration("P2W").unwrap(), TimeDelta::days(14));
    }

    #[test]
    fn calendar_units_and_garbage_are_refused_with_a_reason() {
        for bad in [
            "", "4h", "P", "PT", "P1Y", "P1M", "PT4", "PTH", "P1.5D", "P1H", "PT1D",
        ] {
            let e = parse_iso_duration(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["PT1H", "P3D", "P1DT12H", "PT1H30M", "PT0S", "PT0.250S"] {
            let d = parse_iso_duration(text).unwrap();
            assert_eq!(format_iso_duration(d), text);
        }
    }
}
