//! Instance counts by stage, SLA state and status, kept in memory beside the indexes, so
//! `/metrics` and the dashboard's counts do not walk every index key on each request (at
//! 217,000 instances one walk took 5.2 s on the build machine). They are counts of the keys
//! of three indexes, and move only with those keys: a scan of the indexes builds them the
//! first time they are asked for, then every commit's batch moves them by the index keys it
//! puts and deletes.
//!
//! The scan runs in chunks of [`CHUNK`] keys, holding the store's tally lock only for one
//! chunk at a time, so commits are not stopped for the length of a scan. sled's scans are
//! not snapshots; what keeps the counts exact is the cursor: a commit made while the scan
//! is under way counts its keys that the scan has passed (it will not see them) and leaves
//! the others to the scan (it will).

use crate::keys::index_name as name;
use crate::keys::{key, part, prefix};
use crate::kv::{Kv, Mutation};
use crate::query::Counts;
use crate::StoreError;
use std::collections::{BTreeMap, HashMap};
use waystation_core::Status;

/// Keys per chunk of the build scan (a few ms of sled work, the longest a commit waits).
pub(crate) const CHUNK: usize = 256;

/// The indexes the counts come from, in key order (`stage` < `status` < `wsla`), so the
/// scan's position is one key across all three.
const COUNTED: [&[u8]; 3] = [name::STAGE, name::STATUS, name::WORKFLOW_SLA];

/// Where the counts stand.
#[derive(Debug, Default)]
pub(crate) enum TallyState {
    /// Nobody asked yet: commits cost nothing extra.
    #[default]
    Unbuilt,
    /// Being scanned.
    Building(Build),
    /// Built and kept.
    Ready(Tally),
}

/// A scan under way.
#[derive(Debug, Default)]
pub(crate) struct Build {
    partial: Tally,
    /// Which of [`COUNTED`] is being scanned.
    index: usize,
    /// The scan's position: the last key it counted, or past the end of an index it finished.
    cursor: Option<Vec<u8>>,
}

/// A counted index key a batch puts (one more) or deletes (one fewer).
pub(crate) type Move = (Vec<u8>, Direction);

impl TallyState {
    /// The moves of `batch` to record once it is applied; none while nobody asked for counts.
    pub(crate) fn moves_of(&self, batch: &[Mutation]) -> Vec<Move> {
        if matches!(self, TallyState::Unbuilt) {
            return Vec::new();
        }
        let counted: Vec<Vec<u8>> = COUNTED.iter().map(|i| prefix(&[part::INDEX, i])).collect();
        batch
            .iter()
            .map(|m| match m {
                Mutation::Put(k, _) => (k, Direction::Up),
                Mutation::Delete(k) => (k, Direction::Down),
            })
            .filter(|(k, _)| counted.iter().any(|p| k.starts_with(p)))
            .map(|(k, d)| (k.clone(), d))
            .collect()
    }

    /// Records the moves of an applied batch.
    pub(crate) fn record(&mut self, moves: &[Move]) {
        match self {
            TallyState::Unbuilt => {}
            TallyState::Ready(t) => {
                for (k, d) in moves {
                    t.count_key(k, *d);
                }
            }
            TallyState::Building(b) => {
                let Some(cursor) = b.cursor.as_deref() else {
                    return; // the scan will see everything
                };
                for (k, d) in moves.iter().filter(|(k, _)| k.as_slice() <= cursor) {
                    b.partial.count_key(k, *d);
                }
            }
        }
    }

