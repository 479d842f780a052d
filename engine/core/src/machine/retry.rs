//! Retrying a failed instance: an operator's command that sets it running again in the
//! stage it failed in, on the same version, from the step that failed.
//!
//! Why from the failed step and not the whole stage: the actions before it already ran
//! and were committed (a customer message queued, variables set); running them again
//! would message the customer twice. The failure left the stage (its timers cancelled,
//! its approval tasks closed), so the retry is a new visit: `retried`, then `entered`,
//! then the rest of the stage's actions; its deadline is armed anew from the retry.

use super::{Rejection, Run};
use crate::effect::HistoryEvent;
use crate::state::{ActionList, RetryPoint, Status};

impl<'w> Run<'w> {
    pub(super) fn retry(&mut self, by: String) -> Result<(), Rejection> {
        if self.state.status != Status::Failed {
            return Err(Rejection::NotFailed(self.state.status));
        }
        let point = self.state.retry_from.take().unwrap_or(RetryPoint {
            action: 0,
            event: None,
        });
        let (index, stage) = self.current();
        let from = point.action.min(ActionList::Entry.of(stage).len());
        self.state.status = Status::Running;
        self.state.acted_at = Some(self.now);
        let failure = self.state.failure.take().unwrap_or_default();
        self.history(HistoryEvent::Retried {
            by,
            stage: stage.name.clone(),
            failure,
            from_action: from,
        });
        self.event = point.event;
        self.enter_from(index, from);
        Ok(())
    }
}
