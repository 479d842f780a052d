//! Working time in a running workflow, with a hand-moved clock: a quick-response SLA of
//! four office hours, an escalation in office hours, and rules that ask the calendar in CEL.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use waystation_core::calendar::{Calendar, CalendarDef, Calendars};
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_core::{SlaState, Workflow};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// Shanghai office hours (no daylight saving), Monday to Friday, National Day a holiday.
fn calendars() -> Calendars {
    let def: CalendarDef = serde_json::from_value(json!({
        "zone": "Asia/Shanghai",
        "hours": {
            "mon": ["09:00-12:00", "13:00-18:00"], "tue": ["09:00-12:00", "13:00-18:00"],
            "wed": ["09:00-12:00", "13:00-18:00"], "thu": ["09:00-12:00", "13:00-18:00"],
            "fri": ["09:00-12:00", "13:00-18:00"]
        },
        "holidays": ["2026-10-01", "2026-10-02"]
    }))
    .unwrap();
    Calendars::from([(
        "cn-office".to_owned(),
        Arc::new(Calendar::new(&def).unwrap()),
    )])
}

fn quick_response(extra: Value) -> Workflow {
    let mut stage = json!({
        "kind": "wait", "owner": "sales",
        "deadline": "PT4H", "at_risk": "PT1H", "calendar": "cn-office",
        "on": {"confirmed": {"to": "done"}},
        "escalation": [{"after": {"duration": "PT2H", "calendar": "cn-office"}, "actions": [{"tag": "supervisor"}]}]
    });
    if let (Some(s), Some(e)) = (stage.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let definition = json!({
        "id": "quick", "title": "Quick response", "start": "confirm",
        "stages": {"confirm": stage, "done": {"kind": "end", "outcome": "done"}}
    });
    Workflow::from_value_with(&definition, None, &calendars()).expect("compiles")
}

#[test]
fn an_order_received_on_friday_at_half_past_five_is_not_breached_on_saturday_morning() {
    let wf = quick_response(json!({}));
    // Friday 2026-11-27 17:30 in Shanghai (UTC+8).
    let mut sim = Simulation::new(&wf, FakePlugins::new(), utc("2026-11-27T09:30:00Z"));
    let id = sim.start(json!({})).unwrap();
    // Half an hour on Friday, then 3.5 hours on Monday: due Monday 13:30 after lunch.
    assert_eq!(
        sim.state(&id).sla.deadline,
        Some(utc("2026-11-30T05:30:00Z"))
    );
    sim.advance_to(utc("2026-11-28T02:00:00Z")); // Saturday 10:00
    assert_eq!(sim.state(&id).sla.state, SlaState::OnTime);
    assert!(!sim.state(&id).tags.contains("supervisor"));
    // Two office hours: Friday's half hour and Monday 09:00-10:30.
    sim.advance_to(utc("2026-11-30T02:29:00Z"));
    assert!(!sim.state(&id).tags.contains("supervisor"));
    sim.advance_to(utc("2026-11-30T02:30:00Z"));
    assert!(sim.state(&id).tags.contains("supervisor"));
    // At risk one office hour before: Monday 12:30 is lunch, so 11:30 local.
    sim.advance_to(utc("2026-11-30T03:29:00Z"));
    assert_eq!(sim.state(&id).sla.state, SlaState::OnTime);
    sim.advance_to(utc("2026-11-30T03:30:00Z"));
    assert_eq!(sim.state(&id).sla.state, SlaState::AtRisk);
    sim.advance_to(utc("2026-11-30T05:30:00Z"));
    assert_eq!(sim.state(&id).sla.state, SlaState::Breached);
}

#[test]
fn national_day_holidays_do_not_count_toward_the_sla() {
    let wf = quick_response(json!({}));
    // Wednesday 30 September 17:00 local: one hour that day; 1 and 2 October are holidays,
    // then a weekend; three hours on Monday 5 October.
    let mut sim = Simulation::new(&wf, FakePlugins::new(), utc("2026-09-30T09:00:00Z"));
    let id = sim.start(json!({})).unwrap();
    assert_eq!(
        sim.state(&id).sla.deadline,
        Some(utc("2026-10-05T04:00:00Z"))
    );
}

#[test]
fn a_rule_asks_the_calendar_whether_a_holiday_is_near_and_when_four_office_hours_end() {
    let wf = quick_response(json!({
        "actions": [{"set": {
            "in_office": "is_working_time(now, 'cn-office')",
            "holiday_near": "next_holiday(now, 'cn-office') != null && next_holiday(now, 'cn-office') - now < duration('P3D')",
            "answer_by": "add_working(now, 'PT4H', 'cn-office')"
        }}]
    }));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), utc("2026-09-29T01:00:00Z")); // Tue 09:00
    let id = sim.start(json!({})).unwrap();
    let vars = &sim.state(&id).vars;
    assert_eq!(vars["in_office"], json!(true));
    assert_eq!(
        vars["holiday_near"],
        json!(true),
        "1 October is two days away"
    );
    assert_eq!(
        vars["answer_by"],
        json!("2026-09-29T06:00:00Z"),
        "13:00 + 1h after lunch = 14:00 local"
    );
}

