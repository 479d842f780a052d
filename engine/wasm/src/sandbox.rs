//! The sandbox: one engine per process, its epoch ticker, a linker per world (WASI p2
//! granting nothing, plus `log`), a bound on concurrent calls, and turning a compiled
//! component into a pre-instantiated plugin of a known world.

use crate::bindings::{notifier, scorer};
use crate::clocks;
use crate::config::{engine_key, HostConfig};
use crate::errors::{wasmtime_cause, AddError, HostError};
use crate::inspect::{self, Inspection};
use crate::limits::Limits;
use crate::state::State;
use crate::ticker::EpochTicker;
use std::sync::{Arc, Condvar, Mutex};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};
use waystation_core::World;

/// A component of a known world, type-checked and pre-instantiated: each call only
/// instantiates it in a fresh store and calls its export.
pub struct LoadedPlugin {
    pub(crate) world: World,
    pub(crate) label: Arc<str>,
    pub(crate) pre: WorldPre,
}

pub(crate) enum WorldPre {
    Scorer(scorer::ScorerPre<State>),
    Notifier(notifier::NotifierPre<State>),
}

impl LoadedPlugin {
    /// The world it implements.
    pub fn world(&self) -> World {
        self.world
    }

    /// The name it logs and traces under.
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("world", &self.world)
            .field("label", &self.label)
            .finish()
    }
}

/// Counts free call slots: `max_running_calls` (never more than the pool has room for). A
/// call waits for one before its store - and so its time budget - exists: the budget is
/// admission-based, spent while the call has a core rather than while it queues for one.
struct Slots {
    free: Mutex<u32>,
    freed: Condvar,
}

pub(crate) struct SlotGuard<'a>(&'a Slots);

impl Slots {
    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        SlotGuard(self)
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

struct Inner {
    // Declared first so the ticker stops before the engine goes.
    ticker: EpochTicker,
    engine: Engine,
    key: String,
    scorer: Linker<State>,
    notifier: Linker<State>,
    slots: Slots,
    config: HostConfig,
}

/// The wasmtime sandbox plugins run in. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("engine_key", &self.inner.key)
            .field("config", &self.inner.config)
            .finish()
    }
}

fn linker(engine: &Engine, world: World) -> wasmtime::Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    clocks::bound_sleeps(&mut linker)?;
    match world {
        World::Scorer => {
            scorer::Scorer::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?
        }
        World::Notifier => {
            notifier::Notifier::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?
        }
    }
    Ok(linker)
}

impl Sandbox {
    /// Builds the engine (pooling allocator, epoch interruption), starts its epoch ticker
    /// and prepares one linker per world.
    ///
    /// # Errors
    /// [`HostError::Config`] when the configuration or the engine is rejected.
    pub fn new(config: HostConfig) -> Result<Sandbox, HostError> {
        let engine = config.engine()?;
        let link = |world| {
            linker(&engine, world)
                .map_err(|e| HostError::engine(Some(&format!("linking {world}")), e))
        };
        let scorer = link(World::Scorer)?;
        let notifier = link(World::Notifier)?;
        let ticker =
            EpochTicker::start(&engine, config.epoch_tick).map_err(|e| HostError::Config {
                message: format!("starting the epoch ticker: {e}"),
                source: Some(Box::new(e)),
            })?;
        Ok(Sandbox {
            inner: Arc::new(Inner {
                ticker,
                key: engine_key(&engine),
                engine,
                scorer,
                notifier,
                slots: Slots {
                    free: Mutex::new(config.max_running_calls.min(config.max_concurrent_calls)),
                    freed: Condvar::new(),
                },
                config,
            }),
        })
    }

    /// The host-wide configuration.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// Names the engine build for compiled-artifact cache keys.
    pub fn engine_key(&self) -> &str {
        &self.inner.key
    }

    /// Bytes that idle pool slots keep resident for their next call: the pages earlier
    /// calls wrote, reset to the component's initial contents, at most
    /// [`HostConfig::keep_resident_bytes`] per memory and table.
    pub fn idle_resident_bytes(&self) -> u64 {
        self.inner
            .engine
            .pooling_allocator_metrics()
            .map_or(0, |m| {
                (m.unused_memory_bytes_resident() + m.unused_table_bytes_resident()) as u64
            })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn epoch_ticks(&self) -> u64 {
        self.inner.ticker.ticks()
    }

    pub(crate) fn acquire_slot(&self) -> SlotGuard<'_> {
        self.inner.slots.acquire()
    }

