//! Commands: start, event, decision, cancel, timer. Each takes its lock, loops the core
//! until quiet, commits once, releases the lock, and returns after the group flush.

use crate::ids::fnv1a;
use crate::{InstanceSummary, Runtime, RuntimeError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tracing::Instrument;
use waystation_core::drive::{apply_until_quiet, start_until_quiet};
use waystation_core::{
    Actor, Decider, Effect, HistoryEvent, Input, InstanceState, PluginInvoker, Rejection, Step,
    Workflow,
};
use waystation_store::{Commit, DueTimer, IdempotencyRecord};

/// A command's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The instance after the command.
    pub instance: InstanceSummary,
    /// True when this is the stored answer to an earlier request with the same
    /// `Idempotency-Key`; nothing was applied again.
    pub replayed: bool,
}

/// The lock name of an idempotency key: one namespace, whatever the command's target.
pub(crate) fn idempotency_lock(key: &str) -> String {
    format!("idempotency:{key}")
}

/// Bytes of `value` as compact JSON, counted without building the text.
fn json_size<T: Serialize + ?Sized>(value: &T) -> Result<usize, RuntimeError> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value)
        .map_err(|e| RuntimeError::encode("measuring a JSON value", e))?;
    Ok(count.0)
}

/// Records `actor` on every history entry of `step`: all of them follow from the request.
fn stamp(step: &mut Step, actor: Option<&Actor>) {
    let Some(actor) = actor else { return };
    for effect in &mut step.effects {
        if let Effect::History(entry) = effect {
            entry.actor = Some(actor.clone());
        }
    }
}

fn fingerprint(kind: &str, target: &str, body: &Value) -> String {
    format!(
        "{kind}:{target}:{:016x}",
        fnv1a(body.to_string().as_bytes())
    )
}

impl Runtime {
    /// Starts an instance of the newest version of `workflow`.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] for an unknown workflow; [`RuntimeError::Rejected`] with
    /// [`Rejection::InvalidInput`] when `input` does not match the `input_schema`.
    pub async fn start(
        &self,
        workflow: &str,
        input: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.start_by(None, workflow, input, idempotency_key).await
    }

    pub(crate) async fn start_by(
        &self,
        actor: Option<&Actor>,
        workflow: &str,
        input: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        // Lost to another node (same id, business key or idempotency key): start over, so
        // the key is found taken or the answer replayed.
        crate::contention::retry(self.metrics(), || {
            self.start_once(actor, workflow, input.clone(), idempotency_key)
        })
        .await
    }

    async fn start_once(
        &self,
        actor: Option<&Actor>,
        workflow: &str,
        input: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.check_data_size(&input, "the start's input", "/input")?;
        let fp = fingerprint("start", workflow, &input);
        let wf = self.workflow(workflow, None).await?;
        let now = self.now();
        let key = wf.key_of(&input, now).map_err(|r| self.refused(r))?;
        let id = self.ids.next(now.timestamp_millis());
        let summary = {
            // The idempotency key orders repeats of one request; the business key orders
            // starts of one order, so two cannot both find it free.
            let idempotency_lock = idempotency_key.map(idempotency_lock);
            let key_lock = key.as_ref().map(|k| format!("key:{workflow}\0{k}"));
            let names: Vec<&str> = idempotency_lock
                .iter()
                .chain(&key_lock)
                .map(String::as_str)
                .collect();
            let _guards = self.locks.lock_all(&names).await;
            if let Some(replay) = self.replay(idempotency_key, &fp)? {
                drop(_guards);
                self.durability.durable().await?;
                return Ok(replay);
            }
            if let Some(k) = &key {
                if let Some(running) = self.store.running_with_key(workflow, k)? {
                    return Err(RuntimeError::KeyInUse {
                        workflow: workflow.to_owned(),
                        key: k.clone(),
                        instance: running,
                    });
                }
            }
            let mut step = self
                .drive(&wf, move |wf, plugins| {
                    start_until_quiet(wf, id, input, now, plugins)
                })
                .await?;
            self.check_step(&step, false)?;
            let members = self.children_of(&wf, &mut step, now).await?;
            stamp(&mut step, actor);
            // Who started it, for the separation of duties of its approvals.
            step.state.started_by = actor.map(|a| a.name.clone());
            self.commit_with(
                None,
                &step,
                None,
                idempotency_key.map(|k| (k, fp.as_str())),
                &members,
            )?
        };
        self.durability.durable().await?;
        tracing::debug!(instance = %summary.id, workflow, stage = %summary.stage, "started");
        Ok(Applied {
            instance: summary,
            replayed: false,
        })
    }

