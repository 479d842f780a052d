//! Layer 2 of validation: what a definition means. Compiling and checking are one pass,
//! so every expression is compiled exactly once and every error knows its pointer.

use crate::definition::{
    parse_iso_duration, Action, Branch, Branches, Definition, Stage, StageKind,
};
use crate::expr::Expr;
use crate::plugin::{PluginCatalog, PluginRef, World};
use crate::source::escape_pointer_segment;
use crate::validate::{structure, ValidationError};
use crate::workflow::{
    CompiledAction, CompiledBranch, CompiledKind, CompiledStage, Deadline, Workflow,
};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// How many unknown stage names get a "did you mean" hint. Each hint compares the name
/// with every stage name; past this many, a definition full of misspellings would make
/// validation quadratic in its size, and the first hints already show the pattern.
const MAX_HINTS: usize = 32;

mod approval;
mod branch_scopes;
mod ladder;
mod parallel;

struct Checker<'a> {
    by_name: HashMap<String, usize>,
    calendars: &'a crate::calendar::Calendars,
    hints_left: usize,
    catalog: Option<&'a dyn PluginCatalog>,
    errors: Vec<ValidationError>,
}

impl Checker<'_> {
    fn error(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError::new(pointer, message));
    }

    fn expr(&mut self, pointer: &str, source: &str) -> Option<Expr> {
        match Expr::compile(source) {
            Ok(e) => Some(e),
            Err(message) => {
                self.error(pointer, message);
                None
            }
        }
    }

    fn branch(&mut self, pointer: &str, branch: &Branch) -> Option<CompiledBranch> {
        let to = self.by_name.get(&branch.to).copied();
        if to.is_none() {
            let hint = self.suggest(&branch.to);
            self.error(
                format!("{pointer}/to"),
                format!("no stage named '{}'{hint}", branch.to),
            );
        }
        let when = match &branch.when {
            Some(w) => Some(self.expr(&format!("{pointer}/when"), w)?),
            None => None,
        };
        Some(CompiledBranch {
            to: to?,
            when,
            restart_deadline: branch.restart_deadline,
        })
    }

    fn branches(&mut self, pointer: &str, branches: &Branches) -> Vec<CompiledBranch> {
        let items = branches.as_slice();
        let pointer_of = |i: usize| match branches {
            Branches::One(_) => pointer.to_owned(),
            Branches::Many(_) => format!("{pointer}/{i}"),
        };
        self.check_shadowed(items, pointer_of);
        items
            .iter()
            .enumerate()
            .filter_map(|(i, b)| self.branch(&pointer_of(i), b))
            .collect()
    }

    /// A branch after an unconditional one can never be taken; say so rather than let an
    /// administrator wonder why it never fires.
    fn check_shadowed(&mut self, items: &[Branch], pointer_of: impl Fn(usize) -> String) {
        if let Some(first_open) = items.iter().position(|b| b.when.is_none()) {
            for i in first_open + 1..items.len() {
                self.error(
                    pointer_of(i),
                    format!(
                        "this branch is never taken: branch {first_open} comes before it and has no `when`, so it always matches first"
                    ),
                );
            }
        }
    }

    fn events(
        &mut self,
        pointer: &str,
        on: &BTreeMap<String, Branches>,
    ) -> HashMap<String, Vec<CompiledBranch>> {
        on.iter()
            .map(|(name, b)| {
                let p = format!("{pointer}/{}", escape_pointer_segment(name));
                (name.clone(), self.branches(&p, b))
            })
            .collect()
    }

    fn plugin(&mut self, pointer: String, text: &str, world: World) -> Option<PluginRef> {
        let reference = match PluginRef::parse(text) {
            Ok(r) => r,
            Err(m) => {
                self.error(pointer, m);
                return None;
            }
        };
        if let Some(catalog) = self.catalog {
            match catalog.world_of(&reference) {
                None => self.error(pointer, format!("no plugin '{reference}' is registered")),
                Some(w) if w != world => self.error(
                    pointer,
                    format!(
                        "plugin '{reference}' implements the {w} world, but this action needs a {world}"
                    ),
                ),
                Some(_) => {}
            }
        }
        Some(reference)
    }

    fn suggest(&mut self, name: &str) -> String {
        if self.hints_left == 0 {
            return String::new();
        }
        self.hints_left -= 1;
        crate::hint::did_you_mean(name, self.by_name.keys().map(String::as_str)).unwrap_or_default()
    }

    fn actions(&mut self, pointer: &str, actions: &[Action]) -> Vec<CompiledAction> {
        let mut out = Vec::with_capacity(actions.len());
        for (i, action) in actions.iter().enumerate() {
            let p = format!("{pointer}/{i}");
            let optional_input = |c: &mut Self, input: &Option<String>| {
                input
                    .as_ref()
                    .and_then(|src| c.expr(&format!("{p}/input"), src))
            };
            match action {
                Action::Set { set } => {
                    let assignments = set
                        .iter()
                        .filter_map(|(var, src)| {
                            let e = self
                                .expr(&format!("{p}/set/{}", escape_pointer_segment(var)), src)?;
                            Some((var.clone(), e))
                        })
                        .collect();
                    out.push(CompiledAction::Set(assignments));
                }
                Action::Call {
                    call,
                    input,
                    result,
                } => {
                    let input = optional_input(self, input);
                    if let Some(plugin) = self.plugin(format!("{p}/call"), call, World::Scorer) {
                        out.push(CompiledAction::Call {
                            plugin,
                            input,
                            result: result.clone(),
                        });
                    }
                }
                Action::Notify { notify, input } => {
                    let input = optional_input(self, input);
                    if let Some(plugin) =
                        self.plugin(format!("{p}/notify"), notify, World::Notifier)
                    {
                        out.push(CompiledAction::Notify { plugin, input });
                    }
                }
                Action::Tag { tag } => out.push(CompiledAction::Tag(tag.clone())),
                Action::Assign { assign } => {
                    if let Some(e) = self.expr(&format!("{p}/assign"), assign) {
                        out.push(CompiledAction::Assign(e));
                    }
                }
            }
        }
        out
    }

    /// `restart_deadline` only means something on an event's branch back to its own stage;
    /// anywhere else it would silently do nothing, so say so.
    fn check_restart_deadline(&mut self, p: &str, name: &str, stage: &Stage) {
        let mut misplaced: Vec<String> = Vec::new();
        let mut add = |pointer: String, branches: &Branches| {
            for (i, b) in branches.as_slice().iter().enumerate() {
                if b.restart_deadline {
                    misplaced.push(match branches {
                        Branches::One(_) => format!("{pointer}/restart_deadline"),
                        Branches::Many(_) => format!("{pointer}/{i}/restart_deadline"),
                    });
                }
            }
        };
        if let Some(t) = &stage.timeout {
            add(format!("{p}/timeout"), t);
        }
        if let Some(e) = &stage.on_error {
            add(format!("{p}/on_error"), e);
        }
        match &stage.kind {
            StageKind::Task { transitions } => {
                for (i, b) in transitions.iter().enumerate() {
                    if b.restart_deadline {
                        misplaced.push(format!("{p}/transitions/{i}/restart_deadline"));
                    }
                }
            }
            StageKind::Approval {
                on_approve,
                on_reject,
                ..
            } => {
                add(format!("{p}/on_approve"), on_approve);
                add(format!("{p}/on_reject"), on_reject);
            }
            _ => {}
        }
        if let StageKind::Wait { on } | StageKind::Approval { on, .. } = &stage.kind {
            for (event, branches) in on {
                let ep = format!("{p}/on/{}", escape_pointer_segment(event));
                for (i, b) in branches.as_slice().iter().enumerate() {
                    if b.restart_deadline && b.to != name {
                        misplaced.push(match branches {
                            Branches::One(_) => format!("{ep}/restart_deadline"),
                            Branches::Many(_) => format!("{ep}/{i}/restart_deadline"),
                        });
                    }
                }
            }
        }
        for pointer in misplaced {
            self.error(
                pointer,
                format!("restart_deadline applies only to an event's branch back to its own stage ('{name}'); entering another stage always starts that stage's deadline"),
            );
        }
    }

    /// The definition's `input_schema` compiled, if it has one and it compiles.
    fn input_schema(&mut self, definition: &Definition) -> Option<jsonschema::Validator> {
        let schema = definition.input_schema.as_ref()?;
        match structure::compile_user_schema(schema, "/input_schema") {
            Ok(v) => Some(v),
            Err(errors) => {
                self.errors.extend(errors);
                None
            }
        }
    }

    /// The index of the start stage; `None` (reported) when no stage has its name.
    fn start(&mut self, definition: &Definition) -> Option<usize> {
        let start = self.by_name.get(&definition.start).copied();
        if start.is_none() {
            let hint = self.suggest(&definition.start);
            self.error(
                "/start",
                format!(
                    "the start stage '{}' is not among the stages{hint}",
                    definition.start
                ),
            );
        }
        start
    }

    /// Without an end stage no instance can ever finish.
    fn check_has_end(&mut self, definition: &Definition) {
        if !definition
            .stages
            .iter()
            .any(|(_, s)| matches!(s.kind, StageKind::End { .. }))
        {
            self.error(
                "/stages",
                "the workflow has no end stage, so no instance can ever finish",
            );
        }
    }

    /// Compiles stage `name`. Errors are reported in the order a reader meets the fields
    /// (time, branches, actions, then the kind), which the golden `.err` files pin.
    fn stage(&mut self, name: &str, stage: &Stage) -> Option<CompiledStage> {
        let p = format!("/stages/{}", escape_pointer_segment(name));
        let deadline = self.deadline(&p, stage);
        let at_risk = self.at_risk(&p, stage);
        let calendar = self.stage_calendar(&p, stage, deadline.as_ref());
        let escalation = self.escalation(&p, stage, deadline.as_ref());
        let reminders = self.reminders(&p, &stage.reminders);
        self.check_deadline_uses(&p, stage, deadline.as_ref(), at_risk);
        let timeout = self.optional_branches(&format!("{p}/timeout"), stage.timeout.as_ref());
        let on_error = self.optional_branches(&format!("{p}/on_error"), stage.on_error.as_ref());
        self.check_on_error_reachable(&p, stage);
        let actions = self.actions(&format!("{p}/actions"), &stage.actions);
        self.check_restart_deadline(&p, name, stage);
        let kind = self.kind(&p, stage);
        Some(CompiledStage {
            name: name.to_owned(),
            kind,
            deadline,
            at_risk,
            timeout,
            on_error,
            actions,
            calendar,
            escalation,
            reminders,
        })
    }

    /// The stage's `deadline`: an ISO 8601 duration from entry (`P...`, longer than zero) or
    /// a CEL expression yielding a timestamp. A loosely written duration gets a hint.
    fn deadline(&mut self, p: &str, stage: &Stage) -> Option<Deadline> {
        let d = stage.deadline.as_ref()?;
        let pointer = format!("{p}/deadline");
        if d.starts_with('P') {
            match parse_iso_duration(d) {
                Ok(delta) if delta > chrono::TimeDelta::zero() => Some(Deadline::After(delta)),
                Ok(_) => {
                    self.error(pointer, "a deadline must be longer than zero");
                    None
                }
                Err(e) => {
                    self.error(pointer, e.to_string());
                    None
                }
            }
        } else if let Some(hint) = duration_lookalike(d) {
            self.error(pointer, hint);
            None
        } else {
            self.expr(&pointer, d).map(Deadline::At)
        }
    }

    /// The stage's `at_risk` duration (counted back from the deadline), if it parses.
    fn at_risk(&mut self, p: &str, stage: &Stage) -> Option<chrono::TimeDelta> {
        let a = stage.at_risk.as_ref()?;
        match parse_iso_duration(a) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(format!("{p}/at_risk"), e.to_string());
                None
            }
        }
    }

    /// `at_risk` and `timeout` need a deadline, and `at_risk` must fall inside it.
    fn check_deadline_uses(
        &mut self,
        p: &str,
        stage: &Stage,
        deadline: Option<&Deadline>,
        at_risk: Option<chrono::TimeDelta>,
    ) {
        if stage.deadline.is_none() {
            if stage.at_risk.is_some() {
                self.error(
                    format!("{p}/at_risk"),
                    "at_risk counts back from the deadline, but this stage has no deadline",
                );
            }
            if stage.timeout.is_some() {
                self.error(
                    format!("{p}/timeout"),
                    "a timeout fires at the deadline, but this stage has no deadline",
                );
            }
        }
        if let (Some(Deadline::After(d)), Some(r)) = (deadline, at_risk) {
            if r >= *d {
                self.error(
                    format!("{p}/at_risk"),
                    format!("at_risk ({}) must be shorter than the deadline ({}), or the stage is at risk from the moment it starts",
                        stage.at_risk.as_deref().unwrap_or_default(), stage.deadline.as_deref().unwrap_or_default()),
                );
            }
        }
    }

    /// The compiled branches of an optional field such as `timeout`; none when absent.
    fn optional_branches(
        &mut self,
        pointer: &str,
        branches: Option<&Branches>,
    ) -> Vec<CompiledBranch> {
        branches
            .map(|b| self.branches(pointer, b))
            .unwrap_or_default()
    }

    /// `on_error` is taken only when something can fail: a plugin action, a parallel join
    /// that becomes unsatisfiable or a sub-workflow's child; otherwise it is dead.
    fn check_on_error_reachable(&mut self, p: &str, stage: &Stage) {
        let has_plugin_action = stage
            .actions
            .iter()
            .chain(stage.escalation.iter().flat_map(|s| &s.actions))
            .chain(stage.reminders.iter().flat_map(|r| &r.actions))
            .any(|a| matches!(a, Action::Call { .. } | Action::Notify { .. }));
        // A parallel stage's join may become unsatisfiable, a sub-workflow's child may fail:
        // both route through on_error without any plugin.
        let can_err = matches!(
            stage.kind,
            StageKind::Parallel { .. } | StageKind::Subworkflow { .. }
        );
        if stage.on_error.is_some() && !has_plugin_action && !can_err {
            self.error(
                format!("{p}/on_error"),
                "on_error is never taken: this stage has no call or notify action that could fail",
            );
        }
    }

    /// The compiled kind of the stage at `p` (its JSON pointer).
    fn kind(&mut self, p: &str, stage: &Stage) -> CompiledKind {
        match &stage.kind {
            StageKind::Task { transitions } => CompiledKind::Task {
                transitions: self.transitions(p, transitions),
            },
            StageKind::Wait { on } => {
                if on.is_empty() && stage.timeout.is_none() {
                    self.error(
                        p,
                        "a wait stage needs events under `on` or a `timeout`; otherwise an instance here waits forever",
                    );
                }
                CompiledKind::Wait {
                    on: self.events(&format!("{p}/on"), on),
                }
            }
            StageKind::Approval {
                levels,
                on_approve,
                on_reject,
                on,
                separation_of_duties,
            } => CompiledKind::Approval {
                levels: self.levels(p, levels),
                on_approve: self.branches(&format!("{p}/on_approve"), on_approve),
                on_reject: self.branches(&format!("{p}/on_reject"), on_reject),
                on: self.events(&format!("{p}/on"), on),
                duties: *separation_of_duties,
            },
            StageKind::Parallel {
                branches,
                for_each,
                join,
                transitions,
            } => self.parallel(p, branches, for_each.as_ref(), join, transitions),
            StageKind::Subworkflow {
                child,
                input,
                on_outcome,
                result,
            } => CompiledKind::Subworkflow {
                child: child.clone(),
                input: self.subworkflow_input(p, input),
                on_outcome: self.events(&format!("{p}/on_outcome"), on_outcome),
                result: result.clone(),
            },
            StageKind::End { outcome } => CompiledKind::End {
                outcome: outcome.clone(),
            },
        }
    }

    /// The `transitions` of a task or parallel stage at `p`, taken in order once the stage
    /// is done.
    fn transitions(&mut self, p: &str, transitions: &[Branch]) -> Vec<CompiledBranch> {
        let pointer_of = |i: usize| format!("{p}/transitions/{i}");
        self.check_shadowed(transitions, pointer_of);
        transitions
            .iter()
            .enumerate()
            .filter_map(|(i, b)| self.branch(&format!("{p}/transitions/{i}"), b))
            .collect()
    }

    /// The child's input of the sub-workflow stage at `p`: one expression per member.
    fn subworkflow_input(
        &mut self,
        p: &str,
        input: &BTreeMap<String, String>,
    ) -> Vec<(String, Expr)> {
        input
            .iter()
            .filter_map(|(member, source)| {
                let at = format!("{p}/input/{}", escape_pointer_segment(member));
                Some((member.clone(), self.expr(&at, source)?))
            })
            .collect()
    }
}

