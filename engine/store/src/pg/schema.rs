//! The PostgreSQL schema, as numbered migrations embedded in the binary and applied at open.
//!
//! `waystation_schema` holds one row per applied migration. Opening takes a transaction-level
//! advisory lock first, so nodes starting together apply each migration once; a database
//! whose newest applied migration is newer than [`MIGRATIONS`] knows is refused (an older
//! binary must not write rows whose meaning it does not know).
//!
//! Design (one table per collection, not a key-value table):
//! - `instances`: the state as JSON plus the columns the queries filter and sort on, each
//!   with its own index; partial indexes keep running-only columns (`sla`, `deadline`,
//!   `running_key`, `assignee`) small. `running_key` is UNIQUE, so two nodes cannot both
//!   start the same business key.
//! - `instance_fields`: one row per keyword, number, timestamp or boolean field and one per
//!   word of a text field, with the value as order-preserving bytes (`keys::field_value`),
//!   so equality, ranges, word prefixes and sorting are one index range each.
//! - `history` one row per entry; `timers` by due time; `tasks` by approver; `outbox` by
//!   status and queue time, with a lease (`lease_owner`, `lease_until`) for dispatchers
//!   (timers have one too, `claimed_by`/`claimed_until`, for schedulers);
//!   `idempotency` by key with its keeping time; `report_cells` per workflow, dimension,
//!   15-minute bucket, group value and figure.
//!
//! Text that is sorted or compared as a key is `COLLATE "C"`: byte order, as the embedded
//! stores sort, whatever the database's locale.

/// Every migration, in order: (version, what it does, SQL).
pub(crate) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "the collections", V1),
    (2, "the shared plugin registry", V2),
    (3, "every current stage's assignee", V3),
];

/// Who holds the work of each current stage of a running instance - the top level's and
/// every running branch's (a parallel stage gives each branch its own assignee) - so "my
/// work" finds an instance by any of them. `assignee` stays the top level's.
const V3: &str = r#"
ALTER TABLE instances ADD COLUMN assignees text[];
UPDATE instances SET assignees = ARRAY[assignee] WHERE assignee IS NOT NULL;
CREATE INDEX instances_assignees ON instances USING gin (assignees) WHERE assignees IS NOT NULL;
"#;

/// The plugin registry every node shares (see `plugins.rs`): the index as one document
/// with a revision its writers compare and swap, and the components by SHA-256.
const V2: &str = r#"
CREATE TABLE plugin_index (
    id boolean PRIMARY KEY CHECK (id),
    revision bigint NOT NULL,
    document bytea NOT NULL
);

CREATE TABLE plugin_blobs (
    digest text COLLATE "C" PRIMARY KEY,
    bytes bytea NOT NULL
);
"#;

const V1: &str = r#"
CREATE TABLE definitions (
    workflow text COLLATE "C" NOT NULL,
    version integer NOT NULL,
    definition json NOT NULL,
    stored_at timestamptz NOT NULL,
    uploaded_by json,
    PRIMARY KEY (workflow, version)
);

CREATE TABLE instances (
    id text COLLATE "C" PRIMARY KEY,
    workflow text COLLATE "C" NOT NULL,
    version integer NOT NULL,
    stage text COLLATE "C" NOT NULL,
    status text NOT NULL,
    sla text,
    updated_at timestamptz NOT NULL,
    acted_at timestamptz NOT NULL,
    deadline timestamptz,
    business_key text COLLATE "C",
    running_key text COLLATE "C",
    assignee text COLLATE "C",
    tags text[] COLLATE "C" NOT NULL,
    breached_stages text[] COLLATE "C" NOT NULL,
    history_len bigint NOT NULL,
    seq bigint NOT NULL,
    finished_at timestamptz,
    state json NOT NULL
);
CREATE INDEX instances_workflow_stage ON instances (workflow, stage, id);
CREATE INDEX instances_workflow_version ON instances (workflow, version, id);
CREATE INDEX instances_status ON instances (status, id);
CREATE INDEX instances_sla ON instances (sla, workflow, id) WHERE sla IS NOT NULL;
CREATE INDEX instances_updated ON instances (updated_at, id);
CREATE INDEX instances_acted ON instances (acted_at, id);
CREATE INDEX instances_deadline ON instances (deadline, id) WHERE deadline IS NOT NULL;
CREATE INDEX instances_key ON instances (workflow, business_key, id) WHERE business_key IS NOT NULL;
CREATE UNIQUE INDEX instances_running_key ON instances (workflow, running_key) WHERE running_key IS NOT NULL;
CREATE INDEX instances_assignee ON instances (assignee, id) WHERE assignee IS NOT NULL;
CREATE INDEX instances_tags ON instances USING gin (tags);
CREATE INDEX instances_breached ON instances USING gin (breached_stages);
CREATE INDEX instances_finished ON instances (finished_at, id) WHERE finished_at IS NOT NULL;

CREATE TABLE instance_fields (
    workflow text COLLATE "C" NOT NULL,
    field text COLLATE "C" NOT NULL,
    kind text NOT NULL,
    value bytea NOT NULL,
    instance_id text COLLATE "C" NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    PRIMARY KEY (workflow, field, kind, value, instance_id)
);
CREATE INDEX instance_fields_instance ON instance_fields (instance_id);

CREATE TABLE history (
    instance_id text COLLATE "C" NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    entry json NOT NULL,
    PRIMARY KEY (instance_id, seq)
);

