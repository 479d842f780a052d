//! Schedules: a cron expression in an IANA time zone starts a workflow at each slot.
//!
//! **Exactly one instance per slot.** A slot's start carries the idempotency key
//! `schedule:{id}:{slot}` (the slot in RFC 3339, UTC), and the schedule's `last_slot` moves
//! past it only after the start is durable. A crash between the two starts the same slot
//! again after the restart; the key replays the first start's answer, so no second instance
//! appears (as long as the idempotency record is kept: `store.idempotency_hours`).
//!
//! **Catch-up.** A slot is *missed* when it fell due before this process started (the
//! server was down) or while the schedule was paused. `skip` starts nothing for missed
//! slots; `last` starts one instance for the last missed slot, once. Slots that fall due
//! while the server runs always start, however late the loop is.
//!
//! **Expressions.** Five fields (`minute hour day month weekday`, as crontab) or six and
//! seven with seconds first and a year last. Weekdays by name (`Thu`, `Mon-Fri`) mean the
//! same in every cron dialect; numbers follow the `cron` crate (1 = Sunday).

mod spec;

pub use spec::ScheduleView;
pub use waystation_store::ScheduleSpec;

use crate::{Runtime, RuntimeError};
use chrono::{DateTime, Utc};
use spec::{compile, view, well_named, Compiled};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use waystation_core::ValidationError;
use waystation_store::{CatchUp, ScheduleRecord};

/// How many slots of one schedule one round starts at most: a cron of every second after
/// a long pause cannot flood the engine.
pub const MAX_SLOTS_PER_ROUND: usize = 100;

/// How often the schedule loop looks for due slots.
const TICK: Duration = Duration::from_millis(200);

fn invalid(errors: Vec<ValidationError>) -> RuntimeError {
    RuntimeError::InvalidDefinition(errors)
}

impl Runtime {
    /// Creates or replaces schedule `id`; durable when it returns. A new schedule counts its
    /// slots from now; resuming a paused one skips the slots passed while it was paused.
    /// Returns the schedule and whether it was created.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidDefinition`] with pointers (`/cron`, `/zone`, `/workflow`,
    /// `/input`, `/input_expr`); store errors.
    pub async fn put_schedule(
        &self,
        id: &str,
        spec: ScheduleSpec,
    ) -> Result<(ScheduleView, bool), RuntimeError> {
        let _guard = self.schedule_lock.lock().await;
        let mut errors = Vec::new();
        if !well_named(id) {
            errors.push(ValidationError::new(
                "",
                format!("schedule id '{id}' must be 1 to 63 lower-case letters, digits and dashes"),
            ));
        }
        if let Err(e) = self.workflow(&spec.workflow, None).await {
            let message = match e {
                RuntimeError::NotFound { .. } => format!("no workflow '{}'", spec.workflow),
                other => other.to_string(),
            };
            errors.push(ValidationError::new("/workflow", message));
        }
        let compiled = match compile(&spec) {
            Ok(c) if errors.is_empty() => c,
            Ok(_) => return Err(invalid(errors)),
            Err(more) => {
                errors.extend(more);
                return Err(invalid(errors));
            }
        };
        let now = self.now();
        let old = self.store.schedule(id)?;
        let last_slot = match &old {
            // Resuming skips the slots passed while paused.
            Some(o) if !o.spec.paused || spec.paused => o.last_slot,
            _ => now,
        };
        let record = ScheduleRecord {
            id: id.to_owned(),
            spec,
            last_slot,
            created_at: old.as_ref().map_or(now, |o| o.created_at),
            updated_at: now,
        };
        self.store.put_schedule(&record)?;
        self.durability.durable().await?;
        Ok((view(&record, Some(&compiled), now), old.is_none()))
    }

    /// Pauses or resumes schedule `id` (see [`Runtime::put_schedule`]).
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; store errors.
    pub async fn pause_schedule(
        &self,
        id: &str,
        paused: bool,
    ) -> Result<ScheduleView, RuntimeError> {
        let record = self
            .store
            .schedule(id)?
            .ok_or_else(|| RuntimeError::NotFound {
                what: "schedule",
                id: id.to_owned(),
            })?;
        let spec = ScheduleSpec {
            paused,
            ..record.spec
        };
        Ok(self.put_schedule(id, spec).await?.0)
    }

