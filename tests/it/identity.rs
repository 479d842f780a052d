//! Orders, not opaque ids, over HTTP against the real binary: business keys, typed fields
//! and searches on them, commands by key, who did what, SLA breaches kept, the board's
//! views, and named owners of a stage's work.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use waystation_tests::server::{Client, Server};

/// An order desk: `todo` (owner clerk, deadline `deadline`) takes `begin`, a harmless
/// `ping` self-loop, and `approve` into a manager's approval.
fn orders(deadline: &str) -> Value {
    json!({
        "id": "orders",
        "title": "Orders",
        "key": "input.order_no",
        "fields": {
            "customer": {"type": "text", "value": "input.customer", "title": "Customer", "show": true},
            "tier": {"type": "keyword", "value": "input.tier", "show": true},
            "amount": {"type": "number", "value": "input.amount", "title": "Amount", "show": true, "approval": true},
            "promised_at": {"type": "timestamp", "value": "input.promised_at"},
            "gold": {"type": "boolean", "value": "input.tier == 'gold'"}
        },
        "start": "todo",
        "stages": {
            "todo": {
                "kind": "wait", "owner": "clerk", "deadline": deadline,
                "on": {"begin": {"to": "in_progress"}, "ping": {"to": "todo"}, "approve": {"to": "approval"}}
            },
            "in_progress": {"kind": "wait", "owner": "clerk", "on": {"done": {"to": "done"}}},
            "approval": {
                "kind": "approval",
                "levels": [{"approvers": [{"role": "manager"}]}],
                "on_approve": {"to": "done"}, "on_reject": {"to": "done"}
            },
            "done": {"kind": "end", "outcome": "resolved"}
        }
    })
}

fn order(no: &str, customer: &str, tier: &str, amount: u64) -> Value {
    json!({"input": {"order_no": no, "customer": customer, "tier": tier, "amount": amount,
                     "promised_at": "2024-05-10T12:00:00Z"}})
}

fn desk(deadline: &str) -> (Server, Client) {
    let server = Server::start();
    let (s, body) = server
        .admin()
        .put("/v1/workflows/orders", &orders(deadline));
    assert_eq!(s, 201, "{body}");
    let erp = server.token("erp", &["operator"]);
    (server, erp)
}

