//! Time as a plugin sees it. The wall clock is frozen at the Unix epoch (the host hands
//! real dates in through the input); the monotonic clock counts from the start of the
//! call. Sleeping through `wasi:clocks/monotonic-clock` is cut short at the call's
//! deadline, because an epoch deadline cannot interrupt a blocked host call: without
//! this a `sleep(3600)` would hold a server thread for an hour.

use std::time::{Duration, Instant};
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::StoreContextMut;
use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// The `wasi:clocks/monotonic-clock` instance wasmtime-wasi 48 registers (WASI 0.2.12;
/// guests importing any 0.2.x version resolve to it). A test proves the shadowing works.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// A wall clock stuck at 1970-01-01T00:00:00Z: plugins stay deterministic.
pub(crate) struct FrozenWallClock;

impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// Nanoseconds since the call started.
pub(crate) struct CallClock {
    pub(crate) started: Instant,
}

impl HostMonotonicClock for CallClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// What the bounded sleeps need from a call's store data: where to put the sleep's
/// pollable, when the call started and when its time budget ends. Implemented by the
/// call's `State`; a trait so that the clocks need not know the whole store.
pub(crate) trait CallTime: Send + 'static {
    /// The resource table pollables are pushed into.
    fn table(&mut self) -> &mut ResourceTable;
    /// When the call started (the monotonic clock's zero).
    fn started(&self) -> Instant;
    /// When the call's time budget ends: no sleep lasts past it.
    fn deadline(&self) -> Instant;
}

/// A pollable ready at `until` (never later than the call's deadline).
struct BoundedSleep {
    until: tokio::time::Instant,
}

#[wasmtime_wasi::async_trait]
impl Pollable for BoundedSleep {
    async fn ready(&mut self) {
        if self.until > tokio::time::Instant::now() {
            tokio::time::sleep_until(self.until).await;
        }
    }
}

fn sleep_for(
    state: &mut impl CallTime,
    wanted: Duration,
) -> wasmtime::Result<Resource<DynPollable>> {
    let deadline = state.deadline();
    let wanted_end = Instant::now().checked_add(wanted).unwrap_or(deadline);
    let until = tokio::time::Instant::from_std(wanted_end.min(deadline));
    let sleep = state.table().push(BoundedSleep { until })?;
    subscribe(state.table(), sleep)
}

/// Replaces the two monotonic-clock functions that create sleeps with bounded ones.
pub(crate) fn bound_sleeps<T: CallTime>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, T>, (nanos,): (u64,)| {
            Ok((sleep_for(store.data_mut(), Duration::from_nanos(nanos))?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, T>, (when,): (u64,)| {
            let state = store.data_mut();
            let now = u64::try_from(state.started().elapsed().as_nanos()).unwrap_or(u64::MAX);
            let wanted = Duration::from_nanos(when.saturating_sub(now));
            Ok((sleep_for(state, wanted)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
