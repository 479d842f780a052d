//! The due-timer index's low-water mark: a key below which no timer key is live, so that
//! the scan for due timers seeks past the timers already fired instead of walking them.
//!
//! Why: the due index is a queue kept in an LSM tree (fjall). Firing a timer deletes its
//! key, and a deleted key stays in the tree as a tombstone until a compaction reaches the
//! last level. A scan from the front of the index visits every such tombstone before the
//! first live key, so in a burst (100,000 timers due at once, fired 512 per round) each
//! round walked the tombstones of every round before it, and a steady stream of timers
//! made every scan longer until the next compaction. With the mark, a round walks only
//! the tombstones of the round before it.
//!
//! The invariant: every live timer key sorts after `after`. A scan that starts after the
//! mark and meets its first live key `k` proves that nothing between the mark and `k` was
//! live when its snapshot was taken; what commits put after that is reported through
//! [`TimerFloor::armed`] and lowers the mark again. Deletions never break the invariant.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// The low-water mark of one store's timer index (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct TimerFloor {
    state: Mutex<Floor>,
    /// Held for a whole scan, so two scans do not mix their marks.
    scan: Mutex<()>,
}

#[derive(Debug, Default)]
struct Floor {
    /// Every live timer key sorts after this one; `None`: nothing known, scan from the
    /// front of the index.
    after: Option<Vec<u8>>,
    /// The smallest timer key put since the current scan began (`None`: none, or no scan
    /// is under way).
    armed_since_scan: Option<Vec<u8>>,
}

/// The largest key a scan may start after and still meet `key`: `key` without its last
/// byte, a proper prefix of it, so it sorts just before it. Every key between the two
/// (the prefix followed by a smaller byte) sorts before `key` too.
fn before(key: &[u8]) -> Vec<u8> {
    key[..key.len().saturating_sub(1)].to_vec()
}

fn lower(slot: &mut Option<Vec<u8>>, to: Vec<u8>) {
    if slot.as_ref().is_none_or(|now| to < *now) {
        *slot = Some(to);
    }
}

impl TimerFloor {
    fn state(&self) -> MutexGuard<'_, Floor> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `scan(after)` (a scan of the timer index that starts after the key given,
    /// `None`: from the front) and moves the mark to just before the first live key the
    /// scan returns, or reported through [`TimerFloor::armed`] meanwhile. `scan` returns
    /// the first live key it met (one past the due time it looked for counts too), or
    /// `None` if it met none: then the mark stays.
    ///
    /// # Errors
    /// What `scan` returns; the mark stays.
    pub(crate) fn scanning<E>(
        &self,
        scan: impl FnOnce(Option<&[u8]>) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<(), E> {
        let _one = self.scan.lock().unwrap_or_else(PoisonError::into_inner);
        let start = {
            let mut s = self.state();
            s.armed_since_scan = None;
            s.after.clone()
        };
        let first = scan(start.as_deref())?;
        let mut s = self.state();
        let armed = s.armed_since_scan.take();
        if let Some(first) = first {
            let mut mark = Some(before(&first));
            if let Some(armed) = armed {
                lower(&mut mark, before(&armed));
            }
            s.after = mark;
        }
        Ok(())
    }

    /// The mark as it is: where a look at the first live key may start.
    pub(crate) fn after(&self) -> Option<Vec<u8>> {
        self.state().after.clone()
    }

    /// A batch putting timer key `key` (the smallest it puts) was applied: the mark goes
    /// below it if it was not already. Called after the batch is visible to scans.
    pub(crate) fn armed(&self, key: &[u8]) {
        let mut s = self.state();
        if s.after.as_deref().is_some_and(|a| a >= key) {
            s.after = Some(before(key));
        }
        lower(&mut s.armed_since_scan, key.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A timer index as a sorted set, scanned as the store does: from after the mark, the
    /// first live key returned.
    fn scan_from(index: &BTreeSet<Vec<u8>>, after: Option<&[u8]>) -> Option<Vec<u8>> {
        index
            .iter()
            .find(|k| after.is_none_or(|a| k.as_slice() > a))
            .cloned()
    }

    fn key(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn after_a_round_fires_the_next_scan_starts_just_before_the_first_timer_still_armed() {
        let floor = TimerFloor::default();
        let mut index: BTreeSet<Vec<u8>> = ["t/1/a", "t/1/b", "t/2/a"].map(key).into();
        floor
            .scanning::<()>(|after| Ok(scan_from(&index, after)))
            .unwrap();
        // Round one fires the two timers due at 1.
        index.remove(&key("t/1/a"));
        index.remove(&key("t/1/b"));
        floor
            .scanning::<()>(|after| Ok(scan_from(&index, after)))
            .unwrap();
        let mark = floor.after().unwrap();
        assert!(mark > key("t/1/b"), "the fired timers are behind the mark");
        assert_eq!(scan_from(&index, Some(&mark)), Some(key("t/2/a")));
    }

    #[test]
    fn a_timer_armed_before_the_mark_lowers_it_so_the_next_scan_finds_it() {
        let floor = TimerFloor::default();
        let mut index: BTreeSet<Vec<u8>> = ["t/5/a"].map(key).into();
        floor
            .scanning::<()>(|after| Ok(scan_from(&index, after)))
            .unwrap();
        // A command arms a timer due earlier than every armed one (a deadline in the past).
        index.insert(key("t/3/x"));
        floor.armed(&key("t/3/x"));
        let mark = floor.after();
        assert_eq!(scan_from(&index, mark.as_deref()), Some(key("t/3/x")));
    }

    #[test]
    fn a_timer_armed_while_a_scan_runs_unseen_by_it_is_not_skipped_by_the_mark_it_leaves() {
        let floor = TimerFloor::default();
        let index: BTreeSet<Vec<u8>> = ["t/5/a"].map(key).into();
        floor
            .scanning::<()>(|after| {
                // The scan's snapshot holds only t/5/a; a commit puts t/2/x meanwhile.
                let seen = scan_from(&index, after);
                floor.armed(&key("t/2/x"));
                Ok(seen)
            })
            .unwrap();
        let mark = floor.after().unwrap();
        assert!(mark < key("t/2/x"), "mark {mark:?} would skip t/2/x");
    }

    #[test]
    fn a_scan_that_fails_or_meets_nothing_leaves_the_mark_where_it_was() {
        let floor = TimerFloor::default();
        let index: BTreeSet<Vec<u8>> = ["t/5/a"].map(key).into();
        floor
            .scanning::<()>(|after| Ok(scan_from(&index, after)))
            .unwrap();
        let mark = floor.after();
        assert_eq!(floor.scanning(|_| Err("disk")), Err("disk"));
        assert_eq!(floor.after(), mark);
        floor.scanning::<()>(|_| Ok(None)).unwrap();
        assert_eq!(floor.after(), mark);
    }
}
