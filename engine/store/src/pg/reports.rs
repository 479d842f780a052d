//! Report rollups in `report_cells`: moved in the commit's transaction under an advisory
//! lock per cell, so two commits (of one node or several) moving one cell apply one after
//! the other, and a report figure stays exact.

use super::conn::Tx;
use super::{from_json, PgStore};
use crate::{Commit, Rebuilt, ReportStore, StoreError};
use std::collections::BTreeMap;
use waystation_core::effect::history_of;
use waystation_core::report::{deltas, Cell, Delta};
use waystation_core::{HistoryEntry, InstanceState};

/// A cell's key: (dim, bucket, value, figure), in the order the table sorts them.
type CellKey = (String, i64, String, String);

fn corrupt(k: &CellKey, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("report cell {k:?}: {e}"))
}

/// Adds `moved` into `pending`.
fn gather(
    pending: &mut BTreeMap<(String, CellKey), Cell>,
    workflow: &str,
    moved: Vec<Delta>,
) -> Result<(), StoreError> {
    for d in moved {
        let k = (
            d.group.dim.clone(),
            d.bucket.max(0),
            d.group.value.clone(),
            d.metric.clone(),
        );
        let c = crate::rollups::cell_of(d.change);
        match pending.get_mut(&(workflow.to_owned(), k.clone())) {
            Some(old) => old.merge(&c).map_err(|e| corrupt(&k, e))?,
            None => {
                pending.insert((workflow.to_owned(), k), c);
            }
        }
    }
    Ok(())
}

/// The advisory lock class of report cells (the first key of `pg_advisory_xact_lock`).
const CELL_LOCKS: i32 = 17;

/// Adds `pending` to the stored cells, in four round trips whatever their number: lock
/// every cell's key (a transaction-level advisory lock, taken in a fixed order so two
/// commits cannot deadlock; it also covers cells not yet written, which a row lock cannot),
/// read them, write the merged cells, delete the counts that reached zero.
fn apply(tx: &mut Tx<'_>, pending: BTreeMap<(String, CellKey), Cell>) -> Result<(), StoreError> {
    if pending.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = pending
        .keys()
        .map(|(w, (d, b, v, f))| format!("{w}\u{1}{d}\u{1}{b}\u{1}{v}\u{1}{f}"))
        .collect();
    tx.query(
        "SELECT pg_advisory_xact_lock($1, h)
         FROM (SELECT DISTINCT hashtext(n) AS h FROM unnest($2::text[]) AS n ORDER BY 1) AS l",
        &[&CELL_LOCKS, &names],
    )?;
    let column = |i: usize| -> Vec<&str> {
        pending
            .keys()
            .map(|(w, (d, _, v, f))| [w.as_str(), d, v, f][i])
            .collect()
    };
    let (workflows, dims, values, figures) = (column(0), column(1), column(2), column(3));
    let buckets: Vec<i64> = pending.keys().map(|(_, (_, b, _, _))| *b).collect();
    let rows = tx.query(
        "SELECT c.workflow, c.dim, c.bucket, c.value, c.figure, c.cell
         FROM report_cells c
         JOIN unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])
              AS k(workflow, dim, bucket, value, figure)
           ON (c.workflow, c.dim, c.bucket, c.value, c.figure)
            = (k.workflow, k.dim, k.bucket, k.value, k.figure)",
        &[&workflows, &dims, &buckets, &values, &figures],
    )?;
    let mut stored: BTreeMap<(String, CellKey), Cell> = BTreeMap::new();
    for row in rows {
        let k: CellKey = (row.get(1), row.get(2), row.get(3), row.get(4));
        let cell = Cell::decode(row.get::<_, &[u8]>(5)).map_err(|e| corrupt(&k, e))?;
        stored.insert((row.get(0), k), cell);
    }
    let (mut keep, mut drop) = (Vec::new(), Vec::new());
    for (key, change) in pending {
        let cell = match stored.remove(&key) {
            Some(mut old) => {
                old.merge(&change).map_err(|e| corrupt(&key.1, e))?;
                old
            }
            None => change,
        };
        if cell.is_zero() {
            drop.push(key);
        } else {
            keep.push((key, cell.encode()));
        }
    }
    write(tx, &keep)?;
    delete(tx, &drop)
}

/// Upserts `cells` (the caller holds their locks).
fn write(tx: &mut Tx<'_>, cells: &[((String, CellKey), Vec<u8>)]) -> Result<(), StoreError> {
    if cells.is_empty() {
        return Ok(());
    }
    let col = |i: usize| -> Vec<&str> {
        cells
            .iter()
            .map(|((w, (d, _, v, f)), _)| [w.as_str(), d, v, f][i])
            .collect()
    };
    let buckets: Vec<i64> = cells.iter().map(|((_, (_, b, _, _)), _)| *b).collect();
    let bytes: Vec<&[u8]> = cells.iter().map(|(_, c)| c.as_slice()).collect();
    tx.exec(
        "INSERT INTO report_cells (workflow, dim, bucket, value, figure, cell)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bytea[])
         ON CONFLICT (workflow, dim, bucket, value, figure) DO UPDATE SET cell = excluded.cell",
        &[&col(0), &col(1), &buckets, &col(2), &col(3), &bytes],
    )?;
    Ok(())
}

