//! Definition validation in two layers, every error reported at once with a JSON pointer:
//! 1. structure, against `schemas/workflow.schema.json` ([`structure`]);
//! 2. meaning: references, reachability, expressions, durations, plugins (`compile.rs`, beside `workflow.rs`);
//! 3. across workflows, at upload: the sub-workflows a definition calls ([`calls`]).

pub mod calls;
pub(crate) mod structure;

use serde::{Deserialize, Serialize};
use std::fmt;

/// One problem in a definition (or in a start payload), located by JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    /// RFC 6901 pointer to the offending value; empty for the whole document.
    pub pointer: String,
    /// What is wrong, in words that say what to change.
    pub message: String,
    /// Line and column (1-based), for malformed JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<(usize, usize)>,
}

impl ValidationError {
    /// An error at `pointer`.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            pointer: pointer.into(),
            message: message.into(),
            line: None,
        }
    }

    pub(crate) fn malformed(e: &serde_json::Error) -> Self {
        let text = e.to_string();
        // serde_json appends " at line L column C"; we carry those as fields instead.
        let message = match text.rfind(" at line ") {
            Some(i) => text[..i].to_owned(),
            None => text,
        };
        ValidationError {
            pointer: String::new(),
            message: format!("malformed JSON: {message}"),
            line: Some((e.line(), e.column())),
        }
    }
}

impl fmt::Display for ValidationError {
    /// `/pointer: message`, `line L, column C: message` for malformed JSON, or
    /// `(document): message` for the whole document.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.pointer.as_str()) {
            (Some((line, column)), _) => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            (None, "") => write!(f, "(document): {}", self.message),
            (None, pointer) => write!(f, "{pointer}: {}", self.message),
        }
    }
}
