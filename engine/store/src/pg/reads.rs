//! Definitions, instances, history, timers, approval tasks, idempotency records, tokens and
//! schedules over their tables, and [`Store`] itself.

use super::commit::{approver, keep_idempotency};
use super::{from_json, PgStore};
use crate::query::Page;
use crate::records::{DueTimer, IdempotencyRecord, PutDefinition, StoredDefinition};
use crate::{
    ApprovalStore, Commit, DefinitionStore, HistoryStore, IdempotencyStore, InstanceStore,
    ScheduleRecord, ScheduleStore, Store, StoreError, TimerStore, TokenRecord, TokenStore,
};
use chrono::{DateTime, Utc};
use postgres::types::Json;
use serde_json::Value;
use waystation_core::definition::Approver;
use waystation_core::{ApprovalTask, HistoryEntry, InstanceState};

/// The advisory lock class of definition uploads (one workflow's versions at a time).
const DEFINITION_LOCKS: i32 = 18;

fn stored(row: &postgres::Row) -> Result<StoredDefinition, StoreError> {
    let version: i32 = row.get(1);
    Ok(StoredDefinition {
        id: row.get(0),
        version: u32::try_from(version)
            .map_err(|_| StoreError::Corrupt(format!("definition version {version}")))?,
        definition: row.get(2),
        stored_at: row.get(3),
        uploaded_by: row
            .get::<_, Option<Value>>(4)
            .map(|v| from_json("a definition's uploader", v))
            .transpose()?,
    })
}

const DEFINITION: &str =
    "SELECT workflow, version, definition, stored_at, uploaded_by FROM definitions";

impl DefinitionStore for PgStore {
    fn put_definition(
        &self,
        id: &str,
        definition: &Value,
        now: DateTime<Utc>,
        uploaded_by: Option<&waystation_core::Actor>,
    ) -> Result<PutDefinition, StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            // Two nodes uploading one workflow take version numbers one after the other.
            tx.query(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&DEFINITION_LOCKS, &id],
            )?;
            let latest = tx.query_opt(
                &format!("{DEFINITION} WHERE workflow = $1 ORDER BY version DESC LIMIT 1"),
                &[&id],
            )?;
            let latest = latest.as_ref().map(stored).transpose()?;
            if let Some(l) = latest.as_ref().filter(|l| l.definition == *definition) {
                return Ok(PutDefinition {
                    version: l.version,
                    created: false,
                });
            }
            let version = latest.map_or(1, |l| l.version + 1);
            let v = i32::try_from(version)
                .map_err(|_| StoreError::Corrupt(format!("definition version {version}")))?;
            tx.exec(
                "INSERT INTO definitions (workflow, version, definition, stored_at, uploaded_by)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&id, &v, definition, &now, &uploaded_by.map(Json)],
            )?;
            tx.commit()?;
            Ok(PutDefinition {
                version,
                created: true,
            })
        })
    }

    fn definition(&self, id: &str, version: u32) -> Result<Option<StoredDefinition>, StoreError> {
        let Ok(v) = i32::try_from(version) else {
            return Ok(None);
        };
        self.with(|c| {
            c.query_opt(
                &format!("{DEFINITION} WHERE workflow = $1 AND version = $2"),
                &[&id, &v],
            )?
            .as_ref()
            .map(stored)
            .transpose()
        })
    }

    fn latest_definition(&self, id: &str) -> Result<Option<StoredDefinition>, StoreError> {
        self.with(|c| {
            c.query_opt(
                &format!("{DEFINITION} WHERE workflow = $1 ORDER BY version DESC LIMIT 1"),
                &[&id],
            )?
            .as_ref()
            .map(stored)
            .transpose()
        })
    }

    fn list_definitions(&self) -> Result<Vec<(String, u32)>, StoreError> {
        let rows = self.with(|c| {
            c.query(
                "SELECT workflow, max(version) FROM definitions GROUP BY workflow ORDER BY workflow",
                &[],
            )
        })?;
        rows.iter()
            .map(|r| {
                let v: i32 = r.get(1);
                Ok((
                    r.get(0),
                    u32::try_from(v)
                        .map_err(|_| StoreError::Corrupt(format!("definition version {v}")))?,
                ))
            })
            .collect()
    }
}

impl InstanceStore for PgStore {
    fn instance(&self, id: &str) -> Result<Option<InstanceState>, StoreError> {
        self.with(|c| {
            c.query_opt("SELECT state FROM instances WHERE id = $1", &[&id])?
                .map(|r| from_json(&format!("instance {id}"), r.get(0)))
                .transpose()
        })
    }
}

impl HistoryStore for PgStore {
    fn history(
        &self,
        id: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, HistoryEntry)>, StoreError> {
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with(|c| {
            c.query(
                "SELECT seq, entry FROM history WHERE instance_id = $1 AND seq >= $2
                 ORDER BY seq LIMIT $3",
                &[&id, &from, &limit],
            )
        })?;
        rows.into_iter()
            .map(|r| {
                let seq: i64 = r.get(0);
                Ok((
                    seq as u64,
                    from_json(&format!("history of {id}"), r.get(1))?,
                ))
            })
            .collect()
    }
}

impl TimerStore for PgStore {
    fn due_timers(&self, until: DateTime<Utc>, limit: usize) -> Result<Vec<DueTimer>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with(|c| {
            c.query(
                "SELECT due, timer_id, instance_id FROM timers WHERE due <= $1
                 ORDER BY due, timer_id LIMIT $2",
                &[&until, &limit],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| DueTimer {
                due: r.get(0),
                timer_id: r.get(1),
                instance_id: r.get(2),
            })
            .collect())
    }

    fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.next_claimable_timer()
    }

    fn claim_due_timers(
        &self,
        until: DateTime<Utc>,
        limit: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<DueTimer>, StoreError> {
        self.claim_timers(until, limit, lease)
    }
}

impl ApprovalStore for PgStore {
    fn task(&self, id: &str) -> Result<Option<ApprovalTask>, StoreError> {
        self.with(|c| {
            c.query_opt("SELECT task FROM tasks WHERE id = $1", &[&id])?
                .map(|r| from_json(&format!("task {id}"), r.get(0)))
                .transpose()
        })
    }

    fn open_tasks(
        &self,
        who: &Approver,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ApprovalTask>, StoreError> {
        let (kind, name) = approver(who);
        let scope = format!("inbox/{kind}/{name}");
        let after = super::query::cursor_in(cursor, &scope)?.unwrap_or_default();
        let limit = super::query::page_size(limit);
        let rows = self.with(|c| {
            c.query(
                "SELECT id, task FROM tasks WHERE approver_kind = $1 AND approver = $2 AND id > $3
                 ORDER BY id LIMIT $4",
                &[&kind, &name, &after, &(limit as i64 + 1)],
            )
        })?;
        let items = rows
            .into_iter()
            .map(|r| Ok((r.get::<_, String>(0), from_json("a task", r.get(1))?)))
            .collect::<Result<Vec<(String, ApprovalTask)>, StoreError>>()?;
        Ok(super::query::page(items, limit, &scope))
    }
}

impl IdempotencyStore for PgStore {
    fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.with(|c| {
            c.query_opt("SELECT record FROM idempotency WHERE key = $1", &[&key])?
                .map(|r| from_json(&format!("idempotency record {key}"), r.get(0)))
                .transpose()
        })
    }

    fn put_idempotency(&self, key: &str, record: &IdempotencyRecord) -> Result<(), StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            keep_idempotency(&mut tx, self.idempotency_keep_ms, key, record)?;
            tx.commit()
        })
    }
}

const TOKEN: &str = "SELECT record FROM tokens";

fn put_token(tx: &mut super::conn::Tx<'_>, t: &TokenRecord) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO tokens (id, name, secret_sha256, record) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name,
            secret_sha256 = excluded.secret_sha256, record = excluded.record",
        &[&t.id, &t.name, &t.secret_sha256, &Json(t)],
    )?;
    Ok(())
}

impl TokenStore for PgStore {
    fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            put_token(&mut tx, token)?;
            tx.commit()
        })
    }

    fn put_token_once(
        &self,
        token: &TokenRecord,
        key: &str,
        record: &IdempotencyRecord,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            put_token(&mut tx, token)?;
            keep_idempotency(&mut tx, self.idempotency_keep_ms, key, record)?;
            tx.commit()
        })
    }

    fn token_by_hash(&self, secret_sha256: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.with(|c| {
            c.query_opt(
                &format!("{TOKEN} WHERE secret_sha256 = $1"),
                &[&secret_sha256],
            )?
            .map(|r| from_json("a token", r.get(0)))
            .transpose()
        })
    }

    fn token_by_name(&self, name: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.with(|c| {
            c.query_opt(&format!("{TOKEN} WHERE name = $1"), &[&name])?
                .map(|r| from_json("a token", r.get(0)))
                .transpose()
        })
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = self.with(|c| c.query(&format!("{TOKEN} ORDER BY id"), &[]))?;
        rows.into_iter()
            .map(|r| from_json("a token", r.get(0)))
            .collect()
    }

    fn delete_token(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            let n = tx.exec("DELETE FROM tokens WHERE id = $1", &[&id])?;
            tx.commit()?;
            Ok(n > 0)
        })
    }
}

impl ScheduleStore for PgStore {
    fn put_schedule(&self, s: &ScheduleRecord) -> Result<(), StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            tx.exec(
                "INSERT INTO schedules (id, record) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                &[&s.id, &Json(s)],
            )?;
            tx.commit()
        })
    }

    fn schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        self.with(|c| {
            c.query_opt("SELECT record FROM schedules WHERE id = $1", &[&id])?
                .map(|r| from_json("a schedule", r.get(0)))
                .transpose()
        })
    }

    fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        let rows = self.with(|c| c.query("SELECT record FROM schedules ORDER BY id", &[]))?;
        rows.into_iter()
            .map(|r| from_json("a schedule", r.get(0)))
            .collect()
    }

    fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            let n = tx.exec("DELETE FROM schedules WHERE id = $1", &[&id])?;
            tx.commit()?;
            Ok(n > 0)
        })
    }
}

impl Store for PgStore {
    fn commit(&self, commit: &Commit<'_>) -> Result<(), StoreError> {
        self.commit_tx(commit)
    }

    fn commit_all(&self, commits: &[Commit<'_>]) -> Result<(), StoreError> {
        self.commit_all_tx(commits)
    }

    /// A no-op: with `synchronous_commit = on` a transaction is durable when its commit
    /// returns, so there is nothing left to flush.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn check_ready(&self) -> Result<(), StoreError> {
        self.ping()
    }

    fn shared(&self) -> bool {
        true
    }

    fn node_name(&self) -> Option<String> {
        Some(self.node.clone())
    }
}
