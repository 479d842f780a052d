//! Parallel stages in the machine. A branch's stage runs with exactly the ordinary stage
//! logic: the machine swaps the branch's [`Frame`] into the instance's top-level fields
//! ([`Run::in_branch`]), applies the input there, and swaps it back. Stepping into the
//! branches this way keeps one implementation of every stage kind, and nested parallel
//! stages fall out of it (a branch's frame has branches of its own).
//!
//! After every input the machine *pumps* ([`Run::pump`]): it starts branches not yet
//! started (one at a time, because a branch may stop at a plugin call, which the driver
//! resolves before anything else happens), then checks each parallel stage's join, deepest
//! first, until nothing more can happen without a new input.

use super::{Rejection, Run};
use crate::branches::swap_frame;
use crate::definition::{for_each_branch_name, MAX_FOR_EACH_BRANCHES};
use crate::effect::{Cause, HistoryEvent};
use crate::state::Status;
use crate::state::{BranchState, BranchStatus, Frame};
use crate::workflow::{
    CompiledBranch, CompiledBranchDef, CompiledForEach, CompiledKind, CompiledStage,
};
use serde_json::{json, Map, Value};

impl<'w> Run<'w> {
    /// Runs `f` with branch `i` of the current parallel stage as the current stage; records
    /// the branch's end if `f` led it to one of its end stages.
    pub(super) fn in_branch<R>(&mut self, i: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        let bound = self.bind_item(i);
        let mut frame = std::mem::take(&mut self.state.branches[i].frame);
        swap_frame(&mut self.state, &mut frame);
        let outer_end = self.branch_ended.take();
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        let ended = std::mem::replace(&mut self.branch_ended, outer_end);
        swap_frame(&mut self.state, &mut frame);
        self.unbind_item(bound);
        self.state.branches[i].frame = frame;
        if let Some(outcome) = ended {
            self.branch_end(i, outcome);
        }
        out
    }

    /// Makes branch `i`'s `for_each` element (and its index) visible as `vars.{as}` (and
    /// `vars.{as}_index`) while the branch runs; returns what those variables held before,
    /// for [`Run::unbind_item`]. Nothing for a branch of a stage without `for_each`.
    fn bind_item(&mut self, i: usize) -> Vec<(String, Option<Value>)> {
        let Some(item) = self.state.branches[i].item.clone() else {
            return Vec::new();
        };
        let (_, stage) = self.current();
        let CompiledKind::Parallel {
            for_each: Some(each),
            ..
        } = &stage.kind
        else {
            return Vec::new();
        };
        let index = format!("{}_index", each.as_var);
        let mut saved = Vec::with_capacity(2);
        for (name, value) in [(each.as_var.clone(), item), (index, json!(i))] {
            let old = self.state.vars.insert(name.clone(), value);
            saved.push((name, old));
        }
        saved
    }

    /// Puts back the variables [`Run::bind_item`] shadowed.
    fn unbind_item(&mut self, saved: Vec<(String, Option<Value>)>) {
        for (name, old) in saved {
            match old {
                Some(v) => self.state.vars.insert(name, v),
                None => self.state.vars.remove(&name),
            };
        }
    }

    /// Runs `f` in the frame the branch indices `path` lead to (the top level when empty).
    pub(super) fn with_path<R>(&mut self, path: &[usize], f: impl FnOnce(&mut Self) -> R) -> R {
        match path.split_first() {
            None => f(self),
            Some((&i, rest)) => self.in_branch(i, |r| r.with_path(rest, f)),
        }
    }

    /// True when this run is inside a branch: an end stage ends the branch, not the instance.
    pub(super) fn in_a_branch(&self) -> bool {
        self.depth > 0
    }

    /// True when some current stage waits for a plugin result.
    pub(super) fn any_pending(&self) -> bool {
        self.state.pending.is_some()
            || (self.state.has_branches()
                && self.state.find_frame(|f| f.pending.is_some()).is_some())
    }

