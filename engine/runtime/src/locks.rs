//! One writer per instance: commands on the same instance run one at a time, commands on
//! different instances in parallel. Striped: a fixed set of async mutexes, chosen by a hash
//! of the instance id, so no lock table grows with the number of instances.

use crate::ids::fnv1a;
use tokio::sync::{Mutex, MutexGuard};

/// The stripes.
pub struct InstanceLocks {
    // tokio's Mutex, because the guard is held across the awaits of a plugin call.
    stripes: Vec<Mutex<()>>,
}

impl InstanceLocks {
    /// `n` stripes.
    pub fn new(n: usize) -> Self {
        InstanceLocks {
            stripes: (0..n.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Waits for the lock of `key` (an instance id, or an idempotency key for starts).
    pub async fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        self.stripes[self.stripe(key)].lock().await
    }

    fn stripe(&self, key: &str) -> usize {
        (fnv1a(key.as_bytes()) % self.stripes.len() as u64) as usize
    }

    /// Waits for the locks of all `keys` (a start's idempotency key and business key).
    /// Stripes are taken in ascending order, each once, so two callers holding some and
    /// waiting for others can never wait for each other; a one-key caller holds one stripe
    /// and waits for nothing else.
    pub async fn lock_all(&self, keys: &[&str]) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = keys.iter().map(|k| self.stripe(k)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for i in stripes {
            guards.push(self.stripes[i].lock().await);
        }
        guards
    }
}
