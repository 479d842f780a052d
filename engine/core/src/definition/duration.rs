//! ISO 8601 durations (`PT4H`, `P3D`, `PT1H30M`, `P1DT12H`), the form used by stage
//! deadlines and at-risk thresholds. Years and months are refused: their length depends
//! on the calendar, and an SLA must mean the same number of hours every time.
//!
//! The grammar is ISO 8601's, without the calendar units:
//! `P[nW][nD][T[nH][nM][n[.fff]S]]`: each unit at most once and in this order, whole
//! numbers of ASCII digits, a fraction (one to three digits, milliseconds) on seconds only.
//! The whole duration is at most [`MAX_DURATION_DAYS`] days, so adding it to any time
//! between the years 0001 and 9999 cannot overflow.

use chrono::TimeDelta;

/// The longest duration accepted, in days (about 100 years). A deadline further away than
/// this is a mistake, and the bound keeps every sum of a time and a duration in range.
pub const MAX_DURATION_DAYS: i64 = 36_525;

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not an ISO 8601 duration such as PT4H, P3D or PT1H30M: {reason}")]
pub struct DurationError {
    /// The text as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The units in the only order they may appear: (designator, in the time part, ms).
const UNITS: [(char, bool, i128); 5] = [
    ('W', false, 7 * 86_400_000),
    ('D', false, 86_400_000),
    ('H', true, 3_600_000),
    ('M', true, 60_000),
    ('S', true, 1_000),
];

/// Parses `P[nW][nD][T[nH][nM][nS]]` into a time delta.
///
/// # Errors
/// Returns [`DurationError`] for anything else: years and months (`P1Y`, `P1M`), an empty
/// duration (`P`, `PT`), a unit repeated or out of order (`PT1H1H`, `PT30M1H`), a malformed
/// fraction (`PT.5S`, `PT5.S`) or one on another unit than seconds, more than three
/// fraction digits, and anything longer than [`MAX_DURATION_DAYS`].
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
    let bytes = rest.as_bytes();
    let max_ms = i128::from(MAX_DURATION_DAYS) * 86_400_000;
    let mut total_ms: i128 = 0;
    let mut in_time = false;
    let mut saw_time_unit = false;
    // Index into UNITS of the next unit allowed: units appear once each, in order.
    let mut next_unit = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'T' {
            if in_time {
                return Err(err("'T' appears twice"));
            }
            in_time = true;
            next_unit = next_unit.max(2);
            i += 1;
            continue;
        }
        let amount = read_amount(rest, &mut i).map_err(err)?;
        let pos = unit_index(amount.unit, in_time).map_err(err)?;
        if pos < next_unit {
            return Err(err(
                "each unit may appear once, in the order W, D, T, H, M, S",
            ));
        }
        next_unit = pos + 1;
        let ms = amount_ms(&amount, UNITS[pos].2).map_err(err)?;
        total_ms += ms;
        if total_ms > max_ms {
            return Err(err("it is too long: at most 36525 days"));
        }
        saw_time_unit |= in_time;
    }
    if in_time && !saw_time_unit {
        return Err(err("'T' must be followed by hours, minutes or seconds"));
    }
    if next_unit == 0 {
        return Err(err("it names no amount"));
    }
    let ms = i64::try_from(total_ms).map_err(|_| err("it is too long: at most 36525 days"))?;
    Ok(TimeDelta::milliseconds(ms))
}

/// One number and its unit, as written: `12H`, `1.5S`.
struct Amount<'a> {
    /// The digits before the point (at most 15).
    whole: &'a str,
    /// The digits after a point or comma, when there is one (possibly none).
    fraction: Option<&'a str>,
    /// The unit's designator.
    unit: char,
}

