//! The shared test suite every [`Store`] implementation must pass. The store's own tests
//! call [`run_all`] with a fresh store per case, for the in-memory and the sled backend.

use crate::records::IdempotencyRecord;
use crate::{Commit, InstanceQuery, OutboxStatus, Store};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use waystation_core::definition::Approver;
use waystation_core::drive::{apply_until_quiet, start_until_quiet};
use waystation_core::sim::FakePlugins;
use waystation_core::{Decider, Input, InstanceState, SlaState, Status, Step, Workflow};

/// A support-ticket workflow touching every collection: a deadline with at-risk, a tag, an
/// approval, a notification.
pub const TICKET: &str = r#"{
  "id": "ticket", "title": "Ticket", "start": "triage",
  "stages": {
    "triage": {"kind": "wait", "owner": "agent", "deadline": "PT4H", "at_risk": "PT1H",
               "actions": [{"tag": "support"}],
               "on": {"escalate": {"to": "approve"}, "close": {"to": "closed"}},
               "timeout": {"to": "approve"}},
    "approve": {"kind": "approval", "owner": "lead",
                "actions": [{"notify": "notifier"}],
                "levels": [{"approvers": [{"role": "lead"}]}],
                "on_approve": {"to": "closed"}, "on_reject": {"to": "closed"}},
    "closed": {"kind": "end", "outcome": "resolved"}
  }
}"#;

fn plugins() -> FakePlugins {
    FakePlugins::new().notifier("notifier", |_| {
        Ok(json!({"messages": [{"channel": "log", "recipient": "lead", "subject": "s", "body": "b"}]}))
    })
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn workflow() -> Workflow {
    let mut wf = Workflow::from_text(TICKET, None).expect("the ticket workflow is valid");
    wf.version = 1;
    wf
}

/// Starts instance `id` at `now` and commits it.
fn start(store: &dyn Store, wf: &Workflow, id: &str, now: DateTime<Utc>) -> InstanceState {
    let step = start_until_quiet(wf, id.to_owned(), json!({"n": id}), now, &plugins()).unwrap();
    commit(store, None, &step, None);
    step.state
}

fn commit(
    store: &dyn Store,
    before: Option<&InstanceState>,
    step: &Step,
    fired: Option<(DateTime<Utc>, &str)>,
) {
    store
        .commit(&Commit {
            before,
            after: &step.state,
            effects: &step.effects,
            fired_timer: fired,
            idempotency: None,
        })
        .unwrap();
}

fn apply(
    store: &dyn Store,
    wf: &Workflow,
    id: &str,
    input: Input,
    now: DateTime<Utc>,
) -> InstanceState {
    let before = store.instance(id).unwrap().expect("instance exists");
    let step = apply_until_quiet(wf, before.clone(), input, now, &plugins()).unwrap();
    commit(store, Some(&before), &step, None);
    step.state
}

fn event(name: &str) -> Input {
    Input::Event {
        name: name.to_owned(),
        data: Value::Null,
    }
}

/// Definitions: a changed upload is a new version, an unchanged one is not, old versions stay.
pub fn definitions_are_versioned(store: &dyn Store) {
    let v1 = json!({"id": "x", "title": "one"});
    let v2 = json!({"id": "x", "title": "two"});
    let first = store.put_definition("x", &v1, t0()).unwrap();
    assert_eq!((first.version, first.created), (1, true));
    let again = store.put_definition("x", &v1, t0()).unwrap();
    assert_eq!((again.version, again.created), (1, false));
    let second = store.put_definition("x", &v2, t0()).unwrap();
    assert_eq!((second.version, second.created), (2, true));
    assert_eq!(
        store.latest_definition("x").unwrap().unwrap().definition,
        v2
    );
    assert_eq!(store.definition("x", 1).unwrap().unwrap().definition, v1);
    assert_eq!(store.list_definitions().unwrap(), vec![("x".to_owned(), 2)]);
    assert!(store.latest_definition("nope").unwrap().is_none());
}

/// A commit writes state, history in order, timers and indexes together.
pub fn a_commit_writes_state_history_and_timers(store: &dyn Store) {
    let wf = workflow();
    let state = start(store, &wf, "a", t0());
    assert_eq!(store.instance("a").unwrap().unwrap(), state);
    let history = store.history("a", 0, 100).unwrap();
    assert_eq!(history.len() as u64, state.history_len);
    assert!(history
        .iter()
        .enumerate()
        .all(|(i, (seq, _))| *seq == i as u64));
    assert_eq!(store.history("a", 2, 1).unwrap()[0].0, 2);
    // At risk at +3h, deadline at +4h.
    assert_eq!(store.next_due().unwrap(), Some(t0() + TimeDelta::hours(3)));
    let due = store.due_timers(t0() + TimeDelta::hours(5), 10).unwrap();
    assert_eq!(due.len(), 2);
    assert!(due[0].due < due[1].due);
    assert_eq!(due[0].instance_id, "a");
    assert!(store
        .due_timers(t0() + TimeDelta::hours(2), 10)
        .unwrap()
        .is_empty());
}

/// Leaving a stage removes its timers from the index; a fired timer's key goes too.
pub fn leaving_a_stage_cancels_its_timers(store: &dyn Store) {
    let wf = workflow();
    start(store, &wf, "a", t0());
    apply(store, &wf, "a", event("close"), t0());
    assert_eq!(store.next_due().unwrap(), None);

    start(store, &wf, "b", t0());
    let timer = store
        .due_timers(t0() + TimeDelta::hours(9), 1)
        .unwrap()
        .remove(0);
    let before = store.instance("b").unwrap().unwrap();
    let step = waystation_core::apply(
        &wf,
        before.clone(),
        Input::TimerFired {
            timer_id: timer.timer_id.clone(),
        },
        timer.due,
    )
    .unwrap();
    commit(
        store,
        Some(&before),
        &step,
        Some((timer.due, &timer.timer_id)),
    );
    let left = store.due_timers(t0() + TimeDelta::hours(9), 10).unwrap();
    assert_eq!(left.len(), 1, "only the deadline timer is left");
    assert_ne!(left[0].timer_id, timer.timer_id);
}

/// Approval tasks appear in their role's inbox and leave it when decided.
pub fn approval_tasks_are_listed_by_role_until_decided(store: &dyn Store) {
    let wf = workflow();
    start(store, &wf, "a", t0());
    let state = apply(store, &wf, "a", event("escalate"), t0());
    let lead = Approver::Role("lead".into());
    let page = store.open_tasks(&lead, None, 10).unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].instance_id, "a");
    assert_eq!(
        store.task(&page.items[0].id).unwrap().unwrap(),
        page.items[0]
    );
    assert!(store
        .open_tasks(&Approver::Role("agent".into()), None, 10)
        .unwrap()
        .items
        .is_empty());
    let decision = Input::Decision {
        task_id: state.open_tasks()[0].id.clone(),
        decider: Decider {
            id: "lin".into(),
            roles: vec!["lead".into()],
        },
        approve: true,
        comment: None,
    };
    apply(store, &wf, "a", decision, t0());
    assert!(store.open_tasks(&lead, None, 10).unwrap().items.is_empty());
    assert!(store.task(&page.items[0].id).unwrap().is_none());
}

