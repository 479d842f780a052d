//! Business keys and fields of an instance: compiled from the definition's `key` and
//! `fields`, computed by the machine (the key once at the start, the fields after every
//! command), kept on the instance state with their type so the store can index them.
//!
//! Every value is bounded, so a hostile payload cannot bloat the indexes: a key longer than
//! [`MAX_KEY_BYTES`], a keyword longer than [`MAX_KEYWORD_BYTES`] or a text longer than
//! [`MAX_TEXT_BYTES`] is refused with the field named, never cut silently (a cut key would
//! merge two orders).

use crate::definition::{Definition, FieldType};
use crate::expr::{parse_timestamp, Expr, InstanceView, Scope};
use crate::source::escape_pointer_segment;
use crate::validate::ValidationError;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Longest business key, in bytes of UTF-8 (order numbers are a few dozen).
pub const MAX_KEY_BYTES: usize = 200;
/// Longest keyword field value, in bytes.
pub const MAX_KEYWORD_BYTES: usize = 256;
/// Longest text field value, in bytes.
pub const MAX_TEXT_BYTES: usize = 2048;
/// Most fields one definition may declare (the schema's `maxProperties`).
pub const MAX_FIELDS: usize = 32;
/// Most fields marked `show` (a card has room for two or three).
pub const MAX_SHOWN: usize = 3;
/// Most distinct words of one text field that are indexed for search.
pub const MAX_WORDS: usize = 64;
/// Longest indexed word, in bytes; longer words are indexed by their first bytes.
pub const MAX_WORD_BYTES: usize = 32;

/// A field's value as the instance keeps it: typed, so the store indexes it by its type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldValue {
    /// An exact string.
    Keyword(String),
    /// Free text, searched by word.
    Text(String),
    /// A finite number.
    Number(f64),
    /// A point in time.
    Timestamp(#[serde(with = "crate::timestamp")] DateTime<Utc>),
    /// True or false.
    Boolean(bool),
}

impl FieldValue {
    /// The value as plain JSON, as the API shows it (timestamps in RFC 3339).
    pub fn to_json(&self) -> Value {
        match self {
            FieldValue::Keyword(s) | FieldValue::Text(s) => Value::String(s.clone()),
            FieldValue::Number(n) => serde_json::Number::from_f64(*n)
                .map(|n| match n.as_f64() {
                    // Whole numbers read as integers: 50000, not 50000.0.
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
                    _ => Value::Number(n),
                })
                .unwrap_or(Value::Null),
            FieldValue::Timestamp(t) => {
                Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
            FieldValue::Boolean(b) => Value::Bool(*b),
        }
    }

    /// Its type.
    pub fn kind(&self) -> FieldType {
        match self {
            FieldValue::Keyword(_) => FieldType::Keyword,
            FieldValue::Text(_) => FieldType::Text,
            FieldValue::Number(_) => FieldType::Number,
            FieldValue::Timestamp(_) => FieldType::Timestamp,
            FieldValue::Boolean(_) => FieldType::Boolean,
        }
    }

    /// Reads `json` as a value of type `kind`; `Ok(None)` for `null` (the field is empty).
    ///
    /// # Errors
    /// A value of another type, a keyword or text over its size limit, a timestamp that is
    /// not RFC 3339, a non-finite number: the reason in words.
    pub fn from_json(kind: FieldType, json: &Value) -> Result<Option<FieldValue>, String> {
        let got = || {
            format!(
                "a {} field needs {}, got {}",
                kind.as_str(),
                expected(kind),
                short(json)
            )
        };
        let value = match (kind, json) {
            (_, Value::Null) => return Ok(None),
            (FieldType::Keyword, Value::String(s)) => {
                check_size(s, MAX_KEYWORD_BYTES, "keyword")?;
                FieldValue::Keyword(s.clone())
            }
            (FieldType::Keyword, Value::Number(n)) => FieldValue::Keyword(n.to_string()),
            (FieldType::Keyword, Value::Bool(b)) => FieldValue::Keyword(b.to_string()),
            (FieldType::Text, Value::String(s)) => {
                check_size(s, MAX_TEXT_BYTES, "text")?;
                FieldValue::Text(s.clone())
            }
            (FieldType::Number, Value::Number(n)) => match n.as_f64() {
                Some(f) if f.is_finite() => FieldValue::Number(f),
                _ => return Err(got()),
            },
            (FieldType::Timestamp, Value::String(s)) => match parse_timestamp(s) {
                Some(t) => FieldValue::Timestamp(t.with_timezone(&Utc)),
                None => return Err(got()),
            },
            (FieldType::Boolean, Value::Bool(b)) => FieldValue::Boolean(*b),
            _ => return Err(got()),
        };
        Ok(Some(value))
    }
}

fn expected(kind: FieldType) -> &'static str {
    match kind {
        FieldType::Keyword => "a string, number or boolean",
        FieldType::Text => "a string",
        FieldType::Number => "a finite number",
        FieldType::Timestamp => "an RFC 3339 time such as 2024-05-10T12:00:00Z",
        FieldType::Boolean => "true or false",
    }
}