/// Checks the meaning of `definition` and compiles it.
pub(crate) fn compile(
    definition: Definition,
    catalog: Option<&dyn PluginCatalog>,
    calendars: &crate::calendar::Calendars,
) -> Result<Workflow, Vec<ValidationError>> {
    let by_name: HashMap<String, usize> = definition
        .stages
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.clone(), i))
        .collect();
    let mut checker = Checker {
        by_name,
        calendars,
        hints_left: MAX_HINTS,
        catalog,
        errors: Vec::new(),
    };

    let input_schema = checker.input_schema(&definition);
    let start = checker.start(&definition);
    checker.check_has_end(&definition);

    let stages: Vec<Option<CompiledStage>> = definition
        .stages
        .iter()
        .map(|(name, stage)| checker.stage(name, stage))
        .collect();

    check_graph(&definition, &checker.by_name, start, &mut checker.errors);
    branch_scopes::check_branches(&definition, &checker.by_name, start, &mut checker.errors);
    let (key, fields) = crate::fields::compile(&definition, &mut checker.errors);
    crate::definition::progress::check(&definition, &mut checker.errors);

    let Checker {
        by_name, errors, ..
    } = checker;
    if !errors.is_empty() {
        return Err(errors);
    }
    let stages = stages
        .into_iter()
        .map(|s| s.expect("no errors means every stage compiled"))
        .collect();
    Ok(Workflow {
        definition,
        version: 0,
        stages,
        by_name,
        start: start.expect("no errors means start exists"),
        input_schema,
        key,
        fields,
        calendars: std::sync::Arc::new(calendars.clone()),
    })
}

