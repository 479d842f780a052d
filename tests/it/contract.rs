//! The OpenAPI document against the real server's answers: each answer a route documents a
//! schema for is checked against that schema, taken from the document the same server
//! serves. The schemas of the typed answers are closed (`additionalProperties: false`), so
//! a field added to a response struct and not to the document fails here, and so does a
//! documented field the struct no longer sends.

use jsonschema::Validator;
use serde_json::{json, Value};
use waystation_server::api::openapi::answer_schema;
use waystation_tests::sample;
use waystation_tests::server::{Client, Server};

/// Validators for the document's component schemas, `$ref`s resolved inside the document.
struct Contract {
    document: Value,
}

impl Contract {
    fn fetch(client: &Client) -> Contract {
        let (status, document) = client.get("/v1/openapi.json");
        assert_eq!(status, 200, "{document}");
        Contract { document }
    }

    fn validator(&self, schema: &str) -> Validator {
        // The schema as a reference into a root that carries the components, so that the
        // `#/components/schemas/...` references inside it resolve.
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/components/schemas/{schema}"),
            "components": self.document["components"],
        });
        jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the document's schema {schema} does not compile: {e}"))
    }

    /// Checks `answer` of `method path` (the route's template) against its documented
    /// schema; panics naming the route, the schema and every mismatch.
    fn check(&self, method: &str, route: &str, (status, answer): &(u16, Value)) {
        assert!(
            (200..300).contains(status),
            "{method} {route}: {status} {answer}"
        );
        let schema = answer_schema(method, route)
            .unwrap_or_else(|| panic!("{method} {route} documents no answer schema"));
        let documented = &self.document["paths"][route][method.to_ascii_lowercase()]["responses"];
        assert!(
            documented.as_object().is_some_and(|r| r
                .values()
                .any(|r| r["content"]["application/json"]["schema"]["$ref"]
                    == format!("#/components/schemas/{schema}"))),
            "{method} {route}: the document does not name {schema}: {documented}"
        );
        let errors: Vec<String> = self
            .validator(schema)
            .iter_errors(answer)
            .map(|e| format!("  at {}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {route} answered outside {schema}:\n{}\nanswer: {answer}",
            errors.join("\n")
        );
    }
}

#[test]
fn every_typed_answer_matches_its_schema_in_the_servers_own_openapi_document() {
    let server = Server::start();
    let admin = server.admin();
    let contract = Contract::fetch(&admin);
    let ops = server.token("ops", &["operator"]);
    let dev = server.token("dev", &["developer"]);

    contract.check("GET", "/healthz", &admin.get("/healthz"));

    let definition: Value = serde_json::from_str(
        &std::fs::read_to_string(waystation_tests::root().join("workflows/approval-flow.json"))
            .unwrap(),
    )
    .unwrap();
    contract.check(
        "POST",
        "/v1/workflows/validate",
        &dev.post("/v1/workflows/validate", &definition),
    );
    admin.upload_workflow("approval-flow");
    contract.check("GET", "/v1/workflows", &ops.get("/v1/workflows"));

    // An instance: started, listed, cancelled.
    let input = sample("approval-flow", "small");
    let started = ops.post(
        "/v1/workflows/approval-flow/instances",
        &json!({ "input": input }),
    );
    contract.check("POST", "/v1/workflows/{id}/instances", &started);
    let id = started.1["id"].as_str().unwrap().to_owned();
    contract.check("GET", "/v1/instances", &ops.get("/v1/instances"));
    contract.check(
        "POST",
        "/v1/instances/{id}/cancel",
        &ops.post(
            &format!("/v1/instances/{id}/cancel"),
            &json!({"reason": "a duplicate request"}),
        ),
    );
    contract.check("GET", "/v1/outbox", &ops.get("/v1/outbox"));

    // Plugins: an upload (new, then the same bytes again), the list, one plugin, a dry run.
    let upload = |client: &Client| {
        client.send(
            "PUT",
            "/v1/plugins/order-priority",
            "application/wasm",
            waystation_tests::example_plugin("order-priority"),
            &[],
        )
    };
    let first = upload(&dev);
    assert_eq!(first.0, 201, "{}", first.1);
    contract.check("PUT", "/v1/plugins/{name}", &first);
    contract.check("PUT", "/v1/plugins/{name}", &upload(&dev));
    contract.check("GET", "/v1/plugins", &dev.get("/v1/plugins"));
    contract.check(
        "GET",
        "/v1/plugins/{name}",
        &dev.get("/v1/plugins/order-priority"),
    );
    let order = sample("order-quick-response", "vip-high");
    let ran = dev.post(
        "/v1/plugins/order-priority/invoke",
        &json!({ "input": order }),
    );
    contract.check("POST", "/v1/plugins/{name}/invoke", &ran);
    let failed = dev.post(
        "/v1/plugins/order-priority/invoke",
        &json!({"input": "not an order"}),
    );
    assert_eq!(failed.1["outcome"], "failed", "{}", failed.1);
    contract.check("POST", "/v1/plugins/{name}/invoke", &failed);
}
