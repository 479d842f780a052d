//! Compiling a parallel stage, and the checks that need the whole definition: which
//! branch each stage belongs to (a branch may not leave its parallel stage, and no stage
//! outside it may enter it), and whether each join can ever be satisfied.

use super::Checker;
use crate::definition::{
    branch_defs, BranchDef, Branches, Definition, ForEach, Join, JoinRule, Stage, StageKind,
};
use crate::source::escape_pointer_segment;
use crate::validate::ValidationError;
use crate::workflow::{CompiledBranchDef, CompiledForEach, CompiledKind};
use std::collections::{HashMap, HashSet, VecDeque};

impl Checker<'_> {
    /// The compiled kind of parallel stage `p` (its JSON pointer).
    pub(super) fn parallel(
        &mut self,
        p: &str,
        branches: &[BranchDef],
        for_each: Option<&ForEach>,
        join: &Join,
        transitions: &[crate::definition::Branch],
    ) -> CompiledKind {
        let compiled_each = match (for_each, branches.is_empty()) {
            (Some(_), false) => {
                self.error(
                    format!("{p}/for_each"),
                    "a parallel stage has either `branches` or `for_each`, not both",
                );
                None
            }
            (None, true) => {
                self.error(
                    p.to_owned(),
                    "a parallel stage needs `branches` (one or more) or `for_each`",
                );
                None
            }
            (Some(f), true) => self.for_each(p, f),
            (None, false) => None,
        };
        let (branches, bp_of): (&[BranchDef], Box<dyn Fn(usize) -> String>) = match for_each {
            Some(f) if branches.is_empty() => {
                let at = format!("{p}/for_each/branch");
                (
                    std::slice::from_ref(&f.branch),
                    Box::new(move |_| at.clone()),
                )
            }
            _ => {
                let p = p.to_owned();
                (branches, Box::new(move |i| format!("{p}/branches/{i}")))
            }
        };
        let compiled = self.branch_defs(branches, bp_of);
        // With `for_each` the number of branches is known only when the stage is entered:
        // a count larger than the list leaves the join unsatisfied then (its `on_error`).
        let total = if compiled_each.is_some() {
            usize::MAX
        } else {
            branches.len()
        };
        self.check_join_rule(p, join, total);
        let join_when = join
            .when
            .as_ref()
            .and_then(|w| self.expr(&format!("{p}/join/when"), w));
        let transitions = self.transitions(p, transitions);
        CompiledKind::Parallel {
            branches: compiled,
            for_each: compiled_each,
            join: join.clone(),
            join_when,
            transitions,
        }
    }

    /// The branches of a parallel stage, each with a unique name and an existing start
    /// stage; `bp_of(i)` is the pointer of branch `i`.
    fn branch_defs(
        &mut self,
        branches: &[BranchDef],
        bp_of: impl Fn(usize) -> String,
    ) -> Vec<CompiledBranchDef> {
        let mut names = HashSet::new();
        let mut compiled = Vec::with_capacity(branches.len());
        for (i, b) in branches.iter().enumerate() {
            let bp = bp_of(i);
            if !names.insert(b.name.as_str()) {
                self.error(
                    format!("{bp}/name"),
                    format!(
                        "two branches of this stage are called '{}'; branch names must be unique",
                        b.name
                    ),
                );
            }
            match self.by_name.get(&b.start).copied() {
                Some(start) => compiled.push(CompiledBranchDef {
                    name: b.name.clone(),
                    start,
                }),
                None => {
                    let hint = self.suggest(&b.start);
                    self.error(
                        format!("{bp}/start"),
                        format!("no stage named '{}'{hint}", b.start),
                    );
                }
            }
        }
        compiled
    }

    /// The compiled `for_each` of the stage at `p`: its list expression and variable.
    fn for_each(&mut self, p: &str, f: &ForEach) -> Option<CompiledForEach> {
        let items = self.expr(&format!("{p}/for_each/items"), &f.items);
        Some(CompiledForEach {
            items: items?,
            as_var: f.as_var.clone(),
        })
    }

    fn check_join_rule(&mut self, p: &str, join: &Join, total: usize) {
        match (join.rule, join.count) {
            (JoinRule::AtLeast, None) => self.error(
                format!("{p}/join"),
                "a join `at_least` needs `count`: how many branches must end",
            ),
            (JoinRule::AtLeast, Some(n)) if n as usize > total => self.error(
                format!("{p}/join/count"),
                format!(
                    "this join can never be satisfied: it needs {n} branches to end, but the stage has {total}"
                ),
            ),
            (JoinRule::All | JoinRule::Any, Some(_)) => self.error(
                format!("{p}/join/count"),
                "`count` applies only to the rule `at_least`",
            ),
            _ => {}
        }
    }
}

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