CREATE TABLE timers (
    instance_id text COLLATE "C" NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    timer_id text COLLATE "C" NOT NULL,
    due timestamptz NOT NULL,
    claimed_by text,
    claimed_until timestamptz,
    PRIMARY KEY (instance_id, timer_id)
);
CREATE INDEX timers_due ON timers (due, timer_id);

CREATE TABLE tasks (
    id text COLLATE "C" PRIMARY KEY,
    instance_id text COLLATE "C" NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    approver_kind text NOT NULL,
    approver text COLLATE "C" NOT NULL,
    task json NOT NULL
);
CREATE INDEX tasks_inbox ON tasks (approver_kind, approver, id);

CREATE TABLE outbox (
    id text COLLATE "C" PRIMARY KEY,
    instance_id text COLLATE "C" NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    status text NOT NULL,
    queue_time timestamptz NOT NULL,
    channel text NOT NULL,
    record json NOT NULL,
    lease_owner text,
    lease_until timestamptz
);
CREATE INDEX outbox_queue ON outbox (status, queue_time, id);
CREATE INDEX outbox_instance ON outbox (instance_id);

CREATE TABLE idempotency (
    key text COLLATE "C" PRIMARY KEY,
    record json NOT NULL,
    kept_at timestamptz
);
CREATE INDEX idempotency_kept ON idempotency (kept_at, key) WHERE kept_at IS NOT NULL;

CREATE TABLE tokens (
    id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL UNIQUE,
    secret_sha256 text NOT NULL UNIQUE,
    record json NOT NULL
);

CREATE TABLE schedules (
    id text COLLATE "C" PRIMARY KEY,
    record json NOT NULL
);

CREATE TABLE report_cells (
    workflow text COLLATE "C" NOT NULL,
    dim text COLLATE "C" NOT NULL,
    bucket bigint NOT NULL,
    value text COLLATE "C" NOT NULL,
    figure text COLLATE "C" NOT NULL,
    cell bytea NOT NULL,
    PRIMARY KEY (workflow, dim, bucket, value, figure)
);

CREATE TABLE meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
"#;

/// The advisory lock key under which a node creates and migrates the schema at start: one
/// number for every Waystation schema in the cluster (starts are rare).
pub(crate) const START_LOCK: i64 = 7310017;

/// The newest migration this binary knows.
pub(crate) fn newest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Applies the migrations `client`'s database lacks, under an advisory lock; refuses a
/// database migrated past [`newest`].
///
/// # Errors
/// Database errors, or [`crate::StoreError::Backend`] naming both versions for a database
/// newer than this binary.
pub(crate) fn migrate(client: &mut postgres::Client) -> Result<(), crate::StoreError> {
    let mut tx = client
        .transaction()
        .map_err(super::db_error::db("starting the migration"))?;
    // Taken by `PgStore::open` already (this session, so it does not wait); kept for a
    // caller that migrates without it.
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7310017);
         CREATE TABLE IF NOT EXISTS waystation_schema (
             version integer PRIMARY KEY,
             description text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .map_err(super::db_error::db("creating the schema table"))?;
    let applied: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM waystation_schema",
            &[],
        )
        .map_err(super::db_error::db("reading the schema version"))?
        .get(0);
    if applied > newest() {
        return Err(crate::StoreError::backend(format!(
            "the database schema is at version {applied}, newer than this waystation knows \
             ({}): a newer release migrated it; run that release (or newer), never an older one",
            newest()
        )));
    }
    for (version, description, sql) in MIGRATIONS.iter().filter(|m| m.0 > applied) {
        tx.batch_execute(sql).map_err(super::db_error::db(&format!(
            "applying migration {version} ({description})"
        )))?;
        tx.execute(
            "INSERT INTO waystation_schema (version, description) VALUES ($1, $2)",
            &[version, description],
        )
        .map_err(super::db_error::db("recording a migration"))?;
    }
    tx.commit()
        .map_err(super::db_error::db("committing the migration"))
}

/// Checks, without changing anything, that `schema` (the user's default when `None`) holds
/// a Waystation store at exactly this binary's schema version: for a store that is only
/// read (the source of a copy).
///
/// # Errors
/// [`crate::StoreError::Backend`] naming the schema: no Waystation store there (a
/// mistyped schema), or one of another version.
pub(crate) fn check_existing(
    client: &mut postgres::Client,
    schema: Option<&str>,
) -> Result<(), crate::StoreError> {
    let named = schema.unwrap_or("public");
    let exists: bool = client
        .query_one("SELECT to_regclass('waystation_schema') IS NOT NULL", &[])
        .map_err(super::db_error::db("looking for the store"))?
        .get(0);
    if !exists {
        return Err(crate::StoreError::backend(format!(
            "schema '{named}' holds no Waystation store (is the schema name right? give it with --from-schema)"
        )));
    }
    let applied: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM waystation_schema",
            &[],
        )
        .map_err(super::db_error::db("reading the schema version"))?
        .get(0);
    match applied.cmp(&newest()) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(crate::StoreError::backend(format!(
            "the store in schema '{named}' is at version {applied}, newer than this waystation knows ({}): use that release or a newer one",
            newest()
        ))),
        std::cmp::Ordering::Less => Err(crate::StoreError::backend(format!(
            "the store in schema '{named}' is at version {applied}, older than this waystation's ({}): start a server of this release on it once (it upgrades the schema at start), stop it, then copy",
            newest()
        ))),
    }
}
