//! Business calendars: when an office works, so deadlines, at-risk times, escalation steps
//! and reminders can count working time ("4 office hours", "2.3 working days").
//!
//! A calendar is a time zone, working hours per weekday (several intervals a day, for a
//! lunch break), holidays and extra working days by date. Local times are turned into
//! instants through the IANA time zone database (chrono-tz), so a day on which the clocks
//! change still has its 09:00 to 17:00; a working interval that starts or ends in a skipped
//! local hour starts or ends when the clocks jump.
//!
//! Calendars are data, named in the server configuration (`[calendars.<name>]`); the core
//! receives them as a [`Calendars`] map when a definition is compiled.

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How many days a working-time sum may walk before it gives up (about 100 years): a
/// calendar with an hour a week still reaches any duration a definition may write, and no
/// sum can loop without end.
pub const MAX_WALK_DAYS: i64 = 36_525;

/// The named calendars a server knows.
pub type Calendars = BTreeMap<String, Arc<Calendar>>;

/// A calendar as written in the configuration or sent to the API.
///
/// ```toml
/// [calendars.cn-office]
/// zone = "Asia/Shanghai"
/// hours = { mon = ["09:00-12:00", "13:00-18:00"], tue = ["09:00-18:00"] }
/// holidays = ["2026-10-01", "2026-10-02"]
/// working_days = ["2026-09-27"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarDef {
    /// IANA time zone (`Europe/Berlin`).
    pub zone: String,
    /// Working intervals per weekday (`mon` .. `sun`), each `HH:MM-HH:MM`, in order and not
    /// overlapping. A weekday not listed is not worked. `24:00` ends a day.
    pub hours: BTreeMap<String, Vec<String>>,
    /// Dates not worked (`YYYY-MM-DD`, local).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<NaiveDate>,
    /// Extra working dates (a weekend worked in exchange for a bridge day); they have
    /// Monday's hours, or `extra_hours` when given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub working_days: Vec<NaiveDate>,
    /// The working intervals of an extra working day; default: Monday's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_hours: Option<Vec<String>>,
}

