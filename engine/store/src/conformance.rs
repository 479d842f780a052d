//! The shared test suite every [`Store`] implementation must pass. The store's own tests
//! call [`run_all`] with a fresh store per case, for the in-memory and the sled backend.

use crate::records::{DueTimer, IdempotencyRecord};
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

/// [`TICKET`] with a business key: the start payload's `n`.
fn keyed_workflow() -> Workflow {
    let text = TICKET.replacen(
        r#""start": "triage","#,
        r#""start": "triage", "key": "input.n","#,
        1,
    );
    let mut wf = Workflow::from_text(&text, None).expect("the keyed ticket workflow is valid");
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

/// Fires `timer` as the scheduler does: its effect and the removal of its key in one commit.
fn fire(store: &dyn Store, wf: &Workflow, timer: &DueTimer) -> InstanceState {
    let before = store.instance(&timer.instance_id).unwrap().unwrap();
    let step = waystation_core::apply(
        wf,
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
    step.state
}

fn event(name: &str) -> Input {
    Input::Event {
        name: name.to_owned(),
        data: Value::Null,
        stage: None,
    }
}

/// Definitions: a changed upload is a new version, an unchanged one is not, old versions stay.
pub fn definitions_are_versioned(store: &dyn Store) {
    let v1 = json!({"id": "x", "title": "one"});
    let v2 = json!({"id": "x", "title": "two"});
    let admin = waystation_core::Actor {
        token_id: "t1".into(),
        name: "admin-ana".into(),
    };
    let first = store.put_definition("x", &v1, t0(), None).unwrap();
    assert_eq!((first.version, first.created), (1, true));
    let again = store.put_definition("x", &v1, t0(), Some(&admin)).unwrap();
    assert_eq!((again.version, again.created), (1, false));
    let second = store.put_definition("x", &v2, t0(), Some(&admin)).unwrap();
    assert_eq!((second.version, second.created), (2, true));
    assert_eq!(
        store.definition("x", 2).unwrap().unwrap().uploaded_by,
        Some(admin),
        "a version records who uploaded it"
    );
    assert_eq!(
        store.definition("x", 1).unwrap().unwrap().uploaded_by,
        None,
        "an unchanged re-upload does not rewrite the first uploader"
    );
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
    fire(store, &wf, &timer);
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
    assert_eq!(pending.items[0].attempts, 0);
    assert_eq!(
        store
            .outbox_message(&pending.items[0].message.id)
            .unwrap()
            .as_ref(),
        Some(&pending.items[0])
    );
    assert!(store
        .outbox(OutboxStatus::Delivered, None, 10)
        .unwrap()
        .items
        .is_empty());
}

/// Starts `n` tickets and escalates each at `t0 + i` minutes: one pending message each,
/// queued in that order.
fn queue_messages(store: &dyn Store, n: i64) -> Vec<crate::OutboxRecord> {
    let wf = workflow();
    for i in 0..n {
        let id = format!("q{i:02}");
        start(store, &wf, &id, t0());
        apply(
            store,
            &wf,
            &id,
            event("escalate"),
            t0() + TimeDelta::minutes(i),
        );
    }
    let page = store.outbox(OutboxStatus::Pending, None, 1000).unwrap();
    assert_eq!(page.items.len() as i64, n);
    page.items
}

/// Records `after` for `before` with one history entry, as the dispatcher does.
fn record(store: &dyn Store, before: &crate::OutboxRecord, after: &crate::OutboxRecord) {
    let mut instance = store
        .instance(&before.message.instance_id)
        .unwrap()
        .unwrap();
    instance.history_len += 1;
    let entry = waystation_core::HistoryEntry {
        at: t0(),
        event: waystation_core::HistoryEvent::DeliveryAttempted {
            message_id: before.message.id.clone(),
            channel: before.message.channel.clone(),
            attempt: after.attempts,
            outcome: match after.status {
                OutboxStatus::Pending => waystation_core::effect::DeliveryOutcome::Retrying,
                OutboxStatus::Delivered => waystation_core::effect::DeliveryOutcome::Delivered,
                OutboxStatus::Dead => waystation_core::effect::DeliveryOutcome::Dead,
            },
            error: after.last_error.clone(),
            next_attempt_at: after.next_attempt_at,
            duration_ms: 1,
        },
        actor: None,
    };
    store
        .update_message(&crate::DeliveryUpdate {
            before,
            after,
            instance: Some(&instance),
            history: &[entry],
            idempotency: None,
        })
        .unwrap();
}

fn due_ids(store: &dyn Store, until: DateTime<Utc>) -> Vec<String> {
    let mut ids = Vec::new();
    store
        .due_messages(until, None, &mut |m| {
            assert!(m.due <= until);
            assert_eq!(m.channel, "log");
            ids.push(m.id);
            true
        })
        .unwrap();
    ids
}

/// Pending messages are due in order; a failed attempt moves one to its retry time, and the
/// attempt lands in the instance history in the same write.
pub fn retries_are_ordered_by_due_time(store: &dyn Store) {
    let queued = queue_messages(store, 3);
    let ids: Vec<String> = queued.iter().map(|r| r.message.id.clone()).collect();
    assert_eq!(store.next_message_due().unwrap(), Some(t0()));
    assert_eq!(due_ids(store, t0() + TimeDelta::hours(1)), ids);
    assert_eq!(
        due_ids(store, t0()),
        ids[..1],
        "only the first is due at t0"
    );
    let mut stop_after_one = Vec::new();
    store
        .due_messages(t0() + TimeDelta::hours(1), None, &mut |m| {
            stop_after_one.push(m);
            false
        })
        .unwrap();
    assert_eq!(stop_after_one.len(), 1);
    assert_eq!(stop_after_one[0].id, ids[0]);
    let mut resumed = Vec::new();
    store
        .due_messages(
            t0() + TimeDelta::hours(1),
            Some(&stop_after_one[0]),
            &mut |m| {
                resumed.push(m.id);
                true
            },
        )
        .unwrap();
    assert_eq!(resumed, ids[1..], "a read resumes after a message it saw");

    // The first fails and is retried at +30m: the others are now due before it.
    let first = &queued[0];
    let history_before = store
        .instance(&first.message.instance_id)
        .unwrap()
        .unwrap()
        .history_len;
    let retry = crate::OutboxRecord {
        attempts: 1,
        last_error: Some("HTTP 503".into()),
        next_attempt_at: Some(t0() + TimeDelta::minutes(30)),
        last_attempt_at: Some(t0()),
        ..first.clone()
    };
    record(store, first, &retry);
    assert_eq!(
        due_ids(store, t0() + TimeDelta::hours(1)),
        [ids[1].clone(), ids[2].clone(), ids[0].clone()]
    );
    assert_eq!(
        store.next_message_due().unwrap(),
        Some(t0() + TimeDelta::minutes(1))
    );
    assert_eq!(
        store.outbox_message(&ids[0]).unwrap().as_ref(),
        Some(&retry)
    );
    let pending = store.outbox(OutboxStatus::Pending, None, 10).unwrap();
    assert_eq!(pending.items.len(), 3, "still pending, once");
    assert_eq!(pending.items[2], retry, "listed by due time");

    let instance = store.instance(&first.message.instance_id).unwrap().unwrap();
    assert_eq!(instance.history_len, history_before + 1);
    let history = store.history(&instance.id, 0, 1000).unwrap();
    assert_eq!(history.len() as u64, instance.history_len);
    assert!(matches!(
        &history.last().unwrap().1.event,
        waystation_core::HistoryEvent::DeliveryAttempted { attempt: 1, error: Some(e), .. } if e == "HTTP 503"
    ));
    assert!(store.outbox_message("nope").unwrap().is_none());
}

/// Delivered and dead messages leave the pending queue for their own, listed a page at a
/// time; nothing is due once none is pending.
pub fn finished_messages_are_listed_by_status_with_a_cursor(store: &dyn Store) {
    let queued = queue_messages(store, 5);
    for (i, r) in queued.iter().enumerate() {
        let dead = i == 4;
        let after = crate::OutboxRecord {
            status: if dead {
                OutboxStatus::Dead
            } else {
                OutboxStatus::Delivered
            },
            attempts: 1,
            last_error: dead.then(|| "channel 'log' is not configured".to_owned()),
            finished_at: Some(t0() + TimeDelta::hours(1) + TimeDelta::minutes(i as i64)),
            ..r.clone()
        };
        record(store, r, &after);
    }
    assert!(due_ids(store, t0() + TimeDelta::days(1)).is_empty());
    assert_eq!(store.next_message_due().unwrap(), None);
    assert!(store
        .outbox(OutboxStatus::Pending, None, 10)
        .unwrap()
        .items
        .is_empty());
    let dead = store.outbox(OutboxStatus::Dead, None, 10).unwrap();
    assert_eq!(dead.items.len(), 1);
    assert_eq!(dead.items[0].message.id, queued[4].message.id);

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .outbox(OutboxStatus::Delivered, cursor.as_deref(), 3)
            .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|r| r.message.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let expected: Vec<String> = queued[..4].iter().map(|r| r.message.id.clone()).collect();
    assert_eq!(seen, expected, "every delivered message once, in order");
    // A cursor of one status is not one for another.
    let delivered_cursor = store
        .outbox(OutboxStatus::Delivered, None, 1)
        .unwrap()
        .next_cursor
        .unwrap();
    assert_eq!(
        store
            .outbox(OutboxStatus::Dead, Some(&delivered_cursor), 1)
            .unwrap_err(),
        crate::StoreError::BadCursor
    );

    // Put back by an operator: pending again, due at once.
    let dead_record = &dead.items[0];
    let again = crate::OutboxRecord {
        status: OutboxStatus::Pending,
        attempts: 0,
        next_attempt_at: Some(t0() + TimeDelta::days(1)),
        finished_at: None,
        retries: 1,
        ..dead_record.clone()
    };
    record(store, dead_record, &again);
    assert!(store
        .outbox(OutboxStatus::Dead, None, 10)
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        due_ids(store, t0() + TimeDelta::days(1)),
        std::slice::from_ref(&dead_record.message.id)
    );
}

/// An idempotency record is kept with its command's commit.
pub fn idempotency_records_are_kept_with_the_commit(store: &dyn Store) {
    let wf = workflow();
    let step = start_until_quiet(&wf, "a".into(), json!({}), t0(), &plugins()).unwrap();
    let record = IdempotencyRecord {
        fingerprint: "start:ticket:abc".into(),
        response: json!({"id": "a"}),
        at: Some(t0()),
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

/// What is still kept of instance `id`, read through the store's own queries.
fn leftovers(store: &dyn Store, id: &str) -> Vec<String> {
    let mut left = Vec::new();
    if store.instance(id).unwrap().is_some() {
        left.push("instance".to_owned());
    }
    if !store.history(id, 0, 1000).unwrap().is_empty() {
        left.push("history".to_owned());
    }
    let all = InstanceQuery {
        limit: 1000,
        ..InstanceQuery::default()
    };
    if store.query(&all).unwrap().items.iter().any(|s| s.id == id) {
        left.push("instance list".to_owned());
    }
    let by_status = InstanceQuery {
        status: Some(Status::Completed),
        limit: 1000,
        ..InstanceQuery::default()
    };
    if store
        .query(&by_status)
        .unwrap()
        .items
        .iter()
        .any(|s| s.id == id)
    {
        left.push("status index".to_owned());
    }
    for status in [
        OutboxStatus::Pending,
        OutboxStatus::Delivered,
        OutboxStatus::Dead,
    ] {
        let page = store.outbox(status, None, 1000).unwrap();
        if page.items.iter().any(|m| m.message.instance_id == id) {
            left.push(format!("{} outbox message", status.as_str()));
        }
    }
    left
}

/// Finished instances are purged with everything kept for them once they are older than the
/// cut-off, oldest first and at most `max` per call; running ones and younger ones stay,
/// and so does one whose message is still pending.
// Kept whole: one scenario told in order: four instances, a purge held back by a pending message, then one capped by `max`.
pub fn finished_instances_are_purged_after_retention(store: &dyn Store) {
    let wf = workflow();
    let counts_before = store.count_status(Status::Completed).unwrap();
    assert_eq!(counts_before, 0);
    // "old": closed on day 0; "newer": closed on day 2; "open": still running;
    // "approved": escalated (a message queued), delivered, approved on day 1.
    start(store, &wf, "old", t0());
    apply(store, &wf, "old", event("close"), t0());
    start(store, &wf, "newer", t0());
    apply(
        store,
        &wf,
        "newer",
        event("close"),
        t0() + TimeDelta::days(2),
    );
    start(store, &wf, "open", t0());
    start(store, &wf, "approved", t0());
    apply(store, &wf, "approved", event("escalate"), t0());
    let pending = store.outbox(OutboxStatus::Pending, None, 10).unwrap().items;
    assert_eq!(pending.len(), 1);
    let task = store.instance("approved").unwrap().unwrap().open_tasks()[0].clone();
    apply(
        store,
        &wf,
        "approved",
        Input::Decision {
            task_id: task.id,
            decider: Decider {
                id: "lee".into(),
                roles: vec!["lead".into()],
            },
            approve: true,
            comment: None,
        },
        t0() + TimeDelta::days(1),
    );
    assert_eq!(store.count_status(Status::Completed).unwrap(), 3);

    // Its message still pending: "approved" stays; "old" goes.
    let cutoff = t0() + TimeDelta::days(1) + TimeDelta::hours(1);
    store.purge_finished(cutoff, 100).unwrap();
    assert_eq!(leftovers(store, "old"), Vec::<String>::new());
    assert!(store.instance("approved").unwrap().is_some());
    assert!(store.instance("newer").unwrap().is_some());
    assert!(store.instance("open").unwrap().is_some());
    assert_eq!(store.count_status(Status::Completed).unwrap(), 2);

    // Delivered: now it goes too, with its message.
    let before = &pending[0];
    let mut after = before.clone();
    after.status = OutboxStatus::Delivered;
    after.finished_at = Some(t0());
    store
        .update_message(&crate::DeliveryUpdate {
            before,
            after: &after,
            instance: None,
            history: &[],
            idempotency: None,
        })
        .unwrap();
    assert_eq!(store.purge_finished(cutoff, 100).unwrap(), 1);
    assert_eq!(leftovers(store, "approved"), Vec::<String>::new());
    assert!(
        store.instance("newer").unwrap().is_some(),
        "younger than the cut-off"
    );
    assert_eq!(
        store.purge_finished(cutoff, 100).unwrap(),
        0,
        "nothing older is left"
    );

    // At most `max` per call, oldest first.
    assert_eq!(
        store.purge_finished(t0() + TimeDelta::days(30), 1).unwrap(),
        1
    );
    assert!(store.instance("newer").unwrap().is_none());
    assert!(store.instance("open").unwrap().is_some(), "running: kept");
    assert_eq!(store.count_status(Status::Completed).unwrap(), 0);
    assert_eq!(store.count_status(Status::Running).unwrap(), 1);
}

/// Idempotency records expire a configured time after they were kept; a key used again
/// after its record expired keeps its new record.
pub fn idempotency_records_expire(store: &dyn Store) {
    let wf = workflow();
    let keep = |id: &str, key: &str, at: DateTime<Utc>| {
        let step = start_until_quiet(&wf, id.into(), json!({}), at, &plugins()).unwrap();
        let record = IdempotencyRecord {
            fingerprint: format!("start:ticket:{id}"),
            response: json!({"id": id}),
            at: Some(at),
        };
        store
            .commit(&Commit {
                before: None,
                after: &step.state,
                effects: &step.effects,
                fired_timer: None,
                idempotency: Some((key, &record)),
            })
            .unwrap();
        record
    };
    keep("a", "k-old", t0());
    keep("b", "k-reused", t0());
    let newer = keep("c", "k-new", t0() + TimeDelta::hours(30));
    // k-reused expired (it is past its time) and was used again before the purge ran.
    let reused = keep("d", "k-reused", t0() + TimeDelta::hours(26));
    // "Looked at": the embedded stores also count k-reused's first queue entry (its record
    // is kept, being newer); PostgreSQL reads the records' own keeping times, so only k-old.
    let looked_at = store
        .expire_idempotency(t0() + TimeDelta::hours(24), 100)
        .unwrap();
    assert!((1..=2).contains(&looked_at), "{looked_at}");
    assert_eq!(store.idempotency("k-old").unwrap(), None);
    assert_eq!(store.idempotency("k-reused").unwrap(), Some(reused));
    assert_eq!(store.idempotency("k-new").unwrap(), Some(newer));
    assert_eq!(
        store
            .expire_idempotency(t0() + TimeDelta::hours(24), 100)
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .expire_idempotency(t0() + TimeDelta::days(3), 100)
            .unwrap(),
        2
    );
    assert_eq!(store.idempotency("k-reused").unwrap(), None);
    assert_eq!(store.idempotency("k-new").unwrap(), None);
}

/// Queries by workflow, stage, status, SLA, tag and staleness, paginated without gaps.
// Kept whole: one seeded store read every way: each filter, the pages in order, a foreign cursor, the counts.
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
    assert_eq!(
        q(&|x| x.untouched = Some(true)).len(),
        20,
        "nobody acted in triage"
    );
    assert_eq!(q(&|x| x.untouched = Some(false)).len(), 0);
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

/// The counts `/metrics` and the board read follow every commit: starts, stage changes,
/// an instance turning at risk, an end. Asked for before anything exists (so they are kept
/// from then on, not scanned at the end) and checked after each step.
pub fn counts_follow_every_commit(store: &dyn Store) {
    let wf = workflow();
    let counts = |store: &dyn Store| {
        let c = store.counts("ticket").unwrap();
        let n = |m: &std::collections::BTreeMap<String, u64>, k: &str| m.get(k).copied();
        (
            [
                n(&c.by_stage, "triage"),
                n(&c.by_stage, "approve"),
                n(&c.by_stage, "closed"),
            ],
            [n(&c.by_sla, "on_time"), n(&c.by_sla, "at_risk")],
            [
                store.count_status(Status::Running).unwrap(),
                store.count_status(Status::Completed).unwrap(),
            ],
        )
    };
    assert_eq!(counts(store), ([None; 3], [None; 2], [0, 0]), "nothing yet");

    for i in 0..10 {
        start(store, &wf, &format!("i{i}"), t0());
    }
    assert_eq!(
        counts(store),
        ([Some(10), None, None], [Some(10), None], [10, 0])
    );

    for i in 0..3 {
        apply(store, &wf, &format!("i{i}"), event("close"), t0());
    }
    for i in 3..5 {
        apply(store, &wf, &format!("i{i}"), event("escalate"), t0());
    }
    assert_eq!(
        counts(store),
        ([Some(5), Some(2), Some(3)], [Some(7), None], [7, 3]),
        "closed ones leave the SLA counts; escalated ones change stage"
    );

    // i5's at-risk timer fires: one running instance moves from on time to at risk.
    let timer = store
        .due_timers(t0() + TimeDelta::hours(3), 100)
        .unwrap()
        .into_iter()
        .find(|t| t.instance_id == "i5")
        .expect("i5 has an at-risk timer at +3h");
    assert_eq!(fire(store, &wf, &timer).sla.state, SlaState::AtRisk);
    assert_eq!(
        counts(store),
        ([Some(5), Some(2), Some(3)], [Some(6), Some(1)], [7, 3])
    );

    apply(store, &wf, "i5", event("close"), t0() + TimeDelta::hours(3));
    assert_eq!(
        counts(store),
        ([Some(4), Some(2), Some(4)], [Some(6), None], [6, 4]),
        "a group that empties is gone, as from a scan of the index"
    );
}

/// The report counts of `figure` of the ticket workflow, all instances, every bucket.
pub fn report_count(store: &dyn Store, figure: &str) -> i64 {
    let mut total = 0;
    store
        .report_cells("ticket", "", (0, i64::MAX), &mut |_, _, f, cell| {
            if f == figure {
                total += cell.count();
            }
            Ok(())
        })
        .unwrap();
    total
}

/// Report rollups: commits write what they move as delta records and folds add them into
/// the cells, some while commits go on (as the runtime's folder thread folds), the rest
/// before a report reads. Whichever fold takes a record, and however commits interleave,
/// every commit counts exactly once.
pub fn report_rollups_count_every_commit_once(store: &dyn Store) {
    let wf = workflow();
    // Four writers at once, and a folder folding while they commit.
    let writing = std::sync::atomic::AtomicBool::new(true);
    std::thread::scope(|s| {
        s.spawn(|| {
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                store.fold_reports().unwrap();
                std::thread::yield_now();
            }
        });
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let wf = &wf;
                s.spawn(move || {
                    for i in 0..200 {
                        start(store, wf, &format!("w{w}-{i}"), t0());
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        writing.store(false, std::sync::atomic::Ordering::Relaxed);
    });
    for i in 0..300 {
        apply(
            store,
            &wf,
            &format!("w{}-{}", i % 4, i / 4),
            event("close"),
            t0(),
        );
    }
    assert_eq!(report_count(store, "started"), 800);
    assert_eq!(report_count(store, "running"), 500);
    assert_eq!(report_count(store, "ended/completed"), 300);
    assert_eq!(report_count(store, "outcome/resolved"), 300);
    assert_eq!(
        store.fold_reports().unwrap(),
        0,
        "the report read folded everything pending"
    );
    assert_eq!(
        report_count(store, "started"),
        800,
        "reading twice adds nothing"
    );
}

/// Report retention: the cells of buckets before the cut are deleted a bounded batch at a
/// time, newer ones stay, and a fold after the purge does not write a purged cell back
/// from what it remembered.
pub fn old_report_cells_are_purged_and_stay_purged(store: &dyn Store) {
    let wf = workflow();
    // Each start in a 15-minute bucket of its own, so there is more to purge than one
    // batch of two takes, whether a store keeps a cell per figure or per bucket.
    for i in 0..5 {
        let later = TimeDelta::minutes(20 * i);
        start(store, &wf, &format!("old{i}"), t0() + later);
        start(
            store,
            &wf,
            &format!("new{i}"),
            t0() + TimeDelta::days(10) + later,
        );
    }
    assert_eq!(report_count(store, "started"), 10, "read (and folded) once");
    let cut = waystation_core::report::bucket(t0() + TimeDelta::days(5));
    let mut purged = 0;
    loop {
        let n = store.purge_report_cells(cut, 2).unwrap();
        assert!(n <= 2, "at most the batch asked for");
        purged += n;
        if n < 2 {
            break;
        }
    }
    assert!(purged >= 2, "the old bucket's cells went ({purged})");
    assert_eq!(
        report_count(store, "started"),
        5,
        "only the newer starts count"
    );
    // One more start in the purged period: its cell starts from nothing.
    start(store, &wf, "late", t0());
    assert_eq!(report_count(store, "started"), 6);
    assert!(store.purge_report_cells(cut, 100).unwrap() > 0);
    assert_eq!(report_count(store, "started"), 5);
    assert_eq!(
        store.purge_report_cells(cut, 100).unwrap(),
        0,
        "nothing older is left"
    );
}

/// Several instances' timers fired in one `commit_all` batch: each instance moves, each
/// timer's index key goes, and the counts follow, as if committed one by one.
pub fn timers_of_many_instances_fire_in_one_batch(store: &dyn Store) {
    let wf = workflow();
    for i in 0..5 {
        start(store, &wf, &format!("t{i}"), t0());
    }
    let due = store.due_timers(t0() + TimeDelta::hours(3), 100).unwrap();
    let firsts: Vec<&DueTimer> = (0..5)
        .map(|i| {
            due.iter()
                .find(|t| t.instance_id == format!("t{i}"))
                .expect("each ticket has its at-risk timer due at +3 h")
        })
        .collect();
    let befores: Vec<InstanceState> = firsts
        .iter()
        .map(|t| store.instance(&t.instance_id).unwrap().unwrap())
        .collect();
    let steps: Vec<Step> = firsts
        .iter()
        .zip(&befores)
        .map(|(t, b)| {
            let input = Input::TimerFired {
                timer_id: t.timer_id.clone(),
            };
            waystation_core::apply(&wf, b.clone(), input, t.due).unwrap()
        })
        .collect();
    let commits: Vec<Commit<'_>> = firsts
        .iter()
        .zip(&befores)
        .zip(&steps)
        .map(|((t, b), s)| Commit {
            before: Some(b),
            after: &s.state,
            effects: &s.effects,
            fired_timer: Some((t.due, t.timer_id.as_str())),
            idempotency: None,
        })
        .collect();
    store.commit_all(&commits).unwrap();
    for t in &firsts {
        let s = store.instance(&t.instance_id).unwrap().unwrap();
        assert_eq!(s.sla.state, SlaState::AtRisk, "{}", t.instance_id);
        assert!(
            store.history(&t.instance_id, 0, 100).unwrap().len() as u64 == s.history_len,
            "its history entries are there"
        );
    }
    let left = store.due_timers(t0() + TimeDelta::hours(3), 100).unwrap();
    assert!(
        left.iter()
            .all(|l| firsts.iter().all(|f| f.timer_id != l.timer_id)),
        "every fired timer's key went with its effect: {left:?}"
    );
    let c = store.counts("ticket").unwrap();
    assert_eq!(c.by_sla.get("at_risk"), Some(&5));
}

/// The due scan starts past the timers already fired (their keys are tombstones an LSM
/// scan from the front would walk), yet a timer armed afterwards that is due before them
/// (a deadline already past when it was armed) is found, by the scan and by `next_due`.
pub fn a_timer_armed_due_before_those_already_fired_is_still_found(store: &dyn Store) {
    let wf = workflow();
    let horizon = t0() + TimeDelta::hours(3);
    for i in 0..3 {
        start(store, &wf, &format!("f{i}"), t0());
    }
    let due = store.due_timers(horizon, 100).unwrap();
    assert_eq!(due.len(), 3, "{due:?}");
    for t in &due {
        fire(store, &wf, t);
    }
    assert!(store.due_timers(horizon, 100).unwrap().is_empty());
    // Armed now, due a day before every timer fired above.
    start(store, &wf, "late", t0() - TimeDelta::days(1));
    let due = store.due_timers(horizon, 100).unwrap();
    assert!(
        due.iter().any(|t| t.instance_id == "late"),
        "the earlier timer is due: {due:?}"
    );
    let next = store.next_due().unwrap().expect("a timer is armed");
    assert!(next < t0(), "next due {next} is the earlier timer's");
}

/// A parent whose sub-workflow stage starts a ticket as its child.
const CALLER: &str = r#"{
  "id": "caller", "title": "Caller", "start": "call",
  "stages": {
    "call": {"kind": "subworkflow", "workflow": "ticket", "result": "ticket",
             "on_outcome": {"resolved": {"to": "done"}}},
    "done": {"kind": "end", "outcome": "done"}
  }
}"#;

/// Sub-workflows: the parent and the child it starts commit in one batch; the child's end
/// leaves a record due at once under the parent (`<child>.ended`), which the parent's
/// commit taking the end deletes; a parent leaving the stage leaves a cancel record under
/// the child (`<child>.cancel`).
// Kept whole: one scenario told in order: parent and child, the child's end relayed, a cancellation relayed.
pub fn child_ends_and_cancellations_are_relayed_through_the_timer_index(store: &dyn Store) {
    let ticket = workflow();
    let mut caller = Workflow::from_text(CALLER, None).expect("the caller workflow is valid");
    caller.version = 1;
    let relays = |until: DateTime<Utc>| -> Vec<(String, String)> {
        store
            .due_timers(until, 100)
            .unwrap()
            .into_iter()
            .filter(|t| waystation_core::ChildRef::relay(&t.timer_id).is_some())
            .map(|t| (t.instance_id, t.timer_id))
            .collect()
    };

    // The parent and its child, in one batch.
    let parent = start_until_quiet(&caller, "p1".into(), json!({}), t0(), &plugins()).unwrap();
    let spec = parent
        .effects
        .iter()
        .find_map(|e| match e {
            waystation_core::Effect::StartChild(s) => Some(s.clone()),
            _ => None,
        })
        .expect("the stage asks for its child");
    let mut child =
        start_until_quiet(&ticket, spec.id.clone(), spec.input, t0(), &plugins()).unwrap();
    child.state.parent = Some(spec.parent);
    store
        .commit_all(&[
            Commit {
                before: None,
                after: &parent.state,
                effects: &parent.effects,
                fired_timer: None,
                idempotency: None,
            },
            Commit {
                before: None,
                after: &child.state,
                effects: &child.effects,
                fired_timer: None,
                idempotency: None,
            },
        ])
        .unwrap();
    assert_eq!(
        store.instance("p1").unwrap().unwrap().child.unwrap().id,
        spec.id
    );
    assert!(relays(t0() + TimeDelta::days(1)).is_empty());

    // The child closes: a record for the parent, due at once.
    let later = t0() + TimeDelta::minutes(5);
    let ended = apply(store, &ticket, &spec.id, event("close"), later);
    assert_eq!(ended.status, Status::Completed);
    let record = waystation_core::ChildRef::end_record(&spec.id);
    assert_eq!(relays(later), vec![("p1".to_owned(), record.clone())]);

    // The parent takes the end; the record goes with it.
    let before = store.instance("p1").unwrap().unwrap();
    let input = Input::ChildEnded {
        child: spec.id.clone(),
        status: ended.status,
        outcome: ended.outcome.clone(),
        reason: None,
        output: Value::Object(ended.vars.clone()),
    };
    let step = apply_until_quiet(&caller, before.clone(), input, later, &plugins()).unwrap();
    commit(store, Some(&before), &step, Some((later, &record)));
    assert_eq!(
        store.instance("p1").unwrap().unwrap().outcome.as_deref(),
        Some("done")
    );
    assert!(
        relays(later + TimeDelta::days(1)).is_empty(),
        "the record went"
    );

    // A second parent cancelled while its child runs: a cancel record under the child.
    let parent = start_until_quiet(&caller, "p2".into(), json!({}), t0(), &plugins()).unwrap();
    let child = parent.state.child.clone().unwrap().id;
    let started = start_until_quiet(&ticket, child.clone(), json!({}), t0(), &plugins()).unwrap();
    store
        .commit_all(&[
            Commit {
                before: None,
                after: &parent.state,
                effects: &parent.effects,
                fired_timer: None,
                idempotency: None,
            },
            Commit {
                before: None,
                after: &started.state,
                effects: &started.effects,
                fired_timer: None,
                idempotency: None,
            },
        ])
        .unwrap();
    let cancel = Input::Cancel {
        by: "ops".into(),
        reason: None,
    };
    apply(store, &caller, "p2", cancel, later);
    assert_eq!(
        relays(later),
        vec![(
            child.clone(),
            waystation_core::ChildRef::cancel_record(&child)
        )]
    );
}

/// Runs every case, each on a fresh store from `fresh`.
///
/// One piece, though long: it is the table of the suite's cases, one row each.
pub fn run_all(fresh: &mut dyn FnMut() -> Box<dyn Store>) {
    type Case = (&'static str, fn(&dyn Store));
    let cases: [Case; 23] = [
        (
            "a_timer_armed_due_before_those_already_fired_is_still_found",
            a_timer_armed_due_before_those_already_fired_is_still_found,
        ),
        (
            "a_running_instance_holds_its_business_key_until_it_ends",
            a_running_instance_holds_its_business_key_until_it_ends,
        ),
        (
            "each_branch_of_a_parallel_stage_arms_its_own_deadline",
            each_branch_of_a_parallel_stage_arms_its_own_deadline,
        ),
        (
            "each_branchs_work_is_found_under_its_assignee",
            each_branchs_work_is_found_under_its_assignee,
        ),
        (
            "a_copied_store_answers_as_the_original",
            a_copied_store_answers_as_the_original,
        ),
        (
            "schedules_are_kept_replaced_and_deleted",
            crate::schedules::schedules_are_kept_replaced_and_deleted,
        ),
        (
            "finished_instances_are_purged_after_retention",
            finished_instances_are_purged_after_retention,
        ),
        ("idempotency_records_expire", idempotency_records_expire),
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
            "retries_are_ordered_by_due_time",
            retries_are_ordered_by_due_time,
        ),
        (
            "finished_messages_are_listed_by_status_with_a_cursor",
            finished_messages_are_listed_by_status_with_a_cursor,
        ),
        (
            "idempotency_records_are_kept_with_the_commit",
            idempotency_records_are_kept_with_the_commit,
        ),
        (
            "queries_use_the_indexes_and_paginate",
            queries_use_the_indexes_and_paginate,
        ),
        ("counts_follow_every_commit", counts_follow_every_commit),
        (
            "report_rollups_count_every_commit_once",
            report_rollups_count_every_commit_once,
        ),
        (
            "old_report_cells_are_purged_and_stay_purged",
            old_report_cells_are_purged_and_stay_purged,
        ),
        (
            "timers_of_many_instances_fire_in_one_batch",
            timers_of_many_instances_fire_in_one_batch,
        ),
        (
            "child_ends_and_cancellations_are_relayed_through_the_timer_index",
            child_ends_and_cancellations_are_relayed_through_the_timer_index,
        ),
    ];
    for (name, case) in cases {
        let store = fresh();
        eprintln!("conformance: {name}");
        case(store.as_ref());
    }
}

/// Starts instance `id` of [`TICKET`] with business key `key` and commits it.
pub fn start_keyed_ticket(store: &dyn Store, id: &str, key: &str) -> InstanceState {
    let step = start_until_quiet(
        &keyed_workflow(),
        id.to_owned(),
        json!({"n": key}),
        t0(),
        &plugins(),
    )
    .unwrap();
    commit(store, None, &step, None);
    step.state
}

/// A running instance holds its business key, and only while it runs: the key is free
/// again once it is closed, and a new instance may take it (the runtime asks before every
/// keyed start).
pub fn a_running_instance_holds_its_business_key_until_it_ends(store: &dyn Store) {
    let wf = keyed_workflow();
    let first = start(store, &wf, "ORDER-1", t0());
    assert_eq!(first.key.as_deref(), Some("ORDER-1"));
    assert_eq!(
        store
            .running_with_key("ticket", "ORDER-1")
            .unwrap()
            .as_deref(),
        Some("ORDER-1")
    );
    assert_eq!(store.running_with_key("ticket", "ORDER-2").unwrap(), None);
    assert_eq!(store.running_with_key("other", "ORDER-1").unwrap(), None);
    let closed = apply(store, &wf, "ORDER-1", event("close"), t0());
    assert_eq!(closed.status, Status::Completed);
    assert_eq!(store.running_with_key("ticket", "ORDER-1").unwrap(), None);
    // The same key again, on a new instance: held by it, not by the closed one.
    start_keyed_ticket(store, "again", "ORDER-1");
    assert_eq!(
        store
            .running_with_key("ticket", "ORDER-1")
            .unwrap()
            .as_deref(),
        Some("again")
    );
}

/// Two departments confirm side by side, each within an hour: both branches' deadlines are
/// in the timer index from the start, a branch that confirms takes its deadline out, and the
/// other's fires (the index is what the scheduler reads, on every store).
pub fn each_branch_of_a_parallel_stage_arms_its_own_deadline(store: &dyn Store) {
    let branch = |dept: &str| {
        json!({"kind": "wait", "owner": dept, "deadline": "PT1H",
               "on": {"confirmed": {"to": format!("{dept}_done")}},
               "timeout": {"to": format!("{dept}_late")}})
    };
    let definition = json!({
        "id": "confirm", "title": "Departments confirm", "start": "confirm",
        "stages": {
            "confirm": {"kind": "parallel", "owner": "planner",
                        "branches": [{"name": "production", "start": "production_confirm"},
                                     {"name": "logistics", "start": "logistics_confirm"}],
                        "join": {"rule": "all"}, "transitions": [{"to": "done"}]},
            "production_confirm": branch("production"),
            "logistics_confirm": branch("logistics"),
            "production_done": {"kind": "end", "outcome": "confirmed"},
            "production_late": {"kind": "end", "outcome": "late"},
            "logistics_done": {"kind": "end", "outcome": "confirmed"},
            "logistics_late": {"kind": "end", "outcome": "late"},
            "done": {"kind": "end", "outcome": "done"}
        }
    });
    let mut wf = Workflow::from_value(&definition, None).expect("the definition is valid");
    wf.version = 1;
    start(store, &wf, "p", t0());
    let due = |store: &dyn Store| store.due_timers(t0() + TimeDelta::hours(2), 100).unwrap();
    let armed = due(store);
    assert_eq!(armed.len(), 2, "one deadline per branch: {armed:?}");
    assert!(armed
        .iter()
        .all(|t| t.instance_id == "p" && t.due == t0() + TimeDelta::hours(1)));
    let confirmed = Input::Event {
        name: "confirmed".into(),
        data: Value::Null,
        stage: Some("production_confirm".into()),
    };
    apply(store, &wf, "p", confirmed, t0() + TimeDelta::minutes(10));
    let left = due(store);
    assert_eq!(
        left.len(),
        1,
        "production confirmed: its deadline left the index"
    );
    let state = fire(store, &wf, &left[0]);
    assert_eq!(
        state.status,
        Status::Completed,
        "logistics late, the join is satisfied"
    );
    assert!(due(store).is_empty());
}

/// Two departments confirm side by side and each branch's work goes to its own person:
/// "my work" (the query by assignee) finds the instance under either, and no longer under
/// one whose branch ended or who released it (the index follows every commit).
pub fn each_branchs_work_is_found_under_its_assignee(store: &dyn Store) {
    let branch = |dept: &str| {
        json!({"kind": "wait", "owner": dept,
               "on": {"confirmed": {"to": format!("{dept}_done")}}})
    };
    let definition = json!({
        "id": "confirm", "title": "Departments confirm", "start": "confirm",
        "stages": {
            "confirm": {"kind": "parallel", "owner": "planner",
                        "branches": [{"name": "production", "start": "production_confirm"},
                                     {"name": "logistics", "start": "logistics_confirm"}],
                        "transitions": [{"to": "done"}]},
            "production_confirm": branch("production"),
            "logistics_confirm": branch("logistics"),
            "production_done": {"kind": "end", "outcome": "confirmed"},
            "logistics_done": {"kind": "end", "outcome": "confirmed"},
            "done": {"kind": "end", "outcome": "done"}
        }
    });
    let mut wf = Workflow::from_value(&definition, None).expect("the definition is valid");
    wf.version = 1;
    start(store, &wf, "p", t0());
    start(store, &wf, "q", t0());
    let at = |n: i64| t0() + TimeDelta::minutes(n);
    let give = |stage: &str, to: Option<&str>| Input::Assign {
        assignee: to.map(str::to_owned),
        by: "lead".to_owned(),
        stage: Some(stage.to_owned()),
    };
    apply(
        store,
        &wf,
        "p",
        give("production_confirm", Some("mei")),
        at(1),
    );
    apply(
        store,
        &wf,
        "p",
        give("logistics_confirm", Some("kasia")),
        at(2),
    );
    apply(
        store,
        &wf,
        "q",
        give("logistics_confirm", Some("mei")),
        at(3),
    );
    let work = |who: &str| -> Vec<String> {
        let page = store
            .query(&crate::InstanceQuery {
                assignee: Some(who.to_owned()),
                limit: 10,
                ..crate::InstanceQuery::default()
            })
            .unwrap();
        let mut ids: Vec<String> = page.items.into_iter().map(|s| s.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(work("mei"), ["p", "q"], "mei has a branch of each");
    assert_eq!(work("kasia"), ["p"]);
    assert!(work("lead").is_empty(), "who assigned holds nothing");

    let confirmed = Input::Event {
        name: "confirmed".into(),
        data: Value::Null,
        stage: Some("logistics_confirm".into()),
    };
    apply(store, &wf, "p", confirmed, at(4));
    assert!(work("kasia").is_empty(), "her branch ended");
    apply(store, &wf, "q", give("logistics_confirm", None), at(5));
    assert_eq!(work("mei"), ["p"], "she released q's logistics work");
}

/// Everything one store holds, read through the traits, for comparing two stores.
#[derive(Debug, PartialEq)]
struct Everything {
    definitions: Vec<crate::StoredDefinition>,
    instances: Vec<(InstanceState, Vec<(u64, waystation_core::HistoryEntry)>)>,
    timers: Vec<DueTimer>,
    tasks: Vec<waystation_core::ApprovalTask>,
    messages: Vec<crate::OutboxRecord>,
    idempotency: Vec<(String, IdempotencyRecord)>,
    tokens: Vec<crate::TokenRecord>,
    schedules: Vec<crate::ScheduleRecord>,
    counts: crate::Counts,
    running: u64,
    completed: u64,
    reports: Vec<(i64, String, String, i64)>,
}

fn everything(store: &dyn Store) -> Everything {
    let mut definitions = Vec::new();
    for (id, latest) in store.list_definitions().unwrap() {
        for v in 1..=latest {
            definitions.push(store.definition(&id, v).unwrap().unwrap());
        }
    }
    let instances = store
        .instance_ids(None, 1000)
        .unwrap()
        .iter()
        .map(|id| {
            (
                store.instance(id).unwrap().unwrap(),
                store.history(id, 0, 10_000).unwrap(),
            )
        })
        .collect();
    let messages = [
        OutboxStatus::Pending,
        OutboxStatus::Delivered,
        OutboxStatus::Dead,
    ]
    .iter()
    .flat_map(|s| store.outbox(*s, None, 1000).unwrap().items)
    .collect();
    let lead = Approver::Role("lead".into());
    let mut reports = Vec::new();
    store
        .report_cells(
            "ticket",
            "",
            (0, i64::MAX),
            &mut |bucket, group, figure, cell| {
                reports.push((bucket, group.to_owned(), figure.to_owned(), cell.count()));
                Ok(())
            },
        )
        .unwrap();
    Everything {
        definitions,
        instances,
        timers: store.due_timers(t0() + TimeDelta::days(365), 1000).unwrap(),
        tasks: store.open_tasks(&lead, None, 1000).unwrap().items,
        messages,
        idempotency: store.idempotency_records(None, 1000).unwrap(),
        tokens: store.tokens().unwrap(),
        schedules: store.schedules().unwrap(),
        counts: store.counts("ticket").unwrap(),
        running: store.count_status(Status::Running).unwrap(),
        completed: store.count_status(Status::Completed).unwrap(),
        reports,
    }
}

/// `waystation store migrate` between kinds of store: a store with running, waiting,
/// escalated and finished tickets, messages pending, delivered and dead, idempotency
/// records, a token and a schedule is copied into the store under test and back into a
/// new in-memory store; each copy answers every read as the original does (timers, inbox,
/// counts and report figures included), and a copy into a store that holds data is
/// refused.
// Kept whole: one scenario told in order: fill, copy there and back, compare each copy, refuse a full target.
pub fn a_copied_store_answers_as_the_original(store: &dyn Store) {
    let original_store = crate::MemoryStore::default();
    let source: &dyn Store = &original_store;
    let wf = workflow();
    let admin = waystation_core::Actor {
        token_id: "t1".into(),
        name: "admin-ana".into(),
    };
    let v1: Value = serde_json::from_str(TICKET).unwrap();
    let mut v2 = v1.clone();
    v2["title"] = json!("Ticket, second version");
    source
        .put_definition("ticket", &v1, t0(), Some(&admin))
        .unwrap();
    source
        .put_definition("ticket", &v2, t0() + TimeDelta::hours(1), None)
        .unwrap();
    for id in ["waiting", "escalated", "delivered", "dead", "closed"] {
        start(source, &wf, id, t0());
    }
    for id in ["escalated", "delivered", "dead"] {
        apply(
            source,
            &wf,
            id,
            event("escalate"),
            t0() + TimeDelta::minutes(5),
        );
    }
    apply(
        source,
        &wf,
        "closed",
        event("close"),
        t0() + TimeDelta::minutes(7),
    );
    let pending = source
        .outbox(OutboxStatus::Pending, None, 10)
        .unwrap()
        .items;
    for m in &pending {
        let (status, error) = match m.message.instance_id.as_str() {
            "delivered" => (OutboxStatus::Delivered, None),
            "dead" => (OutboxStatus::Dead, Some("410 Gone".to_owned())),
            _ => continue,
        };
        let mut after = m.clone();
        after.status = status;
        after.attempts = 1;
        after.last_error = error;
        record(source, m, &after);
    }
    let kept = IdempotencyRecord {
        fingerprint: "start:ticket:abc".into(),
        response: json!({"id": "waiting"}),
        at: Some(t0()),
    };
    source.put_idempotency("key-1", &kept).unwrap();
    source
        .put_token(&crate::TokenRecord {
            id: "t1".into(),
            name: "admin-ana".into(),
            roles: vec!["admin".into()],
            secret_sha256: "cd".repeat(32),
            created_at: t0(),
        })
        .unwrap();
    source
        .put_schedule(&crate::ScheduleRecord {
            id: "daily-summary".into(),
            spec: crate::ScheduleSpec {
                cron: "0 17 * * *".into(),
                zone: "Europe/Berlin".into(),
                workflow: "ticket".into(),
                input: None,
                input_expr: None,
                catch_up: crate::CatchUp::Last,
                paused: false,
            },
            last_slot: t0(),
            created_at: t0(),
            updated_at: t0(),
        })
        .unwrap();
    // A cancellation owed to a child and not yet taken (as a parent's cancel leaves it):
    // a row of the timer index that no state derives.
    let owed = DueTimer {
        due: t0() + TimeDelta::minutes(8),
        timer_id: "waiting.cancel".into(),
        instance_id: "waiting".into(),
    };
    source.restore_timer(&owed).unwrap();
    let original = everything(source);
    assert!(original.timers.contains(&owed));
    assert_eq!(original.instances.len(), 5);
    assert_eq!(
        original.messages.len(),
        3,
        "one pending, one delivered, one dead"
    );

    let copied = crate::transfer(source, store).unwrap();
    assert_eq!(
        (
            copied.definitions,
            copied.instances,
            copied.relays,
            copied.messages,
            copied.idempotency,
            copied.tokens,
            copied.schedules
        ),
        (2, 5, 1, 3, 1, 1, 1)
    );
    assert_eq!(
        everything(store),
        original,
        "the copy answers as the original"
    );

    let back_store = crate::MemoryStore::default();
    let back: &dyn Store = &back_store;
    crate::transfer(store, back).unwrap();
    assert_eq!(everything(back), original, "and so does a copy of the copy");

    let err = crate::transfer(source, store).unwrap_err().to_string();
    assert!(err.contains("not empty"), "{err}");
}

/// Starts `n` ticket instances named `{prefix}{i}`, for the tests that reopen a store.
pub fn start_tickets(store: &dyn Store, prefix: &str, n: usize) {
    let wf = workflow();
    for i in 0..n {
        start(store, &wf, &format!("{prefix}{i}"), t0());
    }
}
