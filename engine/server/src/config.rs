//! Server configuration: defaults, then a TOML file (`--config`), then environment
//! variables, then command-line flags; each later source overrides the earlier.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! data = "./waystation-data"
//! [limits]
//! json_body_bytes = 1048576      # 1 MiB
//! wasm_body_bytes = 52428800     # 50 MiB
//! definition_bytes = 524288      # 512 KiB: 413 on upload/validate beyond
//! event_data_bytes = 65536       # 64 KiB: an event's data or a start's input, 413 beyond
//! vars_bytes = 262144            # 256 KiB: an instance's vars after a step
//! history_entries = 10000        # per instance
//! [steps]                        # a timer firing that fails in the engine
//! retry_attempts = 5             # then the instance is failed with the reason
//! retry_first_backoff_ms = 1000  # doubling after each failure
//! retry_max_backoff_ms = 300000
//! [plugins]
//! time_budget_ms = 100
//! memory_mib = 64
//! [log]
//! format = "text"                # or "json"
//! [store]
//! engine = "fjall"               # or "sled" / "redb"; unset: the engine whose files are
//!                                # in the data directory, fjall for a new one; or
//!                                # "postgres" with `url` (several nodes, one database)
//! # url = "postgres://waystation@db:5432/waystation"   # also WAYSTATION_STORE_URL
//! # schema = "waystation"        # default: the user's default (public)
//! # pool_size = 16               # most database connections of this node; also WAYSTATION_STORE_POOL_SIZE
//! idempotency_hours = 24         # how long an Idempotency-Key's answer is kept
//! retention_days = 730           # how long a finished instance is kept
//! reports_retention_days = 730   # how long report figures (rollup cells) are kept
//! [live]                         # the dashboard's change streams and progress links
//! max_streams = 256              # open event streams at once; 503 beyond
//! progress_link_days = 30        # a progress link works this long after the instance ended
//! public_url = "https://track.example.com"  # where customers open progress links
//!                                # (default http://<listen>)
//! [outbox.channels.email]        # where notifier messages go: see `delivery`
//! kind = "email"
//! host = "smtp.example.com"
//! from = "orders@example.com"
//! ```

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything the server can be configured with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory: the store (`store/`) and the plugin registry (`plugins/`) live below
    /// it.
    pub data: PathBuf,
    /// The store's engine and retention.
    pub store: StoreConfig,
    /// Request size limits.
    pub limits: Limits,
    /// Default sandbox limits for plugins.
    pub plugins: PluginDefaults,
    /// Retries of steps that fail in the engine.
    pub steps: Steps,
    /// Logging.
    pub log: Log,
    /// Outbox delivery: retries and channels (see [`crate::delivery`]).
    pub outbox: crate::delivery::OutboxConfig,
    /// Business calendars by name (`[calendars.cn-office]`): the working time that stage
    /// `calendar`s, working-time spans and the CEL calendar functions count in (see
    /// [`waystation_core::calendar`]).
    pub calendars: std::collections::BTreeMap<String, waystation_core::calendar::CalendarDef>,
    /// Live pages: event streams and customer progress links.
    pub live: Live,
}

/// The dashboard's change streams (`GET /v1/.../stream`) and the customer progress links.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Live {
    /// Event streams open at once, over all callers (default 256): each holds a
    /// connection and a receiver of the change channel; one more is refused with 503
    /// `too-many-streams` (the page then polls).
    pub max_streams: usize,
    /// Days a customer progress link keeps working after its instance ended (default 30);
    /// then it answers 410 `link-expired`. 0: it stops when the instance ends.
    pub progress_link_days: u64,
    /// The address customers reach this server at, for the progress links given to
    /// notifiers and operators (default `http://<listen>`).
    pub public_url: Option<String>,
}

impl Live {
    /// How long a progress link works after its instance ended.
    pub fn progress_link_life(&self) -> chrono::TimeDelta {
        let days = i64::try_from(self.progress_link_days).unwrap_or(i64::MAX);
        chrono::TimeDelta::try_days(days).unwrap_or(chrono::TimeDelta::MAX)
    }
}

impl Default for Live {
    fn default() -> Self {
        Live {
            max_streams: 256,
            progress_link_days: 30,
            public_url: None,
        }
    }
}

