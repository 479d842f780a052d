//! Instance ids: time-ordered (so listings come out oldest first) and unique across
//! restarts (a random part), e.g. `0190f3a2c41b-5e3a9c1d`.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};

/// Makes instance ids.
#[derive(Debug)]
pub struct IdGenerator {
    counter: AtomicU32,
}

impl Default for IdGenerator {
    fn default() -> Self {
        // Seed the counter randomly so two processes started in the same millisecond differ.
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish() as u32;
        IdGenerator {
            counter: AtomicU32::new(seed),
        }
    }
}

impl IdGenerator {
    /// A new id for `now_ms` (milliseconds since the epoch).
    pub fn next(&self, now_ms: i64) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{:012x}-{n:08x}", now_ms.max(0))
    }
}

/// FNV-1a: a stable hash for lock striping and request fingerprints (stable across
/// processes and Rust versions, unlike `DefaultHasher`).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
