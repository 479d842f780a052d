//! The checks of parallel stages that need the whole definition: which branch each stage
//! belongs to (a branch may not leave its parallel stage, and no stage outside it may enter
//! it), and whether each join can ever be satisfied. Apart from compiling one parallel
//! stage (`compile::parallel`) because it needs no `Checker`: the compiler calls it once.

use crate::definition::{branch_defs, Branches, Definition, Stage, StageKind};
use crate::source::escape_pointer_segment;
use crate::validate::ValidationError;
use std::collections::{HashMap, HashSet, VecDeque};

/// Which part of the definition a stage belongs to: the main flow, or one branch of one
/// parallel stage (its index and the branch's).
type Scope = Option<(usize, usize)>;

/// Every edge out of `stage` with its pointer, keeping the scope; plus the starts of a
/// parallel stage's branches, which enter new scopes.
fn edges(p: &str, stage: &Stage) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |at: String, b: &Branches| match b {
        Branches::One(x) => out.push((format!("{at}/to"), x.to.clone())),
        Branches::Many(v) => {
            for (i, x) in v.iter().enumerate() {
                out.push((format!("{at}/{i}/to"), x.to.clone()));
            }
        }
    };
    if let Some(t) = &stage.timeout {
        add(format!("{p}/timeout"), t);
    }
    if let Some(e) = &stage.on_error {
        add(format!("{p}/on_error"), e);
    }
    let events = |add: &mut dyn FnMut(String, &Branches),
                  on: &std::collections::BTreeMap<String, Branches>| {
        for (name, b) in on {
            add(format!("{p}/on/{}", escape_pointer_segment(name)), b);
        }
    };
    match &stage.kind {
        StageKind::Task { transitions } | StageKind::Parallel { transitions, .. } => {
            for (i, b) in transitions.iter().enumerate() {
                out.push((format!("{p}/transitions/{i}/to"), b.to.clone()));
            }
        }
        StageKind::Wait { on } => events(&mut add, on),
        StageKind::Approval {
            on_approve,
            on_reject,
            on,
            ..
        } => {
            add(format!("{p}/on_approve"), on_approve);
            add(format!("{p}/on_reject"), on_reject);
            events(&mut add, on);
        }
        StageKind::Subworkflow { on_outcome, .. } => {
            for (outcome, b) in on_outcome {
                add(
                    format!("{p}/on_outcome/{}", escape_pointer_segment(outcome)),
                    b,
                );
            }
        }
        StageKind::End { .. } => {}
    }
    out
}

/// Gives each stage reachable from `start` its scope and reports every edge that crosses a
/// branch's border; then reports joins that can never be satisfied because too few
/// branches have an end stage of their own.
pub(super) fn check_branches(
    definition: &Definition,
    by_name: &HashMap<String, usize>,
    start: Option<usize>,
    errors: &mut Vec<ValidationError>,
) {
    let Some(start) = start else { return };
    let stages = &definition.stages.0;
    if !stages
        .iter()
        .any(|(_, s)| matches!(s.kind, StageKind::Parallel { .. }))
    {
        return;
    }
    let declared = declared_starts(stages, by_name, start, errors);
    let scope = flood_scopes(stages, by_name, start, &declared, errors);
    check_satisfiable(stages, by_name, &scope, errors);
}

/// How an error names `scope`: "the main flow" or "branch 'b' of parallel stage 's'".
fn scope_name(stages: &[(String, Stage)], scope: Scope) -> String {
    match scope {
        None => "the main flow".to_owned(),
        Some((par, b)) => match &stages[par].1.kind {
            StageKind::Parallel {
                branches, for_each, ..
            } => {
                format!(
                    "branch '{}' of parallel stage '{}'",
                    branch_defs(branches, for_each.as_ref())[b].name,
                    stages[par].0
                )
            }
            _ => unreachable!("scopes are made for parallel stages only"),
        },
    }
}

/// The scope each branch's start stage is declared in, indexed like `stages`. A branch's
/// start belongs to its branch whatever else leads to it; a stage that starts two
/// branches, or is the workflow's start, is reported.
fn declared_starts(
    stages: &[(String, Stage)],
    by_name: &HashMap<String, usize>,
    start: usize,
    errors: &mut Vec<ValidationError>,
) -> Vec<Option<Scope>> {
    let mut declared: Vec<Option<Scope>> = vec![None; stages.len()];
    for (i, (name, stage)) in stages.iter().enumerate() {
        let StageKind::Parallel {
            branches, for_each, ..
        } = &stage.kind
        else {
            continue;
        };
        let p = format!("/stages/{}", escape_pointer_segment(name));
        for (b, def) in branch_defs(branches, for_each.as_ref()).iter().enumerate() {
            let Some(&j) = by_name.get(&def.start) else {
                continue;
            };
            let at = if for_each.is_some() {
                format!("{p}/for_each/branch/start")
            } else {
                format!("{p}/branches/{b}/start")
            };
            match declared[j] {
                None if j != start => declared[j] = Some(Some((i, b))),
                have => errors.push(ValidationError::new(
                    at,
                    format!(
                        "stage '{}' already starts {}; each branch needs a start of its own",
                        def.start,
                        scope_name(stages, have.unwrap_or(None))
                    ),
                )),
            }
        }
    }
    declared
}