    /// Scans one more chunk if the counts are not built; true when they are ready.
    pub(crate) fn advance<B: Kv>(&mut self, kv: &B) -> Result<bool, StoreError> {
        if matches!(self, TallyState::Unbuilt) {
            *self = TallyState::Building(Build::default());
        }
        let build = match self {
            TallyState::Ready(_) => return Ok(true),
            TallyState::Building(b) => b,
            TallyState::Unbuilt => unreachable!("replaced above"),
        };
        let p = prefix(&[part::INDEX, COUNTED[build.index]]);
        let after = build.cursor.clone().filter(|c| c.starts_with(&p));
        let mut seen = 0;
        let mut bad = false;
        kv.scan(&p, after.as_deref(), &mut |k, _| {
            if !build.partial.count_key(k, Direction::Up) {
                bad = true;
                return false;
            }
            build.cursor = Some(k.to_vec());
            seen += 1;
            seen < CHUNK
        })?;
        if bad {
            return Err(StoreError::Corrupt("an index key".into()));
        }
        if seen < CHUNK {
            // This index is done: the position moves past all of its keys, counted or not.
            let mut end = key(&[part::INDEX, COUNTED[build.index]]);
            end.push(1);
            build.cursor = Some(end);
            build.index += 1;
            if build.index == COUNTED.len() {
                *self = TallyState::Ready(std::mem::take(&mut build.partial));
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The counts, when built.
    pub(crate) fn ready(&self) -> Option<&Tally> {
        match self {
            TallyState::Ready(t) => Some(t),
            _ => None,
        }
    }
}

/// The counts: per group, how many keys of its index there are. Each instance has one key
/// in the stage index (under its workflow and stage), one in the status index and, while
/// running, one in the workflow-SLA index (see `index::index_keys`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// workflow -> stage -> instances.
    by_stage: HashMap<String, BTreeMap<String, u64>>,
    /// workflow -> SLA state -> running instances.
    by_sla: HashMap<String, BTreeMap<String, u64>>,
    /// status -> instances.
    by_status: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts index key `k` of one of [`COUNTED`] one up or down; false if it is not one.
    fn count_key(&mut self, k: &[u8], d: Direction) -> bool {
        let mut parts = k.split(|b| *b == 0).map(|p| std::str::from_utf8(p).ok());
        let (Some(Some("ix")), Some(Some(index))) = (parts.next(), parts.next()) else {
            return false;
        };
        let (a, b) = (parts.next().flatten(), parts.next().flatten());
        let groups = match (index.as_bytes(), a, b) {
            (name::STAGE, Some(wf), Some(stage)) => (group_of(&mut self.by_stage, wf), stage),
            (name::WORKFLOW_SLA, Some(wf), Some(sla)) => (group_of(&mut self.by_sla, wf), sla),
            (name::STATUS, Some(status), Some(_)) => (&mut self.by_status, status),
            _ => return false,
        };
        bump(groups.0, groups.1, d);
        true
    }

    /// Counts of `workflow` by stage and SLA state.
    pub(crate) fn counts(&self, workflow: &str) -> Counts {
        Counts {
            by_stage: self.by_stage.get(workflow).cloned().unwrap_or_default(),
            by_sla: self.by_sla.get(workflow).cloned().unwrap_or_default(),
        }
    }

    /// Instances in `status`.
    pub(crate) fn status(&self, status: Status) -> u64 {
        self.by_status.get(status.as_str()).copied().unwrap_or(0)
    }
}

/// One more or one fewer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    Up,
    Down,
}

fn group_of<'a>(
    map: &'a mut HashMap<String, BTreeMap<String, u64>>,
    workflow: &str,
) -> &'a mut BTreeMap<String, u64> {
    if !map.contains_key(workflow) {
        map.insert(workflow.to_owned(), BTreeMap::new());
    }
    map.get_mut(workflow).expect("just inserted")
}