#[test]
fn an_expression_naming_an_unknown_calendar_fails_the_step_with_the_name() {
    let wf =
        quick_response(json!({"actions": [{"set": {"x": "is_working_time(now, 'hk-office')"}}]}));
    let mut sim = Simulation::new(&wf, FakePlugins::new(), utc("2026-09-29T01:00:00Z"));
    let id = sim.start(json!({})).unwrap();
    let failure = sim.state(&id).failure.clone().unwrap_or_default();
    assert!(
        failure.contains("no business calendar named 'hk-office'"),
        "{failure}"
    );
}

/// Office hours 09:00-17:00, Monday to Friday, in `zone`.
fn office(zone: &str) -> Calendars {
    let day = json!(["09:00-17:00"]);
    let def: CalendarDef = serde_json::from_value(json!({
        "zone": zone,
        "hours": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day}
    }))
    .unwrap();
    Calendars::from([("office".to_owned(), Arc::new(Calendar::new(&def).unwrap()))])
}

fn two_office_hours(zone: &str) -> Workflow {
    let definition = json!({
        "id": "callback", "title": "Call the customer back", "start": "call",
        "stages": {
            "call": {
                "kind": "wait", "deadline": "PT2H", "calendar": "office",
                "reminders": [{"every": {"duration": "PT1H", "calendar": "office"}, "times": 1, "actions": [{"tag": "reminded"}]}],
                "on": {"called": {"to": "done"}}
            },
            "done": {"kind": "end", "outcome": "done"}
        }
    });
    Workflow::from_value_with(&definition, None, &office(zone)).expect("compiles")
}

#[test]
fn a_callback_due_over_the_weekend_the_clocks_go_forward_in_berlin_is_due_at_ten_local_time() {
    let wf = two_office_hours("Europe/Berlin");
    // Friday 27 March 2026, 16:00 CET; summer time starts on Sunday the 29th.
    let mut sim = Simulation::new(&wf, FakePlugins::new(), utc("2026-03-27T15:00:00Z"));
    let id = sim.start(json!({})).unwrap();
    assert_eq!(
        sim.state(&id).sla.deadline,
        Some(utc("2026-03-30T08:00:00Z"))
    );
    // The reminder after one office hour: Friday 17:00 CET.
    sim.advance_to(utc("2026-03-27T16:00:00Z"));
    assert!(sim.state(&id).tags.contains("reminded"));
    sim.advance_to(utc("2026-03-30T07:59:00Z"));
    assert_eq!(
        sim.state(&id).sla.state,
        SlaState::OnTime,
        "Monday 09:59 CEST"
    );
    sim.advance_to(utc("2026-03-30T08:00:00Z"));
    assert_eq!(sim.state(&id).sla.state, SlaState::Breached);
}

#[test]
fn a_callback_due_over_the_weekend_the_clocks_go_back_in_berlin_is_due_at_ten_local_time() {
    let wf = two_office_hours("Europe/Berlin");
    // Friday 23 October 2026, 16:00 CEST; winter time from Sunday the 25th.
    let mut sim = Simulation::new(&wf, FakePlugins::new(), utc("2026-10-23T14:00:00Z"));
    let id = sim.start(json!({})).unwrap();
    assert_eq!(
        sim.state(&id).sla.deadline,
        Some(utc("2026-10-26T09:00:00Z"))
    );
}

#[test]
fn new_york_callbacks_over_both_clock_changes_are_due_at_ten_local_time() {
    let wf = two_office_hours("America/New_York");
    // Friday 6 March 2026, 16:00 EST (UTC-5); daylight time from Sunday the 8th (UTC-4).
    let mut sim = Simulation::new(&wf, FakePlugins::new(), utc("2026-03-06T21:00:00Z"));
    let spring = sim.start(json!({})).unwrap();
    assert_eq!(
        sim.state(&spring).sla.deadline,
        Some(utc("2026-03-09T14:00:00Z"))
    );
    // Friday 30 October 2026, 16:00 EDT; standard time from Sunday 1 November.
    let mut sim = Simulation::new(&wf, FakePlugins::new(), utc("2026-10-30T20:00:00Z"));
    let autumn = sim.start(json!({})).unwrap();
    assert_eq!(
        sim.state(&autumn).sla.deadline,
        Some(utc("2026-11-02T15:00:00Z"))
    );
    sim.advance_to(utc("2026-11-02T14:59:00Z"));
    assert_eq!(sim.state(&autumn).sla.state, SlaState::OnTime);
    sim.advance_to(utc("2026-11-02T15:00:00Z"));
    assert_eq!(sim.state(&autumn).sla.state, SlaState::Breached);
}
