//! The epoch ticker: one thread per engine advancing the epoch every tick while a call's
//! store exists, which is what turns a store's epoch deadline into a wall-clock time
//! budget.
//!
//! Why it sleeps when no store exists: a deadline is set relative to the epoch when its
//! store is made, so ticks with no store alive measure nothing, and an idle server would
//! otherwise wake a thousand times a second (at the default 1 ms tick) for nothing. Every
//! store holds a [`Ticking`] guard (`Sandbox::store`, the only place stores are made); the
//! first guard wakes the thread, and the thread parks again once the last one is dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::Duration;
use wasmtime::Engine;

/// Advances the engine's epoch every `tick` while a [`Ticking`] guard exists, until
/// dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    ticks: Arc<AtomicU64>,
    /// Guards alive: stores that may be running guest code.
    alive: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

/// Keeps the ticker ticking while it lives (held by each call's store).
pub(crate) struct Ticking {
    alive: Arc<AtomicUsize>,
}

impl Drop for Ticking {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EpochTicker {
    /// Starts the ticker thread (parked until the first [`EpochTicker::ticking`]).
    pub(crate) fn start(engine: &Engine, tick: Duration) -> std::io::Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        let ticks = Arc::new(AtomicU64::new(0));
        let alive = Arc::new(AtomicUsize::new(0));
        let weak = engine.weak();
        let thread = {
            let (stop, ticks, alive) = (stop.clone(), ticks.clone(), alive.clone());
            std::thread::Builder::new()
                .name("waystation-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        if alive.load(Ordering::SeqCst) == 0 {
                            // Woken by the next guard (an unpark before this park makes
                            // it return at once) or by the drop; spurious wake-ups loop.
                            std::thread::park();
                            continue;
                        }
                        std::thread::sleep(tick);
                        let Some(engine) = weak.upgrade() else { break };
                        engine.increment_epoch();
                        ticks.fetch_add(1, Ordering::Relaxed);
                    }
                })?
        };
        Ok(EpochTicker {
            stop,
            ticks,
            alive,
            thread: Some(thread),
        })
    }

    /// A guard that keeps the epoch advancing while it lives; the first one wakes the
    /// thread.
    pub(crate) fn ticking(&self) -> Ticking {
        if self.alive.fetch_add(1, Ordering::SeqCst) == 0 {
            if let Some(t) = self.thread() {
                t.unpark();
            }
        }
        Ticking {
            alive: self.alive.clone(),
        }
    }

    /// Ticks so far.
    pub(crate) fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }

    fn thread(&self) -> Option<&Thread> {
        self.thread.as_ref().map(JoinHandle::thread)
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread() {
            t.unpark();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EpochTicker;
    use std::time::{Duration, Instant};

    /// Waits up to 5 s for `done`, checking every few milliseconds.
    fn within_5s(mut done: impl FnMut() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn an_idle_engine_s_epoch_stands_still_and_a_call_s_store_sets_it_going() {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let ticker = EpochTicker::start(&engine, Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(ticker.ticks(), 0, "no store: no tick");

        let store = ticker.ticking();
        assert!(
            within_5s(|| ticker.ticks() >= 5),
            "a store exists: it ticks"
        );
        let second = ticker.ticking();
        drop(store);
        let before = ticker.ticks();
        assert!(
            within_5s(|| ticker.ticks() > before + 3),
            "one store left: it still ticks"
        );
        drop(second);
        // At most the tick under way when the last guard went; then it parks.
        let stands_still = within_5s(|| {
            let a = ticker.ticks();
            std::thread::sleep(Duration::from_millis(40));
            ticker.ticks() == a
        });
        assert!(stands_still, "the last store gone: the epoch stands still");
        let again = ticker.ticking();
        let parked_at = ticker.ticks();
        assert!(within_5s(|| ticker.ticks() > parked_at), "woken again");
        drop(again);
    }
}
