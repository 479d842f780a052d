//! Days, weeks and months in a caller's time zone, as ranges of 15-minute UTC buckets.

use super::delta::BUCKET_SECONDS;
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Most periods one report covers (a caller asking for more gets a 400 naming `to`): ten
/// years of months, over a year of days.
pub const MAX_PERIODS: usize = 400;

/// How long each period of a report is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// A calendar day, from local midnight.
    Day,
    /// An ISO week, from Monday's local midnight.
    Week,
    /// A calendar month, from the 1st's local midnight.
    Month,
}

impl PeriodKind {
    /// `day`, `week` or `month`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(PeriodKind::Day),
            "week" => Some(PeriodKind::Week),
            "month" => Some(PeriodKind::Month),
            _ => None,
        }
    }
}

/// One period of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// How the caller names it: `2026-10` (month), `2026-10-05` (day or the Monday of a week).
    pub label: String,
    /// Its first instant.
    pub start: DateTime<Utc>,
    /// The first instant after it.
    pub end: DateTime<Utc>,
}

impl Span {
    /// Its first bucket.
    pub fn first_bucket(&self) -> i64 {
        self.start.timestamp().div_euclid(BUCKET_SECONDS)
    }
    /// The first bucket after it.
    pub fn end_bucket(&self) -> i64 {
        self.end.timestamp().div_euclid(BUCKET_SECONDS)
    }
}

/// Why a period range is refused, naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {message}")]
pub struct PeriodError {
    /// `from`, `to`, `tz` or `period`.
    pub parameter: &'static str,
    /// What is wrong.
    pub message: String,
}

fn bad(parameter: &'static str, message: impl Into<String>) -> PeriodError {
    PeriodError {
        parameter,
        message: message.into(),
    }
}

/// The zone named `name` (an IANA name such as `Asia/Shanghai`, or `UTC`).
///
/// # Errors
/// An unknown name, as a [`PeriodError`] on `tz`.
pub fn zone(name: &str) -> Result<Tz, PeriodError> {
    name.parse::<Tz>()
        .map_err(|_| bad("tz", format!("'{name}' is not an IANA time zone name")))
}

/// A day as `YYYY-MM-DD`, or the first day of a month as `YYYY-MM`: four-digit years
/// 0001 to 9999, as everywhere else in the engine (chrono's own parser would take signed
/// and five-digit years, whose periods leave the calendar).
fn parse_day(parameter: &'static str, s: &str) -> Result<NaiveDate, PeriodError> {
    let refuse = || {
        bad(
            parameter,
            format!(
                "'{s}' is not a date (YYYY-MM-DD) or a month (YYYY-MM) of the years 0001 to 9999"
            ),
        )
    };
    let parts: Vec<&str> = s.split('-').collect();
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    let (year, month, day) = match parts[..] {
        [y, m] if digits(y, 4) && digits(m, 2) => (y, m, "01"),
        [y, m, d] if digits(y, 4) && digits(m, 2) && digits(d, 2) => (y, m, d),
        _ => return Err(refuse()),
    };
    let number = |p: &str| p.parse::<u32>().map_err(|_| refuse());
    let year = i32::try_from(number(year)?).map_err(|_| refuse())?;
    if year == 0 {
        return Err(refuse());
    }
    NaiveDate::from_ymd_opt(year, number(month)?, number(day)?).ok_or_else(refuse)
}

/// The period of `kind` holding day `d`: its first day and the first day after it.
fn around(kind: PeriodKind, d: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let first = match kind {
        PeriodKind::Day => d,
        PeriodKind::Week => {
            d.checked_sub_days(Days::new(u64::from(d.weekday().num_days_from_monday())))?
        }
        PeriodKind::Month => d.with_day(1)?,
    };
    let next = match kind {
        PeriodKind::Day => first.checked_add_days(Days::new(1))?,
        PeriodKind::Week => first.checked_add_days(Days::new(7))?,
        PeriodKind::Month => first.checked_add_months(Months::new(1))?,
    };
    Some((first, next))
}

/// Local midnight of `d` in `tz` as UTC; a day whose midnight a DST change skips starts
/// at its first local instant after (looked for in 15-minute steps).
fn midnight(tz: Tz, d: NaiveDate) -> DateTime<Utc> {
    let mut t = d.and_time(NaiveTime::MIN);
    for _ in 0..16 {
        if let Some(local) = tz.from_local_datetime(&t).earliest() {
            return local.with_timezone(&Utc);
        }
        t += TimeDelta::minutes(15);
    }
    Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN))
}