fn start(client: &Client, no: &str, customer: &str, tier: &str, amount: u64) -> String {
    let (s, body) = client.post(
        "/v1/workflows/orders/instances",
        &order(no, customer, tier, amount),
    );
    assert_eq!(s, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every item of a listing, following the cursors.
fn all_pages(client: &Client, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/instances?{query}&cursor={c}"),
            None => format!("/v1/instances?{query}"),
        };
        let (s, page) = client.get(&path);
        assert_eq!(s, 200, "{path}: {page}");
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn history(client: &Client, id: &str) -> Vec<Value> {
    let (s, h) = client.get(&format!("/v1/instances/{id}/history"));
    assert_eq!(s, 200, "{h}");
    h["items"].as_array().unwrap().clone()
}

/// Waits (polling) until `done` holds for the instance, or panics after a generous while.
fn wait_for(client: &Client, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, inst) = client.get(&format!("/v1/instances/{id}"));
        if done(&inst) {
            return inst;
        }
        assert!(Instant::now() < deadline, "never {what}: {inst}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn order_202405_001_is_found_by_its_key_and_shows_its_typed_fields() {
    let (_server, erp) = desk("PT4H");
    let id = start(&erp, "202405-001", "ACME Corp. Shenzhen", "gold", 50000);
    let (s, found) = erp.get("/v1/workflows/orders/keys/202405-001");
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["id"], json!(id));
    assert_eq!(found["key"], json!("202405-001"));
    assert_eq!(
        found["fields"],
        json!({"customer": "ACME Corp. Shenzhen", "tier": "gold", "amount": 50000,
               "promised_at": "2024-05-10T12:00:00Z", "gold": true})
    );
    assert_eq!(found["shown"], json!(["customer", "tier", "amount"]));
    assert_eq!(found["for_approval"], json!(["amount"]));
    let (s, missing) = erp.get("/v1/workflows/orders/keys/202405-999");
    assert_eq!(s, 404, "{missing}");

    let (_, listed) = erp.get("/v1/instances?workflow=orders&key=202405-001");
    assert_eq!(ids(&listed), std::slice::from_ref(&id));
    assert_eq!(listed["items"][0]["fields"]["amount"], json!(50000));
    let (_, stats) = erp.get("/v1/stats/orders");
    assert_eq!(stats["key"], json!("input.order_no"));
    assert_eq!(
        stats["fields"][2],
        json!({"name": "amount", "type": "number", "title": "Amount", "show": true, "approval": true})
    );
    let (_, export) = erp.get(&format!("/v1/instances/{id}/history"));
    assert_eq!(
        (export["key"].as_str(), &export["fields"]["tier"]),
        (Some("202405-001"), &json!("gold"))
    );
}

#[test]
fn an_erp_says_payment_received_for_202405_001_without_knowing_the_instance_id() {
    let (server, erp) = desk("PT4H");
    let id = start(&erp, "202405-001", "ACME", "gold", 50000);
    let (s, moved) = erp.post(
        "/v1/workflows/orders/keys/202405-001/events",
        &json!({"type": "approve"}),
    );
    assert_eq!(
        (s, moved["id"].as_str(), moved["stage"].as_str()),
        (200, Some(id.as_str()), Some("approval")),
        "{moved}"
    );

    let manager = server.token("mgr-mei", &["approver:manager"]);
    let (_, inbox) = manager.get("/v1/approvals");
    let task = &inbox["items"][0];
    assert_eq!(task["key"], json!("202405-001"));
    assert_eq!(
        task["fields"]["amount"],
        json!(50000),
        "the approver sees the amount: {task}"
    );
    assert_eq!(task["for_approval"], json!(["amount"]));
    let (s, decided) = manager.post(
        "/v1/workflows/orders/keys/202405-001/decisions",
        &json!({"decision": "approve", "comment": "paid"}),
    );
    assert_eq!(
        (s, decided["status"].as_str()),
        (200, Some("completed")),
        "{decided}"
    );

    let other = start(&erp, "202405-002", "Globex", "silver", 10);
    let (s, cancelled) = erp.post(
        "/v1/workflows/orders/keys/202405-002/cancel",
        &json!({"reason": "duplicate"}),
    );
    assert_eq!(
        (s, cancelled["id"].as_str(), cancelled["status"].as_str()),
        (200, Some(other.as_str()), Some("cancelled"))
    );
    let (s, refused) = erp.post(
        "/v1/workflows/orders/keys/202405-002/events",
        &json!({"type": "begin"}),
    );
    assert_eq!(s, 409, "an ended order takes no events: {refused}");
}

#[test]
fn a_second_start_of_a_running_order_answers_409_naming_it_and_a_repeat_answers_the_first() {
    let (_server, erp) = desk("PT4H");
    let body = order("202405-001", "ACME", "gold", 50000);
    let (s, first) = erp.post_once("/v1/workflows/orders/instances", &body, "erp-start-1");
    assert_eq!(s, 201, "{first}");
    let (s, repeat) = erp.post_once("/v1/workflows/orders/instances", &body, "erp-start-1");
    assert_eq!(
        (s, &repeat["id"]),
        (201, &first["id"]),
        "the same Idempotency-Key: the first answer"
    );
    let (s, clash) = erp.post_once("/v1/workflows/orders/instances", &body, "erp-start-2");
    assert_eq!(s, 409, "{clash}");
    assert_eq!(
        clash["type"],
        json!("https://waystation.dev/problems/key-in-use")
    );
    assert_eq!(clash["instance"], first["id"]);
    assert!(
        clash["detail"].as_str().unwrap().contains("202405-001"),
        "{clash}"
    );
    let (s, _) = erp.post("/v1/workflows/orders/instances", &body);
    assert_eq!(s, 409, "without an Idempotency-Key too");

    let (s, _) = erp.post(
        &format!("/v1/instances/{}/cancel", first["id"].as_str().unwrap()),
        &json!({}),
    );
    assert_eq!(s, 200);
    let (s, again) = erp.post("/v1/workflows/orders/instances", &body);
    assert_eq!(s, 201, "the key is free once the order ended: {again}");
    let (_, found) = erp.get("/v1/workflows/orders/keys/202405-001");
    assert_eq!(found["id"], again["id"], "the running one is the one found");
    let (_, both) = erp.get("/v1/instances?workflow=orders&key=202405-001");
    assert_eq!(ids(&both).len(), 2, "both orders keep the key for search");
}

#[test]
fn concurrent_starts_of_one_order_make_exactly_one_instance() {
    let (_server, erp) = desk("PT4H");
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let erp = erp.clone();
                scope.spawn(move || {
                    erp.post(
                        "/v1/workflows/orders/instances",
                        &order("202405-777", "ACME", "gold", 1),
                    )
                    .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        answers.iter().filter(|s| **s == 201).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|s| **s == 409).count(),
        7,
        "{answers:?}"
    );
}

#[test]
fn a_hostile_key_or_field_value_is_refused_with_where_and_why_and_starts_nothing() {
    let (_server, erp) = desk("PT4H");
    let (s, p) = erp.post(
        "/v1/workflows/orders/instances",
        &order(&"7".repeat(300), "ACME", "gold", 1),
    );
    assert_eq!(
        (s, p["type"].as_str()),
        (422, Some("https://waystation.dev/problems/key-unfit")),
        "{p}"
    );
    assert!(
        p["detail"].as_str().unwrap().contains("at most 200 bytes"),
        "{p}"
    );
    let (s, p) = erp.post(
        "/v1/workflows/orders/instances",
        &order("202405-001", &"x".repeat(5000), "gold", 1),
    );
    assert_eq!(s, 422, "{p}");
    assert_eq!(p["errors"][0]["pointer"], json!("/fields/customer"));
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2048 bytes"),
        "{p}"
    );
    let (s, p) = erp.post(
        "/v1/workflows/orders/instances",
        &json!({"input": {"order_no": "202405-001", "tier": "gold", "amount": "lots"}}),
    );
    assert_eq!(
        (s, &p["errors"][0]["pointer"]),
        (422, &json!("/fields/amount")),
        "{p}"
    );
    let (_, none) = erp.get("/v1/instances?workflow=orders");
    assert!(ids(&none).is_empty(), "nothing started: {none}");
}

