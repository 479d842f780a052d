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
        let i = (fnv1a(key.as_bytes()) % self.stripes.len() as u64) as usize;
        self.stripes[i].lock().await
    }
}
