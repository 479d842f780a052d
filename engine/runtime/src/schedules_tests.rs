//! Cron expressions read in a zone, and what a schedule refuses.

use super::*;

fn spec(cron: &str) -> ScheduleSpec {
    ScheduleSpec {
        cron: cron.to_owned(),
        zone: "Europe/Berlin".to_owned(),
        workflow: "w".to_owned(),
        input: None,
        input_expr: None,
        catch_up: CatchUp::Skip,
        paused: false,
    }
}

#[test]
fn a_cron_that_names_the_thirtieth_of_february_never_runs_and_answers_at_once() {
    let started = std::time::Instant::now();
    let c = compile(&spec("0 0 30 2 *")).expect("it parses");
    let now = Utc::now();
    assert_eq!(c.next_after(now), None);
    assert!(c
        .slots(now - chrono::TimeDelta::days(400), now, 10)
        .is_empty());
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn crontab_fields_read_in_the_zone_thursday_seven_in_shanghai_is_23_utc_on_wednesday() {
    let mut s = spec("0 7 * * Thu");
    s.zone = "Asia/Shanghai".to_owned();
    let c = compile(&s).unwrap();
    let from = DateTime::parse_from_rfc3339("2026-05-11T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let next = c.next_after(from).unwrap();
    assert_eq!(next.to_rfc3339(), "2026-05-13T23:00:00+00:00");
}

#[test]
fn a_bad_cron_and_zone_are_reported_at_their_pointers() {
    let mut s = spec("every thursday");
    s.zone = "Mars/Olympus".to_owned();
    s.input = Some(serde_json::json!([1]));
    let errors = compile(&s).err().unwrap();
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/cron", "/zone", "/input"]);
}

#[test]
fn a_crontab_field_out_of_range_is_named_in_crontab_terms() {
    for (cron, says) in [
        ("99 99 * * *", "the minute field holds 99, outside 0 to 59"),
        ("0 24 * * *", "the hour field holds 24, outside 0 to 23"),
        (
            "0 7 0 * *",
            "the day of month field holds 0, outside 1 to 31",
        ),
        (
            "0 7 1-40 * *",
            "the day of month field holds 40, outside 1 to 31",
        ),
        ("0 7 * 13 *", "the month field holds 13, outside 1 to 12"),
    ] {
        let errors = compile(&spec(cron)).err().unwrap();
        assert_eq!(errors[0].pointer, "/cron");
        assert!(
            errors[0].message.contains(says),
            "{cron}: {}",
            errors[0].message
        );
        assert!(
            !errors[0].message.contains("0 99 99"),
            "{}",
            errors[0].message
        );
    }
    // Steps and names are the parser's: `*/15` and `JAN` still read.
    assert!(compile(&spec("*/15 8-18 * JAN-MAR Mon-Fri")).is_ok());
}

#[test]
fn crontab_weekday_numbers_mean_what_crontab_means_zero_and_seven_are_sunday() {
    // 2026-05-11 is a Monday; the next 07:00 Berlin on each crontab weekday number.
    let from = DateTime::parse_from_rfc3339("2026-05-11T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let next_day = |cron: &str| {
        let next = compile(&spec(cron)).unwrap().next_after(from).unwrap();
        next.with_timezone(&chrono_tz::Europe::Berlin)
            .format("%a %H:%M")
            .to_string()
    };
    assert_eq!(next_day("0 7 * * 4"), "Thu 07:00", "4 is Thursday");
    assert_eq!(next_day("0 7 * * 5"), "Fri 07:00");
    assert_eq!(next_day("0 7 * * 0"), "Sun 07:00");
    assert_eq!(next_day("0 7 * * 7"), "Sun 07:00", "7 is Sunday too");
    assert_eq!(next_day("0 7 * * 1-5"), "Mon 07:00");
    assert_eq!(next_day("0 7 * * 6,0"), "Sat 07:00");
    assert_eq!(next_day("0 7 * * 2-6/2"), "Tue 07:00");
    assert_eq!(next_day("0 7 * * Thu"), "Thu 07:00", "names are unchanged");
    for bad in ["0 7 * * 8", "0 7 * * 5-1", "0 7 * * 1/0"] {
        let errors = compile(&spec(bad)).err().expect(bad);
        assert_eq!(errors[0].pointer, "/cron", "{bad}");
        assert!(
            errors[0].message.contains("weekday"),
            "{bad}: {}",
            errors[0].message
        );
    }
}