/// A value for an error message, cut so a hostile payload does not flood the answer.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.len() <= 60 {
        return text;
    }
    let mut cut = 57;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} bytes)", &text[..cut], text.len())
}

fn check_size(s: &str, max: usize, what: &str) -> Result<(), String> {
    if s.len() > max {
        return Err(format!(
            "a {what} field holds at most {max} bytes; this value has {}",
            s.len()
        ));
    }
    if s.chars().any(char::is_control) && what == "keyword" {
        return Err("a keyword may not contain control characters".to_owned());
    }
    Ok(())
}

/// The words of a text, as the text index keeps them: lowercase runs of letters and digits,
/// each cut to [`MAX_WORD_BYTES`], at most [`MAX_WORDS`] (the first in sorted order).
pub fn words(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut w = word.to_lowercase();
        if w.len() > MAX_WORD_BYTES {
            let mut cut = MAX_WORD_BYTES;
            while !w.is_char_boundary(cut) {
                cut -= 1;
            }
            w.truncate(cut);
        }
        out.insert(w);
    }
    while out.len() > MAX_WORDS {
        out.pop_last();
    }
    out
}

/// Reads a computed key: a non-empty string (or a whole number, written out) of at most
/// [`MAX_KEY_BYTES`] without control or invisible characters ([`unseen`]).
///
/// # Errors
/// The reason in words.
pub fn key_from_json(v: &Value) -> Result<String, String> {
    let key = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        other => {
            return Err(format!(
                "the key must be a string or a whole number, got {}",
                short(other)
            ))
        }
    };
    if key.is_empty() {
        return Err("the key is empty".to_owned());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "the key holds at most {MAX_KEY_BYTES} bytes; this one has {}",
            key.len()
        ));
    }
    if key.chars().any(unseen) {
        return Err(
            "the key may not contain control characters, nor invisible or direction-changing ones (U+200B-U+200F, U+202A-U+202E, U+2060-U+2069, U+FEFF, ...)"
                .to_owned(),
        );
    }
    Ok(key)
}