/// Every stage named by a branch of `stage`, in order.
pub(crate) fn successors<'a>(stage: &'a Stage) -> Vec<&'a str> {
    let mut out: Vec<&'a str> = Vec::new();
    let mut add = |b: &'a Branches| out.extend(b.as_slice().iter().map(|b| b.to.as_str()));
    if let Some(t) = &stage.timeout {
        add(t);
    }
    if let Some(e) = &stage.on_error {
        add(e);
    }
    match &stage.kind {
        StageKind::Task { transitions } => out.extend(transitions.iter().map(|b| b.to.as_str())),
        StageKind::Parallel {
            branches,
            for_each,
            transitions,
            ..
        } => {
            let defs = crate::definition::branch_defs(branches, for_each.as_ref());
            out.extend(defs.iter().map(|b| b.start.as_str()));
            out.extend(transitions.iter().map(|b| b.to.as_str()));
        }
        StageKind::Wait { on } => on.values().for_each(&mut add),
        StageKind::Approval {
            on_approve,
            on_reject,
            on,
            ..
        } => {
            add(on_approve);
            add(on_reject);
            on.values().for_each(&mut add);
        }
        StageKind::Subworkflow { on_outcome, .. } => on_outcome.values().for_each(&mut add),
        StageKind::End { .. } => {}
    }
    out
}