    /// How many of the `max_running_calls` slots are free at this instant (a gauge: calls
    /// beyond them wait for one).
    pub fn free_running_slots(&self) -> u32 {
        *self
            .inner
            .slots
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The cheap checks before compiling: the header and size, then the memories and
    /// tables the component declares against the pool's ceilings.
    ///
    /// # Errors
    /// As [`inspect::check_header`] and [`inspect::check_limits`].
    pub(crate) fn check(&self, bytes: &[u8]) -> Result<(), AddError> {
        let config = &self.inner.config;
        inspect::check_header(bytes, config.max_plugin_bytes)?;
        inspect::check_limits(
            bytes,
            inspect::Ceilings {
                memory_bytes: config.max_memory_bytes,
                table_elements: u64::try_from(config.max_table_elements).unwrap_or(u64::MAX),
            },
        )
    }

    /// Compiles `bytes` in memory after the header checks.
    pub(crate) fn compile(&self, bytes: &[u8]) -> Result<Component, AddError> {
        self.check(bytes)?;
        Component::new(&self.inner.engine, bytes).map_err(|e| {
            let (message, source) = wasmtime_cause(e);
            AddError::Invalid {
                message,
                source: Some(source),
            }
        })
    }

    /// Finds the component's world, links and type-checks it against that world, and
    /// instantiates it once (under the default limits, calling nothing) so that anything
    /// that would fail every call fails now.
    pub(crate) fn prepare(
        &self,
        component: &Component,
        label: Arc<str>,
    ) -> Result<LoadedPlugin, AddError> {
        let (_, _, names) = inspect::surface(&self.inner.engine, component);
        let world = inspect::world_by_exports(&names)?;
        let linker = match world {
            World::Scorer => &self.inner.scorer,
            World::Notifier => &self.inner.notifier,
        };
        let instance_pre = linker.instantiate_pre(component).map_err(|e| {
            let (message, source) = wasmtime_cause(e);
            let source = Some(source);
            // A mistyped `log` import is a world mismatch; anything else is an import
            // the sandbox does not offer.
            if message.contains("`log`") {
                AddError::WrongWorld {
                    world,
                    message,
                    source,
                }
            } else {
                AddError::Imports { message, source }
            }
        })?;
        let wrong = |e: wasmtime::Error| {
            let (message, source) = wasmtime_cause(e);
            AddError::WrongWorld {
                world,
                message,
                source: Some(source),
            }
        };
        let pre = match world {
            World::Scorer => WorldPre::Scorer(scorer::ScorerPre::new(instance_pre).map_err(wrong)?),
            World::Notifier => {
                WorldPre::Notifier(notifier::NotifierPre::new(instance_pre).map_err(wrong)?)
            }
        };
        let plugin = LoadedPlugin { world, label, pre };
        self.trial_instantiation(&plugin)?;
        Ok(plugin)
    }

    fn trial_instantiation(&self, plugin: &LoadedPlugin) -> Result<(), AddError> {
        // Generous limits: this catches structural problems, not budget overruns (which
        // depend on the per-plugin limits, set after the plugin exists).
        let config = &self.inner.config;
        let limits = Limits {
            time_budget_ms: config.default_limits.time_budget_ms.max(1000),
            memory_bytes: config.max_memory_bytes,
            output_bytes: config.default_limits.output_bytes,
        };
        let _slot = self.acquire_slot();
        let mut store = self.store(&limits, plugin.label.clone());
        let result = match &plugin.pre {
            WorldPre::Scorer(pre) => pre.instantiate(&mut store).map(drop),
            WorldPre::Notifier(pre) => pre.instantiate(&mut store).map(drop),
        };
        result.map_err(|e| AddError::Instantiate {
            message: crate::classify::classify(e, store.data()).to_string(),
        })
    }

    /// A fresh store for one call: limiter, epoch deadline, hostcall fuel.
    pub(crate) fn store(&self, limits: &Limits, label: Arc<str>) -> Store<State> {
        let ticking = self.inner.ticker.ticking();
        let state = State::new(&self.inner.config, limits, label, ticking);
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        let tick = self.inner.config.epoch_tick.as_nanos().max(1);
        let ticks = limits.time_budget().as_nanos().div_ceil(tick);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
        store.epoch_deadline_trap();
        // Bounds what one lift out of the guest (the result, a log line) may allocate on
        // the host, whatever the guest's lists alias.
        let fuel = limits.output_bytes.saturating_mul(4).max(64 << 10);
        store.set_hostcall_fuel(usize::try_from(fuel).unwrap_or(usize::MAX));
        store
    }

    /// Checks, compiles and loads `bytes` without a registry (as `plugin invoke` does).
    ///
    /// # Errors
    /// Why the bytes are not a usable plugin.
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedPlugin, AddError> {
        let component = self.compile(bytes)?;
        let digest = inspect::digest(bytes);
        self.prepare(&component, format!("sha256:{}", &digest[..12]).into())
    }

    /// What `plugin check` prints: world, imports, exports, size, digest.
    ///
    /// # Errors
    /// Why the bytes are not a usable plugin.
    pub fn inspect(&self, bytes: &[u8]) -> Result<Inspection, AddError> {
        let component = self.compile(bytes)?;
        let digest = inspect::digest(bytes);
        let plugin = self.prepare(&component, format!("sha256:{}", &digest[..12]).into())?;
        let (imports, exports, _) = inspect::surface(&self.inner.engine, &component);
        Ok(Inspection {
            world: plugin.world,
            imports,
            exports,
            size: bytes.len() as u64,
            digest,
        })
    }
}