/// Where the store is: an embedded engine in the data directory, or PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum StoreEngine {
    /// fjall, sled or redb under `{data}/store`: one node.
    Embedded(waystation_store::Engine),
    /// A PostgreSQL database at [`StoreConfig::url`], shared by any number of nodes.
    Postgres,
}

impl std::str::FromStr for StoreEngine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "postgres" {
            return Ok(StoreEngine::Postgres);
        }
        s.parse()
            .map(StoreEngine::Embedded)
            .map_err(|_| format!("'{s}' is not a store engine; use fjall, sled, redb or postgres"))
    }
}

impl TryFrom<String> for StoreEngine {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// The store: which engine, where, and how long records are kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The engine (`fjall`, `sled`, `redb` or `postgres`). Unset (the default): postgres
    /// when `url` is set, else the engine whose files are in the data directory, or fjall
    /// for a new one. Set to an embedded engine other than the one found, the server
    /// refuses to start and names `waystation store migrate`.
    pub engine: Option<StoreEngine>,
    /// The PostgreSQL database (`postgres://user@host:5432/db`); also
    /// `WAYSTATION_STORE_URL`. Put a password in the environment, not in a file.
    pub url: Option<String>,
    /// The PostgreSQL schema of Waystation's tables (created when missing); unset: the
    /// user's default. Every node of one installation names the same.
    pub schema: Option<String>,
    /// Most database connections this node opens (default 16); a call waits up to 5 s for
    /// a free one, then fails with 500.
    pub pool_size: u32,
    /// Hours an `Idempotency-Key`'s stored answer is kept (default 24); a repeat after that
    /// is a new request.
    pub idempotency_hours: u64,
    /// Days a completed, failed or cancelled instance is kept with its history, tasks,
    /// timers, index entries and outbox messages (default 730, two years); then it is
    /// purged.
    pub retention_days: u64,
    /// Days report figures are kept (default 730): the rollup cells of older 15-minute
    /// buckets are deleted, so reports over those periods count nothing.
    pub reports_retention_days: u64,
}

impl StoreConfig {
    /// The engine in force: the configured one, else postgres when a URL is set; `None`:
    /// found from the data directory's files.
    pub fn engine(&self) -> Option<StoreEngine> {
        self.engine
            .or_else(|| self.url.as_ref().map(|_| StoreEngine::Postgres))
    }

    /// The embedded engine asked for, if one is.
    pub fn embedded(&self) -> Option<waystation_store::Engine> {
        match self.engine() {
            Some(StoreEngine::Embedded(e)) => Some(e),
            _ => None,
        }
    }

    /// The PostgreSQL connection settings, when the engine is postgres.
    ///
    /// # Errors
    /// Postgres without a URL, or a URL with an embedded engine.
    pub fn postgres(&self) -> Result<Option<waystation_store::PgOptions>, ConfigError> {
        match (self.engine(), &self.url) {
            (Some(StoreEngine::Postgres), Some(url)) => Ok(Some(waystation_store::PgOptions {
                schema: self.schema.clone(),
                pool_size: self.pool_size.max(1),
                // The runtime frees a key after this long; the store must agree.
                idempotency_keep: std::time::Duration::from_secs(
                    self.idempotency_hours.saturating_mul(3600),
                ),
                ..waystation_store::PgOptions::new(url.clone())
            })),
            (Some(StoreEngine::Postgres), None) => Err(ConfigError::Store(
                "[store] engine = \"postgres\" needs the database: set [store] url or WAYSTATION_STORE_URL".into(),
            )),
            (Some(StoreEngine::Embedded(e)), Some(_)) => Err(ConfigError::Store(format!(
                "[store] url is for engine \"postgres\", but engine is \"{e}\": remove one"
            ))),
            _ => Ok(None),
        }
    }

    /// The runtime's retention from these settings (purging every minute, 32 instances a
    /// batch).
    pub fn retention(&self) -> waystation_runtime::Retention {
        let hours = i64::try_from(self.idempotency_hours).unwrap_or(i64::MAX);
        let days = i64::try_from(self.retention_days).unwrap_or(i64::MAX);
        let report_days = i64::try_from(self.reports_retention_days).unwrap_or(i64::MAX);
        waystation_runtime::Retention {
            idempotency: chrono::TimeDelta::try_hours(hours).unwrap_or(chrono::TimeDelta::MAX),
            finished: chrono::TimeDelta::try_days(days).unwrap_or(chrono::TimeDelta::MAX),
            reports: chrono::TimeDelta::try_days(report_days).unwrap_or(chrono::TimeDelta::MAX),
            ..waystation_runtime::Retention::default()
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            engine: None,
            url: None,
            schema: None,
            pool_size: 16,
            idempotency_hours: 24,
            retention_days: 730,
            reports_retention_days: 730,
        }
    }
}

