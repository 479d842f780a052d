//! The read side: instances, histories, queries, inboxes. Reads see committed data.

use crate::{Runtime, RuntimeError};
use waystation_core::definition::Approver;
use waystation_core::{ApprovalTask, HistoryEntry, InstanceState};
use waystation_store::{Counts, InstanceQuery, Page};

impl Runtime {
    /// Instance `id`.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; store errors.
    pub fn instance(&self, id: &str) -> Result<InstanceState, RuntimeError> {
        self.store
            .instance(id)?
            .ok_or_else(|| RuntimeError::NotFound {
                what: "instance",
                id: id.to_owned(),
            })
    }

    /// Up to `limit` history entries of `id` from sequence number `from`.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; store errors.
    pub fn history(
        &self,
        id: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, HistoryEntry)>, RuntimeError> {
        self.instance(id)?;
        Ok(self.store.history(id, from, limit)?)
    }

    /// The instance of `workflow` with business key `key`: the running one, or else the
    /// newest that ended (ids are time-ordered, so the key index lists them oldest first).
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] when no instance ever had the key; store errors.
    pub fn instance_by_key(
        &self,
        workflow: &str,
        key: &str,
    ) -> Result<InstanceState, RuntimeError> {
        if let Some(id) = self.store.running_with_key(workflow, key)? {
            if let Some(s) = self.store.instance(&id)? {
                return Ok(s);
            }
        }
        let mut cursor = None;
        let mut newest = None;
        loop {
            let page = self.store.query(&InstanceQuery {
                workflow: Some(workflow.to_owned()),
                key: Some(key.to_owned()),
                cursor,
                limit: 1000,
                ..InstanceQuery::default()
            })?;
            newest = page.items.into_iter().last().or(newest);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        newest.ok_or_else(|| RuntimeError::NotFound {
            what: "instance with key",
            id: format!("{workflow}/{key}"),
        })
    }

    /// Instances matching `query`.
    ///
    /// # Errors
    /// [`RuntimeError::Store`] wrapping [`waystation_store::StoreError::BadCursor`] for a cursor
    /// this server did not hand out, or the store's error when it cannot be read.
    pub fn query(&self, query: &InstanceQuery) -> Result<Page<InstanceState>, RuntimeError> {
        Ok(self.store.query(query)?)
    }

    /// Counts by stage and SLA state of `workflow`.
    ///
    /// # Errors
    /// [`RuntimeError::Store`] when the store cannot be read.
    pub fn counts(&self, workflow: &str) -> Result<Counts, RuntimeError> {
        Ok(self.store.counts(workflow)?)
    }

    /// Open tasks any of `approvers` may decide, up to `limit`, oldest instance first per
    /// approver.
    ///
    /// # Errors
    /// [`RuntimeError::Store`] when the store cannot be read.
    pub fn open_tasks(
        &self,
        approvers: &[Approver],
        limit: usize,
    ) -> Result<Vec<ApprovalTask>, RuntimeError> {
        let mut out: Vec<ApprovalTask> = Vec::new();
        for approver in approvers {
            let page =
                self.store
                    .open_tasks(approver, None, limit.saturating_sub(out.len()).max(1))?;
            for task in page.items {
                if out.len() < limit && !out.iter().any(|t| t.id == task.id) {
                    out.push(task);
                }
            }
        }
        Ok(out)
    }
}
