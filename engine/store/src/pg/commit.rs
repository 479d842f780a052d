//! One command's changes as one transaction: the instance row (checked against the state
//! the command was computed from), its history, timers, tasks, field rows, messages,
//! idempotency record and report cells.

use super::conn::Tx;
use super::PgStore;
use crate::records::{DeliveryUpdate, IdempotencyRecord, OutboxRecord};
use crate::{Commit, StoreError};
use chrono::{DateTime, Utc};
use postgres::types::Json;
use std::collections::HashSet;
use waystation_core::definition::Approver;
use waystation_core::effect::history_of;
use waystation_core::{Effect, FieldValue, HistoryEntry, InstanceState, Status};

/// The columns of an instance row, derived from its state.
struct Columns<'a> {
    sla: Option<&'static str>,
    acted_at: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
    running_key: Option<&'a str>,
    assignee: Option<&'a str>,
    /// Every current stage's assignee (branches too), deduplicated; `None` when there is
    /// none or the instance is not running.
    assignees: Option<Vec<&'a str>>,
    tags: Vec<&'a str>,
    breached: Vec<&'a str>,
    finished_at: Option<DateTime<Utc>>,
}

impl<'a> Columns<'a> {
    fn of(s: &'a InstanceState) -> Self {
        let running = s.status == Status::Running;
        let mut breached: Vec<&str> = s
            .sla_record
            .iter()
            .filter(|r| r.breached())
            .map(|r| r.stage.as_str())
            .collect();
        breached.sort_unstable();
        breached.dedup();
        Columns {
            sla: running.then(|| s.sla.state.as_str()),
            acted_at: s.acted_at.unwrap_or(s.started_at),
            deadline: s.sla.deadline.filter(|_| running),
            running_key: s.key.as_deref().filter(|_| running),
            assignee: s
                .assignee
                .as_ref()
                .filter(|_| running)
                .map(|a| a.user.as_str()),
            assignees: running
                .then(|| {
                    let mut all: Vec<&str> =
                        s.all_assignees().iter().map(|a| a.user.as_str()).collect();
                    all.sort_unstable();
                    all.dedup();
                    all
                })
                .filter(|all| !all.is_empty()),
            tags: s.tags.iter().map(String::as_str).collect(),
            breached,
            finished_at: (!running).then_some(s.updated_at),
        }
    }
}

fn int(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what} {n} is out of range")))
}

/// Inserts (no `before`) or updates the instance row. An update applies only while the row
/// still holds `before` (same history length, id counter and update time): otherwise
/// another node changed it first and this is [`StoreError::Conflict`].
fn write_instance(
    tx: &mut Tx<'_>,
    before: Option<&InstanceState>,
    s: &InstanceState,
) -> Result<(), StoreError> {
    let c = Columns::of(s);
    let state = Json(s);
    let version = i64::from(s.version);
    let (history_len, seq) = (int(s.history_len, "history length")?, int(s.seq, "seq")?);
    let changed = match before {
        None => tx.exec(
            "INSERT INTO instances (id, workflow, version, stage, status, sla, updated_at, acted_at,
                deadline, business_key, running_key, assignee, tags, breached_stages, history_len,
                seq, finished_at, state, assignees)
             VALUES ($1, $2, $3::bigint::integer, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                $14, $15, $16, $17, $18, $19)
             ON CONFLICT (id) DO NOTHING",
            &[
                &s.id, &s.workflow, &version, &s.stage, &s.status.as_str(), &c.sla,
                &s.updated_at, &c.acted_at, &c.deadline, &s.key, &c.running_key, &c.assignee,
                &c.tags, &c.breached, &history_len, &seq, &c.finished_at, &state, &c.assignees,
            ],
        )?,
        Some(b) => tx.exec(
            "UPDATE instances SET workflow = $2, version = $3::bigint::integer, stage = $4,
                status = $5, sla = $6, updated_at = $7, acted_at = $8, deadline = $9,
                business_key = $10, running_key = $11, assignee = $12, tags = $13,
                breached_stages = $14, history_len = $15, seq = $16,
                finished_at = coalesce(finished_at, $17), state = $18, assignees = $22
             WHERE id = $1 AND history_len = $19 AND seq = $20 AND updated_at = $21",
            &[
                &s.id, &s.workflow, &version, &s.stage, &s.status.as_str(), &c.sla,
                &s.updated_at, &c.acted_at, &c.deadline, &s.key, &c.running_key, &c.assignee,
                &c.tags, &c.breached, &history_len, &seq, &c.finished_at, &state,
                &int(b.history_len, "history length")?, &int(b.seq, "seq")?, &b.updated_at,
                &c.assignees,
            ],
        )?,
    };
    if changed == 0 {
        return Err(StoreError::conflict(match before {
            None => format!("instance '{}' exists already", s.id),
            Some(_) => format!("instance '{}' was changed by another node", s.id),
        }));
    }
    Ok(())
}