/// Request size limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest JSON body accepted (413 beyond).
    pub json_body_bytes: usize,
    /// Largest plugin upload accepted (413 beyond).
    pub wasm_body_bytes: usize,
    /// Largest workflow definition, serialized, in bytes (413 beyond). See
    /// [`waystation_runtime::Limits`] for this and the three below.
    pub definition_bytes: usize,
    /// Largest event `data` or start `input`, serialized, in bytes (413 beyond).
    pub event_data_bytes: usize,
    /// Largest `vars` of an instance after a step, serialized, in bytes.
    pub vars_bytes: usize,
    /// Most history entries per instance.
    pub history_entries: u64,
}

/// How a timer firing that fails in the engine is retried (see
/// [`waystation_runtime::StepRetry`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Steps {
    /// Failures after which the instance is failed with the reason.
    pub retry_attempts: u32,
    /// Delay after the first failure, in milliseconds; doubles after each.
    pub retry_first_backoff_ms: u64,
    /// Longest delay, in milliseconds.
    pub retry_max_backoff_ms: u64,
}

impl Default for Steps {
    fn default() -> Self {
        let d = waystation_runtime::StepRetry::default();
        Steps {
            retry_attempts: d.attempts,
            retry_first_backoff_ms: u64::try_from(d.first_backoff.as_millis()).unwrap_or(u64::MAX),
            retry_max_backoff_ms: u64::try_from(d.max_backoff.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Default sandbox limits for plugins.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginDefaults {
    /// Time budget per call, in milliseconds.
    pub time_budget_ms: u64,
    /// Memory cap per call, in MiB.
    pub memory_mib: u64,
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `text` or `json`.
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data: PathBuf::from("./waystation-data"),
            store: StoreConfig::default(),
            limits: Limits::default(),
            plugins: PluginDefaults::default(),
            steps: Steps::default(),
            log: Log::default(),
            outbox: crate::delivery::OutboxConfig::default(),
            calendars: std::collections::BTreeMap::new(),
            live: Live::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        let engine = waystation_runtime::Limits::default();
        Limits {
            json_body_bytes: 1024 * 1024,
            wasm_body_bytes: 50 * 1024 * 1024,
            definition_bytes: engine.definition_bytes,
            event_data_bytes: engine.event_data_bytes,
            vars_bytes: engine.vars_bytes,
            history_entries: engine.history_entries,
        }
    }
}

impl Default for PluginDefaults {
    fn default() -> Self {
        PluginDefaults {
            time_budget_ms: 100,
            memory_mib: 64,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: LogFormat::Text,
        }
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error: not found, permission denied, not UTF-8 text.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration. Displays as `<path>: <what is
    /// wrong, with line and column>`.
    #[error("{}: {}", .path.display(), .source.to_string().trim())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error: what is wrong and where ([`toml::de::Error::span`], in bytes).
        source: toml::de::Error,
    },
    /// A business calendar is not usable.
    #[error("[calendars.{name}] {message}")]
    Calendar {
        /// The calendar's name.
        name: String,
        /// What is wrong, with the member (`/zone`, `/hours/mon/0`).
        message: String,
    },
    /// The `[store]` settings do not fit together (postgres without a URL, ...).
    #[error("{0}")]
    Store(String),
    /// An environment variable has an unusable value.
    #[error("environment variable {name}={value:?}: {message}")]
    Env {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
}

impl StoreConfig {
    /// Applies this section's `WAYSTATION_*` variables (see [`Config::apply_env`]).
    ///
    /// # Errors
    /// [`ConfigError::Env`] for a value that does not parse.
    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        set_some(env, "WAYSTATION_STORE_ENGINE", &mut self.engine)?;
        set_some(env, "WAYSTATION_STORE_URL", &mut self.url)?;
        set_some(env, "WAYSTATION_STORE_SCHEMA", &mut self.schema)?;
        set(env, "WAYSTATION_STORE_POOL_SIZE", &mut self.pool_size)?;
        set(
            env,
            "WAYSTATION_IDEMPOTENCY_HOURS",
            &mut self.idempotency_hours,
        )?;
        set(env, "WAYSTATION_RETENTION_DAYS", &mut self.retention_days)?;
        set(
            env,
            "WAYSTATION_REPORTS_RETENTION_DAYS",
            &mut self.reports_retention_days,
        )?;
        Ok(())
    }
}

impl Live {
    /// Applies this section's `WAYSTATION_*` variables (see [`Config::apply_env`]).
    ///
    /// # Errors
    /// [`ConfigError::Env`] for a value that does not parse.
    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        set(env, "WAYSTATION_LIVE_MAX_STREAMS", &mut self.max_streams)?;
        set_some(env, "WAYSTATION_PUBLIC_URL", &mut self.public_url)?;
        set(
            env,
            "WAYSTATION_PROGRESS_LINK_DAYS",
            &mut self.progress_link_days,
        )?;
        Ok(())
    }
}

impl Limits {
    /// Applies this section's `WAYSTATION_*` variables (see [`Config::apply_env`]).
    ///
    /// # Errors
    /// [`ConfigError::Env`] for a value that does not parse.
    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        set(env, "WAYSTATION_JSON_BODY_BYTES", &mut self.json_body_bytes)?;
        set(env, "WAYSTATION_WASM_BODY_BYTES", &mut self.wasm_body_bytes)?;
        set(
            env,
            "WAYSTATION_DEFINITION_BYTES",
            &mut self.definition_bytes,
        )?;
        set(
            env,
            "WAYSTATION_EVENT_DATA_BYTES",
            &mut self.event_data_bytes,
        )?;
        set(env, "WAYSTATION_VARS_BYTES", &mut self.vars_bytes)?;
        set(env, "WAYSTATION_HISTORY_ENTRIES", &mut self.history_entries)?;
        Ok(())
    }
}

impl Steps {
    /// Applies this section's `WAYSTATION_*` variables (see [`Config::apply_env`]).
    ///
    /// # Errors
    /// [`ConfigError::Env`] for a value that does not parse.
    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        set(
            env,
            "WAYSTATION_STEP_RETRY_ATTEMPTS",
            &mut self.retry_attempts,
        )?;
        set(
            env,
            "WAYSTATION_STEP_RETRY_FIRST_BACKOFF_MS",
            &mut self.retry_first_backoff_ms,
        )?;
        set(
            env,
            "WAYSTATION_STEP_RETRY_MAX_BACKOFF_MS",
            &mut self.retry_max_backoff_ms,
        )?;
        Ok(())
    }
}

