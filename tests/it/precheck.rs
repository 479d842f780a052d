//! The Thursday pre-check (issue 19): a schedule every Thursday at 07:00 Shanghai time
//! starts `payment-precheck`, which collects next week's orders without payment. The
//! workflow itself is tested in the core (`engine/core/tests/scenarios/payment_precheck.rs`).

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Asia::Shanghai;
use serde_json::Value;
use waystation_tests::root;
use waystation_tests::server::Server;

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