/// Appends `entries`, numbered up to `history_len - 1`.
fn write_history(
    tx: &mut Tx<'_>,
    id: &str,
    history_len: u64,
    entries: &[&HistoryEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let first = history_len
        .checked_sub(entries.len() as u64)
        .ok_or_else(|| {
            StoreError::Corrupt(format!("history length of '{id}' below its entries"))
        })?;
    let seqs: Vec<i64> = (first..history_len)
        .map(|n| int(n, "history number"))
        .collect::<Result<_, _>>()?;
    let docs: Vec<Json<&HistoryEntry>> = entries.iter().map(|e| Json(*e)).collect();
    tx.exec(
        "INSERT INTO history (instance_id, seq, entry)
         SELECT $1, s, e FROM unnest($2::bigint[], $3::json[]) AS t(s, e)",
        &[&id, &seqs, &docs],
    )?;
    Ok(())
}

/// Timer rows follow the state's armed timers; a fired timer's row goes too.
fn write_timers(tx: &mut Tx<'_>, commit: &Commit<'_>) -> Result<(), StoreError> {
    let after = commit.after;
    // Every current stage's timers: a parallel stage's branches each have their own.
    let old = commit
        .before
        .map(InstanceState::all_timers)
        .unwrap_or_default();
    let new = after.all_timers();
    let new_ids: HashSet<&str> = new.iter().map(|t| t.id.as_str()).collect();
    let old_ids: HashSet<&str> = old.iter().map(|t| t.id.as_str()).collect();
    let mut gone: Vec<&str> = old_ids.difference(&new_ids).copied().collect();
    if let Some((_, fired)) = commit.fired_timer {
        if !new_ids.contains(fired) {
            gone.push(fired);
        }
    }
    if !gone.is_empty() {
        tx.exec(
            "DELETE FROM timers WHERE instance_id = $1 AND timer_id = ANY($2)",
            &[&after.id, &gone],
        )?;
    }
    let (ids, dues): (Vec<&str>, Vec<DateTime<Utc>>) = new
        .iter()
        .filter(|t| !old_ids.contains(t.id.as_str()))
        .map(|t| (t.id.as_str(), t.due))
        .unzip();
    if !ids.is_empty() {
        tx.exec(
            "INSERT INTO timers (instance_id, timer_id, due)
             SELECT $1, i, d FROM unnest($2::text[], $3::timestamptz[]) AS t(i, d)
             ON CONFLICT (instance_id, timer_id) DO UPDATE SET due = excluded.due",
            &[&after.id, &ids, &dues],
        )?;
    }
    // Sub-workflow records, each a row of the instance it is for, due now (see
    // `crate::commit::relays`). An instance no longer stored (retention removed it) has
    // nothing left to be told: no row, rather than a commit refused for its foreign key.
    for (owner, record) in crate::commit::relays(commit) {
        tx.exec(
            "INSERT INTO timers (instance_id, timer_id, due)
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM instances WHERE id = $1)
             ON CONFLICT (instance_id, timer_id) DO NOTHING",
            &[&owner, &record, &after.updated_at],
        )?;
    }
    Ok(())
}

