//! Working-time sums over weekends, holidays and both daylight-saving changes of
//! Europe/Berlin and America/New_York, with times written in UTC so every expectation is
//! one instant.

use super::*;
use chrono::DateTime;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn calendar(zone: &str, hours: &[(&str, &[&str])], holidays: &[&str], extra: &[&str]) -> Calendar {
    let def = CalendarDef {
        zone: zone.to_owned(),
        hours: hours
            .iter()
            .map(|(d, h)| ((*d).to_owned(), h.iter().map(|s| (*s).to_owned()).collect()))
            .collect(),
        holidays: holidays.iter().map(|d| d.parse().unwrap()).collect(),
        working_days: extra.iter().map(|d| d.parse().unwrap()).collect(),
        extra_hours: None,
    };
    Calendar::new(&def).unwrap()
}

const OFFICE: &[&str] = &["09:00-12:00", "13:00-17:00"];

fn berlin_office() -> Calendar {
    let week = [
        ("mon", OFFICE),
        ("tue", OFFICE),
        ("wed", OFFICE),
        ("thu", OFFICE),
        ("fri", OFFICE),
    ];
    calendar(
        "Europe/Berlin",
        &week,
        &["2026-12-25", "2026-12-26"],
        &["2026-12-27"],
    )
}

fn hours(h: i64) -> TimeDelta {
    TimeDelta::hours(h)
}

#[test]
fn an_order_received_on_friday_at_half_past_five_is_due_on_monday_after_four_office_hours() {
    let cal = berlin_office();
    // Friday 2026-11-27 17:30 in Berlin (CET, UTC+1).
    let received = utc("2026-11-27T16:30:00Z");
    assert!(!cal.is_working(received));
    // Monday 09:00-12:00 is three hours, the fourth ends at 14:00 after lunch.
    assert_eq!(
        cal.add_working(received, hours(4)),
        Some(utc("2026-11-30T13:00:00Z"))
    );
    assert!(
        !cal.is_working(utc("2026-11-28T09:00:00Z")),
        "Saturday morning"
    );
}

#[test]
fn a_sum_that_ends_with_the_working_day_ends_at_five_not_on_the_next_morning() {
    let cal = berlin_office();
    assert_eq!(
        cal.add_working(utc("2026-11-27T12:00:00Z"), hours(4)), // Fri 13:00 local
        Some(utc("2026-11-27T16:00:00Z"))
    );
}

#[test]
fn christmas_holidays_are_skipped_and_the_worked_sunday_counts_with_mondays_hours() {
    let cal = berlin_office();
    // Thursday 24 December, 16:00 local: one hour left that day; Friday and Saturday are
    // holidays; Sunday 27th is an extra working day (Monday's hours).
    let from = utc("2026-12-24T15:00:00Z");
    assert_eq!(
        cal.add_working(from, hours(2)),
        Some(utc("2026-12-27T09:00:00Z"))
    );
    assert!(!cal.is_working(utc("2026-12-25T10:00:00Z")));
    assert!(cal.is_working(utc("2026-12-27T10:00:00Z")));
    assert_eq!(cal.next_holiday(from), "2026-12-25".parse().ok());
    assert_eq!(
        cal.start_of("2026-12-25".parse().unwrap()),
        Some(utc("2026-12-24T23:00:00Z"))
    );
    assert_eq!(cal.next_holiday(utc("2026-12-27T00:00:00Z")), None);
}

#[test]
fn office_hours_stay_at_nine_local_across_berlins_spring_and_autumn_clock_changes() {
    let cal = berlin_office();
    // Friday 27 March 16:00 CET (UTC+1); the clocks go forward on Sunday the 29th; Monday
    // 09:00 is then 07:00 UTC, so two office hours end at 10:00 CEST = 08:00 UTC.
    assert_eq!(
        cal.add_working(utc("2026-03-27T15:00:00Z"), hours(2)),
        Some(utc("2026-03-30T08:00:00Z"))
    );
    // Friday 23 October 16:00 CEST (UTC+2); back on Sunday the 25th; Monday 10:00 CET.
    assert_eq!(
        cal.add_working(utc("2026-10-23T14:00:00Z"), hours(2)),
        Some(utc("2026-10-26T09:00:00Z"))
    );
    // And backwards: two hours before Monday 10:00 CET is Friday 16:00 CEST.
    assert_eq!(
        cal.sub_working(utc("2026-10-26T09:00:00Z"), hours(2)),
        Some(utc("2026-10-23T14:00:00Z"))
    );
}