/// The amount starting at `rest[*i]`, moving `*i` past its unit.
///
/// # Errors
/// Why it is not an amount (no unit, no number, too many digits), as a
/// [`DurationError::reason`].
fn read_amount<'a>(rest: &'a str, i: &mut usize) -> Result<Amount<'a>, &'static str> {
    let bytes = rest.as_bytes();
    let start = *i;
    while *i < bytes.len() && bytes[*i].is_ascii_digit() {
        *i += 1;
    }
    let whole = &rest[start..*i];
    let mut fraction = None;
    if *i < bytes.len() && (bytes[*i] == b'.' || bytes[*i] == b',') {
        *i += 1;
        let f = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        fraction = Some(&rest[f..*i]);
    }
    let Some(&unit) = bytes.get(*i) else {
        return Err("a number has no unit after it");
    };
    *i += 1;
    if whole.is_empty() {
        return Err(if fraction.is_some() {
            "a fraction needs a digit before its point, as in PT0.5S"
        } else {
            "a unit has no number before it"
        });
    }
    if whole.len() > 15 {
        return Err("it is too long: at most 36525 days");
    }
    Ok(Amount {
        whole,
        fraction,
        unit: char::from(unit),
    })
}

/// The index in [`UNITS`] of `unit` in the date part, or in the time part when `in_time`.
///
/// # Errors
/// Why the unit is not allowed there, as a [`DurationError::reason`].
fn unit_index(unit: char, in_time: bool) -> Result<usize, &'static str> {
    UNITS
        .iter()
        .position(|(u, time, _)| *u == unit && *time == in_time)
        .ok_or(match (in_time, unit) {
            (false, 'Y' | 'M') => "years and months have no fixed length; use days",
            (false, 'H' | 'S') => "hours, minutes and seconds come after 'T', as in PT4H",
            (true, 'D' | 'W') => "weeks and days come before 'T', as in P1DT4H",
            _ => "it has an unknown unit (use W, D, then T with H, M, S)",
        })
}

/// `amount` in milliseconds, its unit being `unit_ms` long.
///
/// # Errors
/// A malformed number, or a fraction that is not one to three digits on seconds, as a
/// [`DurationError::reason`].
fn amount_ms(amount: &Amount<'_>, unit_ms: i128) -> Result<i128, &'static str> {
    // `whole` has at most 15 digits: it fits, and so does its product with a unit.
    let mut ms = amount
        .whole
        .parse::<i128>()
        .map_err(|_| "a number is malformed")?
        * unit_ms;
    if let Some(fraction) = amount.fraction {
        if amount.unit != 'S' {
            return Err("only seconds may have a fraction");
        }
        if fraction.is_empty() {
            return Err("a fraction needs a digit after its point, as in PT5.5S");
        }
        if fraction.len() > 3 {
            return Err("seconds have at most three fraction digits (milliseconds)");
        }
        let digits: i128 = fraction.parse().map_err(|_| "a number is malformed")?;
        ms += digits * 10i128.pow(3 - fraction.len() as u32);
    }
    Ok(ms)
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
            if ms.is_multiple_of(1000) {
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
    fn a_unit_written_twice_or_out_of_order_is_refused() {
        for bad in ["PT1H1H", "PT30M1H", "P1D1D", "P1D2W", "PT1S1M", "P1DT1HT1M"] {
            let e = parse_iso_duration(bad).unwrap_err();
            assert!(
                e.reason.contains("once, in the order") || e.reason.contains("twice"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_fraction_needs_digits_on_both_sides_of_its_point() {
        for bad in ["PT.5S", "PT5.S", "PT.S"] {
            let e = parse_iso_duration(bad).unwrap_err();
            assert!(e.reason.contains("fraction"), "{bad}: {e}");
        }
        assert_eq!(
            parse_iso_duration("PT1,5S").unwrap(),
            TimeDelta::milliseconds(1500)
        );
        assert!(parse_iso_duration("PT0.0001S").is_err());
    }

    #[test]
    fn a_duration_beyond_a_hundred_years_is_refused_however_it_is_written() {
        let nine_times = "P1653439W".repeat(9);
        for bad in [
            "P1653439W",
            nine_times.as_str(),
            "PT999999999999S",
            "P36526D",
            "PT9999999999999999999999S",
        ] {
            let e = parse_iso_duration(bad).unwrap_err();
            assert!(
                e.reason.contains("too long") || e.reason.contains("once"),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            parse_iso_duration("P36525D").unwrap(),
            TimeDelta::days(MAX_DURATION_DAYS)
        );
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["PT1H", "P3D", "P1DT12H", "PT1H30M", "PT0S", "PT0.250S"] {
            let d = parse_iso_duration(text).unwrap();
            assert_eq!(format_iso_duration(d), text);
        }
    }
}
