//! The in-memory backend: fast logic tests without a disk, same semantics as sled.

use crate::kv::{Kv, Mutation};
use crate::StoreError;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

/// A `BTreeMap` behind a lock. A std `RwLock`: held only for map operations, never across
/// an await.
#[derive(Debug, Default)]
pub struct MemoryKv {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Kv for MemoryKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.read().map_err(poisoned)?.get(key).cloned())
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let map = self.map.read().map_err(poisoned)?;
        let start = match after {
            Some(a) => Bound::Excluded(a.to_vec()),
            None => Bound::Included(prefix.to_vec()),
        };
        let end = crate::kv::prefix_end(prefix);
        // `BTreeMap::range` panics on a start past its end: nothing lies between them.
        if let (Some(a), Some(e)) = (after, &end) {
            if a >= e.as_slice() {
                return Ok(());
            }
        }
        let end = end.map_or(Bound::Unbounded, Bound::Excluded);
        for (k, v) in map.range((start, end)) {
            if !k.starts_with(prefix) || !visit(k, v) {
                break;
            }
        }
        Ok(())
    }

    fn apply(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
        let mut map = self.map.write().map_err(poisoned)?;
        for m in batch {
            match m {
                Mutation::Put(k, v) => {
                    map.insert(k, v);
                }
                Mutation::Delete(k) => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> StoreError {
    StoreError::backend("in-memory store lock poisoned by a panic")
}