/// One more or one fewer in `group`; a group that reaches zero is gone, as it is from a
/// scan of the index.
fn bump(groups: &mut BTreeMap<String, u64>, group: &str, d: Direction) {
    match d {
        Direction::Up => match groups.get_mut(group) {
            Some(n) => *n += 1,
            None => {
                groups.insert(group.to_owned(), 1);
            }
        },
        Direction::Down => {
            if let Some(n) = groups.get_mut(group) {
                *n -= 1;
                if *n == 0 {
                    groups.remove(group);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{TallyState, CHUNK};
    use crate::commit::mutations;
    use crate::kv::Kv;
    use crate::{Commit, MemoryKv};
    use chrono::{DateTime, TimeDelta, Utc};
    use serde_json::{json, Value};
    use std::collections::BTreeMap;
    use waystation_core::drive::{apply_until_quiet, start_until_quiet};
    use waystation_core::sim::FakePlugins;
    use waystation_core::{Input, InstanceState, Step, Workflow};

    const FLOW: &str = r#"{
      "id": "flow", "title": "Flow", "start": "a",
      "stages": {
        "a": {"kind": "wait", "deadline": "PT4H", "at_risk": "PT1H",
              "on": {"next": {"to": "b"}, "stop": {"to": "end"}}},
        "b": {"kind": "wait", "on": {"stop": {"to": "end"}}},
        "end": {"kind": "end", "outcome": "done"}
      }
    }"#;

    struct Fixture {
        wf: Workflow,
        kv: MemoryKv,
        states: BTreeMap<String, InstanceState>,
        now: DateTime<Utc>,
    }

    impl Fixture {
        fn commit(&mut self, tally: &mut TallyState, id: &str, step: Step) {
            let batch = mutations(&Commit {
                before: self.states.get(id),
                after: &step.state,
                effects: &step.effects,
                fired_timer: None,
                idempotency: None,
            })
            .unwrap();
            let moves = tally.moves_of(&batch);
            self.kv.apply(batch).unwrap();
            tally.record(&moves);
            self.states.insert(id.to_owned(), step.state);
        }

        fn start(&mut self, tally: &mut TallyState, id: &str) {
            let step = start_until_quiet(
                &self.wf,
                id.to_owned(),
                json!({}),
                self.now,
                &FakePlugins::new(),
            )
            .unwrap();
            self.commit(tally, id, step);
        }

        fn event(&mut self, tally: &mut TallyState, id: &str, name: &str) {
            let before = self.states[id].clone();
            let input = Input::Event {
                name: name.to_owned(),
                data: Value::Null,
                stage: None,
            };
            let step =
                apply_until_quiet(&self.wf, before, input, self.now, &FakePlugins::new()).unwrap();
            self.commit(tally, id, step);
        }
    }

    fn built(kv: &MemoryKv) -> TallyState {
        let mut t = TallyState::Unbuilt;
        while !t.advance(kv).unwrap() {}
        t
    }

    #[test]
    fn counts_built_while_commits_land_between_chunks_equal_a_scan_made_afterwards() {
        let mut wf = Workflow::from_text(FLOW, None).unwrap();
        wf.version = 1;
        let mut f = Fixture {
            wf,
            kv: MemoryKv::default(),
            states: BTreeMap::new(),
            now: DateTime::parse_from_rfc3339("2024-05-01T09:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        let mut unused = TallyState::Unbuilt;
        let n = 3 * CHUNK;
        for i in 0..n {
            f.start(&mut unused, &format!("i{i:05}"));
        }

        // Between every chunk of the scan, instances all over the key range move on, end,
        // and new ones start: some behind the scan's position, some ahead of it.
        let mut tally = TallyState::Unbuilt;
        let mut round = 0;
        while !tally.advance(&f.kv).unwrap() {
            round += 1;
            f.now += TimeDelta::minutes(1);
            for j in 0..40 {
                let id = format!("i{:05}", (round * 977 + j * 131) % n);
                let stage = f.states[&id].stage.clone();
                match stage.as_str() {
                    "a" => f.event(
                        &mut tally,
                        &id,
                        if j.is_multiple_of(3) { "stop" } else { "next" },
                    ),
                    "b" => f.event(&mut tally, &id, "stop"),
                    _ => {}
                }
                f.start(&mut tally, &format!("n{round:03}{j:02}"));
            }
        }
        assert!(round >= 6, "the scan took several chunks ({round})");
        let kept = tally.ready().unwrap();
        let scanned = built(&f.kv);
        assert_eq!(kept, scanned.ready().unwrap());

        // And once built, commits keep it equal to a scan.
        for i in 0..50 {
            let id = format!("i{:05}", i * 7);
            if f.states[&id].stage == "a" {
                f.event(&mut tally, &id, "next");
            }
        }
        assert_eq!(tally.ready().unwrap(), built(&f.kv).ready().unwrap());
        assert!(kept_counts_are_not_empty(tally.ready().unwrap()));
    }

    fn kept_counts_are_not_empty(t: &super::Tally) -> bool {
        let c = t.counts("flow");
        ["a", "b", "end"]
            .iter()
            .all(|s| c.by_stage.contains_key(*s))
            && c.by_sla.contains_key("on_time")
    }
}