#[test]
fn a_night_shift_in_new_york_works_two_hours_on_the_night_the_clocks_skip_one() {
    let cal = calendar("America/New_York", &[("sun", &["01:00-04:00"])], &[], &[]);
    // 8 March 2026: 02:00 EST jumps to 03:00 EDT. 01:00 EST is 06:00 UTC, 04:00 EDT 08:00 UTC.
    let start = utc("2026-03-08T06:00:00Z");
    assert!(cal.is_working(utc("2026-03-08T07:30:00Z")));
    assert_eq!(
        cal.add_working(start, hours(2)),
        Some(utc("2026-03-08T08:00:00Z"))
    );
    // The third hour is the next Sunday's first: 01:00 EDT = 05:00 UTC.
    assert_eq!(
        cal.add_working(start, hours(3)),
        Some(utc("2026-03-15T06:00:00Z"))
    );
}

#[test]
fn a_night_shift_in_new_york_works_four_hours_on_the_night_the_clocks_repeat_one() {
    let cal = calendar("America/New_York", &[("sun", &["00:00-03:00"])], &[], &[]);
    // 1 November 2026: 02:00 EDT falls back to 01:00 EST. 00:00 EDT is 04:00 UTC and
    // 03:00 EST is 08:00 UTC: four real hours.
    let start = utc("2026-11-01T04:00:00Z");
    assert_eq!(
        cal.add_working(start, hours(4)),
        Some(utc("2026-11-01T08:00:00Z"))
    );
    assert!(
        cal.is_working(utc("2026-11-01T06:30:00Z")),
        "the repeated hour is worked"
    );
}

#[test]
fn round_the_clock_working_time_is_elapsed_time_across_a_23_hour_day() {
    let all = &["00:00-24:00"][..];
    let week = [
        ("mon", all),
        ("tue", all),
        ("wed", all),
        ("thu", all),
        ("fri", all),
        ("sat", all),
        ("sun", all),
    ];
    let cal = calendar("America/New_York", &week, &[], &[]);
    let start = utc("2026-03-08T05:00:00Z"); // midnight EST
    assert_eq!(cal.add_working(start, hours(24)), Some(start + hours(24)));
}

#[test]
fn a_bad_zone_an_unknown_weekday_and_overlapping_hours_are_refused_at_their_member() {
    let mut def = CalendarDef {
        zone: "Europe/Berlinn".into(),
        hours: [("mon".to_owned(), vec!["09:00-17:00".to_owned()])].into(),
        holidays: vec![],
        working_days: vec![],
        extra_hours: None,
    };
    assert_eq!(Calendar::new(&def).unwrap_err().at, "/zone");
    def.zone = "Europe/Berlin".into();
    def.hours
        .insert("monday".into(), vec!["09:00-17:00".into()]);
    assert_eq!(Calendar::new(&def).unwrap_err().at, "/hours/monday");
    def.hours.remove("monday");
    def.hours.insert(
        "tue".into(),
        vec!["09:00-13:00".into(), "12:00-17:00".into()],
    );
    assert_eq!(Calendar::new(&def).unwrap_err().at, "/hours/tue/1");
    def.hours.insert("tue".into(), vec!["9-17".into()]);
    let e = Calendar::new(&def).unwrap_err();
    assert_eq!(e.at, "/hours/tue/0");
    assert!(
        e.message.contains("'9-17' is not a working interval"),
        "{e}"
    );
}

#[test]
fn a_calendar_without_any_working_hours_is_refused_so_no_sum_can_walk_forever() {
    let def = CalendarDef {
        zone: "UTC".into(),
        hours: Default::default(),
        holidays: vec![],
        working_days: vec![],
        extra_hours: None,
    };
    assert_eq!(Calendar::new(&def).unwrap_err().at, "/hours");
}
