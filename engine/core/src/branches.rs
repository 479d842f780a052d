//! Reading and stepping into the branches of a parallel stage. At rest (see
//! [`crate::state::BranchState`]) each running branch has its own current stage, SLA,
//! timers, approval tasks, plugin call and assignee (a [`Frame`]), as the instance's top
//! level has in [`InstanceState`] itself. A branch's stage may be a parallel
//! stage again, so frames nest.
//!
//! Stage names are unique across a definition, so outside `for_each` a timer, a task or a
//! history entry that names a stage names the branch it belongs to as well. A `for_each`
//! runs the same stages in every element's branch: there a current stage is addressed as
//! `{branch}/{stage}` (`shipment[1]/ship_confirm`), and one inside a parallel stage of such
//! a branch with every enclosing branch's name (`shipment[1]/pack/pack_box`; see
//! [`InstanceState::frames_at`]).

use crate::state::{ApprovalProgress, ApprovalTask, Assignment, InstanceState, PendingCall, Sla};
use crate::state::{BranchState, BranchStatus, ChildRef, Frame, SlaState, Timer};
use chrono::{DateTime, Utc};
use std::borrow::Cow;

/// A read-only view of one current stage, at the top level or in a branch.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    /// The stage.
    pub stage: &'a str,
    /// Its SLA.
    pub sla: &'a Sla,
    /// Its armed timers.
    pub timers: &'a [Timer],
    /// Its approval progress.
    pub approval: Option<&'a ApprovalProgress>,
    /// Its pending plugin call.
    pub pending: Option<&'a PendingCall>,
    /// Its assignee.
    pub assignee: Option<&'a Assignment>,
    /// When its stage was entered.
    pub stage_entered_at: DateTime<Utc>,
    /// Its branches, when its stage is parallel.
    pub branches: &'a [BranchState],
    /// The child instance it waits for, when its stage is a sub-workflow stage.
    pub child: Option<&'a ChildRef>,
    /// The name of the branch it is the current stage of (`shipment[1]`); `None` at the
    /// top level.
    pub branch: Option<&'a str>,
}

impl Frame {
    fn view<'a>(&'a self, branch: &'a str) -> FrameRef<'a> {
        FrameRef {
            stage: &self.stage,
            sla: &self.sla,
            timers: &self.timers,
            approval: self.approval.as_ref(),
            pending: self.pending.as_ref(),
            assignee: self.assignee.as_ref(),
            stage_entered_at: self.stage_entered_at,
            branches: &self.branches,
            child: self.child.as_ref(),
            branch: Some(branch),
        }
    }
}

/// Swaps the per-stage fields of `state` with `frame`: how the machine steps into a branch
/// (and back out) and runs the ordinary stage logic there.
pub(crate) fn swap_frame(state: &mut InstanceState, frame: &mut Frame) {
    std::mem::swap(&mut state.stage, &mut frame.stage);
    std::mem::swap(&mut state.sla, &mut frame.sla);
    std::mem::swap(&mut state.timers, &mut frame.timers);
    std::mem::swap(&mut state.approval, &mut frame.approval);
    std::mem::swap(&mut state.pending, &mut frame.pending);
    std::mem::swap(&mut state.assignee, &mut frame.assignee);
    std::mem::swap(&mut state.stage_entered_at, &mut frame.stage_entered_at);
    std::mem::swap(&mut state.timers_armed, &mut frame.timers_armed);
    std::mem::swap(&mut state.branches, &mut frame.branches);
    std::mem::swap(&mut state.child, &mut frame.child);
}

fn rank(s: SlaState) -> u8 {
    match s {
        SlaState::OnTime => 0,
        SlaState::AtRisk => 1,
        SlaState::Breached => 2,
    }
}

