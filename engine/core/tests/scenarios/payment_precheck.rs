//! The Thursday pre-check (issue 19): `payment-precheck` collects next week's orders
//! without payment, reminds finance in office hours and closes when finance has scanned.

use serde_json::json;
use waystation_core::sim::{FakePlugins, Simulation};
use waystation_fixtures::{at, load_workflow, sample};

#[test]
fn finance_flags_two_unpaid_orders_and_closes_the_check() {
    let wf = load_workflow("payment-precheck");
    let start = at("2026-05-13T23:00:00Z"); // Thursday 07:00 in Shanghai
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
    sim.advance_to(at("2026-05-14T03:00:00Z"));
    assert!(sim.state(&id).tags.contains("finance-reminded"));
    sim.event(&id, "scanned", json!({})).unwrap();
    let state = sim.state(&id);
    assert_eq!(state.outcome.as_deref(), Some("checked"));
    assert_eq!(state.vars["flagged"], json!(["202605-014", "202605-031"]));
    assert_eq!(state.vars["finished_with"], json!(2));
}