// Kept whole: one scenario told in order: one set of orders, queried filter by filter.
#[test]
fn field_queries_filter_by_equality_range_and_word_prefix_and_sort_by_a_field() {
    let (_server, erp) = desk("PT4H");
    let customers = [
        "ACME Corp. Shenzhen",
        "Acme Trading",
        "Globex",
        "Initech Shenzhen",
    ];
    let mut by_no = BTreeMap::new();
    for i in 0..20u64 {
        let tier = if i.is_multiple_of(3) {
            "gold"
        } else {
            "silver"
        };
        let id = start(
            &erp,
            &format!("202405-{i:03}"),
            customers[i as usize % 4],
            tier,
            i * 1000,
        );
        by_no.insert(i, id);
    }
    let expect = |pick: &dyn Fn(u64) -> bool| -> BTreeSet<String> {
        by_no
            .iter()
            .filter(|(i, _)| pick(**i))
            .map(|(_, id)| id.clone())
            .collect()
    };
    let got = |q: &str| -> BTreeSet<String> {
        all_pages(&erp, &format!("workflow=orders&limit=3&{q}"))
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(got("field.tier=gold"), expect(&|i| i.is_multiple_of(3)));
    assert_eq!(got("field.gold=false"), expect(&|i| !i.is_multiple_of(3)));
    assert_eq!(
        got("field.amount.gte=5000&field.amount.lt=12000"),
        expect(&|i| (5..12).contains(&i))
    );
    assert_eq!(
        got("field.amount.gt=5000&field.amount.lte=12000"),
        expect(&|i| (6..=12).contains(&i))
    );
    assert_eq!(got("field.amount=7000"), expect(&|i| i == 7));
    assert_eq!(
        got("field.customer=acm"),
        expect(&|i| i % 4 < 2),
        "a word prefix, any case"
    );
    assert_eq!(
        got("field.customer=acme%20shen"),
        expect(&|i| i.is_multiple_of(4)),
        "every word given"
    );
    assert_eq!(
        got("field.customer=shenzhen&field.tier=gold"),
        expect(&|i| i % 4 != 1 && i % 4 != 2 && i.is_multiple_of(3))
    );
    assert_eq!(got("field.promised_at.lt=2024-05-11T00:00:00Z").len(), 20);

    let sorted = all_pages(
        &erp,
        "workflow=orders&limit=4&sort=field.amount&field.tier=silver",
    );
    let amounts: Vec<f64> = sorted
        .iter()
        .map(|i| i["fields"]["amount"].as_f64().unwrap())
        .collect();
    let mut ascending = amounts.clone();
    ascending.sort_by(f64::total_cmp);
    assert_eq!(amounts, ascending);
    assert_eq!(
        amounts.len(),
        by_no.keys().filter(|i| !(*i).is_multiple_of(3)).count()
    );
    let ranged = all_pages(
        &erp,
        "workflow=orders&limit=4&sort=field.amount&field.amount.gte=15000",
    );
    let amounts: Vec<f64> = ranged
        .iter()
        .map(|i| i["fields"]["amount"].as_f64().unwrap())
        .collect();
    assert_eq!(
        amounts,
        [15000.0, 16000.0, 17000.0, 18000.0, 19000.0],
        "sorted by the field it is filtered on"
    );

    for (query, param) in [
        ("workflow=orders&field.colour=red", "field.colour"),
        ("workflow=orders&field.tier.gte=a", "field.tier.gte"),
        ("workflow=orders&field.amount=lots", "field.amount"),
        ("field.tier=gold", "field.tier"),
        ("workflow=orders&sort=field.customer", "sort"),
    ] {
        let (s, p) = erp.get(&format!("/v1/instances?{query}"));
        assert_eq!(
            (s, p["errors"][0]["parameter"].as_str()),
            (400, Some(param)),
            "{query}: {p}"
        );
    }
}

#[test]
fn paging_a_range_query_while_orders_start_and_end_lists_every_unchanged_match_once() {
    let (_server, erp) = desk("PT4H");
    let mut stable = BTreeSet::new();
    for i in 0..40u64 {
        let id = start(&erp, &format!("S-{i:03}"), "Stable Co", "gold", 10_000 + i);
        stable.insert(id);
    }
    let churn: Vec<String> = (0..20u64)
        .map(|i| start(&erp, &format!("C-{i:03}"), "Churn Co", "gold", 10_000 + i))
        .collect();
    let seen: Vec<Value> = std::thread::scope(|scope| {
        let writer = {
            let erp = erp.clone();
            let churn = churn.clone();
            scope.spawn(move || {
                for (i, id) in churn.iter().enumerate() {
                    erp.post(&format!("/v1/instances/{id}/cancel"), &json!({}));
                    start(
                        &erp,
                        &format!("N-{i:03}"),
                        "New Co",
                        "gold",
                        10_000 + i as u64,
                    );
                }
            })
        };
        let pages = all_pages(
            &erp,
            "workflow=orders&status=running&field.amount.gte=10000&field.amount.lt=10040&limit=5",
        );
        writer.join().unwrap();
        pages
    });
    let listed: Vec<String> = seen
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "no instance twice: {listed:?}");
    assert!(stable.is_subset(&unique), "every unchanged match is listed");
    for item in &seen {
        let amount = item["fields"]["amount"].as_f64().unwrap();
        assert!((10_000.0..10_040.0).contains(&amount), "{item}");
        assert_eq!(item["status"], json!("running"), "{item}");
    }
}