    /// Sends event `name` with `data` to instance `id`.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; [`RuntimeError::Rejected`] when the stage does not accept it.
    pub async fn event(
        &self,
        id: &str,
        name: &str,
        data: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.event_by(None, id, None, name, data, idempotency_key)
            .await
    }

    pub(crate) async fn event_by(
        &self,
        actor: Option<&Actor>,
        id: &str,
        stage: Option<&str>,
        name: &str,
        data: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.check_data_size(&data, "the event's data", "/data")?;
        // A stage named is part of the request: the same key with another stage is
        // another request. Without one the fingerprint is what it always was.
        let fp = match stage {
            None => fingerprint("event", id, &json!([name, data])),
            Some(stage) => fingerprint("event", id, &json!([name, data, stage])),
        };
        self.command(
            actor,
            id,
            idempotency_key,
            fp,
            Input::Event {
                name: name.to_owned(),
                data,
                stage: stage.map(str::to_owned),
            },
        )
        .await
    }

    /// Decides approval task `task_id`.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] when neither the task nor its instance exists;
    /// [`RuntimeError::Rejected`] when the task is closed or the decider may not decide it.
    pub async fn decide(
        &self,
        task_id: &str,
        decider: Decider,
        approve: bool,
        comment: Option<String>,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.decide_by(None, task_id, decider, approve, comment, idempotency_key)
            .await
    }

    pub(crate) async fn decide_by(
        &self,
        actor: Option<&Actor>,
        task_id: &str,
        decider: Decider,
        approve: bool,
        comment: Option<String>,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        // Task ids are `<instance>.a<n>`: a closed task still names its instance, so a late
        // decision is a conflict on that instance rather than an unknown task.
        let instance = match self.store.task(task_id)? {
            Some(task) => task.instance_id,
            None => match task_id.rsplit_once('.') {
                Some((instance, _)) if self.store.instance(instance)?.is_some() => {
                    instance.to_owned()
                }
                _ => {
                    return Err(RuntimeError::NotFound {
                        what: "approval task",
                        id: task_id.to_owned(),
                    })
                }
            },
        };
        let fp = fingerprint("decision", task_id, &json!([decider, approve, comment]));
        let input = Input::Decision {
            task_id: task_id.to_owned(),
            decider,
            approve,
            comment,
        };
        self.command(actor, &instance, idempotency_key, fp, input)
            .await
    }

    /// Cancels instance `id`.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; [`RuntimeError::Rejected`] when it is not running.
    pub async fn cancel(
        &self,
        id: &str,
        by: &str,
        reason: Option<String>,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.cancel_by(None, id, by, reason, idempotency_key).await
    }

    pub(crate) async fn cancel_by(
        &self,
        actor: Option<&Actor>,
        id: &str,
        by: &str,
        reason: Option<String>,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        let fp = fingerprint("cancel", id, &json!([by, reason]));
        self.command(
            actor,
            id,
            idempotency_key,
            fp,
            Input::Cancel {
                by: by.to_owned(),
                reason,
            },
        )
        .await
    }

    /// Retries failed instance `id` on its version, from the step that failed (see
    /// [`waystation_core::state::RetryPoint`]), recording `by` in a `retried` history entry.
    /// One commit, like every command; a repeated `idempotency_key` replays the answer.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; [`RuntimeError::Rejected`] with
    /// [`Rejection::NotFailed`] unless it failed; [`RuntimeError::KeyInUse`] when another
    /// instance took its business key since it failed.
    pub async fn retry(
        &self,
        id: &str,
        by: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.retry_by(None, id, by, idempotency_key).await
    }