impl InstanceState {
    /// The top level's view.
    fn top_view(&self) -> FrameRef<'_> {
        FrameRef {
            stage: &self.stage,
            sla: &self.sla,
            timers: &self.timers,
            approval: self.approval.as_ref(),
            pending: self.pending.as_ref(),
            assignee: self.assignee.as_ref(),
            stage_entered_at: self.stage_entered_at,
            branches: &self.branches,
            child: self.child.as_ref(),
            branch: None,
        }
    }

    /// Calls `f` on every current stage: the top level first, then each running branch,
    /// depth first, with the path of branch indices that leads to it.
    pub fn each_frame<'a>(&'a self, mut f: impl FnMut(&[usize], FrameRef<'a>)) {
        f(&[], self.top_view());
        let mut path = Vec::new();
        walk(&self.branches, &mut path, &mut f);
    }

    /// True when the instance is in a parallel stage with branches.
    pub fn has_branches(&self) -> bool {
        !self.branches.is_empty()
    }

    /// Every current stage: the top level's, then each running branch's, depth first. One
    /// name outside parallel stages.
    pub fn current_stages(&self) -> Vec<&str> {
        let mut out = Vec::with_capacity(1);
        self.each_frame(|_, f| out.push(f.stage));
        out
    }

    /// The child instances the current stages wait for (sub-workflow stages), top level
    /// first. Empty for nearly every instance, without allocating.
    pub fn waiting_children(&self) -> Vec<ChildRef> {
        let mut out = Vec::new();
        self.each_frame(|_, f| out.extend(f.child.cloned()));
        out
    }

    /// Every armed timer, of every current stage.
    pub fn all_timers(&self) -> Cow<'_, [Timer]> {
        if !self.has_branches() {
            return Cow::Borrowed(&self.timers);
        }
        let mut out = Vec::new();
        self.each_frame(|_, f| out.extend_from_slice(f.timers));
        Cow::Owned(out)
    }

    /// Every open approval task, of every current stage.
    pub fn all_open_tasks(&self) -> Cow<'_, [ApprovalTask]> {
        if !self.has_branches() {
            return Cow::Borrowed(self.open_tasks());
        }
        let mut out = Vec::new();
        self.each_frame(|_, f| {
            if let Some(a) = f.approval {
                out.extend_from_slice(&a.open);
            }
        });
        Cow::Owned(out)
    }

    /// The instance's SLA: the worst of its current stages' (breached over at risk over on
    /// time; of equals, the earliest deadline). Outside parallel stages, the stage's own.
    pub fn worst_sla(&self) -> Cow<'_, Sla> {
        if !self.has_branches() {
            return Cow::Borrowed(&self.sla);
        }
        let mut worst = self.sla.clone();
        self.each_frame(|_, f| {
            let worse = rank(f.sla.state) > rank(worst.state)
                || (rank(f.sla.state) == rank(worst.state)
                    && f.sla.deadline.is_some()
                    && worst.deadline.is_none_or(|d| f.sla.deadline < Some(d)));
            if worse {
                worst = f.sla.clone();
            }
        });
        Cow::Owned(worst)
    }

    /// Every assignee of a current stage.
    pub fn all_assignees(&self) -> Vec<&Assignment> {
        let mut out = Vec::new();
        self.each_frame(|_, f| out.extend(f.assignee));
        out
    }

    /// The SLA of current stage `stage` (a branch's, in a parallel stage); the top level's
    /// when `stage` is not current.
    pub fn stage_sla(&self, stage: &str) -> Sla {
        let mut found = None;
        self.each_frame(|_, f| {
            if found.is_none() && f.stage == stage {
                found = Some(f.sla.clone());
            }
        });
        found.unwrap_or_else(|| self.sla.clone())
    }

    /// The path of branch indices to the current stage called `stage`, if it is current.
    pub fn path_to_stage(&self, stage: &str) -> Option<Vec<usize>> {
        self.find_frame(|f| f.stage == stage)
    }

    /// The names of the branches that lead to the current stage at `path`, outermost
    /// first (`["x[1]", "a"]` for branch `a` of a parallel stage inside element 1 of a
    /// `for_each` named `x`); empty at the top level.
    pub fn branch_names(&self, path: &[usize]) -> Vec<&str> {
        let mut out = Vec::with_capacity(path.len());
        let mut branches = self.branches.as_slice();
        for &i in path {
            let Some(b) = branches.get(i) else { break };
            out.push(b.name.as_str());
            branches = &b.frame.branches;
        }
        out
    }

    /// The paths to the current stages `address` names. An address is a stage name,
    /// optionally preceded by the names of the branches it runs in, innermost last, each
    /// followed by `/`: `ship_confirm` names every frame in that stage (several when a
    /// `for_each` runs it per element); `shipment[1]/ship_confirm` the one in branch
    /// `shipment[1]`; `x[1]/a/aw` the one in branch `a` of the parallel stage inside
    /// branch `x[1]`. The branches given must be the innermost ones the stage runs in
    /// (`a/aw` names `aw` of branch `a` in every element), none skipped.
    pub fn frames_at(&self, address: &str) -> Vec<Vec<usize>> {
        let mut parts: Vec<&str> = address.split('/').collect();
        let stage = parts.pop().unwrap_or(address);
        let mut out = Vec::new();
        self.each_frame(|path, f| {
            if f.stage == stage && self.branch_names(path).ends_with(&parts) {
                out.push(path.to_vec());
            }
        });
        out
    }

    /// How to address the current stage at `path` (`f`) unambiguously: its stage name, or,
    /// when another current stage has the same name (a `for_each` runs it per element),
    /// its stage name after the names of all the branches it runs in, outermost first
    /// (`shipment[1]/ship_confirm`, `x[1]/a/aw`).
    pub fn stage_address(&self, path: &[usize], f: &FrameRef<'_>) -> String {
        let mut same = 0;
        self.each_frame(|_, g| same += usize::from(g.stage == f.stage));
        if same <= 1 || path.is_empty() {
            return f.stage.to_owned();
        }
        let mut out = self.branch_names(path).join("/");
        out.push('/');
        out.push_str(f.stage);
        out
    }

    /// The path to the current stage whose work (its assignee) `stage` addresses: the
    /// stage named (as [`InstanceState::frames_at`] reads it), or, without a name, the top
    /// level's while no branch runs.
    ///
    /// # Errors
    /// [`Unaddressed`]: `stage` is not current, or is needed (branches run) or names
    /// several current stages; each with the addresses the caller may use.
    pub fn work_path(&self, stage: Option<&str>) -> Result<Vec<usize>, Unaddressed> {
        let Some(stage) = stage else {
            if !self.has_branches() {
                return Ok(Vec::new());
            }
            return Err(Unaddressed::Ambiguous(self.current_addresses()));
        };
        let mut paths = self.frames_at(stage);
        match paths.len() {
            0 => Err(Unaddressed::NotCurrent(self.current_addresses())),
            1 => Ok(paths.remove(0)),
            _ => {
                let mut out = Vec::new();
                self.each_frame(|path, f| {
                    if paths.iter().any(|p| p == path) {
                        out.push(self.stage_address(path, &f));
                    }
                });
                Err(Unaddressed::Ambiguous(out))
            }
        }
    }

    /// The current stage at `path` (from [`InstanceState::work_path`] or
    /// [`InstanceState::find_frame`]).
    pub fn frame_at(&self, path: &[usize]) -> Option<FrameRef<'_>> {
        let mut found = None;
        self.each_frame(|p, f| {
            if found.is_none() && p == path {
                found = Some(f);
            }
        });
        found
    }

    /// The address ([`InstanceState::stage_address`]) of every current stage, top level
    /// first.
    pub fn current_addresses(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.each_frame(|path, f| out.push(self.stage_address(path, &f)));
        out
    }

    /// The path to the first current stage (top level first, then depth first) for which
    /// `pred` holds.
    pub fn find_frame(&self, pred: impl Fn(&FrameRef<'_>) -> bool) -> Option<Vec<usize>> {
        let mut found = None;
        self.each_frame(|path, f| {
            if found.is_none() && pred(&f) {
                found = Some(path.to_vec());
            }
        });
        found
    }
}

/// Why [`InstanceState::work_path`] found no one current stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unaddressed {
    /// The stage named is not current; the current stages' addresses.
    NotCurrent(Vec<String>),
    /// No stage was named while several are current, or the name fits several; the
    /// addresses it could be.
    Ambiguous(Vec<String>),
}

fn walk<'a>(
    branches: &'a [BranchState],
    path: &mut Vec<usize>,
    f: &mut dyn FnMut(&[usize], FrameRef<'a>),
) {
    for (i, b) in branches.iter().enumerate() {
        if b.status != BranchStatus::Running {
            continue;
        }
        path.push(i);
        f(path, b.frame.view(&b.name));
        walk(&b.frame.branches, path, f);
        path.pop();
    }
}
