//! Commands on behalf of someone: the same commands as [`Runtime`]'s, with the actor (the
//! API token behind the request) recorded on every history entry they write.

use crate::{Applied, Retried, Runtime, RuntimeError};
use serde_json::Value;
use waystation_core::{Actor, Decider};

/// [`Runtime`]'s commands as `actor`. Made by [`Runtime::acting`].
pub struct Acting<'r> {
    runtime: &'r Runtime,
    actor: Actor,
}

impl Runtime {
    /// Commands on behalf of `actor`.
    pub fn acting(&self, actor: Actor) -> Acting<'_> {
        Acting {
            runtime: self,
            actor,
        }
    }
}

impl Acting<'_> {
    /// As [`Runtime::start`].
    ///
    /// # Errors
    /// As [`Runtime::start`].
    pub async fn start(
        &self,
        workflow: &str,
        input: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.runtime
            .start_by(Some(&self.actor), workflow, input, idempotency_key)
            .await
    }

    /// As [`Runtime::event`].
    ///
    /// # Errors
    /// As [`Runtime::event`].
    pub async fn event(
        &self,
        id: &str,
        name: &str,
        data: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.runtime
            .event_by(Some(&self.actor), id, None, name, data, idempotency_key)
            .await
    }

    /// As [`Runtime::event`], for the current stage `stage` (a branch's stage, where
    /// several branches of a parallel stage accept the event).
    ///
    /// # Errors
    /// As [`Runtime::event`]; [`waystation_core::Rejection::StageNotCurrent`] when the
    /// instance is not in `stage`.
    pub async fn event_at(
        &self,
        id: &str,
        stage: Option<&str>,
        name: &str,
        data: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.runtime
            .event_by(Some(&self.actor), id, stage, name, data, idempotency_key)
            .await
    }

    /// As [`Runtime::decide`].
    ///
    /// # Errors
    /// As [`Runtime::decide`].
    pub async fn decide(
        &self,
        task_id: &str,
        decider: Decider,
        approve: bool,
        comment: Option<String>,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.runtime
            .decide_by(
                Some(&self.actor),
                task_id,
                decider,
                approve,
                comment,
                idempotency_key,
            )
            .await
    }

    /// As [`Runtime::cancel`], cancelled by the actor's name.
    ///
    /// # Errors
    /// As [`Runtime::cancel`].
    pub async fn cancel(
        &self,
        id: &str,
        reason: Option<String>,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.runtime
            .cancel_by(
                Some(&self.actor),
                id,
                &self.actor.name,
                reason,
                idempotency_key,
            )
            .await
    }

    /// As [`Runtime::retry`], retried by the actor's name.
    ///
    /// # Errors
    /// As [`Runtime::retry`].
    pub async fn retry(
        &self,
        id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.runtime
            .retry_by(Some(&self.actor), id, &self.actor.name, idempotency_key)
            .await
    }

    /// As [`Runtime::assign`], assigned by the actor's name.
    ///
    /// # Errors
    /// As [`Runtime::assign`].
    pub async fn assign(
        &self,
        id: &str,
        stage: Option<&str>,
        assignee: Option<String>,
        idempotency_key: Option<&str>,
    ) -> Result<Applied, RuntimeError> {
        self.runtime
            .assign_by(
                Some(&self.actor),
                id,
                stage,
                assignee,
                &self.actor.name,
                idempotency_key,
            )
            .await
    }

    /// As [`Runtime::retry_message`], retried by the actor's name.
    ///
    /// # Errors
    /// As [`Runtime::retry_message`].
    pub async fn retry_message(
        &self,
        id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Retried, crate::OutboxError> {
        self.runtime
            .retry_message_by(id, &self.actor.name, Some(&self.actor), idempotency_key)
            .await
    }

    /// As [`Runtime::put_definition`], the new version recording the actor as its uploader.
    ///
    /// # Errors
    /// As [`Runtime::put_definition`].
    pub async fn put_definition(
        &self,
        definition: &Value,
    ) -> Result<(String, crate::DefinitionOutcome), RuntimeError> {
        self.runtime
            .put_definition_by(Some(&self.actor), definition)
            .await
    }
}