/// True for a character a person reading a name or key cannot see or that changes how the
/// rest reads: control characters, bidirectional controls (U+202E turns `nimda` into what
/// reads as `admin`), zero-width spaces and joiners, the byte order mark, the soft hyphen.
/// Names in histories and business keys are compared by people, so two that look alike
/// must be equal.
pub fn unseen(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// One compiled field.
pub(crate) struct CompiledField {
    pub name: String,
    pub kind: FieldType,
    pub value: Expr,
}

/// The compiled `key` and `fields` of a definition; their problems go to `errors`.
pub(crate) fn compile(
    definition: &Definition,
    errors: &mut Vec<ValidationError>,
) -> (Option<Expr>, Vec<CompiledField>) {
    let key = definition.key.as_ref().and_then(|source| {
        let e = compiled(source, "/key", errors)?;
        only_roots(
            &e,
            &["input"],
            "/key",
            "the key is computed once, from the start payload",
            errors,
        )
        .then_some(e)
    });
    let mut fields = Vec::new();
    let mut shown = 0;
    for (name, def) in definition.fields.iter() {
        let p = format!("/fields/{}", escape_pointer_segment(name));
        if def.show {
            shown += 1;
            if shown > MAX_SHOWN {
                errors.push(ValidationError::new(
                    format!("{p}/show"),
                    format!("at most {MAX_SHOWN} fields can be shown on a card; this is the {}th marked show", shown),
                ));
            }
        }
        let Some(value) = compiled(&def.value, &format!("{p}/value"), errors) else {
            continue;
        };
        if only_roots(
            &value,
            &["input", "vars"],
            &format!("{p}/value"),
            "fields are computed from the start payload and the variables after every command",
            errors,
        ) {
            fields.push(CompiledField {
                name: name.clone(),
                kind: def.kind,
                value,
            });
        }
    }
    (key, fields)
}

fn compiled(source: &str, pointer: &str, errors: &mut Vec<ValidationError>) -> Option<Expr> {
    match Expr::compile(source) {
        Ok(e) => Some(e),
        Err(message) => {
            errors.push(ValidationError::new(pointer, message));
            None
        }
    }
}

fn only_roots(
    e: &Expr,
    allowed: &[&str],
    pointer: &str,
    why: &str,
    errors: &mut Vec<ValidationError>,
) -> bool {
    let bad: Vec<&str> = e.roots().filter(|r| !allowed.contains(r)).collect();
    if bad.is_empty() {
        return true;
    }
    errors.push(ValidationError::new(
        pointer,
        format!(
            "`{}` reads {}; it may read only {} ({why})",
            e.source(),
            bad.join(", "),
            allowed.join(" and ")
        ),
    ));
    false
}

/// A scope over `input` and `vars` only: what keys and fields see.
pub(crate) fn scope<'a>(
    input: &'a Value,
    vars: &'a Map<String, Value>,
    now: DateTime<Utc>,
) -> Scope<'a> {
    static NO_TAGS: BTreeSet<String> = BTreeSet::new();
    Scope {
        input,
        vars,
        event: None,
        now,
        // Never read: compile refuses fields and keys that read `instance`.
        instance: InstanceView {
            id: "",
            workflow: "",
            version: 0,
            stage: "",
            started_at: now,
            tags: &NO_TAGS,
        },
        calendars: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_order_number_that_reads_differently_from_what_it_is_is_refused() {
        for sly in [
            "SO-\u{202E}1002",
            "SO-1002\u{200B}",
            "\u{FEFF}SO-1002",
            "SO-10\u{2066}02",
            "SO-\u{00AD}1002",
            "SO-1002\n",
        ] {
            let e = key_from_json(&json!(sly)).unwrap_err();
            assert!(e.contains("invisible"), "{sly:?}: {e}");
        }
        assert_eq!(key_from_json(&json!("订单-1002")).unwrap(), "订单-1002");
        assert_eq!(key_from_json(&json!("SO-1002")).unwrap(), "SO-1002");
    }

    #[test]
    fn an_amount_reads_as_a_number_and_shows_as_the_whole_number_it_was() {
        let v = FieldValue::from_json(FieldType::Number, &json!(50000))
            .unwrap()
            .unwrap();
        assert_eq!(v, FieldValue::Number(50000.0));
        assert_eq!(v.to_json(), json!(50000));
        assert_eq!(FieldValue::Number(12.5).to_json(), json!(12.5));
    }

    #[test]
    fn a_promised_date_reads_as_a_timestamp_and_a_date_without_time_is_refused() {
        let v = FieldValue::from_json(FieldType::Timestamp, &json!("2024-05-10T12:00:00+02:00"))
            .unwrap()
            .unwrap();
        assert_eq!(v.to_json(), json!("2024-05-10T10:00:00Z"));
        let e = FieldValue::from_json(FieldType::Timestamp, &json!("2024-05-10")).unwrap_err();
        assert!(e.contains("RFC 3339"), "{e}");
    }

    #[test]
    fn a_null_value_leaves_the_field_empty() {
        assert_eq!(
            FieldValue::from_json(FieldType::Text, &Value::Null).unwrap(),
            None
        );
    }

    #[test]
    fn a_keyword_of_a_megabyte_is_refused_with_its_size_and_a_short_echo() {
        let big = "x".repeat(1 << 20);
        let e = FieldValue::from_json(FieldType::Keyword, &json!(big)).unwrap_err();
        assert!(
            e.contains("at most 256 bytes") && e.contains("1048576"),
            "{e}"
        );
        let e = FieldValue::from_json(FieldType::Number, &json!(big)).unwrap_err();
        assert!(e.len() < 200, "{e}");
    }

    #[test]
    fn a_key_with_a_zero_byte_or_over_200_bytes_is_refused_and_a_whole_number_is_written_out() {
        assert!(key_from_json(&json!("a\u{0}b"))
            .unwrap_err()
            .contains("control"));
        assert!(key_from_json(&json!("k".repeat(201)))
            .unwrap_err()
            .contains("at most 200"));
        assert!(key_from_json(&json!("")).unwrap_err().contains("empty"));
        assert!(key_from_json(&json!(1.5)).is_err());
        assert_eq!(key_from_json(&json!(202405001)).unwrap(), "202405001");
        assert_eq!(key_from_json(&json!("202405-001")).unwrap(), "202405-001");
    }

    #[test]
    fn text_is_indexed_by_lowercase_words_bounded_in_number_and_length() {
        let w = words("ACME Corp. (Shenzhen) acme");
        assert_eq!(
            w.into_iter().collect::<Vec<_>>(),
            ["acme", "corp", "shenzhen"]
        );
        let many: String = (0..500).map(|i| format!("w{i} ")).collect();
        assert_eq!(words(&many).len(), MAX_WORDS);
        let long = words(&"z".repeat(1000));
        assert_eq!(long.first().unwrap().len(), MAX_WORD_BYTES);
    }
}