impl PluginDefaults {
    /// Applies this section's `WAYSTATION_*` variables (see [`Config::apply_env`]).
    ///
    /// # Errors
    /// [`ConfigError::Env`] for a value that does not parse.
    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        set(
            env,
            "WAYSTATION_PLUGIN_TIME_BUDGET_MS",
            &mut self.time_budget_ms,
        )?;
        set(env, "WAYSTATION_PLUGIN_MEMORY_MIB", &mut self.memory_mib)?;
        Ok(())
    }
}

impl Log {
    /// Applies `WAYSTATION_LOG_FORMAT` (`text` or `json`).
    ///
    /// # Errors
    /// [`ConfigError::Env`] for any other value.
    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("WAYSTATION_LOG_FORMAT") {
            self.format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Env {
                        name: "WAYSTATION_LOG_FORMAT",
                        value: v,
                        message: "expected text or json".into(),
                    })
                }
            };
        }
        Ok(())
    }
}

/// The value of the variable `name` as a `T`.
///
/// # Errors
/// [`ConfigError::Env`] when it does not parse.
fn parse_env<T: std::str::FromStr>(name: &'static str, value: String) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| ConfigError::Env {
        name,
        message: e.to_string(),
        value,
    })
}

/// Sets `slot` from the variable `name` when `env` has it.
///
/// # Errors
/// [`ConfigError::Env`] when the value does not parse as `T`.
fn set<T: std::str::FromStr>(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    slot: &mut T,
) -> Result<(), ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let Some(value) = env(name) {
        *slot = parse_env(name, value)?;
    }
    Ok(())
}