/// Messages rendered by a notifier are pending in the outbox.
pub fn notifications_land_in_the_outbox(store: &dyn Store) {
    let wf = workflow();
    start(store, &wf, "a", t0());
    apply(store, &wf, "a", event("escalate"), t0());
    let pending = store.outbox(OutboxStatus::Pending, None, 10).unwrap();
    assert_eq!(pending.items.len(), 1);
    assert_eq!(pending.items[0].message.instance_id, "a");
    assert!(store
        .outbox(OutboxStatus::Delivered, None, 10)
        .unwrap()
        .items
        .is_empty());
}

/// An idempotency record is kept with its command's commit.
pub fn idempotency_records_are_kept_with_the_commit(store: &dyn Store) {
    let wf = workflow();
    let step = start_until_quiet(&wf, "a".into(), json!({}), t0(), &plugins()).unwrap();
    let record = IdempotencyRecord {
        fingerprint: "start:ticket:abc".into(),
        response: json!({"id": "a"}),
    };
    store
        .commit(&Commit {
            before: None,
            after: &step.state,
            effects: &step.effects,
            fired_timer: None,
            idempotency: Some(("k1", &record)),
        })
        .unwrap();
    assert_eq!(store.idempotency("k1").unwrap(), Some(record));
    assert_eq!(store.idempotency("k2").unwrap(), None);
}

