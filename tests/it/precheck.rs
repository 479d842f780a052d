//! The Thursday pre-check (issue 19): a schedule every Thursday at 07:00 Shanghai time
//! starts `payment-precheck`, which collects next week's orders without payment.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Asia::Shanghai;
use serde_json::{json, Value};
use waystation_tests::server::Server;
use waystation_tests::{load_workflow, root, sample};

fn reference_schedule() -> Value {
    let path = root().join("workflows/schedules/thursday-precheck.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_thursday_precheck_schedule_is_accepted_and_next_runs_on_a_thursday_at_seven_in_shanghai() {
    let server = Server::start();
    let admin = server.admin();
    admin.upload_workflow("payment-precheck");
    let (status, body) = admin.put("/v1/schedules/thursday-precheck", &reference_schedule());
    assert_eq!(status, 201, "{body}");
    let next: DateTime<Utc> = body["next_run"].as_str().unwrap().parse().unwrap();
    let local = next.with_timezone(&Shanghai);
    assert_eq!(local.weekday(), Weekday::Thu, "{local}");
    assert_eq!((local.hour(), local.minute(), local.second()), (7, 0, 0));
    assert!(next > Utc::now() && next - Utc::now() <= chrono::TimeDelta::days(7));
}

#[test]
fn finance_flags_two_unpaid_orders_and_closes_the_check() {
    use waystation_core::sim::{FakePlugins, Simulation};
    let wf = load_workflow("payment-precheck");
    let start = waystation_tests::at("2026-05-13T23:00:00Z"); // Thursday 07:00 in Shanghai
    let mut sim = Simulation::new(&wf, FakePlugins::new(), start);
    let id = sim.start(sample("payment-precheck", "week-20")).unwrap();
    for order in ["202605-014", "202605-031"] {
        sim.event(&id, "missing_payment", json!({"order_no": order}))
            .unwrap();
    }
    assert!(sim
        .event(&id, "missing_payment", json!({"order_no": " "}))
        .is_err());
    // Office hours from 09:00: the first reminder at 11:00 local.
    sim.advance_to(waystation_tests::at("2026-05-14T03:00:00Z"));
    assert!(sim.state(&id).tags.contains("finance-reminded"));
    sim.event(&id, "scanned", json!({})).unwrap();
    let state = sim.state(&id);
    assert_eq!(state.outcome.as_deref(), Some("checked"));
    assert_eq!(state.vars["flagged"], json!(["202605-014", "202605-031"]));
    assert_eq!(state.vars["finished_with"], json!(2));
}