/// Deletes the cells at `keys` (the caller holds their locks).
fn delete(tx: &mut Tx<'_>, keys: &[(String, CellKey)]) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let col = |i: usize| -> Vec<&str> {
        keys.iter()
            .map(|(w, (d, _, v, f))| [w.as_str(), d, v, f][i])
            .collect()
    };
    let buckets: Vec<i64> = keys.iter().map(|(_, (_, b, _, _))| *b).collect();
    tx.exec(
        "DELETE FROM report_cells c
         USING unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])
               AS k(workflow, dim, bucket, value, figure)
         WHERE (c.workflow, c.dim, c.bucket, c.value, c.figure)
             = (k.workflow, k.dim, k.bucket, k.value, k.figure)",
        &[&col(0), &col(1), &buckets, &col(2), &col(3)],
    )?;
    Ok(())
}

/// The rollup moves of one commit, in its transaction.
pub(crate) fn move_cells(tx: &mut Tx<'_>, commit: &Commit<'_>) -> Result<(), StoreError> {
    let history = history_of(commit.effects);
    let moved = deltas(commit.before, commit.after, &history);
    if moved.is_empty() {
        return Ok(());
    }
    let mut pending = BTreeMap::new();
    gather(&mut pending, &commit.after.workflow, moved)?;
    apply(tx, pending)
}

impl ReportStore for PgStore {
    fn report_cells(
        &self,
        workflow: &str,
        dim: &str,
        (from, to): (i64, i64),
        visit: &mut crate::CellVisitor<'_>,
    ) -> Result<(), StoreError> {
        let rows = self.with(|c| {
            c.query(
                "SELECT bucket, value, figure, cell FROM report_cells
                 WHERE workflow = $1 AND dim = $2 AND bucket >= $3 AND bucket < $4
                 ORDER BY bucket, value, figure",
                &[&workflow, &dim, &from.max(0), &to],
            )
        })?;
        for row in rows {
            let (bucket, value, figure): (i64, &str, &str) = (row.get(0), row.get(1), row.get(2));
            let cell = Cell::decode(row.get::<_, &[u8]>(3)).map_err(|e| {
                corrupt(
                    &(dim.to_owned(), bucket, value.to_owned(), figure.to_owned()),
                    e,
                )
            })?;
            visit(bucket, value, figure, cell)?;
        }
        Ok(())
    }

    /// Nothing is pending here: each commit moves its cells in its own transaction (under
    /// advisory locks), so there are no delta records to fold.
    fn fold_reports(&self) -> Result<usize, StoreError> {
        Ok(0)
    }

    fn reports_current(&self) -> Result<bool, StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            let marked = tx
                .query_opt("SELECT 1 FROM meta WHERE key = 'reports_current'", &[])?
                .is_some();
            if marked {
                return Ok(true);
            }
            let any = tx
                .query_opt("SELECT 1 FROM instances LIMIT 1", &[])?
                .is_some();
            if !any {
                tx.exec(
                    "INSERT INTO meta (key, value) VALUES ('reports_current', 'true')
                     ON CONFLICT (key) DO NOTHING",
                    &[],
                )?;
                tx.commit()?;
            }
            Ok(!any)
        })
    }

    fn rebuild_reports(&self) -> Result<Rebuilt, StoreError> {
        self.with(|c| {
            let mut tx = c.tx()?;
            // Commands wait while the cells are rebuilt: no commit moves a cell in between.
            tx.exec("LOCK TABLE report_cells IN EXCLUSIVE MODE", &[])?;
            tx.exec("DELETE FROM report_cells", &[])?;
            let mut pending = BTreeMap::new();
            let mut done = Rebuilt::default();
            for row in tx.query("SELECT state FROM instances ORDER BY id", &[])? {
                let s: InstanceState = from_json("an instance", row.get(0))?;
                let entries: Vec<HistoryEntry> = tx
                    .query(
                        "SELECT entry FROM history WHERE instance_id = $1 ORDER BY seq",
                        &[&s.id],
                    )?
                    .into_iter()
                    .map(|r| from_json("a history entry", r.get(0)))
                    .collect::<Result<_, _>>()?;
                let refs: Vec<&HistoryEntry> = entries.iter().collect();
                gather(&mut pending, &s.workflow, deltas(None, &s, &refs))?;
                done.instances += 1;
            }
            pending.retain(|_, c| !c.is_zero());
            done.cells = pending.len() as u64;
            apply(&mut tx, pending)?;
            tx.exec(
                "INSERT INTO meta (key, value) VALUES ('reports_current', 'true')
                 ON CONFLICT (key) DO NOTHING",
                &[],
            )?;
            tx.commit()?;
            Ok(done)
        })
    }
}
