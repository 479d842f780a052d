//! The state every handler shares ([`AppState`]): the runtime, the plugin host, the
//! configuration, metrics, readiness, live streams and the authenticated-token cache.

use super::error::ApiError;
use super::http_metrics::HttpMetrics;
use crate::auth::{self, Caller};
use crate::config::Config;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use waystation_runtime::Runtime;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] holds.
pub struct Shared {
    /// The engine.
    pub runtime: Arc<Runtime>,
    /// The plugin registry and sandbox.
    pub plugins: Arc<waystation_wasm::PluginHost>,
    /// The configuration in force.
    pub config: Config,
    /// HTTP latency by route.
    pub http: HttpMetrics,
    /// False until the scheduler runs, and again once shutdown began.
    pub ready: AtomicBool,
    /// Live change streams open now (see [`live`]), at most `[live] max_streams`.
    pub streams: AtomicUsize,
    /// Set once shutdown begins: every live stream ends, so draining does not wait on them.
    pub closing: tokio::sync::watch::Sender<bool>,
    // Authenticated tokens by secret hash: a request costs no store read. Cleared on revoke.
    callers: RwLock<HashMap<String, Caller>>,
}

impl AppState {
    /// State over `runtime`.
    pub fn new(
        runtime: Arc<Runtime>,
        plugins: Arc<waystation_wasm::PluginHost>,
        config: Config,
    ) -> Self {
        AppState(Arc::new(Shared {
            runtime,
            plugins,
            config,
            http: HttpMetrics::default(),
            ready: AtomicBool::new(false),
            streams: AtomicUsize::new(0),
            closing: tokio::sync::watch::Sender::new(false),
            callers: RwLock::new(HashMap::new()),
        }))
    }

    /// Marks the server ready (or not) for `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::Release);
    }

    /// Ends every live stream and refuses none afterwards (a stream opened after this
    /// ends at once): called when shutdown begins.
    pub fn close_streams(&self) {
        self.0.closing.send_replace(true);
    }

    pub(super) async fn caller(&self, secret: &str) -> Result<Option<Caller>, ApiError> {
        let hash = auth::sha256_hex(secret.as_bytes());
        if let Some(c) = self.0.callers.read().expect("callers lock").get(&hash) {
            return Ok(Some(c.clone()));
        }
        let secret = secret.to_owned();
        let found = self
            .blocking(move |rt| Ok(auth::authenticate(rt.store(), &secret)?))
            .await?;
        if let Some(c) = &found {
            self.0
                .callers
                .write()
                .expect("callers lock")
                .insert(hash, c.clone());
        }
        Ok(found)
    }

    /// Runs `read` on the blocking pool with the runtime: for reads that walk the store
    /// (queries, pages, inboxes, counts), so no async worker waits on the disk.
    ///
    /// # Errors
    /// `read`'s error; 500 if it panicked.
    pub async fn blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Runtime) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || read(&runtime))
            .await
            .map_err(|e| ApiError::internal(&e))?
    }

    /// The instance `id`, read on the blocking pool (a PostgreSQL store answers over the
    /// network; an embedded one may read the disk).
    ///
    /// # Errors
    /// 404 for an unknown instance; store errors.
    pub async fn instance(&self, id: &str) -> Result<waystation_core::InstanceState, ApiError> {
        let id = id.to_owned();
        self.blocking(move |rt| Ok(rt.instance(&id)?)).await
    }

    /// The instance of `workflow` with business key `key` (the running one, else the
    /// newest), read on the blocking pool.
    ///
    /// # Errors
    /// 404 when no instance has the key; store errors.
    pub async fn instance_by_key(
        &self,
        workflow: &str,
        key: &str,
    ) -> Result<waystation_core::InstanceState, ApiError> {
        let (workflow, key) = (workflow.to_owned(), key.to_owned());
        self.blocking(move |rt| Ok(rt.instance_by_key(&workflow, &key)?))
            .await
    }

    pub(super) fn forget_callers(&self) {
        self.0.callers.write().expect("callers lock").clear();
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