#[test]
fn every_history_entry_caused_by_a_request_names_the_token_that_sent_it() {
    let (server, erp) = desk("PT4H");
    let id = start(&erp, "202405-001", "ACME", "gold", 50000);
    erp.post(
        &format!("/v1/instances/{id}/events"),
        &json!({"type": "approve"}),
    );
    let manager = server.token("mgr-mei", &["approver:manager"]);
    let (_, inbox) = manager.get("/v1/approvals");
    let task = inbox["items"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = manager.post(
        &format!("/v1/approvals/{task}"),
        &json!({"decision": "approve"}),
    );
    assert_eq!(s, 200);
    let actors: Vec<(String, Value)> = history(&erp, &id)
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["actor"].clone()))
        .collect();
    let erp_actor = server.actor("erp");
    let mei = server.actor("mgr-mei");
    let of = |kind: &str| {
        actors
            .iter()
            .filter(|(t, _)| t == kind)
            .map(|(_, a)| a.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(of("started"), std::slice::from_ref(&erp_actor));
    assert_eq!(of("event_received"), [erp_actor]);
    assert_eq!(of("decided"), std::slice::from_ref(&mei));
    assert_eq!(
        of("completed"),
        [mei],
        "what follows from the decision is the decider's doing"
    );

    let other = start(&erp, "202405-002", "ACME", "gold", 1);
    let lead = server.token("lead-li", &["operator"]);
    lead.post(
        &format!("/v1/instances/{other}/cancel"),
        &json!({"reason": "customer withdrew"}),
    );
    let cancelled = history(&lead, &other)
        .into_iter()
        .find(|e| e["type"] == json!("cancelled"))
        .unwrap();
    assert_eq!(
        (&cancelled["by"], &cancelled["actor"]["name"]),
        (&json!("lead-li"), &json!("lead-li"))
    );
}

#[test]
fn a_second_token_with_a_taken_name_is_refused_with_409() {
    let server = Server::start();
    let admin = server.admin();
    let (s, _) = admin.post("/v1/tokens", &json!({"name": "erp", "roles": ["operator"]}));
    assert_eq!(s, 201);
    let (s, p) = admin.post("/v1/tokens", &json!({"name": "erp", "roles": ["admin"]}));
    assert_eq!(
        (s, p["errors"][0]["pointer"].as_str()),
        (409, Some("/name")),
        "{p}"
    );
    let (s, p) = admin.post("/v1/tokens", &json!({"name": "ERP", "roles": ["admin"]}));
    assert_eq!(
        (s, p["type"].as_str()),
        (
            409,
            Some("https://waystation.dev/problems/token-name-taken")
        ),
        "another case of the same name: {p}"
    );
    for lookalike in ["erp ", " erp", "erp\u{0}", "zhao.min\t", ""] {
        let body = json!({"name": lookalike, "roles": ["operator"]});
        let (s, p) = admin.post("/v1/tokens", &body);
        assert_eq!(
            (s, p["errors"][0]["pointer"].as_str()),
            (422, Some("/name")),
            "{lookalike:?}: {p}"
        );
    }
}

#[test]
fn a_breach_is_kept_after_the_order_moves_on_and_breached_true_still_finds_it() {
    let (_server, erp) = desk("PT1S");
    let late = start(&erp, "202405-001", "ACME", "gold", 1);
    let prompt = start(&erp, "202405-002", "ACME", "gold", 1);
    erp.post(
        &format!("/v1/instances/{prompt}/events"),
        &json!({"type": "begin"}),
    );
    wait_for(&erp, &late, "breached", |i| {
        i["sla"]["state"] == json!("breached")
    });
    let (s, _) = erp.post(
        &format!("/v1/instances/{late}/events"),
        &json!({"type": "begin"}),
    );
    assert_eq!(s, 200);
    let (_, inst) = erp.get(&format!("/v1/instances/{late}"));
    assert_eq!(
        inst["sla"]["state"],
        json!("on_time"),
        "in_progress has no deadline"
    );
    let record = &inst["sla_record"][0];
    assert_eq!(record["stage"], json!("todo"));
    assert!(
        record["breached_at"].is_string() && record["left_at"].is_string(),
        "{record}"
    );
    assert!(record["overdue_seconds"].as_i64().unwrap() >= 0, "{record}");

    let (_, breached) = erp.get("/v1/instances?workflow=orders&breached=true");
    assert_eq!(ids(&breached), std::slice::from_ref(&late));
    let (_, in_todo) = erp.get("/v1/instances?workflow=orders&breached_stage=todo");
    assert_eq!(ids(&in_todo), std::slice::from_ref(&late));
    let (_, never) = erp.get("/v1/instances?workflow=orders&breached=false");
    assert_eq!(ids(&never), [prompt]);
    let (_, listed) = erp.get("/v1/instances?workflow=orders&key=202405-001");
    assert_eq!(listed["items"][0]["breached_ever"], json!(true));
    let engine_did = history(&erp, &late)
        .into_iter()
        .find(|e| e["type"] == json!("sla_changed"))
        .unwrap();
    assert_eq!(
        engine_did["actor"],
        Value::Null,
        "the engine's own doing names no token"
    );
}

#[test]
fn the_board_counts_no_engine_bookkeeping_as_an_update_and_breached_untouched_work_as_not_started()
{
    let (_server, erp) = desk("PT1S");
    let neglected = start(&erp, "202405-001", "ACME", "gold", 1);
    let moved = start(&erp, "202405-002", "ACME", "gold", 1);
    wait_for(&erp, &neglected, "breached", |i| {
        i["sla"]["state"] == json!("breached")
    });
    wait_for(&erp, &moved, "breached", |i| {
        i["sla"]["state"] == json!("breached")
    });
    let (_, inst) = erp.get(&format!("/v1/instances/{neglected}"));
    let started = inst["started_at"].as_str().unwrap().to_owned();
    assert!(
        inst["updated_at"].as_str().unwrap() > started.as_str(),
        "the breach updated it"
    );
    let since = |t: &str| t.replace('+', "%2B");

    // "No update since it started": the breach is the engine's, not an update.
    let after_start = chrono::DateTime::parse_from_rfc3339(&started).unwrap()
        + chrono::TimeDelta::milliseconds(1);
    let (_, stale) = erp.get(&format!(
        "/v1/instances?workflow=orders&status=running&acted_before={}",
        since(&after_start.to_rfc3339())
    ));
    assert!(ids(&stale).contains(&neglected), "{stale}");

    // A ping in todo is work in todo; an untouched breached order is still "not started".
    erp.post(
        &format!("/v1/instances/{moved}/events"),
        &json!({"type": "ping"}),
    );
    let (_, near) = erp.get("/v1/instances?workflow=orders&sla=at_risk,breached&untouched=true");
    assert_eq!(ids(&near), std::slice::from_ref(&neglected), "{near}");
    let (_, inst) = erp.get(&format!("/v1/instances/{moved}"));
    assert_eq!(
        inst["sla"]["state"],
        json!("breached"),
        "the ping did not push the deadline back"
    );
}

// Kept whole: one scenario told in order: claim, a refused second claim, reassignment, my work for each person, release.
#[test]
fn a_clerk_claims_a_supervisor_reassigns_and_my_work_lists_what_was_assigned() {
    let (server, erp) = desk("PT4H");
    let id = start(&erp, "202405-001", "ACME", "gold", 1);
    let mei = server.token("clerk-mei", &["approver:clerk"]);
    let tao = server.token("clerk-tao", &["approver:clerk"]);
    let outsider = server.token("mgr-wu", &["approver:manager"]);
    let lead = server.token("lead-li", &["operator"]);

    let (s, p) = outsider.post(&format!("/v1/instances/{id}/claim"), &json!({}));
    assert_eq!(s, 403, "not in the owner role: {p}");
    let (s, claimed) = mei.post(&format!("/v1/instances/{id}/claim"), &json!({}));
    assert_eq!(s, 200, "{claimed}");
    let (s, again) = mei.post(&format!("/v1/instances/{id}/claim"), &json!({}));
    assert_eq!(s, 200, "claiming one's own work again is harmless: {again}");
    let (s, p) = tao.post(&format!("/v1/instances/{id}/claim"), &json!({}));
    assert_eq!(s, 409, "someone owns it: {p}");
    let (_, mine) = mei.get("/v1/work");
    assert_eq!(ids(&mine), std::slice::from_ref(&id));

    let (s, p) = lead.post(
        &format!("/v1/instances/{id}/assign"),
        &json!({"to": "mgr-wu"}),
    );
    assert_eq!(
        (s, p["errors"][0]["pointer"].as_str()),
        (422, Some("/to")),
        "{p}"
    );
    let (s, _) = lead.post(
        &format!("/v1/instances/{id}/assign"),
        &json!({"to": "clerk-tao"}),
    );
    assert_eq!(s, 200);
    let (_, mine) = mei.get("/v1/work");
    assert!(ids(&mine).is_empty(), "reassigned away: {mine}");
    let (_, theirs) = tao.get("/v1/work");
    assert_eq!(ids(&theirs), std::slice::from_ref(&id));
    assert_eq!(theirs["items"][0]["assignee"], json!("clerk-tao"));
    let (_, by_name) = lead.get("/v1/instances?assignee=clerk-tao");
    assert_eq!(ids(&by_name), std::slice::from_ref(&id));
    let (_, inst) = lead.get(&format!("/v1/instances/{id}"));
    assert_eq!(
        (&inst["assignee"]["user"], &inst["assignee"]["by"]),
        (&json!("clerk-tao"), &json!("lead-li"))
    );

    let assigned: Vec<(Value, Value, Value)> = history(&lead, &id)
        .into_iter()
        .filter(|e| e["type"] == json!("assigned"))
        .map(|e| {
            (
                e["assignee"].clone(),
                e["previous"].clone(),
                e["by"].clone(),
            )
        })
        .collect();
    assert_eq!(
        assigned,
        [
            (json!("clerk-mei"), Value::Null, json!("clerk-mei")),
            (json!("clerk-tao"), json!("clerk-mei"), json!("lead-li")),
        ]
    );
    let notice = history(&lead, &id)
        .into_iter()
        .find(|e| e["type"] == json!("message_queued"))
        .expect("the assignee is told");
    assert_eq!(
        (&notice["channel"], &notice["recipient"]),
        (&json!("assignment"), &json!("clerk-tao"))
    );

    let (s, _) = mei.post(&format!("/v1/instances/{id}/release"), &json!({}));
    assert_eq!(s, 403, "not hers any more");
    let (s, _) = tao.post(&format!("/v1/instances/{id}/release"), &json!({}));
    assert_eq!(s, 200);
    let (_, theirs) = tao.get("/v1/work");
    assert!(ids(&theirs).is_empty());
    let (s, p) = tao.post(&format!("/v1/instances/{id}/release"), &json!({}));
    assert_eq!(
        (s, p["type"].as_str()),
        (409, Some("https://waystation.dev/problems/not-assigned")),
        "nothing left to release: {p}"
    );
}
