//! Separation of duties over HTTP against the real binary: nobody approves their own
//! request or two levels of one request alone, and the server cannot be locked out by
//! revoking its last admin token.

use serde_json::{json, Value};
use waystation_tests::server::{Client, Server};

/// The id of the only open task `approver` sees.
fn only_task(approver: &Client) -> String {
    let (s, body) = approver.get("/v1/approvals");
    assert_eq!(s, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{body}");
    items[0]["id"].as_str().unwrap().to_owned()
}

fn decide(approver: &Client, task: &str) -> (u16, Value) {
    approver.post(
        &format!("/v1/approvals/{task}"),
        &json!({"decision": "approve", "comment": "ok"}),
    )
}

#[test]
fn one_token_with_both_approver_roles_cannot_approve_both_levels_of_a_request() {
    let server = Server::start();
    server.admin().upload_workflow("approval-flow");
    let ops = server.token("ops", &["operator"]);
    let lin = server.token("lin", &["approver:reviewer", "approver:manager"]);
    let mei = server.token("mei", &["approver:manager"]);
    let (s, started) = ops.post(
        "/v1/workflows/approval-flow/instances",
        &json!({"input": {"request_id": "REQ-50000", "amount": 50000}}),
    );
    assert_eq!(s, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();

    let (s, body) = decide(&lin, &only_task(&lin));
    assert_eq!(s, 200, "lin reviews: {body}");
    let manager_task = only_task(&lin);
    let (s, refused) = decide(&lin, &manager_task);
    assert_eq!(s, 403, "{refused}");
    assert_eq!(
        refused["type"],
        "https://waystation.dev/problems/separation-of-duties"
    );
    assert!(
        refused["detail"].as_str().unwrap().contains("lin"),
        "{refused}"
    );
    let (_, instance) = ops.get(&format!("/v1/instances/{id}"));
    assert_eq!(instance["stage"], "manager", "the refusal changed nothing");

    let (s, body) = decide(&mei, &manager_task);
    assert_eq!(s, 200, "{body}");
    let (_, instance) = ops.get(&format!("/v1/instances/{id}"));
    assert_eq!(instance["outcome"], "approved");
    assert_eq!(server.client(None).get("/healthz").0, 200);
}

#[test]
fn an_operator_who_is_also_an_approver_cannot_approve_the_request_they_started() {
    let server = Server::start();
    server.admin().upload_workflow("approval-flow");
    let omar = server.token("omar", &["operator", "approver:reviewer"]);
    let rui = server.token("rui", &["approver:reviewer"]);
    let (s, started) = omar.post(
        "/v1/workflows/approval-flow/instances",
        &json!({"input": {"request_id": "REQ-7", "amount": 500}}),
    );
    assert_eq!(s, 201, "{started}");
    let task = only_task(&omar);
    let (s, refused) = decide(&omar, &task);
    assert_eq!(s, 403, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("started"),
        "{refused}"
    );
    let (s, body) = decide(&rui, &task);
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "completed", "{body}");
}

#[test]
fn the_last_admin_token_cannot_be_revoked_but_one_of_two_can() {
    let server = Server::start();
    let admin = server.admin();
    let (_, tokens) = admin.get("/v1/tokens");
    let first = tokens["items"][0]["id"].as_str().unwrap().to_owned();

    let (s, refused) = admin.delete(&format!("/v1/tokens/{first}"));
    assert_eq!(s, 409, "{refused}");
    assert_eq!(
        refused["type"],
        "https://waystation.dev/problems/last-admin"
    );
    assert_eq!(admin.get("/v1/tokens").0, 200, "the admin still works");

    let (s, second) = admin.post(
        "/v1/tokens",
        &json!({"name": "second-admin", "roles": ["admin"]}),
    );
    assert_eq!(s, 201, "{second}");
    let second_client = server.client(Some(second["token"].as_str().unwrap()));
    let (s, _) = second_client.delete(&format!("/v1/tokens/{first}"));
    assert_eq!(s, 204, "one of two admins may go");
    let (s, refused) =
        second_client.delete(&format!("/v1/tokens/{}", second["id"].as_str().unwrap()));
    assert_eq!(s, 409, "now it is the last: {refused}");

    server_restarts_with_its_admin(server, &second_client);
}

fn server_restarts_with_its_admin(mut server: Server, admin: &Client) {
    server.terminate();
    server.restart();
    assert_eq!(admin.get("/v1/tokens").0, 200);
}
