//! The clock seam. `core` takes `now` as a parameter; drivers get it from a [`Clock`].

use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Mutex;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock {
    // A std Mutex: held for a copy, never across an await.
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward by `by`.
    ///
    /// # Panics
    /// If the mutex was poisoned by a panicking holder.
    pub fn advance(&self, by: TimeDelta) {
        *self.now.lock().unwrap() += by;
    }

    /// Sets the clock to `to`.
    ///
    /// # Panics
    /// If the mutex was poisoned by a panicking holder.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap() = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }
}
