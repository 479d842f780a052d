//! Retrying a command that lost a race with another node (shared stores only).
//!
//! On a shared store a command's commit applies only while the instance is still the state
//! it was computed from; otherwise the store answers [`StoreError::Conflict`] and nothing
//! was written. The command is then run again from the start - read, replay check, step,
//! commit - so it sees the other node's change (a business key now taken, an idempotency
//! key now answered, a stage now left). An embedded store never conflicts: its commands are
//! ordered by this process's locks.

use crate::RuntimeError;
use std::future::Future;
use std::time::Duration;
use waystation_store::StoreError;

/// Most runs of one command; then the conflict is the answer (503, try again).
pub(crate) const ATTEMPTS: u32 = 8;

/// True for the error a retry can cure.
pub(crate) fn is_conflict(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::Store(StoreError::Conflict { .. }))
}

/// The pause before run `attempt + 1`: 2, 4, 8 ... ms, at most 100 ms, spread by
/// `spread` (0..1) so two nodes that collided do not collide again in step.
pub(crate) fn pause(attempt: u32, spread: f64) -> Duration {
    let base = (2u64 << attempt.min(6)).min(100) as f64;
    Duration::from_micros((base * 1000.0 * (0.5 + spread)) as u64)
}

/// Runs `run` until it succeeds, fails otherwise than by a conflict, or has run
/// [`ATTEMPTS`] times.
pub(crate) async fn retry<T, F, Fut>(
    metrics: &crate::metrics::Metrics,
    mut run: F,
) -> Result<T, RuntimeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RuntimeError>>,
{
    let mut attempt = 0;
    loop {
        match run().await {
            Err(e) if is_conflict(&e) && attempt + 1 < ATTEMPTS => {
                let spread = f64::from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos() % 1000),
                ) / 1000.0;
                metrics
                    .command_conflicts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(attempt, error = %e, "lost a race with another node; running the command again");
                tokio::time::sleep(pause(attempt, spread)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_command_that_lost_a_race_runs_again_and_other_errors_do_not() {
        let mut runs = 0;
        let metrics = crate::metrics::Metrics::default();
        let ok = retry(&metrics, || {
            runs += 1;
            let n = runs;
            async move {
                if n < 3 {
                    Err(RuntimeError::Store(StoreError::conflict("node b first")))
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(ok, 3);
        assert_eq!(
            metrics
                .command_conflicts
                .load(std::sync::atomic::Ordering::Relaxed),
            2,
            "each lost race is counted for /metrics"
        );

        let mut runs = 0;
        let err = retry(&metrics, || {
            runs += 1;
            async { Err::<(), _>(RuntimeError::Store(StoreError::backend("down"))) }
        })
        .await;
        assert!(matches!(
            err,
            Err(RuntimeError::Store(StoreError::Backend { .. }))
        ));
        assert_eq!(runs, 1, "a backend error is not retried");

        let mut runs = 0;
        let err = retry(&metrics, || {
            runs += 1;
            async { Err::<(), _>(RuntimeError::Store(StoreError::conflict("always"))) }
        })
        .await;
        assert!(err.is_err_and(|e| is_conflict(&e)));
        assert_eq!(runs, ATTEMPTS, "gives up after {ATTEMPTS} runs");
    }

    #[test]
    fn pauses_grow_and_stay_short() {
        assert!(pause(0, 0.5) < pause(3, 0.5));
        assert!(pause(20, 1.0) <= Duration::from_millis(150));
    }
}
