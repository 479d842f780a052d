//! Checks of sub-workflow stages that need the other workflows: run at upload, when both
//! the caller and the workflows it calls are known. Each problem is reported at the JSON
//! pointer of the stage member at fault.
//!
//! - the called workflow (or the pinned version) exists;
//! - the stage's `input` mapping gives every member the child's `input_schema` requires,
//!   and no member a closed schema (`additionalProperties: false`) does not take;
//! - every outcome the stage's `on_outcome` routes is one the called workflow ends with;
//! - calls do not go round (`a` calls `b` calls `a`) nor nest deeper than
//!   [`MAX_SUBWORKFLOW_DEPTH`] below the instance a person starts.

use super::ValidationError;
use crate::definition::{ChildWorkflow, StageKind, MAX_SUBWORKFLOW_DEPTH};
use crate::source::escape_pointer_segment;
use crate::workflow::Workflow;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Finds a workflow by id and version (`None`: the newest); `None` when there is none.
pub type Lookup<'a> = dyn Fn(&str, Option<u32>) -> Option<Arc<Workflow>> + 'a;

/// What kind of problem a [`CallProblem`] is, for callers that treat kinds apart (the CLI
/// cannot check a call to a workflow outside the files it was given; an upload that breaks
/// a stored caller points at the part of the new version at fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// The workflow calls itself.
    CallsItself,
    /// The called workflow, or the pinned version of it, does not exist.
    Missing,
    /// The stage's `input` mapping does not fit the called workflow's `input_schema`.
    Input,
    /// Calls go round, or nest deeper than [`MAX_SUBWORKFLOW_DEPTH`].
    Depth,
    /// The stage routes an outcome (`on_outcome`) the called workflow never ends with.
    Outcome,
}

/// One problem [`check_calls`] finds, with its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct CallProblem {
    /// What kind of problem.
    pub kind: CallKind,
    /// Where and what, as every validation error says it.
    pub error: ValidationError,
}

/// Every problem with the sub-workflow stages of `workflow` (being uploaded), finding the
/// workflows it calls, and theirs, with `lookup`. Empty when there is none.
pub fn check_calls(workflow: &Workflow, lookup: &Lookup<'_>) -> Vec<ValidationError> {
    call_problems(workflow, lookup)
        .into_iter()
        .map(|p| p.error)
        .collect()
}

/// [`check_calls`] with the kind of each problem.
pub fn call_problems(workflow: &Workflow, lookup: &Lookup<'_>) -> Vec<CallProblem> {
    let mut errors = Vec::new();
    let root = workflow.id();
    for (name, stage) in workflow.definition.stages.iter() {
        let StageKind::Subworkflow {
            child,
            input,
            on_outcome,
            ..
        } = &stage.kind
        else {
            continue;
        };
        let p = format!("/stages/{}", escape_pointer_segment(name));
        let problem = |kind, error| CallProblem { kind, error };
        if child.workflow == root {
            errors.push(problem(CallKind::CallsItself, ValidationError::new(
                format!("{p}/workflow"),
                format!("workflow '{root}' calls itself: a sub-workflow may not call back into a workflow that calls it"),
            )));
            continue;
        }
        let Some(called) = lookup(&child.workflow, child.version) else {
            errors.push(problem(CallKind::Missing, missing(&p, child)));
            continue;
        };
        errors.extend(
            unknown_outcomes(&p, child, on_outcome, &called)
                .into_iter()
                .map(|e| problem(CallKind::Outcome, e)),
        );
        let mut input_errors = Vec::new();
        check_input(&p, child, input, &called, &mut input_errors);
        errors.extend(
            input_errors
                .into_iter()
                .map(|e| problem(CallKind::Input, e)),
        );
        let mut chain = vec![root.to_owned(), child.workflow.clone()];
        if let Some(message) = deeper(&called, &mut chain, root, lookup) {
            errors.push(problem(
                CallKind::Depth,
                ValidationError::new(format!("{p}/workflow"), message),
            ));
        }
    }
    errors
}