    /// The branches of a parallel stage just entered (after its actions and timers); the
    /// pump starts them.
    pub(super) fn fork(&mut self, branches: &[CompiledBranchDef]) {
        self.state.branches = branches
            .iter()
            .map(|b| BranchState {
                name: b.name.clone(),
                status: BranchStatus::Waiting,
                outcome: None,
                counted: false,
                item: None,
                frame: Frame::default(),
            })
            .collect();
    }

    /// The branches of a `for_each` parallel stage just entered: one per element of its
    /// list, named `{branch}[i]`. An empty list joins at once.
    ///
    /// # Errors
    /// Why the step fails: the list could not be evaluated, is not a list, or has more
    /// elements than [`MAX_FOR_EACH_BRANCHES`].
    pub(super) fn fork_each(
        &mut self,
        stage: &'w CompiledStage,
        each: &CompiledForEach,
        branch: &CompiledBranchDef,
    ) -> Result<(), String> {
        let items = each.items.eval(&self.scope()).map_err(|e| {
            format!(
                "for_each of parallel stage '{}': `{}` failed: {e}",
                stage.name,
                each.items.source()
            )
        })?;
        let Value::Array(items) = items else {
            return Err(format!(
                "for_each of parallel stage '{}': `{}` gives {}, not a list",
                stage.name,
                each.items.source(),
                kind_of(&items)
            ));
        };
        if items.len() > MAX_FOR_EACH_BRANCHES {
            return Err(format!(
                "for_each of parallel stage '{}': `{}` gives {} elements, more than the {MAX_FOR_EACH_BRANCHES} branches one for_each may run",
                stage.name,
                each.items.source(),
                items.len()
            ));
        }
        if items.is_empty() {
            let CompiledKind::Parallel { transitions, .. } = &stage.kind else {
                unreachable!("only parallel stages have for_each")
            };
            self.join(stage, transitions);
            return Ok(());
        }
        self.state.branches = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| BranchState {
                name: for_each_branch_name(&branch.name, i),
                status: BranchStatus::Waiting,
                outcome: None,
                counted: false,
                item: Some(item),
                frame: Frame::default(),
            })
            .collect();
        Ok(())
    }

    /// Stops the branches still running (with their timers and tasks) and forgets them:
    /// part of leaving a parallel stage.
    pub(super) fn cancel_branches(&mut self) {
        let stage = self.state.stage.clone();
        for i in 0..self.state.branches.len() {
            if self.state.branches[i].status != BranchStatus::Running {
                continue;
            }
            let at = self.in_branch(i, |r| {
                r.leave_stage();
                r.state.stage.clone()
            });
            self.state.branches[i].status = BranchStatus::Cancelled;
            let branch = self.state.branches[i].name.clone();
            self.history(HistoryEvent::BranchCancelled {
                stage: stage.clone(),
                branch,
                in_stage: at,
            });
        }
        self.state.branches.clear();
    }

    /// Runs parallel work until nothing more can happen without an input. When the
    /// instance stopped inside a branch (failed), the other branches are cancelled.
    pub(super) fn pump(&mut self) {
        loop {
            if !self.state.has_branches() {
                return;
            }
            if self.state.status != Status::Running {
                let stage = self.state.stage.clone();
                self.leave_stage();
                self.state.stage = stage;
                return;
            }
            if self.any_pending() || !self.pump_once() {
                return;
            }
        }
    }

    /// One piece of parallel work in the current frame or below; false when there is none.
    fn pump_once(&mut self) -> bool {
        if !self.state.has_branches() {
            return false;
        }
        let (_, stage) = self.current();
        let CompiledKind::Parallel {
            branches, for_each, ..
        } = &stage.kind
        else {
            return false;
        };
        for i in 0..self.state.branches.len() {
            // A for_each's branches all run its one branch definition.
            let def = &branches[if for_each.is_some() { 0 } else { i }];
            match self.state.branches[i].status {
                BranchStatus::Waiting => {
                    self.start_branch(i, def.start);
                    return true;
                }
                BranchStatus::Running => {
                    if self.in_branch(i, Self::pump_once) {
                        return true;
                    }
                }
                BranchStatus::Ended | BranchStatus::Cancelled => {}
            }
        }
        self.check_join(stage)
    }

    fn start_branch(&mut self, i: usize, start: usize) {
        self.state.branches[i].status = BranchStatus::Running;
        let stage = self.state.stage.clone();
        let branch = self.state.branches[i].name.clone();
        self.history(HistoryEvent::BranchStarted { stage, branch });
        self.in_branch(i, |r| r.enter(start));
    }

    /// Branch `i` reached an end stage with `outcome`: record it, and whether it counts.
    fn branch_end(&mut self, i: usize, outcome: String) {
        let b = &mut self.state.branches[i];
        b.status = BranchStatus::Ended;
        b.outcome = Some(outcome.clone());
        let branch = b.name.clone();
        let (_, stage) = self.current();
        let CompiledKind::Parallel { join_when, .. } = &stage.kind else {
            unreachable!("only parallel stages have branches")
        };
        let counted = match join_when {
            None => true,
            Some(when) => {
                let mut data = json!({"branch": branch, "outcome": outcome});
                if let Some(item) = &self.state.branches[i].item {
                    data["item"] = item.clone();
                }
                let saved = self
                    .event
                    .replace(json!({"type": "branch_ended", "data": data}));
                let holds = when.eval_bool(&self.scope());
                self.event = saved;
                match holds {
                    Ok(h) => h,
                    Err(e) => {
                        self.fail(format!(
                            "the join condition of parallel stage '{}' failed for branch '{branch}': {e}",
                            stage.name
                        ));
                        return;
                    }
                }
            }
        };
        self.state.branches[i].counted = counted;
        self.history(HistoryEvent::BranchEnded {
            stage: stage.name.clone(),
            branch,
            outcome,
            counted,
        });
    }

    /// Each branch's outcome, null for one that did not end.
    fn outcomes(&self) -> Map<String, Value> {
        self.state
            .branches
            .iter()
            .map(|b| (b.name.clone(), json!(b.outcome)))
            .collect()
    }

    /// Moves on when the join is satisfied, or routes to `on_error` when it no longer can
    /// be. True when it did either.
    fn check_join(&mut self, stage: &'w CompiledStage) -> bool {
        let CompiledKind::Parallel {
            join, transitions, ..
        } = &stage.kind
        else {
            return false;
        };
        let needed = &join.needed(self.state.branches.len());
        let counted = self.state.branches.iter().filter(|b| b.counted).count();
        let open = self
            .state
            .branches
            .iter()
            .filter(|b| matches!(b.status, BranchStatus::Waiting | BranchStatus::Running))
            .count();
        if counted >= *needed {
            self.join(stage, transitions);
            return true;
        }
        if counted + open < *needed {
            let outcomes = self.outcomes();
            let error = json!({"kind": "join_unsatisfied", "stage": stage.name, "needed": needed, "outcomes": outcomes});
            self.state.vars.insert("error".to_owned(), error.clone());
            self.event = Some(json!({"type": "error", "data": error}));
            match self.choose(&stage.on_error) {
                Ok(Some(to)) => self.go(to, Cause::Error),
                Ok(None) => self.fail(format!(
                    "the join of parallel stage '{}' can no longer be satisfied: it needs {needed} branch(es) to count, and only {counted} did",
                    stage.name
                )),
                Err(e) => self.fail(format!("on_error of stage '{}': {e}", stage.name)),
            }
            return true;
        }
        false
    }

    fn join(&mut self, stage: &'w CompiledStage, transitions: &[CompiledBranch]) {
        let outcomes = self.outcomes();
        self.history(HistoryEvent::Joined {
            stage: stage.name.clone(),
            outcomes: outcomes.clone(),
        });
        self.event = Some(json!({"type": "joined", "data": {"outcomes": outcomes}}));
        match self.choose(transitions) {
            Ok(Some(to)) => self.go(to, Cause::Joined),
            Ok(None) => self.fail(format!(
                "no transition of parallel stage '{}' holds after its join; add one without `when` as the default",
                stage.name
            )),
            Err(e) => self.fail(format!("stage '{}': {e}", stage.name)),
        }
    }

    /// The path to the current stage an event is for: the one named, or the one current
    /// stage that accepts events called `name`.
    pub(super) fn event_target(
        &self,
        name: &str,
        stage: Option<&str>,
    ) -> Result<Vec<usize>, Rejection> {
        if let Some(stage) = stage {
            let mut paths = self.state.frames_at(stage);
            return match paths.len() {
                0 => Err(Rejection::StageNotCurrent {
                    stage: stage.to_owned(),
                    current: self.current_stage_names(),
                }),
                1 => Ok(paths.remove(0)),
                // A for_each runs this stage in several branches: name the branch too.
                _ => Err(Rejection::AmbiguousEvent {
                    event: name.to_owned(),
                    stages: self.addresses_of(&paths),
                }),
            };
        }
        if !self.state.has_branches() {
            return Ok(Vec::new());
        }
        let mut found: Vec<(Vec<usize>, String)> = Vec::new();
        self.state.each_frame(|path, f| {
            let accepts = self.wf.stage(f.stage).is_some_and(|(_, s)| match &s.kind {
                CompiledKind::Wait { on } | CompiledKind::Approval { on, .. } => {
                    on.contains_key(name)
                }
                _ => false,
            });
            if accepts {
                found.push((path.to_vec(), self.state.stage_address(path, &f)));
            }
        });
        match found.len() {
            0 => Err(Rejection::EventNotAccepted {
                event: name.to_owned(),
                stage: self.current_stage_names().join(", "),
                accepted: self.accepted_anywhere(),
            }),
            1 => Ok(found.remove(0).0),
            _ => Err(Rejection::AmbiguousEvent {
                event: name.to_owned(),
                stages: found.into_iter().map(|(_, s)| s).collect(),
            }),
        }
    }

    /// The path to the current stage whose work an assignment is for: the one `stage`
    /// addresses, or the top level's when no branch runs.
    pub(super) fn work_target(&self, stage: Option<&str>) -> Result<Vec<usize>, Rejection> {
        if self.state.status != Status::Running {
            return Err(Rejection::NotRunning(self.state.status));
        }
        if self.state.has_branches() && self.any_pending() {
            return Err(Rejection::AwaitingPlugin(super::pending_call(&self.state)));
        }
        self.state
            .work_path(stage)
            .map_err(|e| Rejection::unaddressed(stage, e))
    }

    /// Every current stage's address (qualified with its branch where a for_each runs the
    /// same stage more than once).
    fn current_stage_names(&self) -> Vec<String> {
        self.state.current_addresses()
    }

    /// The addresses of the current stages at `paths`.
    fn addresses_of(&self, paths: &[Vec<usize>]) -> Vec<String> {
        let mut out = Vec::with_capacity(paths.len());
        self.state.each_frame(|path, f| {
            if paths.iter().any(|p| p == path) {
                out.push(self.state.stage_address(path, &f));
            }
        });
        out
    }

    /// Every event some current stage accepts, sorted.
    fn accepted_anywhere(&self) -> Vec<String> {
        let mut out = std::collections::BTreeSet::new();
        self.state.each_frame(|_, f| {
            if let Some((_, s)) = self.wf.stage(f.stage) {
                if let CompiledKind::Wait { on } | CompiledKind::Approval { on, .. } = &s.kind {
                    out.extend(on.keys().cloned());
                }
            }
        });
        out.into_iter().collect()
    }
}

/// What kind of JSON value `v` is, for messages.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}
