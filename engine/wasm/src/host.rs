//! The plugin host the server runs: registry plus sandbox plus the in-memory set of
//! loaded plugins. Implements the core's [`PluginInvoker`] and [`PluginCatalog`].

use crate::cache::ArtifactCache;
use crate::errors::{AddError, CallError, HostError};
use crate::inspect;
use crate::invoke::CallReport;
use crate::limits::Limits;
use crate::registry::{PluginInfo, Registry};
use crate::sandbox::{LoadedPlugin, Sandbox};
use crate::storage::{DirStorage, RegistryStorage};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use waystation_core::{CallOutcome, PluginCatalog, PluginFailure, PluginInvoker, PluginRef, World};

/// Counters for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostStats {
    /// Components compiled by this host since it was opened.
    pub compiles: u64,
    /// Compiled artifacts mapped from disk since it was opened.
    pub artifact_loads: u64,
    /// Plugins currently loaded (pre-instantiated) in memory.
    pub loaded: usize,
}

/// Registered plugins, compiled once, run sandboxed. `Send + Sync`: share it in an `Arc`
/// and call from many threads at once.
pub struct PluginHost {
    sandbox: Sandbox,
    registry: Registry,
    cache: ArtifactCache,
    loaded: RwLock<HashMap<String, Arc<LoadedPlugin>>>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("registry", &self.registry.describe())
            .field("stats", &self.stats())
            .finish()
    }
}

impl PluginHost {
    /// Opens the registry in `dir` (the server passes `<data dir>/plugins`), creating it
    /// when missing. Nothing is compiled or loaded until used; see [`PluginHost::warm`].
    ///
    /// # Errors
    /// The directory or its index cannot be read.
    pub fn open(dir: impl AsRef<Path>, sandbox: Sandbox) -> Result<PluginHost, HostError> {
        let storage = DirStorage::open(dir.as_ref())?;
        PluginHost::open_in(Box::new(storage), dir.as_ref(), sandbox)
    }

    /// Opens the registry kept in `storage` (for several nodes: a database they share),
    /// with compiled artifacts cached in `artifacts`, a directory of this node (created
    /// when missing): compiled code is specific to this engine build, so it is never
    /// shared.
    ///
    /// # Errors
    /// The storage or its index cannot be read; the directory cannot be created.
    pub fn open_in(
        storage: Box<dyn RegistryStorage>,
        artifacts: &Path,
        sandbox: Sandbox,
    ) -> Result<PluginHost, HostError> {
        std::fs::create_dir_all(artifacts).map_err(|e| HostError::io("creating", artifacts, e))?;
        let registry = Registry::open(storage)?;
        Ok(PluginHost {
            cache: ArtifactCache::new(artifacts),
            sandbox,
            registry,
            loaded: RwLock::new(HashMap::new()),
        })
    }

    /// Where the registry is kept (a directory, or a database without password).
    pub fn registry_location(&self) -> String {
        self.registry.describe()
    }

    /// The registry's storage, e.g. to copy it with [`crate::copy_registry`].
    pub fn registry_storage(&self) -> &dyn RegistryStorage {
        self.registry.storage()
    }

    /// The sandbox calls run in.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Registers `bytes` as a new version of `name`: checks them (a component? a known
    /// world? within the size limit? instantiable?), stores them by digest, compiles them
    /// once and caches the artifact. Adding bytes `name` already has is a no-op returning
    /// that version.
    ///
    /// # Errors
    /// A distinct [`AddError`] per reason; see [`AddError::code`].
    pub fn add(&self, name: &str, bytes: &[u8]) -> Result<PluginInfo, AddError> {
        self.add_by(name, bytes, None)
    }

    /// As [`Host::add`], recording `uploaded_by` on a new version.
    ///
    /// # Errors
    /// As [`Host::add`].
    pub fn add_by(
        &self,
        name: &str,
        bytes: &[u8],
        uploaded_by: Option<&waystation_core::Actor>,
    ) -> Result<PluginInfo, AddError> {
        match PluginRef::parse(name) {
            Ok(r) if r.digest.is_none() => {}
            _ => {
                return Err(AddError::BadName {
                    name: name.to_owned(),
                })
            }
        }
        self.sandbox.check(bytes)?;
        let digest = inspect::digest(bytes);
        if let Some(existing) = self.registry.find(name, &digest) {
            return Ok(existing);
        }
        let component = self
            .cache
            .get(&self.sandbox, &digest, || Ok(bytes.to_vec()))?;
        let plugin = match self.sandbox.prepare(&component, label(name, &digest)) {
            Ok(plugin) => plugin,
            Err(e) => {
                if !self.registry.references(&digest) {
                    self.cache.remove(&self.sandbox, &digest);
                }
                return Err(e);
            }
        };
        self.registry.store_blob(&digest, bytes)?;
        let info = self.registry.insert(
            name,
            &digest,
            plugin.world(),
            bytes.len() as u64,
            uploaded_by,
        )?;
        self.loaded
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(digest)
            .or_insert_with(|| Arc::new(plugin));
        tracing::info!(plugin = %info.name, version = info.version, world = %info.world, digest = %info.digest, "plugin added");
        Ok(info)
    }