    pub(crate) async fn retry_by(
        &self,
        actor: Option<&Actor>,
        id: &str,
        by: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        let fp = fingerprint("retry", id, &json!([by]));
        let input = Input::Retry { by: by.to_owned() };
        self.command(actor, id, idempotency_key, fp, input).await
    }

    /// Gives the work of instance `id`'s current stage `stage` (a branch's stage, addressed
    /// as events address it; `None`: the one current stage) to `assignee` (`None`: releases
    /// it). Who may is the caller's to check; this records `by` and notifies the assignee.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; [`RuntimeError::Rejected`] when it is not running, or
    /// when `stage` is not current, or is needed and missing (branches run).
    pub async fn assign(
        &self,
        id: &str,
        stage: Option<&str>,
        assignee: Option<String>,
        by: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.assign_by(None, id, stage, assignee, by, idempotency_key)
            .await
    }

    pub(crate) async fn assign_by(
        &self,
        actor: Option<&Actor>,
        id: &str,
        stage: Option<&str>,
        assignee: Option<String>,
        by: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        // Without a stage the fingerprint is what it was before stages could be named.
        let fp = match stage {
            None => fingerprint("assign", id, &json!([assignee, by])),
            Some(stage) => fingerprint("assign", id, &json!([assignee, by, stage])),
        };
        let input = Input::Assign {
            assignee,
            by: by.to_owned(),
            stage: stage.map(str::to_owned),
        };
        self.command(actor, id, idempotency_key, fp, input).await
    }

    /// Fires a due timer. Its index key goes in the same commit as its effect, so the
    /// effect happens exactly once, whatever crashes in between.
    ///
    /// A firing that fails in the engine - a panic, a definition that no longer compiles,
    /// a refusal by the core, a step over the instance limits, a store error - is recorded
    /// once: the timer is moved [`crate::StepRetry::backoff`] into the future and counted
    /// in `step_failures`; after [`crate::StepRetry::attempts`] failures the instance is
    /// failed with the reason in its history. Never retried in a hot loop, and a restart
    /// finds the timer at its moved time.
    ///
    /// # Errors
    /// Store errors that kept even the retry or the failure from being recorded (the
    /// scheduler then backs off).
    pub async fn fire_timer(&self, timer: &DueTimer) -> Result<(), RuntimeError> {
        {
            let _guard = self.locks.lock(&timer.instance_id).await;
            let Some(before) = self.store.instance(&timer.instance_id)? else {
                tracing::warn!(timer = %timer.timer_id, instance = %timer.instance_id, "timer of an unknown instance");
                return Ok(());
            };
            let now = self.now();
            let fired = Some((timer.due, timer.timer_id.as_str()));
            let outcome = match self.timer_step(&before, timer, now).await {
                Ok((step, members)) => self
                    .commit_with(Some(&before), &step, fired, None, &members)
                    .map(drop),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => self.timer_fired(timer, now),
                // Another node changed the instance first (it fired this timer, or a
                // command moved the instance on): nothing was written. The timer's row is
                // gone if it fired; else the next round finds it due again.
                Err(e) if crate::contention::is_conflict(&e) => {
                    tracing::debug!(timer = %timer.timer_id, error = %e, "timer: another node changed the instance first");
                    return Ok(());
                }
                Err(e) => self.timer_failed(&before, timer, now, &e)?,
            }
        }
        self.durability.durable().await?;
        Ok(())
    }

    /// Bookkeeping once `timer`'s effect is committed at `now`: its failure count goes,
    /// its lag is recorded.
    pub(crate) fn timer_fired(&self, timer: &DueTimer, now: DateTime<Utc>) {
        self.forget_failures(&timer.timer_id);
        let lag = (now - timer.due).num_milliseconds().max(0) as u64;
        self.metrics.record_timer_lag(lag);
    }

