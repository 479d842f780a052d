//! Retries: exponential backoff with jitter, capped, and a dead letter after a number of
//! attempts. Pure functions of the record, the outcome, `now` and a random fraction, so
//! they are tested without clocks or receivers.

use super::delivery_error::DeliveryError;
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;
use waystation_core::effect::DeliveryOutcome;
use waystation_store::{OutboxRecord, OutboxStatus};

/// When failed attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all before a message is dead (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub first_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts over about 2 hours: waits of 5 s, 10 s, 20 s, ... capped at one hour.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            first_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (from 1): `first_backoff * 2^(attempt-1)`
    /// capped at `max_backoff`, of which half is fixed and half scaled by `jitter` (0 to 1),
    /// so receivers that failed together are not all retried in the same instant.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        let full = self
            .first_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// The record after attempt `attempt` ended with `result` at `now`, and what the
    /// history says of it.
    pub(crate) fn after_attempt(
        &self,
        record: &OutboxRecord,
        attempt: u32,
        result: &Result<(), DeliveryError>,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> (OutboxRecord, DeliveryOutcome) {
        let mut after = OutboxRecord {
            attempts: attempt,
            last_attempt_at: Some(now),
            next_attempt_at: None,
            ..record.clone()
        };
        let outcome = match result {
            Ok(()) => {
                after.status = OutboxStatus::Delivered;
                after.finished_at = Some(now);
                after.last_error = None;
                DeliveryOutcome::Delivered
            }
            Err(e) if e.permanent || attempt >= self.max_attempts.max(1) => {
                after.status = OutboxStatus::Dead;
                after.finished_at = Some(now);
                after.last_error = Some(e.message.clone());
                DeliveryOutcome::Dead
            }
            Err(e) => {
                let wait =
                    TimeDelta::from_std(self.backoff(attempt, jitter)).unwrap_or(TimeDelta::MAX);
                after.status = OutboxStatus::Pending;
                after.next_attempt_at = Some(now.checked_add_signed(wait).unwrap_or(now));
                after.last_error = Some(e.message.clone());
                DeliveryOutcome::Retrying
            }
        };
        (after, outcome)
    }
}

/// A fraction in [0, 1) that differs per message, attempt and moment: enough randomness to
/// spread retries, without a random-number crate.
pub(crate) fn jitter(id: &str, attempt: u32) -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // splitmix64 over the message's hash, the attempt and the time.
    let mut z = crate::ids::fnv1a(id.as_bytes())
        ^ u64::from(attempt).rotate_left(32)
        ^ nanos.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use waystation_core::OutboundMessage;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-06T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn record() -> OutboxRecord {
        OutboxRecord::queued(
            OutboundMessage {
                id: "i1.m1".into(),
                instance_id: "i1".into(),
                channel: "webhook".into(),
                recipient: "ops".into(),
                subject: "s".into(),
                body: "b".into(),
                metadata: Default::default(),
            },
            t0(),
        )
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            first_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_moves_only_the_upper_half() {
        let p = policy();
        let secs = |attempt, jitter| p.backoff(attempt, jitter).as_secs_f64();
        assert_eq!(
            [1, 2, 3, 4, 10].map(|a| secs(a, 1.0)),
            [10.0, 20.0, 40.0, 60.0, 60.0]
        );
        assert_eq!([1, 2, 3].map(|a| secs(a, 0.0)), [5.0, 10.0, 20.0]);
        assert_eq!(secs(2, 0.5), 15.0);
        assert_eq!(secs(u32::MAX, 1.0), 60.0, "no overflow");
        for _ in 0..100 {
            let j = jitter("i1.m1", 3);
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn a_failure_waits_then_the_last_attempt_is_dead_and_a_success_is_delivered() {
        let p = policy();
        let failed = Err(DeliveryError::transient("HTTP 503"));
        let (first, outcome) = p.after_attempt(&record(), 1, &failed, t0(), 0.0);
        assert_eq!(outcome, DeliveryOutcome::Retrying);
        assert_eq!(first.status, OutboxStatus::Pending);
        assert_eq!(first.attempts, 1);
        assert_eq!(first.next_attempt_at, Some(t0() + TimeDelta::seconds(5)));
        assert_eq!(first.queue_time(), t0() + TimeDelta::seconds(5));
        assert_eq!(first.last_error.as_deref(), Some("HTTP 503"));

        let (last, outcome) = p.after_attempt(&first, 4, &failed, t0(), 0.0);
        assert_eq!(outcome, DeliveryOutcome::Dead);
        assert_eq!(last.status, OutboxStatus::Dead);
        assert_eq!(last.finished_at, Some(t0()));
        assert_eq!(last.next_attempt_at, None);

        let (ok, outcome) = p.after_attempt(&first, 2, &Ok(()), t0(), 0.0);
        assert_eq!(outcome, DeliveryOutcome::Delivered);
        assert_eq!((ok.status, ok.attempts), (OutboxStatus::Delivered, 2));
        assert_eq!(ok.last_error, None);
    }

    #[test]
    fn a_permanent_failure_is_dead_at_the_first_attempt() {
        let (after, outcome) = policy().after_attempt(
            &record(),
            1,
            &Err(DeliveryError::permanent("channel 'sms' is not configured")),
            t0(),
            0.5,
        );
        assert_eq!(outcome, DeliveryOutcome::Dead);
        assert_eq!(after.status, OutboxStatus::Dead);
        assert_eq!(
            after.last_error.as_deref(),
            Some("channel 'sms' is not configured")
        );
    }
}
