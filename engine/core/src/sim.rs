//! An in-memory engine over the pure core, with a hand-moved clock and fake plugins: the
//! harness for scenario tests and benchmarks. It performs effects exactly as a durable
//! driver does (timers, approval inboxes, outbox, history), minus the disk.

use crate::drive::{apply_until_quiet, start_until_quiet};
use crate::effect::{Effect, HistoryEntry, OutboundMessage};
use crate::input::{Decider, Input};
use crate::machine::{Rejection, Step};
use crate::plugin::{FailureKind, PluginFailure, PluginInvoker, PluginRef, World};
use crate::state::{ApprovalTask, InstanceState};
use crate::workflow::Workflow;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

type PluginFn = Box<dyn Fn(&Value) -> Result<Value, PluginFailure> + Send + Sync>;

/// Plugins as closures, registered by name and world.
#[derive(Default)]
pub struct FakePlugins {
    plugins: HashMap<String, (World, PluginFn)>,
    // A std Mutex so the fakes can serve a multi-threaded runtime too.
    calls: std::sync::Mutex<Vec<(String, Value)>>,
}

impl FakePlugins {
    /// No plugins.
    pub fn new() -> Self {
        FakePlugins::default()
    }

    /// Registers a scorer.
    pub fn scorer(
        mut self,
        name: &str,
        f: impl Fn(&Value) -> Result<Value, PluginFailure> + Send + Sync + 'static,
    ) -> Self {
        self.plugins
            .insert(name.to_owned(), (World::Scorer, Box::new(f)));
        self
    }

    /// Registers a notifier.
    pub fn notifier(
        mut self,
        name: &str,
        f: impl Fn(&Value) -> Result<Value, PluginFailure> + Send + Sync + 'static,
    ) -> Self {
        self.plugins
            .insert(name.to_owned(), (World::Notifier, Box::new(f)));
        self
    }

    /// Every call made so far: plugin name and input.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().expect("calls lock").clone()
    }
}

impl PluginInvoker for FakePlugins {
    fn invoke(
        &self,
        plugin: &PluginRef,
        world: World,
        input: &Value,
    ) -> Result<Value, PluginFailure> {
        self.calls
            .lock()
            .expect("calls lock")
            .push((plugin.name.clone(), input.clone()));
        match self.plugins.get(&plugin.name) {
            Some((w, f)) if *w == world => f(input),
            _ => Err(PluginFailure {
                kind: FailureKind::NotFound,
                message: format!("no {world} plugin '{plugin}'"),
            }),
        }
    }
}

impl crate::plugin::PluginCatalog for FakePlugins {
    fn world_of(&self, reference: &PluginRef) -> Option<World> {
        self.plugins.get(&reference.name).map(|(w, _)| *w)
    }
}

/// An in-memory engine for one workflow.
pub struct Simulation<'w, P: PluginInvoker> {
    workflow: &'w Workflow,
    plugins: P,
    now: DateTime<Utc>,
    instances: HashMap<String, InstanceState>,
    timers: BTreeSet<(DateTime<Utc>, String)>,
    timer_due: HashMap<String, (DateTime<Utc>, String)>,
    tasks: BTreeMap<String, ApprovalTask>,
    history: HashMap<String, Vec<HistoryEntry>>,
    outbox: Vec<OutboundMessage>,
    child_effects: Vec<Effect>,
    next_id: u64,
}

impl<'w, P: PluginInvoker> Simulation<'w, P> {
    /// A simulation of `workflow` whose clock shows `now`.
    pub fn new(workflow: &'w Workflow, plugins: P, now: DateTime<Utc>) -> Self {
        Simulation {
            workflow,
            plugins,
            now,
            instances: HashMap::new(),
            timers: BTreeSet::new(),
            timer_due: HashMap::new(),
            tasks: BTreeMap::new(),
            history: HashMap::new(),
            outbox: Vec::new(),
            child_effects: Vec::new(),
            next_id: 0,
        }
    }

    /// The simulated time.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The plugins, to inspect the calls they received.
    pub fn plugins(&self) -> &P {
        &self.plugins
    }

    /// Starts an instance; returns its id.
    ///
    /// # Errors
    /// As [`crate::start`].
    pub fn start(&mut self, input: Value) -> Result<String, Rejection> {
        self.next_id += 1;
        let id = format!("{}-{}", self.workflow.id(), self.next_id);
        let step = start_until_quiet(self.workflow, id.clone(), input, self.now, &self.plugins)?;
        self.perform(step);
        Ok(id)
    }

    /// Applies `input` to instance `id`.
    ///
    /// # Errors
    /// As [`crate::apply`].
    ///
    /// # Panics
    /// If no instance `id` exists.
    pub fn apply(&mut self, id: &str, input: Input) -> Result<(), Rejection> {
        let state = self
            .instances
            .get(id)
            .unwrap_or_else(|| panic!("no instance {id}"))
            .clone();
        let step = apply_until_quiet(self.workflow, state, input, self.now, &self.plugins)?;
        self.perform(step);
        Ok(())
    }

    /// Sends event `name` with `data`.
    ///
    /// # Errors
    /// As [`crate::apply`].
    pub fn event(&mut self, id: &str, name: &str, data: Value) -> Result<(), Rejection> {
        self.apply(
            id,
            Input::Event {
                name: name.to_owned(),
                data,
                stage: None,
            },
        )
    }

