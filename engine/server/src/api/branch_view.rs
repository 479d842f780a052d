//! The branches of the parallel stage an instance is in, as the board and the instance
//! page show them: each branch's stage, owner, SLA and assignee. Nested parallel stages
//! appear flattened, depth first, each branch naming the parallel stage it belongs to.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use waystation_core::{BranchState, BranchStatus, Definition, InstanceState, SlaState};

/// One branch of a parallel stage.
#[derive(Debug, Clone, Serialize)]
pub struct BranchView {
    /// The parallel stage it belongs to.
    pub parallel: String,
    /// The branch's name.
    pub branch: String,
    /// The names of the branches it runs in and its own, outermost first, joined with `/`
    /// (`shipment[1]/pack` for branch `pack` of a parallel stage inside a for_each's
    /// element 1); its name alone at depth 0. Tells apart the same branch of several
    /// elements.
    pub path: String,
    /// How events, claims and assignments address its current stage (as the refusals
    /// list it: `pack_box`, or `shipment[1]/pack/pack_box` while other elements are in the
    /// same stage); `None` once it is no longer running.
    pub address: Option<String>,
    /// The branch's title, when the definition gives one.
    pub title: Option<String>,
    /// How deep the parallel stage is nested (0: the instance's own stage).
    pub depth: u32,
    /// Waiting, running, ended or cancelled.
    pub status: BranchStatus,
    /// Its current stage (the end stage it reached, once ended).
    pub stage: String,
    /// That stage's title.
    pub stage_title: Option<String>,
    /// The role owning that stage.
    pub owner: Option<String>,
    /// Its SLA state.
    pub sla: SlaState,
    /// When its stage is due.
    pub deadline: Option<DateTime<Utc>>,
    /// Who owns its work.
    pub assignee: Option<String>,
    /// The outcome it ended with.
    pub outcome: Option<String>,
}

/// Every branch of `s`, depth first, each with what the definition says of its stage.
pub fn branches(s: &InstanceState, definition: &Definition) -> Vec<BranchView> {
    let mut out = Vec::new();
    let mut at = Where {
        state: s,
        indices: Vec::new(),
        names: Vec::new(),
    };
    collect(&s.stage, &s.branches, &mut at, definition, &mut out);
    out
}

/// Where [`collect`] is: the instance, and the branch indices and names leading there.
struct Where<'a> {
    state: &'a InstanceState,
    indices: Vec<usize>,
    names: Vec<&'a str>,
}

fn collect<'a>(
    parallel: &str,
    branches: &'a [BranchState],
    at: &mut Where<'a>,
    definition: &Definition,
    out: &mut Vec<BranchView>,
) {
    let depth = u32::try_from(at.names.len()).unwrap_or(u32::MAX);
    let titles = match definition.stages.get(parallel).map(|st| &st.kind) {
        Some(waystation_core::definition::StageKind::Parallel {
            branches, for_each, ..
        }) => waystation_core::definition::branch_defs(branches, for_each.as_ref())
            .iter()
            .map(|b| (b.name.clone(), b.title.clone()))
            .collect(),
        _ => std::collections::HashMap::new(),
    };
    for (i, b) in branches.iter().enumerate() {
        at.indices.push(i);
        at.names.push(&b.name);
        // A for_each's branches (`shipment[2]`) share the title of its one branch.
        let def_name = match (&b.item, b.name.split_once('[')) {
            (Some(_), Some((name, _))) => name,
            _ => b.name.as_str(),
        };
        let stage = definition.stages.get(&b.frame.stage);
        let running = b.status == BranchStatus::Running;
        let address = running
            .then(|| at.state.frame_at(&at.indices))
            .flatten()
            .map(|f| at.state.stage_address(&at.indices, &f));
        out.push(BranchView {
            parallel: parallel.to_owned(),
            branch: b.name.clone(),
            path: at.names.join("/"),
            address,
            title: titles.get(def_name).cloned().flatten(),
            depth,
            status: b.status,
            stage: b.frame.stage.clone(),
            stage_title: stage.and_then(|st| st.title.clone()),
            owner: stage.and_then(|st| st.owner.clone()),
            sla: b.frame.sla.state,
            deadline: b.frame.sla.deadline.filter(|_| running),
            assignee: b.frame.assignee.as_ref().map(|a| a.user.clone()),
            outcome: b.outcome.clone(),
        });
        if running {
            collect(&b.frame.stage, &b.frame.branches, at, definition, out);
        }
        at.indices.pop();
        at.names.pop();
    }
}

/// The OpenAPI schema of [`BranchView`]: every member is always sent.
pub fn schema() -> Value {
    use super::schema::{closed, described, sla_state, text, text_or_null, time_or_null};
    closed(
        serde_json::json!({
            "parallel": described("The parallel stage the branch belongs to.", text()),
            "branch": text(),
            "path": described("The names of the branches it runs in and its own, outermost first, joined with `/` (`shipment[1]/pack`).", text()),
            "address": described("How events, claims and assignments address its current stage (`shipment[1]/pack/pack_box`); null once it is no longer running.", text_or_null()),
            "title": text_or_null(),
            "depth": {"type": "integer", "minimum": 0, "description": "0 for the instance's own parallel stage, 1 for one inside a branch, ..."},
            "status": {"enum": ["waiting", "running", "ended", "cancelled"]},
            "stage": described("The branch's current stage (the end stage it reached, once ended).", text()),
            "stage_title": text_or_null(),
            "owner": text_or_null(),
            "sla": sla_state(),
            "deadline": time_or_null(),
            "assignee": text_or_null(),
            "outcome": text_or_null(),
        }),
        serde_json::json!({}),
    )
}
