//! The key layout, in one place. Parts are joined by a 0 byte; numbers are big-endian so
//! keys sort by them; times are milliseconds with the sign bit flipped so they sort too.
//!
//! | key | value |
//! | --- | --- |
//! | `def/{workflow}/{version}` | definition JSON |
//! | `deflatest/{workflow}` | newest version |
//! | `inst/{instance}` | instance state JSON |
//! | `hist/{instance}/{seq}` | the history entries one change added, the last numbered `seq`: one entry JSON, or a JSON array of several |
//! | `timer/{due}/{timer}` | instance id |
//! | `task/{task}` | approval task JSON |
//! | `inbox/{role or user}/{name}/{task}` | (empty) |
//! | `outbox/{message}` | outbox record JSON |
//! | `outq/{status}/{time}/{message}` | channel name; `time` is when the next attempt is due while pending, when it finished otherwise |
//! | `idem/{key}` | idempotency record JSON |
//! | `idemat/{time}/{key}` | (empty): the idempotency records by when they were kept, for expiry |
//! | `done/{time}/{instance}` | (empty): finished instances by when they finished, for retention |
//! | `ix/{index}/.../{instance}` | (empty): the query indexes |
//! | `ix/key/{workflow}/{key}/{instance}` | (empty): every instance by business key |
//! | `ix/rk/{workflow}/{key}` | (empty): a running instance holds this business key (at most one does): read with a point lookup, which the LSM's bloom filters answer without a range scan |
//! | `ix/rkey/{workflow}/{key}/{instance}` | the layout before `ix/rk`: rewritten as `ix/rk` when a store is opened ([`crate::KvStore::upgrade_layout`]) |
//! | `ix/fk/{workflow}/{field}/{value}/{instance}` | (empty): keyword and boolean fields |
//! | `ix/fn/{workflow}/{field}/{number}/{instance}` | (empty): number fields, [`number`] order |
//! | `ix/ft/{workflow}/{field}/{time}/{instance}` | (empty): timestamp fields |
//! | `ix/fw/{workflow}/{field}/{word}/{instance}` | (empty): each word of a text field |
//! | `ix/dl/{deadline}/{instance}` | (empty): running instances by their stage deadline |
//! | `ix/breach/{workflow}/{instance}` | (empty): instances that breached a stage at any point |
//! | `ix/breachst/{workflow}/{stage}/{instance}` | (empty): instances by each stage they breached |
//! | `ix/act/{time}/{instance}` | (empty): instances by when a person or system last acted |
//! | `ix/asg/{user}/{instance}` | (empty): running instances by assignee |
//! | `rb/{workflow}/{dim}/{bucket}/{value}` | every report cell of one group and bucket (see `rollups/bucket.rs`) |
//! | `ru/{workflow}/{dim}/{bucket}/{value}/{figure}` | a report cell of the earlier layout, rewritten into `rb` when a store opens |
//! | `rd/{seq}` | a report delta record of the first layout (one entry per cell), folded like `rm` (see `rollups.rs`) |
//! | `rm/{seq}` | a report delta record: what one commit moves and the groups it counts in, until a fold adds it in (see `rollups.rs`) |
//! | `rumeta/current` | (empty): the rollups cover every stored instance |
//! | `token/{token}` | token record JSON (see `tokens.rs`) |
//! | `tokenhash/{sha-256 of the secret}` | token id: the lookup by presented secret |
//! | `tokenname/{name}` | token id: names are unique |
//! | `sched/{schedule}` | schedule record JSON (see `schedules.rs`) |
//! | `ix/wf/{workflow}/{instance}`, `ix/wv/{workflow}/{version}/{instance}`, `ix/stage/{workflow}/{stage}/{instance}`, `ix/status/{status}/{time}/{instance}`, `ix/sla/{sla}/{instance}`, `ix/wsla/{workflow}/{sla}/{instance}`, `ix/tag/{tag}/{instance}`, `ix/upd/{time}/{instance}` | (empty): the list filters and sort orders (see `index.rs`) |
//!
//! Every first part is a constant of [`part`], every index name one of [`index_name`]:
//! code elsewhere builds keys from them, never from raw bytes.

