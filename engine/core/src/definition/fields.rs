//! The business identity of an instance as the definition declares it: a `key` (the
//! order number an ERP knows it by) and typed `fields` (customer, tier, amount, promised
//! date...) that boards, inboxes, search and reports use without extra code.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The type of a field: what it holds and how it is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A short exact string (a customer tier, a category): equality search.
    Keyword,
    /// Free text (a customer name, a subject): searched by word prefix, case-insensitive.
    Text,
    /// A number (an amount): range search and sorting.
    Number,
    /// A point in time (RFC 3339; a promised date): range search and sorting.
    Timestamp,
    /// True or false: equality search.
    Boolean,
}

impl FieldType {
    /// The name used in definitions and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Keyword => "keyword",
            FieldType::Text => "text",
            FieldType::Number => "number",
            FieldType::Timestamp => "timestamp",
            FieldType::Boolean => "boolean",
        }
    }
}

/// One declared field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    /// What the value holds and how it is searched.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// CEL over `input` and `vars`, evaluated after every command. An expression that
    /// cannot be evaluated yet (a variable not set so far) leaves the field empty.
    pub value: String,
    /// The label people read (defaults to the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Shown on board cards and list rows (at most three fields).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub show: bool,
    /// Shown on approval tasks: what an approver needs to decide.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approval: bool,
}

/// Fields in the author's order: the order cards and instance pages show them in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderedFields(pub Vec<(String, FieldDef)>);

impl OrderedFields {
    /// Iterates `(name, field)` in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &FieldDef)> {
        self.0.iter().map(|(n, f)| (n, f))
    }
    /// The field called `name`.
    pub fn get(&self, name: &str) -> Option<&FieldDef> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, f)| f)
    }
    /// True when none are declared.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for OrderedFields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de> Deserialize<'de> for OrderedFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut out = Vec::with_capacity(map.len());
        for (name, value) in map {
            let field = FieldDef::deserialize(value).map_err(serde::de::Error::custom)?;
            out.push((name, field));
        }
        Ok(OrderedFields(out))
    }
}
