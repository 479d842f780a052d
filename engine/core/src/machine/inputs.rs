//! Events, cancellation and plugin results.

use super::{Rejection, Run};
use crate::effect::{Cause, Effect, HistoryEvent, OutboundMessage};
use crate::input::CallMetrics;
use crate::plugin::{FailureKind, PluginFailure};
use crate::state::Status;
use crate::workflow::{CompiledAction, CompiledKind};
use serde_json::{json, Value};

impl<'w> Run<'w> {
    pub(super) fn event(&mut self, name: String, data: Value) -> Result<(), Rejection> {
        self.require_running()?;
        let unfit = crate::expr::unrepresentable_numbers(&data, "");
        if !unfit.is_empty() {
            return Err(Rejection::InvalidEventData(unfit));
        }
        let (_, stage) = self.current();
        let on = match &stage.kind {
            CompiledKind::Wait { on } | CompiledKind::Approval { on, .. } => Some(on),
            _ => None,
        };
        let Some(branches) = on.and_then(|on| on.get(&name)) else {
            let mut accepted: Vec<String> = on
                .map(|on| on.keys().cloned().collect())
                .unwrap_or_default();
            accepted.sort();
            return Err(Rejection::EventNotAccepted {
                event: name,
                stage: stage.name.clone(),
                accepted,
            });
        };
        self.event = Some(json!({"type": name, "data": data}));
        let (to, restart_deadline) = match self.choose_branch(branches) {
            Ok(Some(b)) => (b.to, b.restart_deadline),
            Ok(None) => {
                return Err(Rejection::NoBranchMatched {
                    event: name,
                    stage: stage.name.clone(),
                })
            }
            Err(e) => {
                return Err(Rejection::EventDataUnfit {
                    event: name,
                    stage: stage.name.clone(),
                    message: e.message,
                })
            }
        };
        self.worked();
        self.history(HistoryEvent::EventReceived { name, data });
        let (here, _) = self.current();
        if to == here && !restart_deadline {
            // A self-loop re-enters the stage but keeps its deadline: an event must not
            // push an SLA back unless the definition says so (`restart_deadline`).
            self.keep_deadline = true;
        }
        self.go(to, Cause::Event);
        self.keep_deadline = false;
        Ok(())
    }

    /// Cancels a running instance, or closes a failed one nobody will retry (its failure
    /// stays in the history; failing already left its stage, so there is nothing to leave).
    pub(super) fn cancel(&mut self, by: String, reason: Option<String>) -> Result<(), Rejection> {
        match self.state.status {
            Status::Running => {
                let stage = self.state.stage.clone();
                self.leave_stage();
                self.state.stage = stage;
            }
            Status::Failed => self.state.retry_from = None,
            other => return Err(Rejection::NotRunning(other)),
        }
        self.state.acted_at = Some(self.now);
        self.state.status = Status::Cancelled;
        self.history(HistoryEvent::Cancelled { by, reason });
        Ok(())
    }

    pub(super) fn plugin_result(
        &mut self,
        call_id: String,
        outcome: Result<Value, PluginFailure>,
        metrics: CallMetrics,
    ) -> Result<(), Rejection> {
        let (action_index, list) = match &self.state.pending {
            Some(p) if p.call_id == call_id && self.state.status == Status::Running => {
                (p.action, p.list)
            }
            _ => return Err(Rejection::UnexpectedPluginResult(call_id)),
        };
        // The event that led here stays visible to the rest of the stage's actions.
        self.event = self.state.pending.take().and_then(|p| p.event);
        let (_, stage) = self.current();
        let action = &list.of(stage)[action_index];
        let outcome = outcome.and_then(|output| match action {
            CompiledAction::Call { result, .. } => {
                self.state.vars.insert(result.clone(), output.clone());
                Ok(output)
            }
            CompiledAction::Notify { .. } => match parse_messages(&output) {
                Ok(messages) => {
                    for m in messages {
                        self.queue(m);
                    }
                    Ok(output)
                }
                Err(message) => Err(PluginFailure {
                    kind: FailureKind::BadOutput,
                    message,
                }),
            },
            _ => unreachable!("only call and notify actions wait for plugins"),
        });
        match outcome {
            Ok(output) => {
                self.history(HistoryEvent::PluginReturned {
                    call_id,
                    output,
                    metrics,
                });
                self.run_actions_in(list, action_index + 1);
            }
            Err(failure) => {
                self.history(HistoryEvent::PluginFailed {
                    call_id,
                    kind: failure.kind,
                    message: failure.message.clone(),
                    metrics,
                });
                let plugin = match action {
                    CompiledAction::Call { plugin, .. } | CompiledAction::Notify { plugin, .. } => {
                        plugin.to_string()
                    }
                    _ => unreachable!(),
                };
                let error =
                    json!({"plugin": plugin, "kind": failure.kind, "message": failure.message});
                self.state.vars.insert("error".to_owned(), error.clone());
                self.event = Some(json!({"type": "error", "data": error}));
                // Unrouted, a failed entry call is what a retry makes again.
                let resume = if list.is_entry() { action_index } else { 0 };
                match self.choose(&stage.on_error) {
                    Ok(Some(to)) => self.go(to, Cause::Error),
                    Ok(None) => self.fail_at(
                        format!(
                            "plugin '{plugin}' failed in stage '{}': {failure}",
                            stage.name
                        ),
                        resume,
                    ),
                    Err(e) => self.fail(format!("on_error of stage '{}': {e}", stage.name)),
                }
            }
        }
        Ok(())
    }