/// Reachability: from `start` forwards, and from the end stages backwards.
fn check_graph(
    definition: &Definition,
    by_name: &HashMap<String, usize>,
    start: Option<usize>,
    errors: &mut Vec<ValidationError>,
) {
    let n = definition.stages.len();
    let mut forward: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut backward: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, (_, stage)) in definition.stages.iter().enumerate() {
        for to in successors(stage) {
            if let Some(&j) = by_name.get(to) {
                forward[i].push(j);
                backward[j].push(i);
            }
        }
    }
    let Some(start) = start else { return };
    let reachable = flood(&forward, [start]);
    let ends = definition
        .stages
        .iter()
        .enumerate()
        .filter(|(_, (_, s))| matches!(s.kind, StageKind::End { .. }))
        .map(|(i, _)| i)
        .collect::<Vec<_>>();
    // Without any end stage, or at a wait stage already reported as never left, "no path
    // to an end" would only repeat an error given more precisely.
    let has_end = !ends.is_empty();
    let finishing = flood(&backward, ends);
    let start_name = &definition.start;
    for (i, (name, stage)) in definition.stages.iter().enumerate() {
        let p = format!("/stages/{}", escape_pointer_segment(name));
        if !reachable[i] {
            errors.push(ValidationError::new(
                p,
                format!("stage '{name}' cannot be reached from the start stage '{start_name}'"),
            ));
        } else if !finishing[i] && has_end && !waits_forever(stage) {
            errors.push(ValidationError::new(
                p,
                format!("no path from stage '{name}' leads to an end stage; an instance here could never finish"),
            ));
        }
    }
}

