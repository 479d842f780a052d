//! Customer progress links over HTTP against the real binary: an operator reads an order's
//! link, a customer opens it without a token and sees the steps and nothing private, the
//! link survives a restart (the key is in the data directory), a revoked or forged link is
//! 404 and an ended order's link expires (410).

use serde_json::{json, Value};
use waystation_tests::server::{Client, Server};

fn orders() -> Value {
    json!({
        "id": "orders", "title": "Orders", "key": "input.order_no", "start": "packing",
        "fields": {"promised": {"type": "keyword", "value": "input.promised", "title": "Promised delivery"}},
        "progress": {"key": true, "fields": ["promised"]},
        "stages": {
            "packing": {"kind": "wait", "title": "Packing", "owner": "warehouse",
                "on": {"packed": {"to": "done"}}},
            "done": {"kind": "end", "title": "Shipped", "outcome": "shipped"}
        }
    })
}

fn desk(env: &[(&str, &str)]) -> (Server, Client, String) {
    let server = Server::start_with(env);
    let (s, body) = server.admin().put("/v1/workflows/orders", &orders());
    assert_eq!(s, 201, "{body}");
    let ops = server.token("olga", &["operator"]);
    let (s, body) = ops.post(
        "/v1/workflows/orders/instances",
        &json!({"input": {"order_no": "ORD-1", "promised": "2024-05-10", "email": "li@example.com", "discount": 17}}),
    );
    assert_eq!(s, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    (server, ops, id)
}

/// The path part of the link (`/p/...`), and its token.
fn link(ops: &Client, id: &str) -> String {
    let (s, body) = ops.get(&format!("/v1/instances/{id}/progress-link"));
    assert_eq!(s, 200, "{body}");
    let url = body["url"].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

#[test]
fn a_customer_opens_the_link_without_a_token_and_sees_what_the_definition_shows_only() {
    let (mut server, ops, id) = desk(&[]);
    let token = link(&ops, &id);
    let customer = server.client(None);
    let (s, view) = customer.get(&format!("/progress/{token}"));
    assert_eq!(s, 200, "{view}");
    assert_eq!(view["key"], "ORD-1");
    assert_eq!(view["step"], "Packing");
    assert_eq!(
        view["fields"],
        json!([{"title": "Promised delivery", "value": "2024-05-10"}])
    );
    let text = view.to_string();
    for private in ["li@example.com", "17", "warehouse", "olga", "packing\""] {
        assert!(!text.contains(private), "{private} is private: {text}");
    }
    let (s, _, page) = customer.get_text(&format!("/p/{token}"), &[]);
    assert_eq!(s, 200, "the page itself is public");
    assert!(page.contains("/ui/progress.js"));
    assert!(server.data().join("progress-link.key").exists());
    server.terminate();
    server.restart();
    let (s, _) = server.client(None).get(&format!("/progress/{token}"));
    assert_eq!(s, 200, "the key is kept: links work after a restart");
}

#[test]
fn a_forged_or_revoked_link_is_404_and_the_new_one_works() {
    let (server, ops, id) = desk(&[]);
    let token = link(&ops, &id);
    let customer = server.client(None);
    let forged = format!(
        "{}{}",
        &token[..token.len() - 1],
        if token.ends_with('0') { '1' } else { '0' }
    );
    for bad in [
        forged.as_str(),
        "nonsense",
        &format!("{id}.1.{}", &token[token.len() - 32..]),
    ] {
        let (s, body) = customer.get(&format!("/progress/{bad}"));
        assert_eq!(s, 404, "{bad}: {body}");
        assert_eq!(body["type"], "https://waystation.dev/problems/no-such-link");
    }
    let (s, renewed) = ops.delete(&format!("/v1/instances/{id}/progress-link"));
    assert_eq!(s, 200, "{renewed}");
    let (s, _) = customer.get(&format!("/progress/{token}"));
    assert_eq!(s, 404, "the old link no longer works");
    let new = renewed["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(new, link(&ops, &id));
    let (s, _) = customer.get(&format!("/progress/{new}"));
    assert_eq!(s, 200);
    let reviewer = server.token("rui", &["approver:reviewer"]);
    let (s, _) = reviewer.delete(&format!("/v1/instances/{id}/progress-link"));
    assert_eq!(s, 403, "only operators revoke");
}

#[test]
fn an_ended_orders_link_expires_after_the_configured_days() {
    let (server, ops, id) = desk(&[("WAYSTATION_PROGRESS_LINK_DAYS", "0")]);
    let token = link(&ops, &id);
    let customer = server.client(None);
    assert_eq!(
        customer.get(&format!("/progress/{token}")).0,
        200,
        "running: it works"
    );
    let (s, _) = ops.post(
        &format!("/v1/instances/{id}/cancel"),
        &json!({"reason": "withdrawn"}),
    );
    assert_eq!(s, 200);
    let (s, body) = customer.get(&format!("/progress/{token}"));
    assert_eq!(s, 410, "{body}");
    assert_eq!(body["type"], "https://waystation.dev/problems/link-expired");
}
