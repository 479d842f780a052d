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

    fn stripe(&self, key: &str) -> usize {
        (fnv1a(key.as_bytes()) % self.stripes.len() as u64) as usize
    }

    /// Waits for the lock of `key` (an instance id, or an idempotency key for starts).
    pub async fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        self.stripes[self.stripe(key)].lock().await
    }

    /// Waits for the locks of `key` and, when given, `also` - an instance and the
    /// idempotency key of the command on it, so that one key is checked and recorded by
    /// one command at a time whatever instance each targets. Stripes are always taken in
    /// ascending order (one guard when both keys share a stripe), so two commands taking
    /// two locks each cannot deadlock.
    pub async fn lock_both(&self, key: &str, also: Option<&str>) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes = vec![self.stripe(key)];
        if let Some(other) = also {
            stripes.push(self.stripe(other));
        }
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for i in stripes {
            guards.push(self.stripes[i].lock().await);
        }
        guards
    }
}
