//! Mermaid flowcharts of a definition's stages and transitions.

use crate::definition::{
    branch_defs, Branch, Branches, Definition, Join, JoinRule, Quorum, Stage, StageKind,
};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Renders `definition` as a Mermaid `flowchart TD`: one node per stage, in definition
/// order, then each stage's edges.
pub fn mermaid(definition: &Definition) -> String {
    let mut out = String::from("flowchart TD\n");
    let _ = writeln!(out, "    start((start)) --> {}", id(&definition.start));
    for (name, stage) in definition.stages.iter() {
        let _ = writeln!(out, "    {}{}", id(name), shape(name, stage));
    }
    for (name, stage) in definition.stages.iter() {
        let from = id(name);
        for edge in edges(stage) {
            let text = match edge.when {
                Some(w) if edge.what.is_empty() => w.to_owned(),
                Some(w) => format!("{}: {w}", edge.what),
                None => edge.what,
            };
            if text.is_empty() {
                let _ = writeln!(out, "    {from} --> {}", id(edge.to));
            } else {
                let _ = writeln!(out, "    {from} -->|\"{}\"| {}", label(&text), id(edge.to));
            }
        }
    }
    out
}

/// A stage's node id: Mermaid ids may not contain `-`.
fn id(name: &str) -> String {
    format!("s_{}", name.replace('-', "_"))
}

/// `text` safe inside a quoted Mermaid label.
fn label(text: &str) -> String {
    text.replace('"', "#quot;")
}

/// The node of stage `name`: its title, kind, owner and deadline in the kind's shape.
fn shape(name: &str, stage: &Stage) -> String {
    let title = stage.title.as_deref().unwrap_or(name);
    let mut text = format!("{title}<br/><i>{}</i>", stage.kind.name());
    if let Some(owner) = &stage.owner {
        let _ = write!(text, "<br/>owner: {owner}");
    }
    if let Some(deadline) = &stage.deadline {
        let _ = write!(text, "<br/>due: {deadline}");
    }
    match &stage.kind {
        StageKind::End { outcome } => {
            format!("([\"{}<br/>{}\"])", label(title), label(outcome))
        }
        StageKind::Approval { .. } => format!("{{{{\"{}\"}}}}", label(&text)),
        StageKind::Wait { .. } => format!("[/\"{}\"/]", label(&text)),
        StageKind::Task { .. } => format!("[\"{}\"]", label(&text)),
        // A fork: the branches leave it, the join's transitions follow it.
        StageKind::Parallel { .. } => format!("[[\"{}\"]]", label(&text)),
        // A call of another workflow: a subroutine shape, with the workflow's id.
        StageKind::Subworkflow { child, .. } => format!(
            "[[\"{}<br/>calls {}\"]]",
            label(&text),
            label(&child.workflow)
        ),
    }
}

/// One arrow out of a stage: where it leads, its condition, and what takes it (empty for a
/// plain transition).
struct Edge<'a> {
    to: &'a str,
    when: Option<&'a str>,
    what: String,
}

/// Every arrow out of `stage`, in the order the chart lists them: the kind's own branches,
/// then `timeout`, then `on_error`.
fn edges(stage: &Stage) -> Vec<Edge<'_>> {
    let mut out = Vec::new();
    match &stage.kind {
        StageKind::Task { transitions } => push(&mut out, transitions, String::new),
        StageKind::Wait { on } => events(&mut out, on, "on"),
        StageKind::Approval {
            levels,
            on_approve,
            on_reject,
            on,
            ..
        } => {
            let summary = levels
                .iter()
                .map(|l| quorum(l.quorum))
                .collect::<Vec<_>>()
                .join(", ");
            push(&mut out, on_approve.as_slice(), || {
                format!("approved ({summary})")
            });
            push(&mut out, on_reject.as_slice(), || "rejected".to_owned());
            events(&mut out, on, "on");
        }
        StageKind::Parallel {
            branches,
            for_each,
            join,
            transitions,
        } => {
            for b in branch_defs(branches, for_each.as_ref()) {
                let what = match for_each {
                    Some(f) => format!("fork {}[] for each of {}", b.name, f.items),
                    None => format!("fork {}", b.name),
                };
                out.push(Edge {
                    to: &b.start,
                    when: None,
                    what,
                });
            }
            let rule = join_rule(join);
            push(&mut out, transitions, || format!("joined ({rule})"));
        }
        StageKind::Subworkflow { on_outcome, .. } => events(&mut out, on_outcome, "child"),
        StageKind::End { .. } => {}
    }
    if let Some(t) = &stage.timeout {
        push(&mut out, t.as_slice(), || "timeout".to_owned());
    }
    if let Some(e) = &stage.on_error {
        push(&mut out, e.as_slice(), || "error".to_owned());
    }
    out
}

/// Appends an edge per branch of `bs`, each taken by `what()`.
fn push<'a>(out: &mut Vec<Edge<'a>>, bs: &'a [Branch], what: impl Fn() -> String) {
    out.extend(bs.iter().map(|b| Edge {
        to: &b.to,
        when: b.when.as_deref(),
        what: what(),
    }));
}

/// Appends the edges of each named event or outcome, taken by "`prefix` `name`".
fn events<'a>(out: &mut Vec<Edge<'a>>, on: &'a BTreeMap<String, Branches>, prefix: &str) {
    for (name, bs) in on {
        push(out, bs.as_slice(), || format!("{prefix} {name}"));
    }
}

/// An approval level's quorum as the chart shows it: `any`, `all` or a count.
fn quorum(q: Quorum) -> String {
    match q {
        Quorum::Any => "any".to_owned(),
        Quorum::All => "all".to_owned(),
        Quorum::Count(n) => n.to_string(),
    }
}

/// A join's rule as the chart shows it: `all`, `any` or `at least N`.
fn join_rule(join: &Join) -> String {
    match join.rule {
        JoinRule::All => "all".to_owned(),
        JoinRule::Any => "any".to_owned(),
        JoinRule::AtLeast => format!("at least {}", join.count.unwrap_or_default()),
    }
}
