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