    /// The newest version of `reference.name`, or the pinned one.
    pub fn resolve(&self, reference: &PluginRef) -> Option<PluginInfo> {
        self.registry.resolve(reference)
    }

    /// Every version of every plugin, by name then version.
    pub fn list(&self) -> Vec<PluginInfo> {
        self.registry.list()
    }

    /// The limits calls of `name` run under (its own, or the host's defaults).
    pub fn limits(&self, name: &str) -> Limits {
        self.registry
            .limits(name)
            .unwrap_or(self.sandbox.config().default_limits)
    }

    /// Sets the limits of plugin `name` (all versions), or with `None` returns it to the
    /// defaults. Persisted in the index.
    ///
    /// # Errors
    /// [`HostError::UnknownPlugin`], [`HostError::InvalidLimits`], or a storage error.
    pub fn set_limits(&self, name: &str, limits: Option<Limits>) -> Result<(), HostError> {
        if let Some(l) = &limits {
            l.validate(self.sandbox.config().max_memory_bytes)
                .map_err(HostError::InvalidLimits)?;
        }
        self.registry.set_limits(name, limits)
    }

    /// Loads every registered version (from the artifact cache, compiling only what has
    /// no artifact for this engine), returning those that failed.
    pub fn warm(&self) -> Vec<(PluginInfo, AddError)> {
        self.list()
            .into_iter()
            .filter_map(|info| self.load(&info).err().map(|e| (info, e)))
            .collect()
    }

    /// Compile and load counters.
    pub fn stats(&self) -> HostStats {
        let (compiles, artifact_loads) = self.cache.counts();
        HostStats {
            compiles,
            artifact_loads,
            loaded: self.loaded.read().unwrap_or_else(|e| e.into_inner()).len(),
        }
    }

    fn load(&self, info: &PluginInfo) -> Result<Arc<LoadedPlugin>, AddError> {
        if let Some(plugin) = self
            .loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&info.digest)
        {
            return Ok(plugin.clone());
        }
        let component = self.cache.get(&self.sandbox, &info.digest, || {
            self.registry.read_blob(&info.digest)
        })?;
        let plugin = self
            .sandbox
            .prepare(&component, label(&info.name, &info.digest))?;
        if plugin.world() != info.world {
            return Err(AddError::WrongWorld {
                world: info.world,
                message: format!("the stored component now reads as a {}", plugin.world()),
                source: None,
            });
        }
        Ok(self
            .loaded
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(info.digest.clone())
            .or_insert_with(|| Arc::new(plugin))
            .clone())
    }

    /// Calls `plugin` (which must implement `world`) with `input`, returning the output or
    /// typed failure together with the guest's log lines, duration and epoch ticks.
    /// Blocks; call from a blocking thread.
    pub fn invoke_with_logs(&self, plugin: &PluginRef, world: World, input: &Value) -> CallReport {
        let defaults = self.sandbox.config().default_limits;
        let Some(info) = self.registry.resolve(plugin) else {
            return CallReport::failed(
                CallError::NotFound {
                    message: format!("no plugin '{plugin}' is registered"),
                },
                defaults,
            );
        };
        if info.world != world {
            let mut report = CallReport::failed(
                CallError::NotFound {
                    message: format!(
                        "plugin '{plugin}' implements the {} world, not {world}",
                        info.world
                    ),
                },
                defaults,
            );
            report.plugin = Some(info);
            return report;
        }
        let loaded = match self.load(&info) {
            Ok(loaded) => loaded,
            Err(e) => {
                let mut report = CallReport::failed(
                    CallError::NotFound {
                        message: format!("plugin '{plugin}' cannot be loaded: {e}"),
                    },
                    defaults,
                );
                report.plugin = Some(info);
                return report;
            }
        };
        let limits = self.limits(&info.name);
        let mut report = self.sandbox.call(&loaded, input, &limits);
        report.plugin = Some(info);
        report
    }
}

fn label(name: &str, digest: &str) -> Arc<str> {
    format!("{name}@{}", &digest[..12.min(digest.len())]).into()
}

impl PluginInvoker for PluginHost {
    fn invoke(
        &self,
        plugin: &PluginRef,
        world: World,
        input: &Value,
    ) -> Result<Value, PluginFailure> {
        self.invoke_with_logs(plugin, world, input)
            .result
            .map_err(PluginFailure::from)
    }

    fn invoke_reported(&self, plugin: &PluginRef, world: World, input: &Value) -> CallOutcome {
        let report = self.invoke_with_logs(plugin, world, input);
        CallOutcome {
            result: report.result.map_err(PluginFailure::from),
            logs: report
                .logs
                .iter()
                .map(|line| format!("{}: {}", line.level, line.message))
                .collect(),
            input_digest: Some(inspect::digest(input.to_string().as_bytes())),
        }
    }
}

impl PluginCatalog for PluginHost {
    fn world_of(&self, reference: &PluginRef) -> Option<World> {
        self.registry.resolve(reference).map(|info| info.world)
    }
}
