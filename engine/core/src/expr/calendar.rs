//! The CEL functions that ask a business calendar, so rules such as "a holiday is near"
//! are data, not code:
//!
//! - `is_working_time(ts, 'cn-office')`: true when `ts` falls in the calendar's working hours;
//! - `add_working(ts, d, 'cn-office')`: `ts` plus `d` of working time (`d` a duration or
//!   ISO 8601 text such as `'PT4H'`);
//! - `next_holiday(ts, 'cn-office')`: the local start (midnight) of the first holiday on or
//!   after `ts`'s local date, or `null` when none is listed.
//!
//! The calendars are the server's (see [`crate::calendar`]); an expression naming one that
//! does not exist fails like any CEL runtime error. Each call is charged 100 iterations of
//! the evaluation budget (a working-time sum walks day by day, at most
//! [`crate::calendar::MAX_WALK_DAYS`]), so a comprehension cannot run thousands of them.

use super::budget::charge_iterations;
use crate::calendar::{Calendar, Calendars};
use crate::definition::duration::parse_iso_duration;
use cel::common::types::{CelBool, CelDuration, CelNull, CelString, CelTimestamp, DYN_TYPE};
use cel::common::value::CowVal;
use cel::ExecutionError;
use chrono::{DateTime, TimeDelta, Utc};
use std::cell::RefCell;
use std::sync::Arc;

/// What one calendar call costs in comprehension iterations.
const CALL_COST: u64 = 100;

thread_local! {
    /// The calendars of the expression being evaluated on this thread.
    static CALENDARS: RefCell<Option<Arc<Calendars>>> = const { RefCell::new(None) };
}

/// Runs `f` with `calendars` visible to the calendar functions on this thread.
pub(super) fn with_calendars<R>(calendars: Option<&Arc<Calendars>>, f: impl FnOnce() -> R) -> R {
    let previous = CALENDARS.with(|c| c.replace(calendars.cloned()));
    let out = f();
    CALENDARS.with(|c| *c.borrow_mut() = previous);
    out
}

/// Registers the calendar functions in `env`.
pub(super) fn register(env: &mut cel::Env) {
    let ours: [(&str, usize, cel::common::functions::Function); 3] = [
        ("is_working_time", 2, is_working_time),
        ("add_working", 3, add_working),
        ("next_holiday", 2, next_holiday),
    ];
    for (name, arity, op) in ours {
        env.add_overload(
            name,
            &format!("{name}/{arity}"),
            (0..arity).map(|_| DYN_TYPE).collect(),
            op,
        )
        .expect("the calendar functions are declared once");
    }
}

fn fail(function: &str, message: impl Into<String>) -> ExecutionError {
    ExecutionError::function_error(function, message.into())
}

/// The calendar named by `arg` and the time in `ts`, charged to the budget.
fn calendar_and_time(
    function: &str,
    ts: &CowVal<'_, '_>,
    name: &CowVal<'_, '_>,
) -> Result<(Arc<Calendar>, DateTime<Utc>), ExecutionError> {
    charge_iterations(CALL_COST)?;
    let Some(t) = ts.downcast_ref::<CelTimestamp>() else {
        return Err(fail(function, "the first argument must be a timestamp"));
    };
    let Some(name) = name.downcast_ref::<CelString>() else {
        return Err(fail(
            function,
            "the calendar must be named by a string, as in 'cn-office'",
        ));
    };
    let name = name.inner();
    let calendar = CALENDARS.with(|c| c.borrow().as_ref().and_then(|all| all.get(name).cloned()));
    match calendar {
        Some(c) => Ok((c, t.inner().with_timezone(&Utc))),
        None => Err(fail(
            function,
            format!("no business calendar named '{name}'"),
        )),
    }
}

fn is_working_time<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (cal, t) = calendar_and_time("is_working_time", &args[0], &args[1])?;
    Ok(CowVal::owned(CelBool::from(cal.is_working(t))))
}

fn add_working<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (cal, t) = calendar_and_time("add_working", &args[0], &args[2])?;
    let amount: TimeDelta = if let Some(d) = args[1].downcast_ref::<CelDuration>() {
        *d.inner()
    } else if let Some(text) = args[1].downcast_ref::<CelString>() {
        parse_iso_duration(text.inner()).map_err(|e| fail("add_working", e.to_string()))?
    } else {
        return Err(fail(
            "add_working",
            "the amount must be a duration or text such as 'PT4H'",
        ));
    };
    let sum = cal.add_working(t, amount).ok_or_else(|| {
        fail(
            "add_working",
            "the sum falls beyond what the calendar can reach",
        )
    })?;
    Ok(CowVal::owned(CelTimestamp::from(sum.fixed_offset())))
}

fn next_holiday<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (cal, t) = calendar_and_time("next_holiday", &args[0], &args[1])?;
    match cal.next_holiday(t).and_then(|d| cal.start_of(d)) {
        Some(start) => Ok(CowVal::owned(CelTimestamp::from(start.fixed_offset()))),
        None => Ok(CowVal::owned(CelNull)),
    }
}