use chrono::{DateTime, TimeZone, Utc};

/// The first part of every key: the collection it belongs to. The only place these bytes
/// are written; see the table above.
pub mod part {
    /// `def/{workflow}/{version}`: definitions.
    pub const DEFINITION: &[u8] = b"def";
    /// `deflatest/{workflow}`: the newest version of each definition.
    pub const LATEST: &[u8] = b"deflatest";
    /// `inst/{instance}`: instance states.
    pub const INSTANCE: &[u8] = b"inst";
    /// `hist/{instance}/{seq}`: history entries.
    pub const HISTORY: &[u8] = b"hist";
    /// `timer/{due}/{timer}`: timers by due time.
    pub const TIMER: &[u8] = b"timer";
    /// `task/{task}`: approval tasks.
    pub const TASK: &[u8] = b"task";
    /// `inbox/{role or user}/{name}/{task}`: approval tasks by approver.
    pub const INBOX: &[u8] = b"inbox";
    /// The second part of an inbox key naming a role.
    pub const INBOX_ROLE: &[u8] = b"role";
    /// The second part of an inbox key naming a user.
    pub const INBOX_USER: &[u8] = b"user";
    /// `outbox/{message}`: outbox records.
    pub const OUTBOX: &[u8] = b"outbox";
    /// `outq/{status}/{time}/{message}`: outbox messages by status and time.
    pub const OUTBOX_QUEUE: &[u8] = b"outq";
    /// `idem/{key}`: idempotency records.
    pub const IDEMPOTENCY: &[u8] = b"idem";
    /// `idemat/{time}/{key}`: idempotency records by when they were kept.
    pub const IDEMPOTENCY_KEPT: &[u8] = b"idemat";
    /// `done/{time}/{instance}`: finished instances by when they finished.
    pub const FINISHED: &[u8] = b"done";
    /// `ix/{index}/...`: the query indexes (see [`super::index_name`]).
    pub const INDEX: &[u8] = b"ix";
    /// `ru/{workflow}/{dim}/{bucket}/{value}/{figure}`: report cells of the earlier layout
    /// (one key per figure), rewritten into [`ROLLUP_BUCKET`] values when a store opens.
    pub const ROLLUP: &[u8] = b"ru";
    /// `rb/{workflow}/{dim}/{bucket}/{value}`: report buckets, every figure of one group
    /// and 15-minute bucket in one value.
    pub const ROLLUP_BUCKET: &[u8] = b"rb";
    /// `rd/{seq}`: report delta records of the first layout (one per cell moved), still
    /// folded when a store written before `rm` holds some.
    pub const DELTA: &[u8] = b"rd";
    /// `rm/{seq}`: report delta records (what moves and the groups it counts in).
    pub const MOVES: &[u8] = b"rm";
    /// `rumeta/current`: the marker that the rollups cover every stored instance.
    pub const ROLLUP_META: &[u8] = b"rumeta";
    /// The second part of the `rumeta/current` marker.
    pub const ROLLUP_CURRENT: &[u8] = b"current";
    /// `token/{token}`: API tokens.
    pub const TOKEN: &[u8] = b"token";
    /// `tokenhash/{hash}`: token ids by the hash of their secret.
    pub const TOKEN_HASH: &[u8] = b"tokenhash";
    /// `tokenname/{name}`: token ids by name.
    pub const TOKEN_NAME: &[u8] = b"tokenname";
    /// `sched/{schedule}`: schedules.
    pub const SCHEDULE: &[u8] = b"sched";
}

/// `k` as the layout table above writes keys (parts joined by `/`, bytes that are not
/// UTF-8 replaced), for error messages: the raw separator is a 0 byte, which a terminal
/// or a log line does not show.
pub fn shown(k: &[u8]) -> String {
    String::from_utf8_lossy(k).replace('\0', "/")
}