/// The periods of `kind` in `tz` from the one holding `from` to the one holding `to`,
/// both included (`from=2026-10&to=2026-11&period=month` is October and November; a month
/// given for a day or week period means its first day). `to` defaults to `from`.
///
/// # Errors
/// Unreadable dates, `to` before `from`, or more than [`MAX_PERIODS`] periods.
pub fn spans(
    kind: PeriodKind,
    tz: Tz,
    from: &str,
    to: Option<&str>,
) -> Result<Vec<Span>, PeriodError> {
    let first = parse_day("from", from)?;
    let last = match to {
        Some(t) => parse_day("to", t)?,
        None => first,
    };
    if last < first {
        return Err(bad("to", format!("'{}' is before from", to.unwrap_or(""))));
    }
    let mut out = Vec::new();
    let mut day = first;
    while day <= last {
        let (start, next) =
            around(kind, day).ok_or_else(|| bad("to", "the range leaves the calendar"))?;
        if out.len() == MAX_PERIODS {
            return Err(bad(
                "to",
                format!(
                    "more than {MAX_PERIODS} periods; ask for a shorter range or a longer period"
                ),
            ));
        }
        let label = match kind {
            PeriodKind::Month => start.format("%Y-%m").to_string(),
            _ => start.format("%Y-%m-%d").to_string(),
        };
        out.push(Span {
            label,
            start: midnight(tz, start),
            end: midnight(tz, next),
        });
        day = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{spans, zone, PeriodKind};

    #[test]
    fn november_in_shanghai_starts_at_four_in_the_afternoon_utc_on_october_31st() {
        let s = spans(
            PeriodKind::Month,
            zone("Asia/Shanghai").unwrap(),
            "2026-10",
            Some("2026-11"),
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].label, "2026-11");
        assert_eq!(s[1].start.to_rfc3339(), "2026-10-31T16:00:00+00:00");
        assert_eq!(s[0].end, s[1].start);
    }

    #[test]
    fn a_day_in_kathmandu_starts_on_a_quarter_hour_bucket() {
        let s = spans(
            PeriodKind::Day,
            zone("Asia/Kathmandu").unwrap(),
            "2026-10-05",
            None,
        )
        .unwrap();
        assert_eq!(s[0].start.to_rfc3339(), "2026-10-04T18:15:00+00:00");
        assert_eq!(s[0].start.timestamp() % 900, 0);
    }

    #[test]
    fn weeks_start_on_monday_and_a_dst_day_has_23_hours() {
        let ny = zone("America/New_York").unwrap();
        let w = spans(PeriodKind::Week, ny, "2026-11-04", None).unwrap();
        assert_eq!(w[0].label, "2026-11-02");
        let d = spans(PeriodKind::Day, ny, "2026-03-08", None).unwrap();
        assert_eq!((d[0].end - d[0].start).num_hours(), 23);
    }

    #[test]
    fn bad_ranges_name_their_parameter() {
        let utc = zone("UTC").unwrap();
        assert_eq!(zone("Mars/Olympus").unwrap_err().parameter, "tz");
        assert_eq!(
            spans(PeriodKind::Month, utc, "October", None)
                .unwrap_err()
                .parameter,
            "from"
        );
        assert_eq!(
            spans(PeriodKind::Month, utc, "2026-10", Some("2026-09"))
                .unwrap_err()
                .parameter,
            "to"
        );
        assert_eq!(
            spans(PeriodKind::Day, utc, "2020-01-01", Some("2026-01-01"))
                .unwrap_err()
                .parameter,
            "to"
        );
    }

    #[test]
    fn a_date_outside_the_years_0001_to_9999_is_refused_by_parameter_not_a_crash() {
        for bad in [
            "-262143-01-01",
            "-0001-01",
            "0000-01",
            "10000-01",
            "+2026-10",
            "2026-1",
            "2026-10-5",
            "2026-13",
            "2026-02-30",
            "2026-10-05-01",
        ] {
            for kind in [PeriodKind::Day, PeriodKind::Week, PeriodKind::Month] {
                let e = spans(kind, zone("UTC").unwrap(), bad, None).unwrap_err();
                assert_eq!(e.parameter, "from", "{bad}");
                let e = spans(kind, zone("UTC").unwrap(), "2026-10", Some(bad)).unwrap_err();
                assert_eq!(e.parameter, "to", "{bad}");
            }
        }
    }

    #[test]
    fn the_first_and_last_weeks_of_the_calendar_answer_without_leaving_it() {
        // 0001-01-01 is a Monday; 9999-12-31 a Friday whose week ends in year 10000.
        let first = spans(PeriodKind::Week, zone("UTC").unwrap(), "0001-01-03", None).unwrap();
        assert_eq!(first[0].label, "0001-01-01");
        let last = spans(
            PeriodKind::Month,
            zone("Asia/Shanghai").unwrap(),
            "9999-12",
            None,
        );
        assert!(last.is_ok(), "{last:?}");
    }
}