    fn queue(&mut self, m: MessageFields) {
        let message = OutboundMessage {
            id: self.state.next_id('m'),
            instance_id: self.state.id.clone(),
            channel: m.channel,
            recipient: m.recipient,
            subject: m.subject,
            body: m.body,
            metadata: m.metadata,
        };
        self.history(HistoryEvent::MessageQueued {
            message_id: message.id.clone(),
            channel: message.channel.clone(),
            recipient: message.recipient.clone(),
        });
        self.effects.push(Effect::Enqueue(message));
    }
}

struct MessageFields {
    channel: String,
    recipient: String,
    subject: String,
    body: String,
    metadata: serde_json::Map<String, Value>,
}

/// A notifier's output: `{"messages": [{channel, recipient, subject, body, metadata?}]}`.
fn parse_messages(output: &Value) -> Result<Vec<MessageFields>, String> {
    let list = output
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("a notifier must return {\"messages\": [...]}")?;
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            let field = |name: &str| {
                m.get(name)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| format!("message {i} has no string '{name}'"))
            };
            Ok(MessageFields {
                channel: field("channel")?,
                recipient: field("recipient")?,
                subject: field("subject")?,
                body: field("body")?,
                metadata: m
                    .get("metadata")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The outbox channel assignment notices go out on: configure it like any channel
/// (`[outbox.channels.assignment]`, e.g. a webhook into a chat system).
pub const ASSIGNMENT_CHANNEL: &str = "assignment";

impl Run<'_> {
    /// Gives the current stage's work to `assignee` (or releases it), records who did, and
    /// notifies the new assignee through the outbox.
    pub(super) fn assign(&mut self, assignee: Option<String>, by: String) -> Result<(), Rejection> {
        self.require_running()?;
        // A person giving out work is work on the stage; the engine doing it (see
        // [`Run::give_work`] from an `assign` action) is not.
        self.state.acted_at = Some(self.now);
        self.give_work(assignee, by);
        Ok(())
    }

    /// Records the new assignee of the current stage's work and notifies them unless they
    /// gave it to themselves.
    pub(super) fn give_work(&mut self, assignee: Option<String>, by: String) {
        let previous = self.state.assignee.take().map(|a| a.user);
        let stage = self.state.stage.clone();
        self.state.assignee = assignee.as_ref().map(|user| crate::state::Assignment {
            user: user.clone(),
            by: by.clone(),
            at: self.now,
            stage: stage.clone(),
        });
        self.history(HistoryEvent::Assigned {
            stage: stage.clone(),
            assignee: assignee.clone(),
            previous: previous.clone(),
            by: by.clone(),
        });
        if let Some(user) = assignee.filter(|u| *u != by) {
            let mut metadata = serde_json::Map::new();
            metadata.insert("stage".into(), json!(stage));
            metadata.insert("assigned_by".into(), json!(by));
            if let Some(key) = &self.state.key {
                metadata.insert("key".into(), json!(key));
            }
            let about = self
                .state
                .key
                .clone()
                .unwrap_or_else(|| self.state.id.clone());
            self.queue(MessageFields {
                channel: ASSIGNMENT_CHANNEL.to_owned(),
                recipient: user,
                subject: format!("{} {about}: stage '{stage}' is yours", self.state.workflow),
                body: format!(
                    "{by} assigned you the work of stage '{stage}' of {} {about} (instance {}).",
                    self.state.workflow, self.state.id
                ),
                metadata,
            });
        }
    }
}