/// `(kind, name)` of an approver, as the `tasks` table keeps it.
pub(crate) fn approver(a: &Approver) -> (&'static str, &str) {
    match a {
        Approver::Role(r) => ("role", r),
        Approver::User(u) => ("user", u),
    }
}

/// Task rows follow the state's open tasks.
fn write_tasks(tx: &mut Tx<'_>, commit: &Commit<'_>) -> Result<(), StoreError> {
    let old = commit
        .before
        .map(InstanceState::open_tasks)
        .unwrap_or_default();
    let new = commit.after.open_tasks();
    let gone: Vec<&str> = old
        .iter()
        .filter(|t| !new.iter().any(|n| n.id == t.id))
        .map(|t| t.id.as_str())
        .collect();
    if !gone.is_empty() {
        tx.exec("DELETE FROM tasks WHERE id = ANY($1)", &[&gone])?;
    }
    for t in new.iter().filter(|t| !old.iter().any(|o| o.id == t.id)) {
        let (kind, name) = approver(&t.approver);
        tx.exec(
            "INSERT INTO tasks (id, instance_id, approver_kind, approver, task)
             VALUES ($1, $2, $3, $4, $5)",
            &[&t.id, &t.instance_id, &kind, &name, &Json(t)],
        )?;
    }
    Ok(())
}

/// The field rows of `s`: `(field, kind, value bytes)`, one per word of a text field.
fn field_rows(s: &InstanceState) -> Vec<(&str, &'static str, Vec<u8>)> {
    let mut rows = Vec::new();
    for (field, value) in &s.fields {
        let (index, bytes) = crate::keys::field_value(value);
        let kind = std::str::from_utf8(index).unwrap_or("f");
        match value {
            FieldValue::Text(text) => {
                for word in waystation_core::fields::words(text) {
                    rows.push((field.as_str(), kind, word.into_bytes()));
                }
            }
            _ => rows.push((field.as_str(), kind, bytes)),
        }
    }
    rows
}

/// Field rows are rewritten when the fields changed.
fn write_fields(tx: &mut Tx<'_>, commit: &Commit<'_>) -> Result<(), StoreError> {
    let after = commit.after;
    if commit
        .before
        .is_some_and(|b| b.fields == after.fields && b.workflow == after.workflow)
    {
        return Ok(());
    }
    if commit.before.is_some() {
        tx.exec(
            "DELETE FROM instance_fields WHERE instance_id = $1",
            &[&after.id],
        )?;
    }
    let rows = field_rows(after);
    if rows.is_empty() {
        return Ok(());
    }
    let fields: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r.1).collect();
    let values: Vec<&[u8]> = rows.iter().map(|r| r.2.as_slice()).collect();
    tx.exec(
        "INSERT INTO instance_fields (workflow, field, kind, value, instance_id)
         SELECT $1, f, k, v, $2 FROM unnest($3::text[], $4::text[], $5::bytea[]) AS t(f, k, v)
         ON CONFLICT DO NOTHING",
        &[&after.workflow, &after.id, &fields, &kinds, &values],
    )?;
    Ok(())
}

/// Queues `record` (a new message).
pub(crate) fn enqueue(tx: &mut Tx<'_>, record: &OutboxRecord) -> Result<(), StoreError> {
    let m = &record.message;
    tx.exec(
        "INSERT INTO outbox (id, instance_id, status, queue_time, channel, record)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &m.id,
            &m.instance_id,
            &record.status.as_str(),
            &record.queue_time(),
            &m.channel,
            &Json(record),
        ],
    )?;
    Ok(())
}