/// Queries by workflow, stage, status, SLA, tag and staleness, paginated without gaps.
pub fn queries_use_the_indexes_and_paginate(store: &dyn Store) {
    let wf = workflow();
    for i in 0..25 {
        start(
            store,
            &wf,
            &format!("i{i:02}"),
            t0() + TimeDelta::minutes(i),
        );
    }
    for i in 0..5 {
        apply(
            store,
            &wf,
            &format!("i{i:02}"),
            event("close"),
            t0() + TimeDelta::hours(1),
        );
    }
    let q = |f: &dyn Fn(&mut InstanceQuery)| {
        let mut query = InstanceQuery {
            limit: 1000,
            ..Default::default()
        };
        f(&mut query);
        store.query(&query).unwrap().items
    };
    assert_eq!(q(&|x| x.workflow = Some("ticket".into())).len(), 25);
    assert_eq!(
        q(&|x| {
            x.workflow = Some("ticket".into());
            x.stage = Some("triage".into())
        })
        .len(),
        20
    );
    assert_eq!(q(&|x| x.status = Some(Status::Completed)).len(), 5);
    assert_eq!(q(&|x| x.sla = Some(SlaState::OnTime)).len(), 20);
    assert_eq!(q(&|x| x.tag = Some("support".into())).len(), 25);
    assert_eq!(q(&|x| x.tag = Some("nothing".into())).len(), 0);
    let stale = q(&|x| x.updated_before = Some(t0() + TimeDelta::minutes(10)));
    assert_eq!(
        stale.len(),
        5,
        "instances 5..9 started before +10m and were not touched since; 0..4 were closed at +1h"
    );
    assert!(stale
        .iter()
        .all(|s| s.updated_at < t0() + TimeDelta::minutes(10)));

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .query(&InstanceQuery {
                workflow: Some("ticket".into()),
                cursor: cursor.clone(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert!(page.items.len() <= 10);
        seen.extend(page.items.into_iter().map(|s| s.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut expected: Vec<String> = (0..25).map(|i| format!("i{i:02}")).collect();
    expected.sort();
    assert_eq!(seen, expected, "every instance once, in order");

    let bad = store.query(&InstanceQuery {
        cursor: Some("zz".into()),
        ..Default::default()
    });
    assert_eq!(bad.unwrap_err(), crate::StoreError::BadCursor);

    let counts = store.counts("ticket").unwrap();
    assert_eq!(counts.by_stage.get("triage"), Some(&20));
    assert_eq!(counts.by_stage.get("closed"), Some(&5));
    assert_eq!(counts.by_sla.get("on_time"), Some(&20));
}

/// Tokens are found by the hash of their secret, listed, and revoked.
pub fn tokens_are_found_by_hash_and_revoked(store: &dyn Store) {
    let token = crate::TokenRecord {
        id: "t1".into(),
        name: "ci".into(),
        roles: vec!["operator".into()],
        secret_sha256: "ab".repeat(32),
        created_at: t0(),
    };
    store.put_token(&token).unwrap();
    assert_eq!(
        store.token_by_hash(&"ab".repeat(32)).unwrap(),
        Some(token.clone())
    );
    assert_eq!(store.tokens().unwrap(), vec![token]);
    assert!(store.delete_token("t1").unwrap());
    assert!(!store.delete_token("t1").unwrap());
    assert_eq!(store.token_by_hash(&"ab".repeat(32)).unwrap(), None);
}

/// Runs every case, each on a fresh store from `fresh`.
pub fn run_all(fresh: &mut dyn FnMut() -> Box<dyn Store>) {
    type Case = (&'static str, fn(&dyn Store));
    let cases: [Case; 8] = [
        (
            "tokens_are_found_by_hash_and_revoked",
            tokens_are_found_by_hash_and_revoked,
        ),
        ("definitions_are_versioned", definitions_are_versioned),
        (
            "a_commit_writes_state_history_and_timers",
            a_commit_writes_state_history_and_timers,
        ),
        (
            "leaving_a_stage_cancels_its_timers",
            leaving_a_stage_cancels_its_timers,
        ),
        (
            "approval_tasks_are_listed_by_role_until_decided",
            approval_tasks_are_listed_by_role_until_decided,
        ),
        (
            "notifications_land_in_the_outbox",
            notifications_land_in_the_outbox,
        ),
        (
            "idempotency_records_are_kept_with_the_commit",
            idempotency_records_are_kept_with_the_commit,
        ),
        (
            "queries_use_the_indexes_and_paginate",
            queries_use_the_indexes_and_paginate,
        ),
    ];
    for (name, case) in cases {
        let store = fresh();
        eprintln!("conformance: {name}");
        case(store.as_ref());
    }
}