/// [`set`] for a setting that is absent unless configured.
///
/// # Errors
/// [`ConfigError::Env`] when the value does not parse as `T`.
fn set_some<T: std::str::FromStr>(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    slot: &mut Option<T>,
) -> Result<(), ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let Some(value) = env(name) {
        *slot = Some(parse_env(name, value)?);
    }
    Ok(())
}

impl Config {
    /// Reads the TOML file at `path`.
    ///
    /// # Errors
    /// Unreadable file, or TOML that does not fit (unknown keys included).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Applies `WAYSTATION_*` variables from `env` (a lookup, so tests need not touch the
    /// process environment).
    ///
    /// # Errors
    /// A variable whose value does not parse.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        set(&env, "WAYSTATION_LISTEN", &mut self.listen)?;
        set(&env, "WAYSTATION_DATA", &mut self.data)?;
        self.store.apply_env(&env)?;
        self.live.apply_env(&env)?;
        self.limits.apply_env(&env)?;
        self.steps.apply_env(&env)?;
        self.plugins.apply_env(&env)?;
        self.log.apply_env(&env)
    }

    /// The configured business calendars, checked.
    ///
    /// # Errors
    /// The first calendar that is not usable, by name and member (`[calendars.cn-office]
    /// /hours/mon/0: '9-17' is not a working interval such as 09:00-17:30`), or a name that
    /// is not lower-case letters, digits and dashes.
    pub fn calendars(&self) -> Result<waystation_core::calendar::Calendars, ConfigError> {
        let mut out = waystation_core::calendar::Calendars::new();
        for (name, def) in &self.calendars {
            let bad = |message: String| ConfigError::Calendar {
                name: name.clone(),
                message,
            };
            let well_named = !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !well_named {
                return Err(bad(
                    "a calendar name is 1 to 63 lower-case letters, digits and dashes".to_owned(),
                ));
            }
            let calendar =
                waystation_core::calendar::Calendar::new(def).map_err(|e| bad(e.to_string()))?;
            out.insert(name.clone(), std::sync::Arc::new(calendar));
        }
        Ok(out)
    }

    /// Where the store lives.
    pub fn store_dir(&self) -> PathBuf {
        store_dir(&self.data)
    }

    /// The progress links' signing key file (made on the first start).
    pub fn progress_key_file(&self) -> PathBuf {
        self.data.join("progress-link.key")
    }

    /// Where customers open progress links: `[live] public_url`, or this server.
    pub fn public_url(&self) -> String {
        self.live
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// Where the plugin registry lives.
    pub fn plugin_dir(&self) -> PathBuf {
        plugin_dir(&self.data)
    }

    /// The runtime's limits and retries, from `[limits]` and `[steps]`.
    pub fn options(&self) -> waystation_runtime::Options {
        use std::time::Duration;
        waystation_runtime::Options {
            limits: waystation_runtime::Limits {
                definition_bytes: self.limits.definition_bytes,
                event_data_bytes: self.limits.event_data_bytes,
                vars_bytes: self.limits.vars_bytes,
                history_entries: self.limits.history_entries,
            },
            step_retry: waystation_runtime::StepRetry {
                attempts: self.steps.retry_attempts.max(1),
                first_backoff: Duration::from_millis(self.steps.retry_first_backoff_ms),
                max_backoff: Duration::from_millis(self.steps.retry_max_backoff_ms),
            },
        }
    }

    /// The plugin sandbox's settings: the host defaults with this configuration's
    /// per-call budget and memory cap, and its largest plugin upload.
    pub fn host_config(&self) -> waystation_wasm::HostConfig {
        let mut host = waystation_wasm::HostConfig::default();
        host.default_limits.time_budget_ms = self.plugins.time_budget_ms;
        host.default_limits.memory_bytes = self.plugins.memory_mib.saturating_mul(1 << 20);
        host.max_memory_bytes = host.max_memory_bytes.max(host.default_limits.memory_bytes);
        host.max_plugin_bytes = u64::try_from(self.limits.wasm_body_bytes).unwrap_or(u64::MAX);
        host
    }
}

/// Where the store of data directory `data` lives.
pub fn store_dir(data: &Path) -> PathBuf {
    data.join("store")
}