/// Keeps `record` under `key`, replacing a record kept at least `keep_ms` before it (a
/// key used again after its record expired). A younger record means another node answered
/// this key first: [`StoreError::Conflict`], nothing written.
pub(crate) fn keep_idempotency(
    tx: &mut Tx<'_>,
    keep_ms: f64,
    key: &str,
    record: &IdempotencyRecord,
) -> Result<(), StoreError> {
    let written = tx.exec(
        "INSERT INTO idempotency (key, record, kept_at) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET record = excluded.record, kept_at = excluded.kept_at
         WHERE idempotency.kept_at <= excluded.kept_at - $4::float8 * interval '1 millisecond'",
        &[&key, &Json(record), &record.at, &keep_ms],
    )?;
    if written == 0 {
        return Err(StoreError::conflict(format!(
            "idempotency key '{key}' was answered by another request meanwhile"
        )));
    }
    Ok(())
}

impl PgStore {
    /// See [`crate::Store::commit`].
    pub(crate) fn commit_tx(&self, commit: &Commit<'_>) -> Result<(), StoreError> {
        self.commit_all_tx(std::slice::from_ref(commit))
    }

    /// Several instances' commits in one transaction: all of them or none (a conflict on
    /// any rolls every one back). See [`crate::Store::commit_all`].
    pub(crate) fn commit_all_tx(&self, commits: &[Commit<'_>]) -> Result<(), StoreError> {
        self.with(|conn| {
            let mut tx = conn.tx()?;
            for commit in commits {
                self.write_commit(&mut tx, commit)?;
            }
            tx.commit()
        })
    }

    /// Everything one commit writes, in `tx`.
    fn write_commit(&self, tx: &mut Tx<'_>, commit: &Commit<'_>) -> Result<(), StoreError> {
        let after = commit.after;
        write_instance(tx, commit.before, after)?;
        write_history(
            tx,
            &after.id,
            after.history_len,
            &history_of(commit.effects),
        )?;
        for e in commit.effects {
            if let Effect::Enqueue(message) = e {
                enqueue(tx, &OutboxRecord::queued(message.clone(), after.updated_at))?;
            }
        }
        write_timers(tx, commit)?;
        write_tasks(tx, commit)?;
        write_fields(tx, commit)?;
        if let Some((key, record)) = commit.idempotency {
            keep_idempotency(tx, self.idempotency_keep_ms, key, record)?;
        }
        super::reports::move_cells(tx, commit)
    }

    /// See [`crate::OutboxStore::update_message`]. The instance row is checked like a
    /// command's: its history length must be the one the update was computed from.
    pub(crate) fn update_message_tx(&self, u: &DeliveryUpdate<'_>) -> Result<(), StoreError> {
        let (before, after) = (u.before, u.after);
        self.with(|conn| {
            let mut tx = conn.tx()?;
            let changed = tx.exec(
                "UPDATE outbox SET status = $2, queue_time = $3, record = $4,
                    lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND status = $5",
                &[
                    &after.message.id,
                    &after.status.as_str(),
                    &after.queue_time(),
                    &Json(after),
                    &before.status.as_str(),
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::conflict(format!(
                    "message '{}' is no longer {}",
                    before.message.id,
                    before.status.as_str()
                )));
            }
            if let Some(instance) = u.instance {
                let entries: Vec<&HistoryEntry> = u.history.iter().collect();
                let was = instance.history_len.saturating_sub(entries.len() as u64);
                let moved = tx.exec(
                    "UPDATE instances SET history_len = $2, state = $3
                     WHERE id = $1 AND history_len = $4",
                    &[
                        &instance.id,
                        &int(instance.history_len, "history length")?,
                        &Json(instance),
                        &int(was, "history length")?,
                    ],
                )?;
                if moved == 0 {
                    return Err(StoreError::conflict(format!(
                        "instance '{}' was changed by another node",
                        instance.id
                    )));
                }
                write_history(&mut tx, &instance.id, instance.history_len, &entries)?;
            }
            if let Some((key, record)) = u.idempotency {
                keep_idempotency(&mut tx, self.idempotency_keep_ms, key, record)?;
            }
            tx.commit()
        })
    }
}