/// Joins parts with the separator.
pub fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(p);
    }
    out
}

/// A prefix: the parts and a trailing separator, so `a` does not match `ab`.
pub fn prefix(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = key(parts);
    k.push(0);
    k
}

/// A time as 8 sortable bytes.
pub fn time(t: DateTime<Utc>) -> [u8; 8] {
    ((t.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

/// The inverse of [`time`].
pub fn parse_time(b: &[u8]) -> Option<DateTime<Utc>> {
    let raw: [u8; 8] = b.get(..8)?.try_into().ok()?;
    let ms = (u64::from_be_bytes(raw) ^ (1 << 63)) as i64;
    Utc.timestamp_millis_opt(ms).single()
}

/// A finite number as 8 bytes that sort as the numbers do (negative before positive).
pub fn number(x: f64) -> [u8; 8] {
    let bits = x.to_bits();
    let sortable = if bits >> 63 == 1 {
        !bits
    } else {
        bits ^ (1 << 63)
    };
    sortable.to_be_bytes()
}

/// The inverse of [`number`].
pub fn parse_number(b: &[u8]) -> Option<f64> {
    let raw: [u8; 8] = b.get(..8)?.try_into().ok()?;
    let sortable = u64::from_be_bytes(raw);
    let bits = if sortable >> 63 == 1 {
        sortable ^ (1 << 63)
    } else {
        !sortable
    };
    Some(f64::from_bits(bits))
}

/// The index names, the second part of every `ix` key.
pub mod index_name {
    /// Instances by workflow.
    pub const WORKFLOW: &[u8] = b"wf";
    /// Instances by workflow and definition version.
    pub const VERSION: &[u8] = b"wv";
    /// Instances by workflow and current stage.
    pub const STAGE: &[u8] = b"stage";
    /// Instances by status.
    pub const STATUS: &[u8] = b"status";
    /// Running instances by SLA state.
    pub const SLA: &[u8] = b"sla";
    /// Running instances by workflow and SLA state.
    pub const WORKFLOW_SLA: &[u8] = b"wsla";
    /// Instances by tag.
    pub const TAG: &[u8] = b"tag";
    /// Instances by when they last changed.
    pub const UPDATED: &[u8] = b"upd";
    /// Every instance by workflow and business key.
    pub const KEY: &[u8] = b"key";
    /// The business keys running instances hold, by workflow: a point key per key.
    pub const KEY_HELD: &[u8] = b"rk";
    /// Running instances by workflow and business key, one range per key: the layout
    /// before [`KEY_HELD`], rewritten when a store is opened.
    pub const RUNNING_KEY: &[u8] = b"rkey";
    /// Keyword and boolean fields.
    pub const KEYWORD: &[u8] = b"fk";
    /// Number fields.
    pub const NUMBER: &[u8] = b"fn";
    /// Timestamp fields.
    pub const TIMESTAMP: &[u8] = b"ft";
    /// Words of text fields.
    pub const WORD: &[u8] = b"fw";
    /// Running instances by deadline.
    pub const DEADLINE: &[u8] = b"dl";
    /// Instances that breached some stage, at any point.
    pub const BREACHED: &[u8] = b"breach";
    /// Instances by each stage they breached.
    pub const BREACHED_STAGE: &[u8] = b"breachst";
    /// Instances by when a person or system last acted on them.
    pub const ACTED: &[u8] = b"act";
    /// Running instances by the person their current stage's work is assigned to.
    pub const ASSIGNEE: &[u8] = b"asg";
}

/// `ix/{index}/{workflow}/{name}/`: where one key or field's entries of a workflow begin.
pub fn field_prefix(index: &[u8], workflow: &str, name: &str) -> Vec<u8> {
    prefix(&[part::INDEX, index, workflow.as_bytes(), name.as_bytes()])
}

/// The index the values of a field of type `t` go in: the one [`field_value`] names for
/// each of its values. PostgreSQL stores the same name in `instance_fields.kind`.
pub fn field_index(t: waystation_core::definition::FieldType) -> &'static [u8] {
    use waystation_core::definition::FieldType as T;
    match t {
        T::Keyword | T::Boolean => index_name::KEYWORD,
        T::Number => index_name::NUMBER,
        T::Timestamp => index_name::TIMESTAMP,
        T::Text => index_name::WORD,
    }
}

/// The bytes a field value is indexed by, and the index it goes in.
pub fn field_value(value: &waystation_core::FieldValue) -> (&'static [u8], Vec<u8>) {
    use waystation_core::FieldValue as V;
    match value {
        V::Keyword(s) => (index_name::KEYWORD, s.as_bytes().to_vec()),
        V::Boolean(b) => (index_name::KEYWORD, b.to_string().into_bytes()),
        V::Number(n) => (index_name::NUMBER, number(*n).to_vec()),
        V::Timestamp(t) => (index_name::TIMESTAMP, time(*t).to_vec()),
        // Text is indexed by word; see `waystation_core::fields::words`.
        V::Text(_) => (index_name::WORD, Vec::new()),
    }
}

/// Definition `workflow` at `version`.
pub fn definition(workflow: &str, version: u32) -> Vec<u8> {
    key(&[
        part::DEFINITION,
        workflow.as_bytes(),
        &version.to_be_bytes(),
    ])
}

/// The newest version of `workflow`.
pub fn latest(workflow: &str) -> Vec<u8> {
    key(&[part::LATEST, workflow.as_bytes()])
}

/// Instance state.
pub fn instance(id: &str) -> Vec<u8> {
    key(&[part::INSTANCE, id.as_bytes()])
}

/// History entry `seq` of an instance.
pub fn history(id: &str, seq: u64) -> Vec<u8> {
    key(&[part::HISTORY, id.as_bytes(), &seq.to_be_bytes()])
}

/// A timer in the due-time index.
pub fn timer(due: DateTime<Utc>, timer_id: &str) -> Vec<u8> {
    key(&[part::TIMER, &time(due), timer_id.as_bytes()])
}

/// An approval task.
pub fn task(id: &str) -> Vec<u8> {
    key(&[part::TASK, id.as_bytes()])
}

/// An approval task in an approver's inbox.
pub fn inbox(approver: &waystation_core::definition::Approver, task_id: &str) -> Vec<u8> {
    use waystation_core::definition::Approver;
    match approver {
        Approver::Role(r) => key(&[
            part::INBOX,
            part::INBOX_ROLE,
            r.as_bytes(),
            task_id.as_bytes(),
        ]),
        Approver::User(u) => key(&[
            part::INBOX,
            part::INBOX_USER,
            u.as_bytes(),
            task_id.as_bytes(),
        ]),
    }
}

/// An outbox message.
pub fn outbox(id: &str) -> Vec<u8> {
    key(&[part::OUTBOX, id.as_bytes()])
}

/// An outbox message in its status queue, at `at` (see
/// [`crate::OutboxRecord::queue_time`]).
pub fn outbox_queue(status: &str, at: DateTime<Utc>, id: &str) -> Vec<u8> {
    key(&[
        part::OUTBOX_QUEUE,
        status.as_bytes(),
        &time(at),
        id.as_bytes(),
    ])
}

/// An idempotency record.
pub fn idempotency(k: &str) -> Vec<u8> {
    key(&[part::IDEMPOTENCY, k.as_bytes()])
}

/// An idempotency record in the expiry queue, by when it was kept.
pub fn idempotency_kept(at: DateTime<Utc>, k: &str) -> Vec<u8> {
    key(&[part::IDEMPOTENCY_KEPT, &time(at), k.as_bytes()])
}

/// A finished instance in the retention queue, by when it finished.
pub fn finished(at: DateTime<Utc>, id: &str) -> Vec<u8> {
    key(&[part::FINISHED, &time(at), id.as_bytes()])
}