    /// The step of firing `timer` on `before`, within the instance limits, with the
    /// children it starts. A sub-workflow record (see [`crate::children`]) is its input
    /// instead; one with nothing left to do is a step that changes nothing (its key goes).
    pub(crate) async fn timer_step(
        &self,
        before: &InstanceState,
        timer: &DueTimer,
        now: DateTime<Utc>,
    ) -> Result<(Step, Vec<crate::children::Member>), RuntimeError> {
        let wf = self
            .workflow(&before.workflow, Some(before.version))
            .await?;
        let relayed = self.relayed_input(before, timer)?;
        let is_relay = relayed.is_some();
        let input = relayed.unwrap_or_else(|| Input::TimerFired {
            timer_id: timer.timer_id.clone(),
        });
        let state = before.clone();
        let step = self
            .drive(&wf, move |wf, p| {
                apply_until_quiet(wf, state, input, now, p)
            })
            .await;
        let mut step = match step {
            Err(e) if is_relay && crate::children::relay_done(&e) => {
                let unchanged = Step {
                    state: before.clone(),
                    effects: Vec::new(),
                };
                return Ok((unchanged, Vec::new()));
            }
            other => other?,
        };
        match self.check_step(&step, false) {
            Ok(()) => {
                let members = self.children_of(&wf, &mut step, now).await?;
                Ok((step, members))
            }
            // Over a bound through the workflow's own doing: failing the instance is the
            // answer, not a retry.
            Err(RuntimeError::OverLimit { message, .. }) => Ok((
                waystation_core::abandon::abandon(before.clone(), message, now),
                Vec::new(),
            )),
            Err(e) => Err(e),
        }
    }

