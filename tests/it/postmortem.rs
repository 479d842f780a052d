//! Issue 15, item 5: an instance's post-mortem over real HTTP (each stage against its
//! deadline, the response time, who acted when), in the instance's history export too, and
//! the stage response histogram of `/metrics` it feeds.

use super::reports::DISPUTES;
use serde_json::json;
use waystation_tests::server::Server;

// Kept whole: one scenario told in order: one instance's visits, then the same post-mortem in the instance, its export and the metrics.
#[test]
fn the_post_mortem_names_each_stage_its_deadline_its_response_time_and_who_acted() {
    let server = Server::start();
    let admin = server.admin();
    let (status, body) = admin.put(
        "/v1/workflows/disputes",
        &serde_json::from_str(DISPUTES).unwrap(),
    );
    assert!(status == 200 || status == 201, "{body}");
    let starter = server.token("ops-wang", &["operator"]);
    let agent = server.token("agent-li", &["operator"]);
    let (status, started) = starter.post(
        "/v1/workflows/disputes/instances",
        &json!({"input": {"category": "delivery"}}),
    );
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap();
    let (status, body) = agent.post(
        &format!("/v1/instances/{id}/events"),
        &json!({"type": "take"}),
    );
    assert_eq!(status, 200, "{body}");

    let (status, pm) = starter.get(&format!("/v1/instances/{id}/postmortem"));
    assert_eq!(status, 200, "{pm}");
    assert_eq!(
        (pm["started_by"].as_str(), pm["status"].as_str()),
        (Some("ops-wang"), Some("running"))
    );
    let visits = pm["visits"].as_array().unwrap();
    let stages: Vec<&str> = visits
        .iter()
        .map(|v| v["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["triage", "settle"]);
    let triage = &visits[0];
    assert_eq!(triage["acts"][0]["by"], "agent-li");
    assert_eq!(triage["acts"][0]["what"], "event:take");
    assert_eq!(triage["left_at"], triage["acts"][0]["at"]);
    assert_eq!(
        triage["response_seconds"], triage["seconds"],
        "taking it was the first action and left the stage"
    );
    // The four-hour deadline, kept with the visit after it was left.
    let entered =
        chrono::DateTime::parse_from_rfc3339(triage["entered_at"].as_str().unwrap()).unwrap();
    let deadline =
        chrono::DateTime::parse_from_rfc3339(triage["deadline"].as_str().unwrap()).unwrap();
    assert_eq!(deadline - entered, chrono::TimeDelta::hours(4));
    let settle = &visits[1];
    assert!(
        settle.get("left_at").is_none() && settle["acts"].as_array().unwrap().is_empty(),
        "{settle}"
    );

    let (status, _) = starter.get("/v1/instances/no-such-instance/postmortem");
    assert_eq!(status, 404);

    // The history export carries the same post-mortem beside the whole history.
    let (status, export) = starter.get(&format!("/v1/instances/{id}/export"));
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["format"], "waystation.instance-export.v1");
    assert_eq!(export["instance"]["id"], id);
    assert_eq!(export["instance"]["stage"], "settle");
    // The visit that was left is the same; the one under way has grown since.
    assert_eq!(export["postmortem"]["visits"][0], pm["visits"][0]);
    assert_eq!(export["postmortem"]["visits"][1]["stage"], "settle");
    assert_eq!(export["truncated"], false);
    let (_, history) = starter.get(&format!("/v1/instances/{id}/history"));
    assert_eq!(
        export["history"], history["items"],
        "every entry, numbered as the history lists them"
    );
    let (status, _) = starter.get("/v1/instances/no-such-instance/export");
    assert_eq!(status, 404);

    // The same response time in the Prometheus histogram of the stage, and no cycle yet.
    let (status, metrics) = server.client(None).get("/metrics");
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains(
            "waystation_stage_response_seconds_count{workflow=\"disputes\",stage=\"triage\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("waystation_stage_response_seconds_bucket{workflow=\"disputes\",stage=\"triage\",le=\"60\"} 1"));
    assert!(!text.contains("waystation_cycle_seconds_count{workflow=\"disputes\"}"));
}