/// The outcomes `on_outcome` routes that `called` never ends with (an end stage of its
/// own, not a branch's, records the instance's outcome): a renamed outcome would otherwise
/// send every child's end through `on_error` without a word at upload.
fn unknown_outcomes(
    p: &str,
    child: &ChildWorkflow,
    on_outcome: &BTreeMap<String, crate::definition::Branches>,
    called: &Workflow,
) -> Vec<ValidationError> {
    let outcomes: std::collections::BTreeSet<&str> = called
        .definition
        .stages
        .iter()
        .filter_map(|(_, s)| match &s.kind {
            StageKind::End { outcome } => Some(outcome.as_str()),
            _ => None,
        })
        .collect();
    on_outcome
        .keys()
        .filter(|o| !outcomes.contains(o.as_str()))
        .map(|o| {
            let listed: Vec<&str> = outcomes.iter().copied().collect();
            ValidationError::new(
                format!("{p}/on_outcome/{}", escape_pointer_segment(o)),
                format!(
                    "workflow '{}' never ends with outcome '{o}' (its outcomes: {}); route the outcomes it has",
                    child.workflow,
                    listed.join(", ")
                ),
            )
        })
        .collect()
}

fn missing(p: &str, child: &ChildWorkflow) -> ValidationError {
    match child.version {
        Some(v) => ValidationError::new(
            format!("{p}/version"),
            format!("workflow '{}' has no version {v}", child.workflow),
        ),
        None => ValidationError::new(
            format!("{p}/workflow"),
            format!(
                "no workflow '{}' exists; upload it before a workflow that calls it",
                child.workflow
            ),
        ),
    }
}

/// The mapping against the child's `input_schema`: required members given, and no member
/// a closed schema does not take. (The values' types are known only when the stage runs;
/// a value that does not fit then fails the child's start, which the stage's `on_error`
/// routes.)
fn check_input(
    p: &str,
    child: &ChildWorkflow,
    input: &BTreeMap<String, String>,
    called: &Workflow,
    errors: &mut Vec<ValidationError>,
) {
    let Some(schema) = called.definition.input_schema.as_ref() else {
        return;
    };
    let required = schema.get("required").and_then(Value::as_array);
    for member in required.into_iter().flatten().filter_map(Value::as_str) {
        if !input.contains_key(member) {
            errors.push(ValidationError::new(
                format!("{p}/input"),
                format!(
                    "workflow '{}' requires input '{member}', which this stage's input does not map",
                    child.workflow
                ),
            ));
        }
    }
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    let properties = schema.get("properties").and_then(Value::as_object);
    if closed {
        for member in input.keys() {
            if !properties.is_some_and(|ps| ps.contains_key(member)) {
                errors.push(ValidationError::new(
                    format!("{p}/input/{}", escape_pointer_segment(member)),
                    format!(
                        "workflow '{}' takes no input '{member}' (its input_schema allows no other members)",
                        child.workflow
                    ),
                ));
            }
        }
    }
}

/// Follows the calls of `workflow`, the last of `chain`: a message when they come back to a
/// workflow of the chain or nest deeper than the limit.
fn deeper(
    workflow: &Workflow,
    chain: &mut Vec<String>,
    root: &str,
    lookup: &Lookup<'_>,
) -> Option<String> {
    for (_, child) in workflow.children_called() {
        if chain.contains(&child.workflow) {
            chain.push(child.workflow);
            return Some(format!(
                "calls go round: {}; a sub-workflow may not call back into a workflow that calls it",
                chain.join(" -> ")
            ));
        }
        chain.push(child.workflow.clone());
        if chain.len() - 1 > MAX_SUBWORKFLOW_DEPTH {
            return Some(format!(
                "calls nest {} deep ({}), deeper than the limit of {MAX_SUBWORKFLOW_DEPTH} (MAX_SUBWORKFLOW_DEPTH)",
                chain.len() - 1,
                chain.join(" -> ")
            ));
        }
        // The workflow being uploaded is not stored yet: a call to it is a cycle (above).
        if child.workflow != root {
            if let Some(next) = lookup(&child.workflow, child.version) {
                if let Some(m) = deeper(&next, chain, root, lookup) {
                    return Some(m);
                }
            }
        }
        chain.pop();
    }
    None
}
