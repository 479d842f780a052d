//! Giving up on an instance the engine cannot move: when a step fails in the engine
//! itself - a panic, a stored definition that no longer compiles, a store that keeps
//! refusing the write - after the driver's retries, the instance is parked as failed with
//! the reason in its history, so the failure is recorded once instead of retried forever.
//!
//! Needs no compiled workflow (the workflow may be what cannot be compiled): it closes what
//! the state itself knows - timers, open approval tasks, a pending plugin call - exactly as
//! a failure inside a step does.

use crate::effect::{Effect, HistoryEntry, HistoryEvent};
use crate::machine::Step;
use crate::state::{InstanceState, Sla, Status};
use chrono::{DateTime, Utc};

/// `state` failed at `now` with `reason`: its timers cancelled, its open approval tasks
/// closed, its stage kept for the record, and a `failed` history entry with the reason.
/// An instance that is no longer running is returned unchanged, with no effects.
pub fn abandon(mut state: InstanceState, reason: String, now: DateTime<Utc>) -> Step {
    if state.status != Status::Running {
        return Step {
            state,
            effects: Vec::new(),
        };
    }
    let mut effects = Vec::new();
    // Every current stage's, branches of a parallel stage included.
    for timer in state.all_timers().iter() {
        effects.push(Effect::CancelTimer {
            timer_id: timer.id.clone(),
        });
    }
    for task in state.all_open_tasks().iter() {
        effects.push(Effect::CloseApproval {
            task_id: task.id.clone(),
        });
    }
    for child in state.waiting_children() {
        effects.push(Effect::CancelChild {
            child: child.id,
            reason: format!("its parent {} failed", state.id),
        });
    }
    state.child = None;
    state.timers.clear();
    state.approval = None;
    state.branches.clear();
    state.sla = Sla::default();
    state.pending = None;
    state.status = Status::Failed;
    state.failure = Some(reason.clone());
    state.updated_at = now;
    state.history_len += 1;
    effects.push(Effect::History(HistoryEntry {
        at: now,
        event: HistoryEvent::Failed { reason },
        actor: None,
    }));
    Step { state, effects }
}