    /// The children `step` starts, when its workflow has sub-workflow stages (none
    /// otherwise, without looking).
    async fn children_of(
        &self,
        wf: &Workflow,
        step: &mut Step,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::children::Member>, RuntimeError> {
        if !wf.starts_children() || !crate::children::starts_children(step) {
            return Ok(Vec::new());
        }
        self.children(step, now).await
    }

    /// Records a failed firing: moves the timer later, or gives up on the instance (at once
    /// for a sub-workflow record, see [`crate::children`]).
    pub(crate) fn timer_failed(
        &self,
        before: &InstanceState,
        timer: &DueTimer,
        now: DateTime<Utc>,
        error: &RuntimeError,
    ) -> Result<(), RuntimeError> {
        self.metrics.step_failures.fetch_add(1, Ordering::Relaxed);
        let failures = {
            let mut all = self.step_failures.lock().expect("step failures lock");
            let n = all.entry(timer.timer_id.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let retry = self.options.step_retry;
        let fired = Some((timer.due, timer.timer_id.as_str()));
        // A sub-workflow record cannot be moved later as a timer is (the state does not
        // hold it): rather than lose it, the instance it is for fails now, visibly, and an
        // operator's retry takes it from there.
        let relay = waystation_core::ChildRef::relay(&timer.timer_id).is_some();
        if failures >= retry.attempts || relay {
            tracing::error!(instance = %before.id, timer = %timer.timer_id, failures, error = %error, "timer keeps failing in the engine; failing the instance");
            let reason = format!(
                "timer '{}' could not be fired: {error} (tried {failures} times)",
                timer.timer_id
            );
            let step = waystation_core::abandon::abandon(before.clone(), reason, now);
            self.commit(Some(before), &step, fired, None)?;
            self.forget_failures(&timer.timer_id);
            self.metrics.steps_abandoned.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let backoff = retry.backoff(failures);
        let due = now
            + chrono::Duration::from_std(backoff).unwrap_or_else(|_| chrono::Duration::hours(1));
        tracing::warn!(instance = %before.id, timer = %timer.timer_id, failures, retry_in = ?backoff, error = %error, "timer failed in the engine; retrying later");
        // The index follows the state's timers by id: the commit sees the timer as armed
        // anew at `due` (absent before, present after) and its old key as fired.
        let mut moved = before.clone();
        let mut without = before.clone();
        without.timers.retain(|t| t.id != timer.timer_id);
        // A timer the state no longer knows only has its key dropped.
        if let Some(t) = moved.timers.iter_mut().find(|t| t.id == timer.timer_id) {
            t.due = due;
        }
        self.store.commit(&Commit {
            before: Some(&without),
            after: &moved,
            effects: &[],
            fired_timer: fired,
            idempotency: None,
        })?;
        self.timer_armed(due);
        Ok(())
    }

    fn forget_failures(&self, timer_id: &str) {
        let mut all = self.step_failures.lock().expect("step failures lock");
        if !all.is_empty() {
            all.remove(timer_id);
        }
    }

    async fn command(
        &self,
        actor: Option<&Actor>,
        id: &str,
        idempotency_key: Option<&str>,
        fp: String,
        input: Input,
    ) -> Result<Applied, RuntimeError> {
        let span = tracing::info_span!("step", instance = %id, input = input.kind());
        // Lost to another node that changed the instance first: run it on the new state.
        crate::contention::retry(self.metrics(), || {
            self.command_in_span(actor, id, idempotency_key, fp.clone(), input.clone())
        })
        .instrument(span)
        .await
    }

    async fn command_in_span(
        &self,
        actor: Option<&Actor>,
        id: &str,
        idempotency_key: Option<&str>,
        fp: String,
        input: Input,
    ) -> Result<Applied, RuntimeError> {
        let cancel = matches!(input, Input::Cancel { .. });
        let retry = matches!(input, Input::Retry { .. });
        let key_lock = idempotency_key.map(idempotency_lock);
        // A retry sets an ended instance running again: it takes its business key's lock,
        // as a start does, so the key cannot be taken twice. Read before locking (a key
        // never changes); the instance lock below orders the rest.
        let business_lock = match retry {
            true => self
                .store
                .instance(id)?
                .and_then(|s| s.key.map(|k| format!("key:{}\0{k}", s.workflow))),
            false => None,
        };
        let summary = {
            let names: Vec<&str> = std::iter::once(id)
                .chain(key_lock.as_deref())
                .chain(business_lock.as_deref())
                .collect();
            let _guards = self.locks.lock_all(&names).await;
            if let Some(replay) = self.replay(idempotency_key, &fp)? {
                drop(_guards);
                self.durability.durable().await?;
                return Ok(replay);
            }
            let before = self
                .store
                .instance(id)?
                .ok_or_else(|| RuntimeError::NotFound {
                    what: "instance",
                    id: id.to_owned(),
                })?;
            if retry {
                self.check_key_free(&before)?;
            }
            let wf = self
                .workflow(&before.workflow, Some(before.version))
                .await?;
            let now = self.now();
            let state = before.clone();
            let mut step = self
                .drive(&wf, move |wf, p| {
                    apply_until_quiet(wf, state, input, now, p)
                })
                .await?;
            self.check_step(&step, cancel)?;
            let members = self.children_of(&wf, &mut step, now).await?;
            stamp(&mut step, actor);
            self.commit_with(
                Some(&before),
                &step,
                None,
                idempotency_key.map(|k| (k, fp.as_str())),
                &members,
            )?
        };
        self.durability.durable().await?;
        Ok(Applied {
            instance: summary,
            replayed: false,
        })
    }

    /// For a retry of failed `before`: no other instance runs with its business key now.
    fn check_key_free(&self, before: &InstanceState) -> Result<(), RuntimeError> {
        let Some(k) = &before.key else { return Ok(()) };
        if before.status == waystation_core::Status::Running {
            return Ok(());
        }
        match self.store.running_with_key(&before.workflow, k)? {
            Some(running) if running != before.id => Err(RuntimeError::KeyInUse {
                workflow: before.workflow.clone(),
                key: k.clone(),
                instance: running,
            }),
            _ => Ok(()),
        }
    }

    /// The stored answer for `key`, if this exact request was seen before.
    fn replay(&self, key: Option<&str>, fp: &str) -> Result<Option<Applied>, RuntimeError> {
        let Some(key) = key else { return Ok(None) };
        let expired = |r: &IdempotencyRecord| {
            r.at.and_then(|at| at.checked_add_signed(self.retention().idempotency))
                .is_some_and(|until| until <= self.now())
        };
        match self.store.idempotency(key)? {
            None => Ok(None),
            // Past its retention (and not yet purged): the key is free again.
            Some(record) if expired(&record) => Ok(None),
            Some(record) if record.fingerprint != fp => {
                Err(RuntimeError::IdempotencyConflict(key.to_owned()))
            }
            Some(record) => {
                let instance = serde_json::from_value(record.response).map_err(|e| {
                    waystation_store::StoreError::unreadable(format!("idempotency record {key}"), e)
                })?;
                Ok(Some(Applied {
                    instance,
                    replayed: true,
                }))
            }
        }
    }

    /// Runs `f` where plugin calls may block: on the blocking pool when the workflow calls
    /// plugins, inline otherwise (microseconds of pure computation, bounded by the core's
    /// expression budgets). A panic in the core is caught on either path and becomes
    /// [`RuntimeError::Engine`]: the step is not applied, the server goes on.
    pub(crate) async fn drive<F>(&self, wf: &Arc<Workflow>, f: F) -> Result<Step, RuntimeError>
    where
        F: FnOnce(&Workflow, &dyn PluginInvoker) -> Result<Step, Rejection> + Send + 'static,
    {
        // Notifiers get the instance's progress link in their default input.
        let plugins = crate::progress::Linking {
            plugins: self.plugins.clone(),
            links: self.progress_links.get().cloned(),
            store: self.store.clone(),
        };
        let result = if wf.calls_plugins() {
            let wf = wf.clone();
            tokio::task::spawn_blocking(move || {
                let invoker: &dyn PluginInvoker = &plugins;
                f(&wf, invoker)
            })
            .await
            .map_err(|e| RuntimeError::from_join("running a step", e))
        } else {
            let invoker: &dyn PluginInvoker = &plugins;
            // AssertUnwindSafe: after a panic nothing `f` touched is used again (the state
            // it moved is dropped, the workflow is immutable).
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(wf, invoker))).map_err(
                |payload| {
                    RuntimeError::Engine(format!(
                        "running a step: it panicked: {}",
                        crate::contain::panic_text(payload.as_ref())
                    ))
                },
            )
        };
        let result = result.inspect_err(|e| {
            if matches!(e, RuntimeError::Engine(_)) {
                self.metrics.panics.fetch_add(1, Ordering::Relaxed);
                tracing::error!(workflow = %wf.id(), error = %e, "a step panicked in the engine");
            }
        })?;
        result.map_err(|r| self.refused(r))
    }

    /// A refusal, counted.
    fn refused(&self, r: Rejection) -> RuntimeError {
        self.metrics
            .commands_refused
            .fetch_add(1, Ordering::Relaxed);
        RuntimeError::Rejected(r)
    }

    /// Caller data `value` within [`crate::Limits::event_data_bytes`].
    fn check_data_size(
        &self,
        value: &Value,
        what: &'static str,
        pointer: &'static str,
    ) -> Result<(), RuntimeError> {
        let limit = self.options.limits.event_data_bytes;
        let size = json_size(value)?;
        if size > limit {
            return Err(RuntimeError::TooLarge {
                what,
                pointer,
                size,
                limit,
            });
        }
        Ok(())
    }

    /// A definition within [`crate::Limits::definition_bytes`].
    pub(crate) fn check_definition_size(&self, definition: &Value) -> Result<(), RuntimeError> {
        let limit = self.options.limits.definition_bytes;
        let size = json_size(definition)?;
        if size > limit {
            return Err(RuntimeError::TooLarge {
                what: "the definition",
                pointer: "",
                size,
                limit,
            });
        }
        Ok(())
    }

    /// The instance after `step` within the history and variables bounds. `ending`: the
    /// step is a cancel, which may always end an instance, whatever its history length.
    pub(crate) fn check_step(&self, step: &Step, ending: bool) -> Result<(), RuntimeError> {
        let limits = self.options.limits;
        let entries = step.state.history_len;
        if !ending && entries > limits.history_entries {
            return Err(RuntimeError::OverLimit {
                pointer: "/history",
                message: format!(
                    "the instance's history would have {entries} entries, over the limit of {}; cancel it or start a new one",
                    limits.history_entries
                ),
            });
        }
        let vars_changed = step.effects.iter().any(|e| {
            matches!(
                e,
                Effect::History(h) if matches!(h.event, HistoryEvent::VariablesSet { .. })
            )
        });
        if vars_changed {
            let size = json_size(&step.state.vars)?;
            if size > limits.vars_bytes {
                return Err(RuntimeError::OverLimit {
                    pointer: "/vars",
                    message: format!(
                        "the instance's variables would be {size} bytes, over the limit of {} bytes",
                        limits.vars_bytes
                    ),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn commit(
        &self,
        before: Option<&InstanceState>,
        step: &Step,
        fired: Option<(DateTime<Utc>, &str)>,
        idempotency: Option<(&str, &str)>,
    ) -> Result<InstanceSummary, RuntimeError> {
        self.commit_with(before, step, fired, idempotency, &[])
    }

    /// [`Runtime::commit`], with the children the step starts in the same store batch.
    pub(crate) fn commit_with(
        &self,
        before: Option<&InstanceState>,
        step: &Step,
        fired: Option<(DateTime<Utc>, &str)>,
        idempotency: Option<(&str, &str)>,
        members: &[crate::children::Member],
    ) -> Result<InstanceSummary, RuntimeError> {
        let summary = InstanceSummary::from(&step.state);
        let record = idempotency
            .map(|(key, fp)| {
                let response = serde_json::to_value(&summary).map_err(|e| {
                    RuntimeError::encode(format!("recording the answer to key '{key}'"), e)
                })?;
                Ok::<_, RuntimeError>((
                    key,
                    IdempotencyRecord {
                        fingerprint: fp.to_owned(),
                        response,
                        at: Some(step.state.updated_at),
                    },
                ))
            })
            .transpose()?;
        let own = Commit {
            before,
            after: &step.state,
            effects: &step.effects,
            fired_timer: fired,
            idempotency: record.as_ref().map(|(k, r)| (*k, r)),
        };
        if members.is_empty() {
            self.store.commit(&own)?;
        } else {
            let mut all = Vec::with_capacity(1 + members.len());
            all.push(own);
            all.extend(members.iter().map(|m| Commit {
                before: m.before.as_ref(),
                after: &m.step.state,
                effects: &m.step.effects,
                fired_timer: None,
                idempotency: None,
            }));
            self.store.commit_all(&all)?;
        }
        self.committed(before, step);
        for m in members {
            self.committed(m.before.as_ref(), &m.step);
        }
        Ok(summary)
    }

    /// What follows a step's commit: counters, the change broadcast (live pages), duration
    /// histograms, and the wake-ups of the scheduler (a timer armed) and the outbox
    /// dispatcher (a message queued). Every commit path calls it, the batched timer
    /// firings too, so no change is missed by a live page.
    pub(crate) fn committed(&self, before: Option<&InstanceState>, step: &Step) {
        self.metrics.commands_ok.fetch_add(1, Ordering::Relaxed);
        self.folder.nudge(self.store.as_ref());
        self.changes
            .publish(&step.state, crate::ChangeKind::State, step.state.updated_at);
        self.durations.observe(before, &step.state, &step.effects);
        // A sub-workflow record (a child's end for its parent) is due at once.
        if step.state.parent_to_tell(before).is_some() {
            self.timer_armed(step.state.updated_at);
        }
        for effect in &step.effects {
            match effect {
                Effect::ArmTimer(t) => self.timer_armed(t.due),
                Effect::CancelChild { .. } => self.timer_armed(step.state.updated_at),
                Effect::Enqueue(_) => self.outbox_wake.notify_one(),
                Effect::History(h) => match &h.event {
                    HistoryEvent::Entered { .. } => {
                        self.metrics.transitions.fetch_add(1, Ordering::Relaxed);
                    }
                    HistoryEvent::PluginReturned { metrics, .. }
                    | HistoryEvent::PluginFailed { metrics, .. } => {
                        self.metrics.plugin_calls.fetch_add(1, Ordering::Relaxed);
                        self.metrics
                            .plugin_call_us
                            .fetch_add(metrics.duration_us.unwrap_or(0), Ordering::Relaxed);
                        if matches!(h.event, HistoryEvent::PluginFailed { .. }) {
                            self.metrics.plugin_failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
}
