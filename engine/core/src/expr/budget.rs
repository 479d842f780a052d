//! The evaluation budget: what one evaluation may still spend in comprehension iterations
//! and bytes of values built, per thread. In a module of its own because the evaluator's
//! functions in `expr` and the calendar functions in `expr::calendar` both charge it.

use cel::ExecutionError;
use std::cell::Cell;

/// The most comprehension iterations one evaluation may run, all loops together.
pub const MAX_ITERATIONS: u64 = 100_000;
/// The most bytes of values one evaluation may build (strings concatenated, replaced or
/// joined, list and map elements assembled), measured before they are built.
pub const MAX_BUILT_BYTES: u64 = 16 * 1024 * 1024;

/// What each evaluation may still spend: set before it runs, read after.
#[derive(Clone, Copy)]
struct Budget {
    iterations: u64,
    bytes: u64,
    exceeded: Option<&'static str>,
}

thread_local! {
    static BUDGET: Cell<Budget> = const { Cell::new(FULL) };
}

/// A whole budget, as each evaluation starts with.
const FULL: Budget = Budget {
    iterations: MAX_ITERATIONS,
    bytes: MAX_BUILT_BYTES,
    exceeded: None,
};

const ITERATIONS_EXCEEDED: &str =
    "it ran more than 100000 comprehension iterations (exists, all, map, filter) in one evaluation";
const BYTES_EXCEEDED: &str =
    "it built more than 16 MiB of strings, lists and maps in one evaluation";

/// Gives this thread's next evaluation a whole budget.
pub(super) fn reset() {
    BUDGET.with(|b| b.set(FULL));
}

/// What the last evaluation on this thread went over, if it did: the sentence for people.
pub(super) fn exceeded() -> Option<&'static str> {
    BUDGET.with(|b| b.get().exceeded)
}

/// Records that the evaluation went over (the first overrun is the one reported) and the
/// error that stops the CEL call.
fn over_budget(which: &'static str) -> ExecutionError {
    BUDGET.with(|b| {
        let mut budget = b.get();
        budget.exceeded.get_or_insert(which);
        b.set(budget);
    });
    ExecutionError::function_error("budget", which)
}

/// Spends `n` comprehension iterations.
///
/// # Errors
/// The `budget` function error once the iterations left are fewer than `n`, or after any
/// overrun: the evaluation is over its budget.
pub(super) fn charge_iterations(n: u64) -> Result<(), ExecutionError> {
    BUDGET
        .with(|b| {
            let mut budget = b.get();
            if budget.exceeded.is_some() || n > budget.iterations {
                return Err(());
            }
            budget.iterations -= n;
            b.set(budget);
            Ok(())
        })
        .map_err(|()| over_budget(ITERATIONS_EXCEEDED))
}

/// Spends `n` bytes of values about to be built.
///
/// # Errors
/// The `budget` function error once the bytes left are fewer than `n`, or after any
/// overrun: the value is not built.
pub(super) fn charge_bytes(n: u64) -> Result<(), ExecutionError> {
    BUDGET
        .with(|b| {
            let mut budget = b.get();
            if budget.exceeded.is_some() || n > budget.bytes {
                return Err(());
            }
            budget.bytes -= n;
            b.set(budget);
            Ok(())
        })
        .map_err(|()| over_budget(BYTES_EXCEEDED))
}

/// The bytes this evaluation may still build: the limit a size measurement stops at.
pub(super) fn bytes_left() -> u64 {
    BUDGET.with(|b| b.get().bytes)
}
