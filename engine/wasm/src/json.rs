//! Typed plugin results to the JSON the core expects, checked against the contract and
//! the output cap.
//!
//! - scorer: `{"score": f64, "reasons": [string], "labels": {key: value}}`
//! - notifier: `{"messages": [{"channel", "recipient", "subject", "body", "metadata": {key: value}}]}`

use crate::bindings::{notifier, scorer};
use crate::errors::CallError;
use serde_json::{Map, Value};

fn labels_object(
    what: &str,
    pairs: impl Iterator<Item = (String, String)>,
) -> Result<Map<String, Value>, CallError> {
    let mut map = Map::new();
    for (key, value) in pairs {
        if map.contains_key(&key) {
            return Err(CallError::BadOutput {
                reason: format!("{what} key `{key}` appears more than once"),
            });
        }
        map.insert(key, Value::String(value));
    }
    Ok(map)
}

/// A scorer's assessment as JSON (taking its strings rather than copying them).
pub(crate) fn assessment(a: scorer::Assessment) -> Result<Value, CallError> {
    if !a.score.is_finite() {
        return Err(CallError::BadOutput {
            reason: format!("the score must be a finite number, not {}", a.score),
        });
    }
    let labels = labels_object("label", a.labels.into_iter().map(|l| (l.key, l.value)))?;
    let mut out = Map::new();
    out.insert("score".into(), Value::from(a.score));
    out.insert(
        "reasons".into(),
        Value::Array(a.reasons.into_iter().map(Value::String).collect()),
    );
    out.insert("labels".into(), Value::Object(labels));
    Ok(Value::Object(out))
}

/// A notifier's messages as JSON (taking their strings rather than copying them).
pub(crate) fn messages(list: Vec<notifier::Message>) -> Result<Value, CallError> {
    let mut messages = Vec::with_capacity(list.len());
    for m in list {
        if m.channel.is_empty() {
            return Err(CallError::BadOutput {
                reason: "a message has an empty channel".into(),
            });
        }
        let metadata = labels_object("metadata", m.metadata.into_iter().map(|l| (l.key, l.value)))?;
        let mut out = Map::new();
        out.insert("channel".into(), Value::String(m.channel));
        out.insert("recipient".into(), Value::String(m.recipient));
        out.insert("subject".into(), Value::String(m.subject));
        out.insert("body".into(), Value::String(m.body));
        out.insert("metadata".into(), Value::Object(metadata));
        messages.push(Value::Object(out));
    }
    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(messages));
    Ok(Value::Object(out))
}

/// Refuses output whose JSON text is longer than `cap` bytes.
pub(crate) fn within_cap(output: Value, cap: u64) -> Result<Value, CallError> {
    let size = text_len(&output);
    if size > cap {
        return Err(CallError::BadOutput {
            reason: format!("the output is {size} bytes of JSON, over the {cap}-byte cap"),
        });
    }
    Ok(output)
}

/// The length of `value` as compact JSON text, counted as it is written out rather than
/// by building the text.
fn text_len(value: &Value) -> u64 {
    struct Counter(u64);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(key: &str, value: &str) -> scorer::waystation::plugin::types::Label {
        scorer::waystation::plugin::types::Label {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn an_assessment_becomes_score_reasons_and_a_label_object() {
        let a = scorer::Assessment {
            score: 72.5,
            reasons: vec!["late twice".into()],
            labels: vec![label("priority", "high")],
        };
        assert_eq!(
            assessment(a).unwrap(),
            serde_json::json!({"score": 72.5, "reasons": ["late twice"], "labels": {"priority": "high"}})
        );
    }

    #[test]
    fn a_non_finite_score_or_duplicate_label_is_bad_output() {
        let nan = scorer::Assessment {
            score: f64::NAN,
            reasons: vec![],
            labels: vec![],
        };
        assert!(matches!(assessment(nan), Err(CallError::BadOutput { .. })));
        let dup = scorer::Assessment {
            score: 1.0,
            reasons: vec![],
            labels: vec![label("a", "1"), label("a", "2")],
        };
        assert!(matches!(assessment(dup), Err(CallError::BadOutput { .. })));
    }

    #[test]
    fn messages_keep_every_field_and_metadata_becomes_an_object() {
        let m = notifier::Message {
            channel: "email".into(),
            recipient: "ops@example.com".into(),
            subject: "Late".into(),
            body: "Order 7 is late".into(),
            metadata: vec![notifier::waystation::plugin::types::Label {
                key: "order".into(),
                value: "7".into(),
            }],
        };
        let v = messages(vec![m]).unwrap();
        assert_eq!(v["messages"][0]["recipient"], "ops@example.com");
        assert_eq!(v["messages"][0]["metadata"]["order"], "7");
    }

    #[test]
    fn output_over_the_cap_is_refused() {
        let v = serde_json::json!({"reasons": ["x".repeat(100)], "score": 1.5, "é": "\n"});
        assert_eq!(text_len(&v), serde_json::to_vec(&v).unwrap().len() as u64);
        assert!(within_cap(v.clone(), 1000).is_ok());
        assert!(matches!(
            within_cap(v, 50),
            Err(CallError::BadOutput { .. })
        ));
    }
}