/// A checked calendar, ready to count with.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    /// The zone its hours are in.
    pub zone: Tz,
    /// Working intervals (seconds from local midnight, end exclusive), Monday first.
    week: [Vec<(u32, u32)>; 7],
    extra: Vec<(u32, u32)>,
    holidays: BTreeSet<NaiveDate>,
    working_days: BTreeSet<NaiveDate>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A problem in a calendar definition, with the member it is at (`hours/mon/1`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct CalendarError {
    /// Where, as a JSON pointer into the calendar (`/zone`, `/hours/mon/0`).
    pub at: String,
    /// What is wrong.
    pub message: String,
}

fn problem(at: impl Into<String>, message: impl Into<String>) -> CalendarError {
    CalendarError {
        at: at.into(),
        message: message.into(),
    }
}

fn parse_intervals(at: &str, items: &[String]) -> Result<Vec<(u32, u32)>, CalendarError> {
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(items.len());
    for (i, text) in items.iter().enumerate() {
        let p = format!("{at}/{i}");
        let bad = || {
            problem(
                &p,
                format!("'{text}' is not a working interval such as 09:00-17:30"),
            )
        };
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let secs = |t: &str| -> Option<u32> {
            if t.trim() == "24:00" {
                return Some(86_400);
            }
            NaiveTime::parse_from_str(t.trim(), "%H:%M")
                .ok()
                .map(|t| t.num_seconds_from_midnight())
        };
        let (start, end) = (secs(a).ok_or_else(bad)?, secs(b).ok_or_else(bad)?);
        if start >= end {
            return Err(problem(p, format!("'{text}' ends before it starts")));
        }
        if out.last().is_some_and(|&(_, prev_end)| start < prev_end) {
            return Err(problem(
                p,
                format!("'{text}' overlaps or precedes the interval before it; list a day's intervals in order"),
            ));
        }
        out.push((start, end));
    }
    Ok(out)
}

impl Calendar {
    /// Checks `def` and builds the calendar.
    ///
    /// # Errors
    /// The first problem: an unknown zone, an unknown weekday, a malformed, reversed or
    /// overlapping interval, or a week without any working time (no sum could end).
    pub fn new(def: &CalendarDef) -> Result<Calendar, CalendarError> {
        let zone: Tz = def.zone.parse().map_err(|_| {
            problem(
                "/zone",
                format!(
                    "'{}' is not an IANA time zone such as Europe/Berlin",
                    def.zone
                ),
            )
        })?;
        let mut week: [Vec<(u32, u32)>; 7] = Default::default();
        for (day, items) in &def.hours {
            let Some(i) = DAYS.iter().position(|d| d == day) else {
                return Err(problem(
                    format!("/hours/{day}"),
                    format!("'{day}' is not a weekday; use mon, tue, wed, thu, fri, sat, sun"),
                ));
            };
            week[i] = parse_intervals(&format!("/hours/{day}"), items)?;
        }
        if week.iter().all(Vec::is_empty) {
            return Err(problem(
                "/hours",
                "a calendar needs working hours on at least one weekday",
            ));
        }
        let extra = match &def.extra_hours {
            Some(items) => parse_intervals("/extra_hours", items)?,
            None => week[0].clone(),
        };
        Ok(Calendar {
            zone,
            week,
            extra,
            holidays: def.holidays.iter().copied().collect(),
            working_days: def.working_days.iter().copied().collect(),
        })
    }

    /// The working intervals of a local date.
    fn intervals(&self, date: NaiveDate) -> &[(u32, u32)] {
        if self.holidays.contains(&date) {
            &[]
        } else if self.working_days.contains(&date) {
            &self.extra
        } else {
            &self.week[date.weekday().num_days_from_monday() as usize]
        }
    }

    /// The instant a local wall-clock time names: the earlier of two in a repeated hour,
    /// the moment the clocks jump for one in a skipped hour.
    fn instant(&self, date: NaiveDate, secs: u32) -> Option<DateTime<Utc>> {
        let local = date.and_hms_opt(0, 0, 0)? + TimeDelta::seconds(i64::from(secs));
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
            LocalResult::None => self.after_gap(local),
        }
    }

    /// The first instant after a skipped local time: step forward a minute at a time (no
    /// zone skips more than a day).
    fn after_gap(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        (1..=1440).find_map(|m| {
            self.zone
                .from_local_datetime(&(local + TimeDelta::minutes(m)))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
    }

    /// The working intervals of `date` as instants.
    fn spans(
        &self,
        date: NaiveDate,
    ) -> impl DoubleEndedIterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        self.intervals(date)
            .iter()
            .filter_map(move |&(a, b)| Some((self.instant(date, a)?, self.instant(date, b)?)))
    }

    /// True when `t` falls in working time.
    pub fn is_working(&self, t: DateTime<Utc>) -> bool {
        let date = t.with_timezone(&self.zone).date_naive();
        // An interval ending at 24:00 or crossing a clock change is found from its own date.
        [date.pred_opt(), Some(date)]
            .into_iter()
            .flatten()
            .any(|d| self.spans(d).any(|(a, b)| a <= t && t < b))
    }

    /// `from` plus `amount` of working time: the instant at which that much working time
    /// has passed. A sum that ends exactly at the end of an interval ends there (17:00 on
    /// Friday, not 09:00 on Monday). Zero or less is `from` itself.
    ///
    /// `None` when the walk passes [`MAX_WALK_DAYS`] or the years chrono can hold.
    pub fn add_working(&self, from: DateTime<Utc>, amount: TimeDelta) -> Option<DateTime<Utc>> {
        if amount <= TimeDelta::zero() {
            return Some(from);
        }
        let mut left = amount;
        let mut date = from.with_timezone(&self.zone).date_naive().pred_opt()?;
        for _ in 0..MAX_WALK_DAYS {
            for (a, b) in self.spans(date) {
                let start = a.max(from);
                if start >= b {
                    continue;
                }
                let available = b - start;
                if left <= available {
                    return Some(start + left);
                }
                left -= available;
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// `from` minus `amount` of working time: the instant from which `amount` of working
    /// time passes until `from` (an at-risk time or an escalation step counted back from a
    /// deadline). `None` as for [`Calendar::add_working`].
    pub fn sub_working(&self, from: DateTime<Utc>, amount: TimeDelta) -> Option<DateTime<Utc>> {
        if amount <= TimeDelta::zero() {
            return Some(from);
        }
        let mut left = amount;
        let mut date = from.with_timezone(&self.zone).date_naive().succ_opt()?;
        for _ in 0..MAX_WALK_DAYS {
            for (a, b) in self.spans(date).rev() {
                let end = b.min(from);
                if end <= a {
                    continue;
                }
                let available = end - a;
                if left <= available {
                    return Some(end - left);
                }
                left -= available;
            }
            date = date.pred_opt()?;
        }
        None
    }

    /// The first holiday on or after the local date of `t`, within [`MAX_WALK_DAYS`].
    pub fn next_holiday(&self, t: DateTime<Utc>) -> Option<NaiveDate> {
        let today = t.with_timezone(&self.zone).date_naive();
        self.holidays.range(today..).next().copied()
    }

    /// Local midnight of `date` in the calendar's zone (its first instant).
    pub fn start_of(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        self.instant(date, 0)
    }
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;
