//! Mermaid flowcharts of a definition's stages and transitions.

use crate::definition::{Branch, Definition, Quorum, StageKind};
use std::fmt::Write;

/// Renders `definition` as a Mermaid `flowchart TD`.
pub fn mermaid(definition: &Definition) -> String {
    let mut out = String::from("flowchart TD\n");
    let id = |name: &str| format!("s_{}", name.replace('-', "_"));
    let label = |text: &str| text.replace('"', "#quot;");
    let _ = writeln!(out, "    start((start)) --> {}", id(&definition.start));
    for (name, stage) in definition.stages.iter() {
        let title = stage.title.as_deref().unwrap_or(name);
        let mut text = format!("{title}<br/><i>{}</i>", stage.kind.name());
        if let Some(owner) = &stage.owner {
            let _ = write!(text, "<br/>owner: {owner}");
        }
        if let Some(deadline) = &stage.deadline {
            let _ = write!(text, "<br/>due: {deadline}");
        }
        let shape = match &stage.kind {
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
        };
        let _ = writeln!(out, "    {}{shape}", id(name));
    }
    for (name, stage) in definition.stages.iter() {
        let from = id(name);
        let mut edge = |b: &Branch, what: String| {
            let text = match &b.when {
                Some(w) if what.is_empty() => w.clone(),
                Some(w) => format!("{what}: {w}"),
                None => what,
            };
            if text.is_empty() {
                let _ = writeln!(out, "    {from} --> {}", id(&b.to));
            } else {
                let _ = writeln!(out, "    {from} -->|\"{}\"| {}", label(&text), id(&b.to));
            }
        };
        match &stage.kind {
            StageKind::Task { transitions } => {
                transitions.iter().for_each(|b| edge(b, String::new()))
            }
            StageKind::Wait { on } => {
                for (event, bs) in on {
                    bs.as_slice()
                        .iter()
                        .for_each(|b| edge(b, format!("on {event}")));
                }
            }
            StageKind::Approval {
                levels,
                on_approve,
                on_reject,
                on,
                ..
            } => {
                let quorum = |q: Quorum| match q {
                    Quorum::Any => "any".to_owned(),
                    Quorum::All => "all".to_owned(),
                    Quorum::Count(n) => n.to_string(),
                };
                let summary = levels
                    .iter()
                    .map(|l| quorum(l.quorum))
                    .collect::<Vec<_>>()
                    .join(", ");
                on_approve
                    .as_slice()
                    .iter()
                    .for_each(|b| edge(b, format!("approved ({summary})")));
                on_reject
                    .as_slice()
                    .iter()
                    .for_each(|b| edge(b, "rejected".to_owned()));
                for (event, bs) in on {
                    bs.as_slice()
                        .iter()
                        .for_each(|b| edge(b, format!("on {event}")));
                }
            }
            StageKind::Parallel {
                branches,
                for_each,
                join,
                transitions,
            } => {
                for b in crate::definition::branch_defs(branches, for_each.as_ref()) {
                    let fork = Branch {
                        to: b.start.clone(),
                        when: None,
                        restart_deadline: false,
                    };
                    let name = match for_each {
                        Some(f) => format!("fork {}[] for each of {}", b.name, f.items),
                        None => format!("fork {}", b.name),
                    };
                    edge(&fork, name);
                }
                let rule = match join.rule {
                    crate::definition::JoinRule::All => "all".to_owned(),
                    crate::definition::JoinRule::Any => "any".to_owned(),
                    crate::definition::JoinRule::AtLeast => {
                        format!("at least {}", join.count.unwrap_or_default())
                    }
                };
                transitions
                    .iter()
                    .for_each(|b| edge(b, format!("joined ({rule})")));
            }
            StageKind::Subworkflow { on_outcome, .. } => {
                for (outcome, bs) in on_outcome {
                    bs.as_slice()
                        .iter()
                        .for_each(|b| edge(b, format!("child {outcome}")));
                }
            }
            StageKind::End { .. } => {}
        }
        if let Some(t) = &stage.timeout {
            t.as_slice()
                .iter()
                .for_each(|b| edge(b, "timeout".to_owned()));
        }
        if let Some(e) = &stage.on_error {
            e.as_slice()
                .iter()
                .for_each(|b| edge(b, "error".to_owned()));
        }
    }
    out
}
