//! Customer progress links in the driver: a welcome notifier finds the order's link in its
//! input from the very first step, the link opens the customer's view, and revoking it ends
//! the old link; an ended order's link expires.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use waystation_core::sim::FakePlugins;
use waystation_core::{Actor, HistoryEvent, ManualClock};
use waystation_runtime::{ProgressLinks, ProgressPage, Runtime};
use waystation_store::{MemoryStore, Store};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Welcome the customer with a message carrying the link, then wait for packing.
fn orders() -> Value {
    json!({
        "id": "orders", "title": "Orders", "key": "input.order_no", "start": "welcome",
        "stages": {
            "welcome": {"kind": "task", "title": "Order received",
                "actions": [{"notify": "welcome"}], "transitions": [{"to": "packing"}]},
            "packing": {"kind": "wait", "title": "Packing", "on": {"packed": {"to": "done"}}},
            "done": {"kind": "end", "title": "Shipped", "outcome": "shipped"}
        }
    })
}

struct Desk {
    rt: Arc<Runtime>,
    clock: Arc<ManualClock>,
    sent: Arc<Mutex<Vec<String>>>,
}

async fn desk() -> Desk {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let seen = sent.clone();
    let plugins = FakePlugins::new().notifier("welcome", move |input| {
        let link = input["instance"]["progress_link"]
            .as_str()
            .unwrap_or("no link")
            .to_owned();
        seen.lock().unwrap().push(link.clone());
        Ok(
            json!({"messages": [{"channel": "email", "recipient": "li@example.com",
            "subject": "Thank you", "body": format!("Follow your order: {link}")}]}),
        )
    });
    let clock = Arc::new(ManualClock::new(t0()));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let rt = Runtime::new(store, Arc::new(plugins), clock.clone());
    rt.set_progress_links(ProgressLinks::new(
        b"a test key of enough bytes".to_vec(),
        "https://track.example.com",
    ));
    rt.put_definition(&orders()).await.unwrap();
    Desk { rt, clock, sent }
}

fn token(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn the_welcome_message_carries_the_link_and_the_link_opens_the_customers_view() {
    let d = desk().await;
    let started =
        d.rt.start("orders", json!({"order_no": "ORD-1"}), None)
            .await
            .unwrap();
    let id = started.instance.id;
    let sent = d.sent.lock().unwrap().clone();
    let link = d.rt.progress_link(&id).unwrap();
    assert_eq!(
        sent,
        vec![link.clone()],
        "the notifier had the link at the start"
    );
    assert!(link.starts_with(&format!("https://track.example.com/p/{id}.0.")));
    match d
        .rt
        .progress_page(token(&link), TimeDelta::days(30))
        .await
        .unwrap()
    {
        ProgressPage::Shown(view) => {
            assert_eq!(view.step.as_deref(), Some("Packing"));
            assert_eq!(view.key, None, "the definition does not show the key");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_revoked_link_stops_working_and_the_history_says_who_revoked_it() {
    let d = desk().await;
    let id =
        d.rt.start("orders", json!({"order_no": "ORD-2"}), None)
            .await
            .unwrap()
            .instance
            .id;
    let old = d.rt.progress_link(&id).unwrap();
    let olga = Actor {
        token_id: "t1".into(),
        name: "olga".into(),
    };
    let new = d.rt.revoke_progress_link(&olga, &id).await.unwrap();
    assert_ne!(old, new);
    assert_eq!(d.rt.progress_link(&id).unwrap(), new);
    let life = TimeDelta::days(30);
    assert_eq!(
        d.rt.progress_page(token(&old), life).await.unwrap(),
        ProgressPage::Unknown
    );
    assert!(matches!(
        d.rt.progress_page(token(&new), life).await.unwrap(),
        ProgressPage::Shown(_)
    ));
    let history = d.rt.store().history(&id, 0, 100).unwrap();
    let revoked = history
        .iter()
        .find(|(_, h)| matches!(h.event, HistoryEvent::ProgressLinkRevoked { .. }));
    assert_eq!(
        revoked
            .and_then(|(_, h)| h.actor.as_ref())
            .map(|a| a.name.as_str()),
        Some("olga")
    );
}

#[tokio::test]
async fn an_ended_orders_link_expires_after_the_configured_time() {
    let d = desk().await;
    let id =
        d.rt.start("orders", json!({"order_no": "ORD-3"}), None)
            .await
            .unwrap()
            .instance
            .id;
    d.rt.event(&id, "packed", json!({}), None).await.unwrap();
    let link = d.rt.progress_link(&id).unwrap();
    let life = TimeDelta::days(30);
    assert!(matches!(
        d.rt.progress_page(token(&link), life).await.unwrap(),
        ProgressPage::Shown(_)
    ));
    d.clock.advance(TimeDelta::days(31));
    assert_eq!(
        d.rt.progress_page(token(&link), life).await.unwrap(),
        ProgressPage::Expired
    );
    assert_eq!(
        d.rt.progress_page(
            "01ARZ3NDEKTSV4RRFFQ69G5FAV.0.00000000000000000000000000000000",
            life
        )
        .await
        .unwrap(),
        ProgressPage::Unknown
    );
}