    /// Every schedule with its next run time.
    ///
    /// # Errors
    /// [`RuntimeError::Store`] when the store cannot be read.
    pub fn schedules(&self) -> Result<Vec<ScheduleView>, RuntimeError> {
        let now = self.now();
        Ok(self
            .store
            .schedules()?
            .iter()
            .map(|r| view(r, compile(&r.spec).ok().as_ref(), now))
            .collect())
    }

    /// Schedule `id`.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; store errors.
    pub fn schedule(&self, id: &str) -> Result<ScheduleView, RuntimeError> {
        let r = self
            .store
            .schedule(id)?
            .ok_or_else(|| RuntimeError::NotFound {
                what: "schedule",
                id: id.to_owned(),
            })?;
        Ok(view(&r, compile(&r.spec).ok().as_ref(), self.now()))
    }

    /// Removes schedule `id`; durable when it returns. False when there was none.
    ///
    /// # Errors
    /// [`RuntimeError::Store`] when the store cannot delete the schedule or sync the deletion.
    pub async fn delete_schedule(&self, id: &str) -> Result<bool, RuntimeError> {
        let _guard = self.schedule_lock.lock().await;
        let deleted = self.store.delete_schedule(id)?;
        self.durability.durable().await?;
        Ok(deleted)
    }

    /// Starts what is due of every schedule; `started` is when this process began (slots
    /// before it were missed). Returns how many instances were started.
    ///
    /// # Errors
    /// [`RuntimeError::Store`] when the store cannot be read or a start cannot be committed.
    pub async fn run_due_schedules(&self, started: DateTime<Utc>) -> Result<usize, RuntimeError> {
        let mut count = 0;
        for record in self.store.schedules()? {
            count += self.run_schedule(&record.id, started).await?;
        }
        Ok(count)
    }

    async fn run_schedule(&self, id: &str, started: DateTime<Utc>) -> Result<usize, RuntimeError> {
        let _guard = self.schedule_lock.lock().await;
        let Some(mut record) = self.store.schedule(id)? else {
            return Ok(0);
        };
        if record.spec.paused {
            return Ok(0);
        }
        let spec = record.spec.clone();
        let compiled = match compile(&spec) {
            Ok(c) => c,
            Err(errors) => {
                tracing::error!(
                    schedule = id,
                    ?errors,
                    "a stored schedule no longer compiles"
                );
                return Ok(0);
            }
        };
        let now = self.now();
        let due = compiled.slots(record.last_slot, now, MAX_SLOTS_PER_ROUND);
        let Some(&newest) = due.last() else {
            return Ok(0);
        };
        let (missed, live): (Vec<_>, Vec<_>) = due.into_iter().partition(|s| *s < started);
        let mut run: Vec<DateTime<Utc>> = match (record.spec.catch_up, missed.last()) {
            (CatchUp::Last, Some(&last)) => vec![last],
            _ => Vec::new(),
        };
        run.extend(live);
        let mut started_count = 0;
        for slot in run {
            self.start_slot(&spec, &compiled, id, slot).await;
            started_count += 1;
            record.last_slot = slot;
            self.store.put_schedule(&record)?;
        }
        // Skipped slots are handled too: the next round starts after them.
        if record.last_slot < newest {
            record.last_slot = newest;
            self.store.put_schedule(&record)?;
        }
        self.durability.durable().await?;
        Ok(started_count)
    }

    /// Starts the instance of one slot, idempotently. A start the workflow refuses (its
    /// input schema, a business key in use) is logged: the slot is over either way.
    async fn start_slot(
        &self,
        spec: &ScheduleSpec,
        compiled: &Compiled,
        id: &str,
        slot: DateTime<Utc>,
    ) {
        let slot_text = slot.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let key = format!("schedule:{id}:{slot_text}");
        let calendars = Arc::new(self.calendars());
        let input = match compiled.input(spec, slot, &calendars) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(schedule = id, slot = %slot_text, error = %e, "the schedule's input_expr failed; slot skipped");
                return;
            }
        };
        match self.start(&spec.workflow, input, Some(&key)).await {
            Ok(applied) => {
                tracing::info!(schedule = id, slot = %slot_text, instance = %applied.instance.id, replayed = applied.replayed, "schedule started an instance");
            }
            Err(e) => {
                tracing::warn!(schedule = id, slot = %slot_text, error = %e, "the schedule's start was refused; slot skipped");
            }
        }
    }

    /// Runs the schedules until `shutdown` completes, looking for due slots every 200 ms.
    pub async fn run_schedules(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        let started = self.now();
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.run_due_schedules(started).await {
                tracing::error!(error = %e, "running schedules");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(TICK) => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "schedules_tests.rs"]
mod tests;
