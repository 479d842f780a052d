//! Reading definition text: JSON parsed in one pass that also finds duplicate object keys.
//!
//! `serde_json` keeps the last of two equal keys without a word, so a definition with two
//! stages called `review` would silently lose one. Administrators get an error instead.

use crate::validate::ValidationError;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

/// Parses `text` as JSON.
///
/// # Errors
/// Malformed JSON gives one error carrying its line and column; duplicate keys give one
/// error each, at the JSON pointer of the repeated member.
pub fn parse_json(text: &str) -> Result<Value, Vec<ValidationError>> {
    let duplicates = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = ValueSeed {
        pointer: String::new(),
        duplicates: &duplicates,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match parsed {
        Err(e) => Err(vec![ValidationError::malformed(&e)]),
        Ok(value) => {
            let duplicates = duplicates.into_inner();
            if duplicates.is_empty() {
                Ok(value)
            } else {
                Err(duplicates)
            }
        }
    }
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn escape_pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The JSON pointer of the place `serde_path_to_error` stopped at (`""` for the document).
pub fn pointer_of_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(format!("/{index}")),
            Segment::Map { key } => Some(format!("/{}", escape_pointer_segment(key))),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

struct ValueSeed<'a> {
    pointer: String,
    duplicates: &'a RefCell<Vec<ValidationError>>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = ValueSeed {
                pointer: format!("{}/{}", self.pointer, items.len()),
                duplicates: self.duplicates,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let pointer = format!("{}/{}", self.pointer, escape_pointer_segment(&key));
            let seed = ValueSeed {
                pointer: pointer.clone(),
                duplicates: self.duplicates,
            };
            let value = access.next_value_seed(seed)?;
            if map.insert(key.clone(), value).is_some() {
                self.duplicates.borrow_mut().push(ValidationError::new(
                    pointer,
                    format!(
                        "'{key}' appears more than once in the same object; names must be unique"
                    ),
                ));
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_stage_names_are_reported_at_their_pointer() {
        let errs = parse_json(r#"{"stages": {"a": {}, "b": [1, {"x": 1, "x": 2}], "a": {}}}"#)
            .unwrap_err();
        let pointers: Vec<_> = errs.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/stages/b/1/x", "/stages/a"]);
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let errs = parse_json("{\n  \"id\": \"x\",\n  \"title\" \"y\"\n}").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, Some((3, 11)));
    }
}