/// A wait stage with neither events nor a timeout: it can never be left.
fn waits_forever(stage: &Stage) -> bool {
    matches!(&stage.kind, StageKind::Wait { on } if on.is_empty()) && stage.timeout.is_none()
}

/// A deadline that is not CEL but a duration written loosely (`pt4h`, `4h`, `36 hours`):
/// say how to write it rather than report a CEL error.
fn duration_lookalike(text: &str) -> Option<String> {
    let upper = text.to_ascii_uppercase();
    if text.starts_with('p') && parse_iso_duration(&upper).is_ok() {
        return Some(format!("'{text}' must be written in capitals: {upper}"));
    }
    let numeric = text.trim().parse::<f64>().is_ok();
    if text.starts_with(|c: char| c.is_ascii_digit()) && (numeric || Expr::compile(text).is_err()) {
        return Some(format!(
            "'{text}' is not an ISO 8601 duration such as PT4H, P3D or PT1H30M (durations start with P), nor a CEL expression yielding a timestamp"
        ));
    }
    None
}

fn flood(edges: &[Vec<usize>], from: impl IntoIterator<Item = usize>) -> Vec<bool> {
    let mut seen = vec![false; edges.len()];
    let mut queue: VecDeque<usize> = VecDeque::new();
    for s in from {
        if !seen[s] {
            seen[s] = true;
            queue.push_back(s);
        }
    }
    while let Some(i) = queue.pop_front() {
        for &j in &edges[i] {
            if !seen[j] {
                seen[j] = true;
                queue.push_back(j);
            }
        }
    }
    seen
}
