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
    Decider, Effect, HistoryEvent, Input, InstanceState, PluginInvoker, Rejection, Step, Workflow,
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
        let fp = fingerprint("start", workflow, &input);
        let wf = self.workflow(workflow, None)?;
        let now = self.now();
        let id = self.ids.next(now.timestamp_millis());
        let summary = {
            let _guard = match idempotency_key {
                Some(k) => Some(self.locks.lock(&format!("idempotency:{k}")).await),
                None => None,
            };
            if let Some(replay) = self.replay(idempotency_key, &fp)? {
                drop(_guard);
                self.durability.durable().await?;
                return Ok(replay);
            }
            let step = self
                .drive(&wf, move |wf, plugins| {
                    start_until_quiet(wf, id, input, now, plugins)
                })
                .await?;
            self.commit(None, &step, None, idempotency_key.map(|k| (k, fp.as_str())))?
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
        let fp = fingerprint("event", id, &json!([name, data]));
        self.command(
            id,
            idempotency_key,
            fp,
            Input::Event {
                name: name.to_owned(),
                data,
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
        self.command(&instance, idempotency_key, fp, input).await
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
        let fp = fingerprint("cancel", id, &json!([by, reason]));
        self.command(
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

    /// Fires a due timer. Its index key goes in the same commit as its effect, so the
    /// effect happens exactly once, whatever crashes in between.
    ///
    /// # Errors
    /// Store errors.
    pub async fn fire_timer(&self, timer: &DueTimer) -> Result<(), RuntimeError> {
        {
            let _guard = self.locks.lock(&timer.instance_id).await;
            let Some(before) = self.store.instance(&timer.instance_id)? else {
                tracing::warn!(timer = %timer.timer_id, instance = %timer.instance_id, "timer of an unknown instance");
                return Ok(());
            };
            let wf = self.workflow(&before.workflow, Some(before.version))?;
            let now = self.now();
            let input = Input::TimerFired {
                timer_id: timer.timer_id.clone(),
            };
            let state = before.clone();
            let step = match self
                .drive(&wf, move |wf, p| {
                    apply_until_quiet(wf, state, input, now, p)
                })
                .await
            {
                Ok(step) => step,
                Err(e) => {
                    tracing::error!(timer = %timer.timer_id, error = %e, "timer refused");
                    return Ok(());
                }
            };
            self.commit(
                Some(&before),
                &step,
                Some((timer.due, &timer.timer_id)),
                None,
            )?;
            let lag = (now - timer.due).num_milliseconds().max(0) as u64;
            self.metrics.record_timer_lag(lag);
        }
        self.durability.durable().await?;
        Ok(())
    }

    async fn command(
        &self,
        id: &str,
        idempotency_key: Option<&str>,
        fp: String,
        input: Input,
    ) -> Result<Applied, RuntimeError> {
        let span = tracing::info_span!("step", instance = %id, input = input.kind());
        self.command_in_span(id, idempotency_key, fp, input)
            .instrument(span)
            .await
    }

    async fn command_in_span(
        &self,
        id: &str,
        idempotency_key: Option<&str>,
        fp: String,
        input: Input,
    ) -> Result<Applied, RuntimeError> {
        let summary = {
            let _guard = self.locks.lock(id).await;
            if let Some(replay) = self.replay(idempotency_key, &fp)? {
                drop(_guard);
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
            let wf = self.workflow(&before.workflow, Some(before.version))?;
            let now = self.now();
            let state = before.clone();
            let step = self
                .drive(&wf, move |wf, p| {
                    apply_until_quiet(wf, state, input, now, p)
                })
                .await?;
            self.commit(
                Some(&before),
                &step,
                None,
                idempotency_key.map(|k| (k, fp.as_str())),
            )?
        };
        self.durability.durable().await?;
        Ok(Applied {
            instance: summary,
            replayed: false,
        })
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
                    waystation_store::StoreError::Corrupt(format!("idempotency record {key}: {e}"))
                })?;
                Ok(Some(Applied {
                    instance,
                    replayed: true,
                }))
            }
        }
    }

    /// Runs `f` where plugin calls may block: on the blocking pool when the workflow calls
    /// plugins, inline otherwise (microseconds of pure computation).
    async fn drive<F>(&self, wf: &Arc<Workflow>, f: F) -> Result<Step, RuntimeError>
    where
        F: FnOnce(&Workflow, &dyn PluginInvoker) -> Result<Step, Rejection> + Send + 'static,
    {
        let result = if wf.calls_plugins() {
            let wf = wf.clone();
            let plugins = self.plugins.clone();
            tokio::task::spawn_blocking(move || {
                let invoker: &dyn PluginInvoker = plugins.as_ref();
                f(&wf, invoker)
            })
            .await
            .map_err(|_| RuntimeError::ShuttingDown)?
        } else {
            let invoker: &dyn PluginInvoker = self.plugins.as_ref();
            f(wf, invoker)
        };
        result.map_err(|r| {
            self.metrics
                .commands_refused
                .fetch_add(1, Ordering::Relaxed);
            RuntimeError::Rejected(r)
        })
    }

    fn commit(
        &self,
        before: Option<&InstanceState>,
        step: &Step,
        fired: Option<(DateTime<Utc>, &str)>,
        idempotency: Option<(&str, &str)>,
    ) -> Result<InstanceSummary, RuntimeError> {
        let summary = InstanceSummary::from(&step.state);
        let record = match idempotency {
            None => None,
            Some((key, fp)) => Some((
                key,
                IdempotencyRecord {
                    fingerprint: fp.to_owned(),
                    response: serde_json::to_value(&summary).map_err(|e| {
                        waystation_store::StoreError::Corrupt(format!(
                            "cannot encode the answer to keep under {key}: {e}"
                        ))
                    })?,
                    at: Some(step.state.updated_at),
                },
            )),
        };
        self.store.commit(&Commit {
            before,
            after: &step.state,
            effects: &step.effects,
            fired_timer: fired,
            idempotency: record.as_ref().map(|(k, r)| (*k, r)),
        })?;
        self.metrics.commands_ok.fetch_add(1, Ordering::Relaxed);
        for effect in &step.effects {
            match effect {
                Effect::ArmTimer(t) => self.timer_armed(t.due),
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
        Ok(summary)
    }
}
