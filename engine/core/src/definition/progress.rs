//! What a customer's progress link shows (issue 16): the definition's `progress` member
//! marks what is customer-visible, and [`customer_view`] builds the page's content from an
//! instance with nothing else - never its variables, history, input, owners, or anything
//! about other instances.
//!
//! Without `progress`, a customer sees the stage titles only: the steps (every stage that
//! is not an end stage, in the author's order), which one the order is at, and whether it
//! is in progress, done or cancelled.

use super::{Definition, StageKind};
use crate::state::{InstanceState, Status};
use crate::validate::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The customer's page: a typed summary, serialised as the public JSON answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerProgress {
    /// The heading.
    pub title: String,
    /// `in_progress`, `completed`, `cancelled`, or `on_hold` (failed: the engine is
    /// waiting for an operator; why is internal).
    pub status: String,
    /// The title of the step the order is at, when it is one of the listed steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The listed steps, each `done`, `current` or `upcoming`.
    pub steps: Vec<CustomerStep>,
    /// The business key, when the definition shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The fields the definition shows, with values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<CustomerField>,
}

/// One listed step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerStep {
    /// Its title (the stage name when it has none).
    pub title: String,
    /// `done`, `current` or `upcoming`.
    pub state: String,
}

/// One shown field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerField {
    /// Its title.
    pub title: String,
    /// Its value as plain JSON (a timestamp as RFC 3339 text).
    pub value: Value,
}

/// Problems of `definition.progress`: fields and stages it names that do not exist.
pub(crate) fn check(definition: &Definition, errors: &mut Vec<ValidationError>) {
    let Some(view) = &definition.progress else {
        return;
    };
    for (i, name) in view.fields.iter().enumerate() {
        if definition.fields.get(name).is_none() {
            errors.push(ValidationError::new(
                format!("/progress/fields/{i}"),
                format!("no field named '{name}' (the page shows fields declared under `fields`)"),
            ));
        }
    }
    for (i, name) in view.stages.iter().flatten().enumerate() {
        if definition.stages.get(name).is_none() {
            errors.push(ValidationError::new(
                format!("/progress/stages/{i}"),
                format!("no stage named '{name}'"),
            ));
        }
    }
}

/// What the customer of `state` sees, by `definition` (the version it runs on).
pub fn customer_view(definition: &Definition, state: &InstanceState) -> CustomerProgress {
    let view = definition.progress.clone().unwrap_or_default();
    let title_of = |name: &str| {
        definition
            .stages
            .get(name)
            .and_then(|s| s.title.clone())
            .unwrap_or_else(|| name.to_owned())
    };
    let listed: Vec<String> = view.stages.clone().unwrap_or_else(|| {
        definition
            .stages
            .iter()
            .filter(|(_, s)| !matches!(s.kind, StageKind::End { .. }))
            .map(|(n, _)| n.clone())
            .collect()
    });
    let done = state.status == Status::Completed;
    let at = listed.iter().position(|n| *n == state.stage);
    let steps = listed
        .iter()
        .enumerate()
        .map(|(i, n)| CustomerStep {
            title: title_of(n),
            state: match at {
                _ if done => "done",
                Some(a) if i < a => "done",
                Some(a) if i == a => "current",
                _ => "upcoming",
            }
            .to_owned(),
        })
        .collect();
    let status = match state.status {
        Status::Running => "in_progress",
        Status::Completed => "completed",
        Status::Cancelled => "cancelled",
        Status::Failed => "on_hold",
    };
    let fields = view
        .fields
        .iter()
        .filter_map(|name| {
            let value = state.fields.get(name)?;
            let title = definition
                .fields
                .get(name)
                .and_then(|f| f.title.clone())
                .unwrap_or_else(|| name.clone());
            Some(CustomerField {
                title,
                value: value.to_json(),
            })
        })
        .collect();
    CustomerProgress {
        title: view
            .title
            .clone()
            .unwrap_or_else(|| definition.title.clone()),
        status: status.to_owned(),
        step: at.map(|a| title_of(&listed[a])),
        steps,
        key: if view.key { state.key.clone() } else { None },
        fields,
    }
}
