//! The query indexes of an instance, derived from its state. A commit writes the keys of
//! the new state and deletes those of the old state that are gone, in the same batch.

use crate::keys::{key, time};
use std::collections::BTreeSet;
use waystation_core::{InstanceState, Status};

/// Index names, the second part of every `ix` key.
pub(crate) mod name {
    pub const WORKFLOW: &[u8] = b"wf";
    pub const VERSION: &[u8] = b"wv";
    pub const STAGE: &[u8] = b"stage";
    pub const STATUS: &[u8] = b"status";
    pub const SLA: &[u8] = b"sla";
    pub const WORKFLOW_SLA: &[u8] = b"wsla";
    pub const TAG: &[u8] = b"tag";
    pub const UPDATED: &[u8] = b"upd";
}

/// Every index key of `state`.
pub(crate) fn index_keys(s: &InstanceState) -> BTreeSet<Vec<u8>> {
    let id = s.id.as_bytes();
    let wf = s.workflow.as_bytes();
    let mut keys = BTreeSet::new();
    keys.insert(key(&[b"ix", name::WORKFLOW, wf, id]));
    keys.insert(key(&[
        b"ix",
        name::VERSION,
        wf,
        &s.version.to_be_bytes(),
        id,
    ]));
    keys.insert(key(&[b"ix", name::STAGE, wf, s.stage.as_bytes(), id]));
    keys.insert(key(&[
        b"ix",
        name::STATUS,
        s.status.as_str().as_bytes(),
        id,
    ]));
    if s.status == Status::Running {
        // SLA colours only mean something for work still in progress.
        keys.insert(key(&[
            b"ix",
            name::SLA,
            s.sla.state.as_str().as_bytes(),
            id,
        ]));
        keys.insert(key(&[
            b"ix",
            name::WORKFLOW_SLA,
            wf,
            s.sla.state.as_str().as_bytes(),
            id,
        ]));
    }
    for tag in &s.tags {
        keys.insert(key(&[b"ix", name::TAG, tag.as_bytes(), id]));
    }
    keys.insert(key(&[b"ix", name::UPDATED, &time(s.updated_at), id]));
    keys
}