    /// Sends event `name` with `data` to current stage `stage` (a branch's stage in a
    /// parallel stage where several accept the event).
    ///
    /// # Errors
    /// As [`crate::apply`].
    pub fn event_at(
        &mut self,
        id: &str,
        stage: &str,
        name: &str,
        data: Value,
    ) -> Result<(), Rejection> {
        self.apply(
            id,
            Input::Event {
                name: name.to_owned(),
                data,
                stage: Some(stage.to_owned()),
            },
        )
    }

    /// `decider` (holding `roles`) decides task `task_id`.
    ///
    /// # Errors
    /// As [`crate::apply`], and [`Rejection::UnknownTask`] for a task not open anywhere.
    pub fn decide(
        &mut self,
        task_id: &str,
        decider: &str,
        roles: &[&str],
        approve: bool,
        comment: &str,
    ) -> Result<(), Rejection> {
        let instance = self
            .tasks
            .get(task_id)
            .map(|t| t.instance_id.clone())
            .ok_or_else(|| Rejection::UnknownTask(task_id.to_owned()))?;
        let input = Input::Decision {
            task_id: task_id.to_owned(),
            decider: Decider {
                id: decider.to_owned(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            },
            approve,
            comment: Some(comment.to_owned()),
        };
        self.apply(&instance, input)
    }

    /// Cancels instance `id`.
    ///
    /// # Errors
    /// As [`crate::apply`].
    pub fn cancel(&mut self, id: &str, by: &str) -> Result<(), Rejection> {
        self.apply(
            id,
            Input::Cancel {
                by: by.to_owned(),
                reason: None,
            },
        )
    }

    /// Retries failed instance `id` as `by`.
    ///
    /// # Errors
    /// As [`crate::apply`]: [`Rejection::NotFailed`] unless it failed.
    pub fn retry(&mut self, id: &str, by: &str) -> Result<(), Rejection> {
        self.apply(id, Input::Retry { by: by.to_owned() })
    }

    /// Moves the clock forward by `by`, firing every timer that comes due, each at its
    /// own due time, in due order.
    pub fn advance(&mut self, by: TimeDelta) {
        let until = self.now + by;
        self.advance_to(until);
    }

    /// Moves the clock to `until`, firing due timers in order.
    ///
    /// # Panics
    /// If a timer's instance has vanished (a bug in the simulation).
    pub fn advance_to(&mut self, until: DateTime<Utc>) {
        while let Some((due, timer_id)) = self.timers.first().cloned() {
            if due > until {
                break;
            }
            self.timers.pop_first();
            let (_, instance) = self.timer_due.remove(&timer_id).expect("indexed timer");
            self.now = self.now.max(due);
            self.apply(&instance, Input::TimerFired { timer_id })
                .expect("a timer firing is never refused");
        }
        self.now = self.now.max(until);
    }

    /// The instance's state.
    ///
    /// # Panics
    /// If no instance `id` exists.
    pub fn state(&self, id: &str) -> &InstanceState {
        &self.instances[id]
    }

    /// The instance's state to change what the driver records from outside the core (who
    /// started it), as the runtime does before its first commit.
    ///
    /// # Panics
    /// If no instance `id` exists.
    pub fn instance_mut(&mut self, id: &str) -> &mut InstanceState {
        self.instances
            .get_mut(id)
            .unwrap_or_else(|| panic!("no instance {id}"))
    }

    /// The instance's history.
    pub fn history(&self, id: &str) -> &[HistoryEntry] {
        self.history.get(id).map_or(&[], Vec::as_slice)
    }

    /// Open approval tasks of instance `id`.
    pub fn tasks(&self, id: &str) -> Vec<ApprovalTask> {
        self.tasks
            .values()
            .filter(|t| t.instance_id == id)
            .cloned()
            .collect()
    }

    /// Open tasks for `role` on instance `id`.
    pub fn task_for_role(&self, id: &str, role: &str) -> Option<ApprovalTask> {
        self.tasks(id)
            .into_iter()
            .find(|t| t.approver == crate::definition::Approver::Role(role.to_owned()))
    }

    /// Every child start and cancellation asked for so far, in order (a simulation runs
    /// one workflow, so it performs neither).
    pub fn child_effects(&self) -> &[Effect] {
        &self.child_effects
    }

    /// Every message queued so far.
    pub fn outbox(&self) -> &[OutboundMessage] {
        &self.outbox
    }

    /// Armed timers, soonest first: `(due, timer id)`.
    pub fn armed_timers(&self) -> Vec<(DateTime<Utc>, String)> {
        self.timers.iter().cloned().collect()
    }

    fn perform(&mut self, step: Step) {
        let id = step.state.id.clone();
        for effect in step.effects {
            match effect {
                Effect::ArmTimer(t) => {
                    self.timers.insert((t.due, t.id.clone()));
                    self.timer_due.insert(t.id, (t.due, id.clone()));
                }
                Effect::CancelTimer { timer_id } => {
                    if let Some((due, _)) = self.timer_due.remove(&timer_id) {
                        self.timers.remove(&(due, timer_id));
                    }
                }
                Effect::OpenApproval(task) => {
                    self.tasks.insert(task.id.clone(), task);
                }
                Effect::CloseApproval { task_id } => {
                    self.tasks.remove(&task_id);
                }
                Effect::Enqueue(m) => self.outbox.push(m),
                Effect::History(h) => self.history.entry(id.clone()).or_default().push(h),
                Effect::CallPlugin(_) => unreachable!("the driver resolves plugin calls"),
                // One workflow only: the children a sub-workflow stage asks for are kept
                // for the test to look at (and to feed their ends back).
                Effect::StartChild(_) | Effect::CancelChild { .. } => {
                    self.child_effects.push(effect)
                }
            }
        }
        self.instances.insert(id, step.state);
    }
}
