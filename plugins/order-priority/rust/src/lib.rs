//! The `order-priority` scorer (DOMAIN.md playbook 1) as a Rust guest component.
//!
//! Build with `cargo build --target wasm32-wasip2 --release`. The logic mirrors
//! `../priority.py`: customer level, amount and urgency are each rated high / medium / low
//! and the order takes the highest rating; the labels carry the response and plan SLAs.

mod priority;

wit_bindgen::generate!({
    path: "../../wit",
    world: "scorer",
});

// `Assessment` and `Level` are in scope already: the world `use`s them.
use waystation::plugin::types::Label;

struct OrderPriority;

impl Guest for OrderPriority {
    fn score(input: String) -> Result<Assessment, String> {
        let doc: serde_json::Value =
            serde_json::from_str(&input).map_err(|e| format!("input is not valid JSON: {e}"))?;
        match priority::assess(&doc) {
            Ok(result) => {
                let label = |k: &str| {
                    result
                        .labels
                        .iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.as_str())
                        .unwrap_or("")
                };
                log(
                    Level::Info,
                    &format!(
                        "order-priority: {} (score {}, respond within {})",
                        label("priority"),
                        result.score,
                        label("response_sla")
                    ),
                );
                Ok(Assessment {
                    score: result.score,
                    reasons: result.reasons,
                    labels: result
                        .labels
                        .into_iter()
                        .map(|(key, value)| Label { key, value })
                        .collect(),
                })
            }
            Err(message) => {
                log(Level::Warn, &format!("order-priority: {message}"));
                Err(message)
            }
        }
    }
}

export!(OrderPriority);
