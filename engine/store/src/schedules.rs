//! Schedules: cron-timed starts of a workflow (issue 19). One record per schedule under
//! `sched/{id}`, holding what the administrator set and how far the scheduler got (the last
//! slot it handled), so a restart neither repeats nor forgets a slot.

use crate::keys::{key, part, prefix};
use crate::{Kv, KvStore, Mutation, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What to do with the slots that fell due while the server was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Start nothing for them; go on with the next slot.
    #[default]
    Skip,
    /// Start one instance for the last of them (its slot time), once.
    Last,
}

/// A schedule as an administrator writes it (`PUT /v1/schedules/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Cron expression (`0 7 * * Thu`: Thursdays at 07:00).
    pub cron: String,
    /// IANA time zone the expression is read in (`Asia/Shanghai`).
    pub zone: String,
    /// The workflow each slot starts.
    pub workflow: String,
    /// A fixed start payload (default `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// A CEL expression building the start payload, with `now` the slot's time
    /// (`{'week_of': now}`). Exclusive with `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_expr: Option<String>,
    /// What to start for the slots missed while the server was down: `skip` (default) or
    /// `last`.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Paused schedules start nothing.
    #[serde(default)]
    pub paused: bool,
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// The schedule's id (`thursday-precheck`).
    pub id: String,
    /// What the administrator set.
    pub spec: ScheduleSpec,
    /// The latest slot handled (started, or skipped on purpose); slots after it are due.
    pub last_slot: DateTime<Utc>,
    /// When the schedule was first put.
    pub created_at: DateTime<Utc>,
    /// When it was last changed by an administrator.
    pub updated_at: DateTime<Utc>,
}

/// Where schedules are kept.
pub trait ScheduleStore {
    /// Creates or replaces a schedule.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the write fails; nothing was written then.
    fn put_schedule(&self, schedule: &ScheduleRecord) -> Result<(), StoreError>;
    /// The schedule `id`, if any.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot be read; [`StoreError::Unreadable`] for
    /// a record that does not parse.
    fn schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError>;
    /// Every schedule, by id.
    ///
    /// # Errors
    /// As [`ScheduleStore::schedule`].
    fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError>;
    /// Removes a schedule; false when there was none.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the delete fails; nothing was removed then.
    fn delete_schedule(&self, id: &str) -> Result<bool, StoreError>;
}

fn record_key(id: &str) -> Vec<u8> {
    key(&[part::SCHEDULE, id.as_bytes()])
}

fn parse(bytes: &[u8]) -> Result<ScheduleRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::unreadable("schedule", e))
}

impl<B: Kv> ScheduleStore for KvStore<B> {
    fn put_schedule(&self, schedule: &ScheduleRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(schedule)
            .map_err(|e| StoreError::encode(format!("schedule {}", schedule.id), e))?;
        self.backend()
            .apply(vec![Mutation::Put(record_key(&schedule.id), bytes)])
    }

    fn schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        self.backend()
            .get(&record_key(id))?
            .map(|b| parse(&b))
            .transpose()
    }

    fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        let mut out = Vec::new();
        let mut bad = None;
        self.backend()
            .scan(&prefix(&[part::SCHEDULE]), None, &mut |_, v| {
                match parse(v) {
                    Ok(s) => out.push(s),
                    Err(e) => bad = Some(e),
                }
                bad.is_none()
            })?;
        bad.map_or(Ok(out), Err)
    }

    fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        if self.backend().get(&record_key(id))?.is_none() {
            return Ok(false);
        }
        self.backend()
            .apply(vec![Mutation::Delete(record_key(id))])?;
        Ok(true)
    }
}

/// Conformance: a schedule is kept, listed by id, replaced whole and deleted.
///
/// # Panics
/// When the store does not behave so.
pub fn schedules_are_kept_replaced_and_deleted(store: &dyn crate::Store) {
    let at = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .expect("a test time")
            .with_timezone(&Utc)
    };
    let mut precheck = ScheduleRecord {
        id: "thursday-precheck".into(),
        spec: ScheduleSpec {
            cron: "0 7 * * Thu".into(),
            zone: "Asia/Shanghai".into(),
            workflow: "payment-precheck".into(),
            input: None,
            input_expr: Some("{'week_of': now}".into()),
            catch_up: CatchUp::Last,
            paused: false,
        },
        last_slot: at("2026-05-07T23:00:00Z"),
        created_at: at("2026-05-01T08:00:00Z"),
        updated_at: at("2026-05-01T08:00:00Z"),
    };
    let daily = ScheduleRecord {
        id: "daily-summary".into(),
        spec: ScheduleSpec {
            cron: "0 17 * * *".into(),
            ..precheck.spec.clone()
        },
        ..precheck.clone()
    };
    store.put_schedule(&precheck).unwrap();
    store.put_schedule(&daily).unwrap();
    assert_eq!(
        store.schedule("thursday-precheck").unwrap(),
        Some(precheck.clone())
    );
    let ids: Vec<String> = store
        .schedules()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["daily-summary", "thursday-precheck"]);
    precheck.last_slot = at("2026-05-14T23:00:00Z");
    precheck.spec.paused = true;
    store.put_schedule(&precheck).unwrap();
    assert_eq!(store.schedule("thursday-precheck").unwrap(), Some(precheck));
    assert!(store.delete_schedule("daily-summary").unwrap());
    assert!(!store.delete_schedule("daily-summary").unwrap());
    assert_eq!(store.schedule("daily-summary").unwrap(), None);
    assert_eq!(store.schedules().unwrap().len(), 1);
}