/// Where the plugin registry of data directory `data` lives.
pub fn plugin_dir(data: &Path) -> PathBuf {
    data.join("plugins")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_then_the_environment_override_the_defaults() {
        let dir = std::env::temp_dir().join(format!("ws-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("waystation.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\n[limits]\njson_body_bytes = 2048\n",
        )
        .unwrap();
        let mut config = Config::from_file(&file).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.limits.json_body_bytes, 2048);
        assert_eq!(
            config.limits.wasm_body_bytes,
            50 * 1024 * 1024,
            "unset keys keep their defaults"
        );
        config
            .apply_env(|k| (k == "WAYSTATION_LISTEN").then(|| "127.0.0.1:7000".to_owned()))
            .unwrap();
        assert_eq!(config.listen.port(), 7000);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = std::env::temp_dir().join(format!("ws-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "[limits]\njson_body = 1\n").unwrap();
        let parse = Config::from_file(&file).unwrap_err();
        let err = parse.to_string();
        assert!(err.contains("json_body"), "{err}");
        let toml = std::error::Error::source(&parse)
            .and_then(|s| s.downcast_ref::<toml::de::Error>())
            .expect("the TOML error is the source");
        assert_eq!(
            toml.span(),
            Some(9..18),
            "where the unknown key is, in bytes"
        );
        let err = Config::default()
            .apply_env(|k| (k == "WAYSTATION_PLUGIN_MEMORY_MIB").then(|| "lots".to_owned()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("WAYSTATION_PLUGIN_MEMORY_MIB"), "{err}");
    }

    #[test]
    fn the_store_engine_is_chosen_by_file_or_environment_and_a_wrong_name_is_refused() {
        use super::StoreEngine;
        use waystation_store::Engine;
        let dir = std::env::temp_dir().join(format!("ws-config-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("store.toml");
        std::fs::write(&file, "[store]\nengine = \"redb\"\nretention_days = 30\n").unwrap();
        let mut config = Config::from_file(&file).unwrap();
        assert_eq!(
            config.store.engine,
            Some(StoreEngine::Embedded(Engine::Redb))
        );
        assert_eq!(config.store.retention_days, 30);
        assert_eq!(
            config.store.idempotency_hours, 24,
            "unset keys keep their defaults"
        );
        config
            .apply_env(|k| (k == "WAYSTATION_STORE_ENGINE").then(|| "sled".to_owned()))
            .unwrap();
        assert_eq!(
            config.store.engine,
            Some(StoreEngine::Embedded(Engine::Sled))
        );
        assert_eq!(
            Config::default().store.engine,
            None,
            "found on disk, or fjall"
        );

        std::fs::write(&file, "[store]\nengine = \"rocks\"\n").unwrap();
        let err = Config::from_file(&file).unwrap_err().to_string();
        assert!(err.contains("rocks"), "{err}");
        let err = Config::default()
            .apply_env(|k| (k == "WAYSTATION_STORE_ENGINE").then(|| "mysql".to_owned()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("WAYSTATION_STORE_ENGINE")
                && err.contains("fjall, sled, redb or postgres"),
            "{err}"
        );
    }

    #[test]
    fn postgres_is_chosen_by_engine_or_url_and_needs_its_url() {
        use super::StoreEngine;
        use waystation_store::Engine;
        let mut config = Config::default();
        config
            .apply_env(|k| (k == "WAYSTATION_STORE_ENGINE").then(|| "postgres".to_owned()))
            .unwrap();
        let err = config.store.postgres().unwrap_err().to_string();
        assert!(err.contains("WAYSTATION_STORE_URL"), "{err}");

        let mut config = Config::default();
        config
            .apply_env(|k| match k {
                "WAYSTATION_STORE_URL" => Some("postgres://ws@db/ws".to_owned()),
                "WAYSTATION_STORE_SCHEMA" => Some("node_a".to_owned()),
                "WAYSTATION_STORE_POOL_SIZE" => Some("4".to_owned()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            config.store.engine(),
            Some(StoreEngine::Postgres),
            "a URL alone is enough"
        );
        let pg = config.store.postgres().unwrap().unwrap();
        assert_eq!(
            (pg.url.as_str(), pg.schema.as_deref(), pg.pool_size),
            ("postgres://ws@db/ws", Some("node_a"), 4)
        );

        config.store.engine = Some(StoreEngine::Embedded(Engine::Fjall));
        let err = config.store.postgres().unwrap_err().to_string();
        assert!(err.contains("url") && err.contains("fjall"), "{err}");
    }
}