/// The scope of each stage reachable from `start` (`None` where unreachable), reporting
/// every edge that leads from one scope into another. The main flow is flooded first, then
/// each parallel stage's branches (outer before inner), so a stage two scopes reach is
/// blamed on the inner one's edge.
fn flood_scopes(
    stages: &[(String, Stage)],
    by_name: &HashMap<String, usize>,
    start: usize,
    declared: &[Option<Scope>],
    errors: &mut Vec<ValidationError>,
) -> Vec<Option<Scope>> {
    let mut scope: Vec<Option<Scope>> = vec![None; stages.len()];
    scope[start] = Some(None);
    let mut queue = VecDeque::from([start]);
    let mut later: Vec<usize> = Vec::new();
    while let Some(i) = queue.pop_front().or_else(|| {
        queue.extend(later.drain(..));
        queue.pop_front()
    }) {
        let (name, stage) = &stages[i];
        let here = scope[i].expect("queued stages have a scope");
        let p = format!("/stages/{}", escape_pointer_segment(name));
        for (at, to) in edges(&p, stage) {
            let Some(&j) = by_name.get(&to) else { continue };
            match scope[j].or(declared[j]) {
                None => {
                    scope[j] = Some(here);
                    queue.push_back(j);
                }
                Some(have) if have != here => errors.push(ValidationError::new(
                    at,
                    format!(
                        "stage '{to}' belongs to {}, but this leads to it from {}: a branch's stages are entered only from its own start and stages, and a branch ends at an end stage of its own, never by leaving its parallel stage",
                        scope_name(stages, have),
                        scope_name(stages, here)
                    ),
                )),
                Some(_) => {}
            }
        }
        if let StageKind::Parallel {
            branches, for_each, ..
        } = &stage.kind
        {
            for (b, def) in branch_defs(branches, for_each.as_ref()).iter().enumerate() {
                let Some(&j) = by_name.get(&def.start) else {
                    continue;
                };
                if scope[j].is_none() && declared[j] == Some(Some((i, b))) {
                    scope[j] = Some(Some((i, b)));
                    later.push(j);
                }
            }
        }
    }
    scope
}

/// A join needing more branches than can end is a parallel stage no instance ever leaves.
fn check_satisfiable(
    stages: &[(String, Stage)],
    by_name: &HashMap<String, usize>,
    scope: &[Option<Scope>],
    errors: &mut Vec<ValidationError>,
) {
    let mut ends: HashSet<Scope> = HashSet::new();
    for (i, (_, s)) in stages.iter().enumerate() {
        if let (StageKind::End { .. }, Some(sc)) = (&s.kind, scope[i]) {
            ends.insert(sc);
        }
    }
    if !ends.contains(&None) {
        errors.push(ValidationError::new(
            "/stages",
            "the main flow has no end stage of its own (the end stages all belong to branches of parallel stages), so no instance can ever finish",
        ));
    }
    for (i, (name, s)) in stages.iter().enumerate() {
        let StageKind::Parallel {
            branches,
            for_each,
            join,
            ..
        } = &s.kind
        else {
            continue;
        };
        let branches = branch_defs(branches, for_each.as_ref());
        if scope[i].is_none() {
            continue;
        }
        if branches.iter().any(|b| !by_name.contains_key(&b.start)) {
            // A branch whose start does not exist is reported at its start already.
            continue;
        }
        let endless: Vec<&str> = branches
            .iter()
            .enumerate()
            .filter(|(b, _)| !ends.contains(&Some((i, *b))))
            .map(|(_, d)| d.name.as_str())
            .collect();
        let can_end = branches.len() - endless.len();
        let needed = join.needed(branches.len());
        if !endless.is_empty() && needed > can_end {
            errors.push(ValidationError::new(
                format!("/stages/{}/join", escape_pointer_segment(name)),
                format!(
                    "this join can never be satisfied: it needs {needed} branch(es) to end, but only {can_end} can; {} no end stage of its own",
                    endless.iter().map(|n| format!("branch '{n}'")).collect::<Vec<_>>().join(", ") + if endless.len() == 1 { " has" } else { " have" }
                ),
            ));
        }
    }
}
