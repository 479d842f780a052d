//! The query indexes of an instance, derived from its state. A commit writes the keys of
//! the new state and deletes those of the old state that are gone, in the same batch.

use crate::keys::index_name as name;
use crate::keys::{key, part, time};
use std::collections::BTreeSet;
use waystation_core::{InstanceState, Status};

/// Every index key of `state`.
pub(crate) fn index_keys(s: &InstanceState) -> BTreeSet<Vec<u8>> {
    let id = s.id.as_bytes();
    let wf = s.workflow.as_bytes();
    let mut keys = BTreeSet::new();
    keys.insert(key(&[part::INDEX, name::WORKFLOW, wf, id]));
    keys.insert(key(&[
        part::INDEX,
        name::VERSION,
        wf,
        &s.version.to_be_bytes(),
        id,
    ]));
    // Every current stage: in a parallel stage, each running branch's too (the board
    // shows where each branch is).
    if s.has_branches() {
        for stage in s.current_stages() {
            keys.insert(key(&[part::INDEX, name::STAGE, wf, stage.as_bytes(), id]));
        }
    } else {
        keys.insert(key(&[part::INDEX, name::STAGE, wf, s.stage.as_bytes(), id]));
    }
    keys.insert(key(&[
        part::INDEX,
        name::STATUS,
        s.status.as_str().as_bytes(),
        id,
    ]));
    if s.status == Status::Running {
        // SLA colours only mean something for work still in progress. In a parallel stage
        // the instance is as late as its latest branch.
        let sla = s.worst_sla();
        keys.insert(key(&[
            part::INDEX,
            name::SLA,
            sla.state.as_str().as_bytes(),
            id,
        ]));
        keys.insert(key(&[
            part::INDEX,
            name::WORKFLOW_SLA,
            wf,
            sla.state.as_str().as_bytes(),
            id,
        ]));
    }
    for tag in &s.tags {
        keys.insert(key(&[part::INDEX, name::TAG, tag.as_bytes(), id]));
    }
    keys.insert(key(&[part::INDEX, name::UPDATED, &time(s.updated_at), id]));
    identity_keys(s, &mut keys);
    keys
}

/// The business key, field and deadline index keys of `s`.
fn identity_keys(s: &InstanceState, keys: &mut BTreeSet<Vec<u8>>) {
    use crate::keys::{field_value, index_name as ix};
    let id = s.id.as_bytes();
    let wf = s.workflow.as_bytes();
    let running = s.status == Status::Running;
    if let Some(k) = &s.key {
        keys.insert(key(&[part::INDEX, ix::KEY, wf, k.as_bytes(), id]));
        if running {
            // Freed in the commit that ends the instance, so the key can start again.
            keys.insert(key(&[part::INDEX, ix::KEY_HELD, wf, k.as_bytes()]));
        }
    }
    for (field, value) in &s.fields {
        let (index, bytes) = field_value(value);
        match value {
            waystation_core::FieldValue::Text(text) => {
                for word in waystation_core::fields::words(text) {
                    keys.insert(key(&[
                        part::INDEX,
                        index,
                        wf,
                        field.as_bytes(),
                        word.as_bytes(),
                        id,
                    ]));
                }
            }
            _ => {
                keys.insert(key(&[part::INDEX, index, wf, field.as_bytes(), &bytes, id]));
            }
        }
    }
    if let (true, Some(deadline)) = (running, s.worst_sla().deadline) {
        keys.insert(key(&[part::INDEX, ix::DEADLINE, &time(deadline), id]));
    }
    for breach in s.sla_record.iter().filter(|r| r.breached()) {
        keys.insert(key(&[part::INDEX, ix::BREACHED, wf, id]));
        keys.insert(key(&[
            part::INDEX,
            ix::BREACHED_STAGE,
            wf,
            breach.stage.as_bytes(),
            id,
        ]));
    }
    if let (true, Some(a)) = (running, &s.assignee) {
        keys.insert(key(&[part::INDEX, ix::ASSIGNEE, a.user.as_bytes(), id]));
    }
    if running && s.has_branches() {
        for a in s.all_assignees() {
            keys.insert(key(&[part::INDEX, ix::ASSIGNEE, a.user.as_bytes(), id]));
        }
    }
    let acted = s.acted_at.unwrap_or(s.started_at);
    keys.insert(key(&[part::INDEX, ix::ACTED, &time(acted), id]));
}
