//! CEL expressions: compiled once when a definition is loaded, evaluated over the five
//! roots `input`, `vars`, `event`, `now` and `instance`.
//!
//! JSON has no timestamp type, so a JSON string in RFC 3339 form (`2024-05-03T18:00:00Z`)
//! is a CEL `timestamp` inside expressions, in UTC whatever offset it was written with:
//! `input.promised_at - duration("PT36H")` works on the order's JSON as written, and
//! `getHours()` means the same hour for every spelling of one instant. A timestamp or
//! duration an expression returns is stored back as an RFC 3339 string (UTC) or an ISO 8601
//! duration string.
//!
//! **Numbers.** Every JSON number is a CEL `double`, as the CEL specification maps JSON
//! (`google.protobuf.Value`): `{"amount": 5000}` and `{"amount": 5000.0}` are one value, so
//! `input.amount * 0.02` is `100.0` for both and `input.amount / 2.0` is `2500.5` for 5001.
//! Where an `int` meets a `double` in arithmetic the int is promoted (`input.amount * 2`,
//! `vars.notices + 1`), which plain CEL refuses; two ints stay ints (`7 / 2` is `3`), so
//! `input.count / 2` with `{"count": 5001}` is `2500.5` however the count was written.
//! Comparisons mix freely (`input.amount > 10000`).
//! A number whose magnitude is 2^53 or more cannot be kept exactly as a double and is
//! refused where it enters ([`unrepresentable_numbers`]). Integral results within that
//! range are stored back as JSON integers.
//!
//! **Functions beyond the standard library.** `duration()` reads ISO 8601 (`PT1H`, the form
//! the engine writes) as well as CEL's own `1h30m`. `nonblank(x)` is true only for a string
//! holding something other than whitespace: `null`, numbers, booleans, lists, maps, `""` and
//! `"   "` are all false, and so is a field that is missing (`nonblank(event.data.reason)`
//! reads like `has(event.data.reason) && ...`).
//!
//! **Limits.** An expression can neither crash nor stall the engine. At compile time (so
//! `validate` reports them, at the expression's pointer): at most [`MAX_EXPRESSION_BYTES`]
//! bytes, [`MAX_TOKENS`] tokens, [`MAX_NESTING`] levels of nesting and [`MAX_AST_NODES`]
//! syntax nodes, and comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`) nested at
//! most [`MAX_COMPREHENSION_NESTING`] deep. Parsing runs on a thread with a stack sized for
//! the longest expression allowed. At run time, each evaluation has a budget: at most
//! [`MAX_ITERATIONS`] comprehension iterations and [`MAX_BUILT_BYTES`] bytes of values built
//! (strings joined or replaced, lists and maps assembled); going over fails the step with an
//! [`EvalError`] of kind [`EvalErrorKind::Budget`] before the memory is taken.

mod budget;
mod calendar;
mod member_path;

use budget::{bytes_left, charge_bytes, charge_iterations};
pub use budget::{MAX_BUILT_BYTES, MAX_ITERATIONS};

use crate::definition::duration::{format_iso_duration, parse_iso_duration};
use crate::validate::ValidationError;
use cel::common::ast::{CallExpr, EntryExpr, Expr as E, IdedExpr, ListExpr, SelectExpr};
use cel::common::types::{
    CelBool, CelDouble, CelDuration, CelInt, CelList, CelMap, CelMapKey, CelString, CelTimestamp,
    CelUInt, DYN_TYPE,
};
use cel::common::value::{CowVal, Val};
use cel::ExecutionError;
use chrono::{DateTime, Datelike, FixedOffset, SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// The names an expression may start from.
pub const ROOTS: [&str; 5] = ["input", "vars", "event", "now", "instance"];

/// The longest expression accepted, in bytes of its source.
pub const MAX_EXPRESSION_BYTES: usize = 4096;
/// The most tokens (names, literals, operators, brackets) an expression may have: checked
/// before parsing, without recursion, so no input can overflow the parser.
pub const MAX_TOKENS: usize = 1024;
/// The deepest nesting of brackets, and of operators in the parsed expression
/// (`a + b + c` nests two deep, `f(g(x))` two, `a.b.c` two).
pub const MAX_NESTING: usize = 32;
/// The most syntax nodes an expression may have once its macros are expanded.
pub const MAX_AST_NODES: usize = 1024;
/// How deep comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`) may nest inside
/// one another's bodies: the work of nested loops multiplies.
pub const MAX_COMPREHENSION_NESTING: usize = 3;
/// The stack of the thread that parses and checks expressions: enough for the deepest
/// parse [`MAX_EXPRESSION_BYTES`] allows, with room to spare.
const COMPILE_STACK_BYTES: usize = 256 * 1024 * 1024;
/// Expressions nested deeper than this (after the engine's rewriting) are evaluated on a
/// thread of their own with [`EVAL_STACK_BYTES`] of stack: the evaluator recurses once per
/// level, and an unoptimised build spends up to 60 KiB of stack per level. Shallower ones,
/// nearly all, run on the caller's thread within 1 MiB.
const INLINE_EVAL_DEPTH: usize = 12;
/// The stack of a thread evaluating a deep expression: room for [`MAX_NESTING`] levels
/// and the engine's wrappers many times over.
const EVAL_STACK_BYTES: usize = 32 * 1024 * 1024;
/// JSON numbers at or beyond this magnitude are refused: a double cannot hold every
/// integer past 2^53, so the number would silently change.
pub const MAX_EXACT_NUMBER: f64 = 9_007_199_254_740_992.0;

thread_local! {
    /// True on a thread started by [`on_compile_stack`].
    static ON_COMPILE_STACK: Cell<bool> = const { Cell::new(false) };
}

static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| {
    let mut env = cel::Env::stdlib();
    // The strings extension (lowerAscii, split, ...) is part of the documented language.
    let _ = env.add_extension(cel::extensions::strings);
    calendar::register(&mut env);
    // The engine's own functions, named with '@' so no expression can call them directly:
    // the compiler rewrites calls to them (see `rewrite`).
    let ours: [(&str, usize, cel::common::functions::Function); 12] = [
        ("@timestamp", 1, timestamp),
        ("@add", 2, add),
        ("@sub", 2, sub),
        ("@mul", 2, mul),
        ("@div", 2, div),
        ("@mod", 2, rem),
        ("@iterate", 1, iterate),
        ("@grow", 1, grow),
        ("@replace", 3, replace),
        ("@replace", 4, replace),
        ("@duration", 1, duration),
        ("@nonblank", 1, nonblank),
    ];
    for (name, arity, op) in ours {
        env.add_overload(
            name,
            &format!("{name}/{arity}"),
            (0..arity).map(|_| DYN_TYPE).collect(),
            op,
        )
        .expect("the engine's functions are declared once");
    }
    Arc::new(env)
});

/// The bytes `value` occupies, roughly: 16 per value plus the text of strings. Stops
/// counting past `limit`, so measuring costs no more than the budget it checks.
fn size_of(value: &dyn Val, limit: u64) -> u64 {
    let mut total = 0u64;
    let mut stack: Vec<&dyn Val> = vec![value];
    while let Some(v) = stack.pop() {
        total += 16;
        if let Some(s) = v.downcast_ref::<CelString>() {
            total += s.inner().len() as u64;
        } else if let Some(list) = v.downcast_ref::<CelList>() {
            stack.extend(list.inner().iter().map(|b| &**b));
        } else if let Some(map) = v.downcast_ref::<CelMap>() {
            for (k, v) in map.inner() {
                if let CelMapKey::String(s) = k {
                    total += s.inner().len() as u64;
                }
                stack.push(&**v);
            }
        }
        if total > limit {
            break;
        }
    }
    total
}

fn one_arg<'b, 'v>(mut args: Vec<CowVal<'b, 'v>>) -> CowVal<'b, 'v> {
    args.pop().expect("declared with one argument")
}

/// An int or uint beside a double becomes a double, so JSON numbers (doubles) and int
/// literals meet in arithmetic.
fn promote<'b, 'v>(value: CowVal<'b, 'v>, other: &CowVal<'b, 'v>) -> CowVal<'b, 'v> {
    if other.downcast_ref::<CelDouble>().is_none() {
        return value;
    }
    if let Some(i) = value.downcast_ref::<CelInt>() {
        return CowVal::owned(CelDouble::from(*i.inner() as f64));
    }
    if let Some(u) = value.downcast_ref::<CelUInt>() {
        return CowVal::owned(CelDouble::from(*u.inner() as f64));
    }
    value
}

/// `@add(a, b)` and its siblings: CEL's arithmetic with ints promoted beside doubles, and a
/// sum of strings, lists or maps charged by its size before it is built.
fn arithmetic<'b, 'v>(
    op: &'static str,
    mut args: Vec<CowVal<'b, 'v>>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let rhs = args.pop().expect("declared with two arguments");
    let lhs = args.pop().expect("declared with two arguments");
    let lhs = promote(lhs, &rhs);
    let rhs = promote(rhs, &lhs);
    let unsupported = || {
        ExecutionError::function_error(
            op,
            format!(
                "no '{op}' for {} and {}",
                lhs.get_type().name(),
                rhs.get_type().name()
            ),
        )
    };
    // CEL's own errors print its values as Rust debug text (`Int(1)`, `TimeDelta { secs: ..
    // }`); said in the engine's words instead.
    let involves = |t: fn(&dyn Val) -> bool| t(&*lhs) || t(&*rhs);
    let plain = |e: ExecutionError| match e {
        ExecutionError::DivisionByZero(_) => {
            ExecutionError::function_error(op, "division by zero".to_owned())
        }
        ExecutionError::RemainderByZero(_) => {
            ExecutionError::function_error(op, "remainder of a division by zero".to_owned())
        }
        ExecutionError::Overflow(..) => ExecutionError::function_error(
            op,
            if involves(|v| v.downcast_ref::<CelTimestamp>().is_some()) {
                "the resulting time falls outside the years 0001-9999".to_owned()
            } else if involves(|v| v.downcast_ref::<CelDuration>().is_some()) {
                "the resulting duration is out of range".to_owned()
            } else {
                "the result does not fit a 64-bit integer".to_owned()
            },
        ),
        other => other,
    };
    let out = match op {
        "+" => {
            if lhs.downcast_ref::<CelString>().is_some()
                || lhs.downcast_ref::<CelList>().is_some()
                || lhs.downcast_ref::<CelMap>().is_some()
            {
                let left = bytes_left();
                let size = size_of(&*lhs, left).saturating_add(size_of(&*rhs, left));
                charge_bytes(size)?;
            }
            lhs.as_adder()
                .ok_or_else(unsupported)?
                .add(&*rhs)
                .map_err(plain)?
                .into_owned()
        }
        "-" => lhs
            .as_subtractor()
            .ok_or_else(unsupported)?
            .sub(&*rhs)
            .map_err(plain)?
            .into_owned(),
        "*" => lhs
            .as_multiplier()
            .ok_or_else(unsupported)?
            .mul(&*rhs)
            .map_err(plain)?
            .into_owned(),
        "/" => lhs
            .as_divider()
            .ok_or_else(unsupported)?
            .div(&*rhs)
            .map_err(plain)?
            .into_owned(),
        _ => lhs
            .as_modder()
            .ok_or_else(unsupported)?
            .modulo(&*rhs)
            .map_err(plain)?
            .into_owned(),
    };
    Ok(CowVal::Owned(out))
}

fn add<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    arithmetic("+", args)
}

fn sub<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    arithmetic("-", args)
}

fn mul<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    arithmetic("*", args)
}

fn div<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    arithmetic("/", args)
}

fn rem<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    arithmetic("%", args)
}

/// `@iterate(range)`: the range of a comprehension, charged one iteration per element.
fn iterate<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let range = one_arg(args);
    if let Some(sizer) = range.as_sizer() {
        charge_iterations(u64::try_from(*sizer.size().inner()).unwrap_or(0))?;
    }
    Ok(range)
}

/// `@grow(value)`: a value about to be built into a larger one, charged by its size.
fn grow<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let value = one_arg(args);
    let left = bytes_left();
    charge_bytes(size_of(&*value, left))?;
    Ok(value)
}

/// `@replace(s, from, to[, n])`: the strings extension's `s.replace(from, to[, n])`, with the
/// size of the result charged before it is built.
fn replace<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let text = |i: usize| -> Result<&str, ExecutionError> {
        args[i]
            .downcast_ref::<CelString>()
            .map(CelString::inner)
            .ok_or_else(|| {
                ExecutionError::function_error(
                    "replace",
                    "replace takes strings: s.replace(from, to)",
                )
            })
    };
    let (s, from, to) = (text(0)?, text(1)?, text(2)?);
    let limit = match args.get(3) {
        None => None,
        Some(n) => match n.downcast_ref::<CelInt>() {
            Some(n) => usize::try_from(*n.inner()).ok(),
            None => {
                return Err(ExecutionError::function_error(
                    "replace",
                    "the count of replace(from, to, n) is an int",
                ))
            }
        },
    };
    let occurrences = if from.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(from).count()
    };
    let occurrences = limit.map_or(occurrences, |n| n.min(occurrences));
    let size =
        (s.len() as u64).saturating_add((occurrences as u64).saturating_mul(to.len() as u64));
    charge_bytes(size.saturating_add(16))?;
    let out = match limit {
        Some(n) => s.replacen(from, to, n),
        None => s.replace(from, to),
    };
    Ok(CowVal::owned(CelString::from(out)))
}

/// `@duration(text)`: `duration()` reading ISO 8601 (`PT1H`, `-P1D`) as well as CEL's form.
fn duration<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    if let Some(text) = args[0].downcast_ref::<CelString>() {
        let text = text.inner();
        let (negative, iso) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if iso.starts_with('P') {
            let delta = parse_iso_duration(iso)
                .map_err(|e| ExecutionError::function_error("duration", e.to_string()))?;
            let delta = if negative { -delta } else { delta };
            return Ok(CowVal::owned(CelDuration::from(delta)));
        }
    }
    match ENV.find_overload("duration", &args) {
        Some(op) => op(args),
        None => Err(ExecutionError::function_error(
            "duration",
            "duration takes a string such as 'PT1H' or '1h30m'",
        )),
    }
}

/// `@timestamp(x)`: CEL's `timestamp()`, the result in UTC so that `getHours()` and the
/// other accessors without a time zone mean UTC whatever offset the text was written with.
fn timestamp<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let Some(op) = ENV.find_overload("timestamp", &args) else {
        return Err(ExecutionError::function_error(
            "timestamp",
            "timestamp takes an RFC 3339 string such as '2024-05-10T12:00:00Z'",
        ));
    };
    let value = op(args)?;
    match value.downcast_ref::<CelTimestamp>() {
        Some(t) => Ok(CowVal::owned(CelTimestamp::from(
            t.inner().with_timezone(&Utc).fixed_offset(),
        ))),
        None => Ok(value),
    }
}

/// `@nonblank(x)`: true for a string with something other than whitespace in it.
fn nonblank<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let holds = args[0]
        .downcast_ref::<CelString>()
        .is_some_and(|s| !s.inner().trim().is_empty());
    Ok(CowVal::owned(CelBool::from(holds)))
}

/// A compiled CEL expression with the roots it reads.
#[derive(Clone)]
pub struct Expr {
    source: Arc<str>,
    program: Arc<IdedExpr>,
    roots: u8,
    /// How deep the evaluator will recurse, at most.
    depth: usize,
    /// The member path the program reads, when that is all it does: evaluated on the JSON.
    path: Option<member_path::MemberPath>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

/// What kind of failure an [`EvalError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalErrorKind {
    /// CEL could not evaluate the expression on this data: a missing key, a type mismatch,
    /// a division by zero, an overflow.
    Runtime,
    /// The evaluation went over its budget ([`MAX_ITERATIONS`], [`MAX_BUILT_BYTES`]).
    Budget,
    /// The result is not what the place needs (a condition that is not a bool, a deadline
    /// that is not a timestamp) or has no JSON form.
    Result,
    /// The evaluator itself failed; the expression is stopped and reported.
    Internal,
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expression `{expression}` failed: {message}")]
pub struct EvalError {
    /// What kind of failure this is.
    pub kind: EvalErrorKind,
    /// The expression as written.
    pub expression: String,
    /// What went wrong, in CEL's words.
    pub message: String,
}

/// What an expression sees. Borrowed from the instance; converted to CEL only for the
/// roots the expression actually reads.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The start payload.
    pub input: &'a Value,
    /// The instance variables.
    pub vars: &'a Map<String, Value>,
    /// The event being handled (`{type, data}`), or `null`.
    pub event: Option<&'a Value>,
    /// The current time.
    pub now: DateTime<Utc>,
    /// A summary of the instance, converted only when an expression reads `instance`.
    pub instance: InstanceView<'a>,
    /// The business calendars the calendar functions (`is_working_time`, `add_working`,
    /// `next_holiday`) may name; `None`: no calendars.
    pub calendars: Option<&'a Arc<crate::calendar::Calendars>>,
}

/// What the `instance` root shows: `{id, workflow, version, stage, started_at, tags}`.
#[derive(Debug, Clone, Copy)]
pub struct InstanceView<'a> {
    /// Instance id.
    pub id: &'a str,
    /// Workflow id.
    pub workflow: &'a str,
    /// Definition version the instance runs on.
    pub version: u32,
    /// Current stage name.
    pub stage: &'a str,
    /// When the instance started.
    pub started_at: DateTime<Utc>,
    /// Tags so far.
    pub tags: &'a std::collections::BTreeSet<String>,
}

impl InstanceView<'_> {
    fn to_cel(self) -> cel::Value {
        let s = |v: &str| cel::Value::String(Arc::new(v.to_owned()));
        let mut m: HashMap<cel::objects::Key, cel::Value> = HashMap::with_capacity(6);
        let mut put = |k: &str, v| {
            m.insert(cel::objects::Key::String(Arc::new(k.to_owned())), v);
        };
        put("id", s(self.id));
        put("workflow", s(self.workflow));
        put("version", cel::Value::Int(i64::from(self.version)));
        put("stage", s(self.stage));
        put(
            "started_at",
            cel::Value::Timestamp(self.started_at.fixed_offset()),
        );
        put(
            "tags",
            cel::Value::List(Arc::new(self.tags.iter().map(|t| s(t)).collect())),
        );
        cel::Value::Map(cel::objects::Map { map: Arc::new(m) })
    }
}

impl Expr {
    /// Compiles `source`, checking it against the compile-time limits (see the module
    /// documentation) on a thread whose stack fits the deepest parse those limits allow.
    ///
    /// # Errors
    /// A message a person can act on: the limit passed and by how much, the CEL syntax
    /// error with its position, or the unknown root named.
    pub fn compile(source: &str) -> Result<Expr, String> {
        on_compile_stack(|| compile_checked(source))
            .unwrap_or_else(|| Err("the expression could not be compiled: no thread could be started to parse it; try again".to_owned()))
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The roots this expression reads, in [`ROOTS`] order.
    pub fn roots(&self) -> impl Iterator<Item = &'static str> + '_ {
        ROOTS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.reads(*i))
            .map(|(_, r)| *r)
    }

    fn reads(&self, root: usize) -> bool {
        self.roots & (1 << root) != 0
    }

    /// The value of a member-path expression found in the JSON (see `member_path`).
    fn found(&self, scope: &Scope<'_>) -> Option<cel::Value> {
        let value = self
            .path
            .as_ref()?
            .find(scope.input, scope.vars, scope.event)?;
        Some(json_to_cel(value))
    }

    fn run(&self, scope: &Scope<'_>) -> Result<cel::Value, EvalError> {
        if let Some(value) = self.found(scope) {
            return Ok(value);
        }
        if self.depth <= INLINE_EVAL_DEPTH {
            return self.run_here(scope);
        }
        std::thread::scope(|s| {
            let worker = std::thread::Builder::new()
                .name("waystation-eval".to_owned())
                .stack_size(EVAL_STACK_BYTES)
                .spawn_scoped(s, || self.run_here(scope));
            match worker {
                Ok(worker) => worker.join().unwrap_or_else(|_| {
                    Err(self.error(
                        EvalErrorKind::Internal,
                        "the expression evaluator failed on this data".to_owned(),
                    ))
                }),
                Err(e) => Err(self.error(
                    EvalErrorKind::Internal,
                    format!("no thread could be started to evaluate this deep expression: {e}"),
                )),
            }
        })
    }

    fn run_here(&self, scope: &Scope<'_>) -> Result<cel::Value, EvalError> {
        calendar::with_calendars(scope.calendars, || {
            self.resolve_in(&context(self.roots, scope))
        })
    }

    /// Resolves the program in `ctx`, which holds every root it reads, within a fresh
    /// evaluation budget.
    fn resolve_in(&self, ctx: &cel::Context<'_, '_>) -> Result<cel::Value, EvalError> {
        budget::reset();
        // The evaluator is a library: should it panic on some input, this expression fails
        // and the engine carries on.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cel::Value::resolve(&self.program, ctx)
        }));
        // Whatever the evaluator made of an error inside a loop (`exists` may absorb one),
        // a budget spent is a budget spent.
        if let Some(which) = budget::exceeded() {
            return Err(self.error(
                EvalErrorKind::Budget,
                format!("the expression went over its evaluation budget: {which}"),
            ));
        }
        match outcome {
            Ok(result) => result.map_err(|e| self.error(EvalErrorKind::Runtime, e.to_string())),
            Err(_) => Err(self.error(
                EvalErrorKind::Internal,
                "the expression evaluator failed on this data".to_owned(),
            )),
        }
    }

    /// Evaluates each of `exprs` to JSON over one `scope`, converting every root they read
    /// once rather than once per expression: the fields of a definition are evaluated
    /// together after every command, and converting the start payload to CEL is most of
    /// an evaluation's cost. Each expression has its own budget; one deeper than the inline
    /// limit runs on its own stack as in [`Expr::eval`].
    pub fn eval_all(exprs: &[&Expr], scope: &Scope<'_>) -> Vec<Result<Value, EvalError>> {
        let found: Vec<Option<cel::Value>> = exprs.iter().map(|e| e.found(scope)).collect();
        // The roots of the expressions the JSON did not answer, converted only if any.
        let roots = exprs
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .fold(0, |r, (e, _)| r | e.roots);
        let ctx = found
            .iter()
            .any(Option::is_none)
            .then(|| context(roots, scope));
        calendar::with_calendars(scope.calendars, || {
            exprs
                .iter()
                .zip(found)
                .map(|(e, found)| {
                    let value = match (found, &ctx) {
                        (Some(value), _) => value,
                        (None, Some(ctx)) if e.depth <= INLINE_EVAL_DEPTH => e.resolve_in(ctx)?,
                        (None, _) => e.run(scope)?,
                    };
                    cel_to_json(&value).map_err(|m| e.error(EvalErrorKind::Result, m))
                })
                .collect()
        })
    }

    fn error(&self, kind: EvalErrorKind, message: String) -> EvalError {
        EvalError {
            kind,
            expression: self.source.to_string(),
            message,
        }
    }

    /// Evaluates to JSON.
    ///
    /// # Errors
    /// CEL runtime errors (missing keys, type mismatches) and values JSON cannot hold.
    pub fn eval(&self, scope: &Scope<'_>) -> Result<Value, EvalError> {
        let value = self.run(scope)?;
        cel_to_json(&value).map_err(|m| self.error(EvalErrorKind::Result, m))
    }

    /// Evaluates a condition.
    ///
    /// # Errors
    /// As [`Expr::eval`], and when the result is not a boolean.
    pub fn eval_bool(&self, scope: &Scope<'_>) -> Result<bool, EvalError> {
        match self.run(scope)? {
            cel::Value::Bool(b) => Ok(b),
            other => Err(self.error(
                EvalErrorKind::Result,
                format!(
                    "a condition must be true or false, but this gave {}",
                    describe(&other)
                ),
            )),
        }
    }

    /// Evaluates to the person an `assign` action names: `Some(name)` for a string of 1 to
    /// `max_bytes` bytes that is not blank, `None` for null or a blank string (nobody named).
    ///
    /// # Errors
    /// As [`Expr::eval`], and when the result is another value.
    pub fn eval_person(
        &self,
        scope: &Scope<'_>,
        max_bytes: usize,
    ) -> Result<Option<String>, EvalError> {
        match self.run(scope)? {
            // Blank is nobody named, like null: an optional text field left empty by a form
            // must not fail an instance at its escalation.
            cel::Value::Null => Ok(None),
            cel::Value::String(s) if s.trim().is_empty() => Ok(None),
            cel::Value::String(s) if s.len() <= max_bytes => {
                Ok(Some(s.to_string()))
            }
            other => Err(self.error(
                EvalErrorKind::Result,
                format!(
                    "assign must give a person's token name (at most {max_bytes} bytes) or null, but this gave {}",
                    describe(&other)
                ),
            )),
        }
    }

    /// Evaluates to a point in time (a timestamp, or an RFC 3339 string).
    ///
    /// # Errors
    /// As [`Expr::eval`], and when the result is not a time.
    pub fn eval_time(&self, scope: &Scope<'_>) -> Result<DateTime<Utc>, EvalError> {
        match self.run(scope)? {
            cel::Value::Timestamp(t) if (1..=9999).contains(&t.with_timezone(&Utc).year()) => {
                Ok(t.with_timezone(&Utc))
            }
            cel::Value::Timestamp(_) => Err(self.error(
                EvalErrorKind::Result,
                "a deadline must fall within the years 0001-9999 (UTC)".to_owned(),
            )),
            other => Err(self.error(
                EvalErrorKind::Result,
                format!(
                    "a deadline must be a timestamp, but this gave {}",
                    describe(&other)
                ),
            )),
        }
    }
}

/// Runs `f` on a thread whose stack fits the deepest parse the limits allow, or directly
/// when already on one. `None` when no thread could be started.
pub(crate) fn on_compile_stack<R: Send>(f: impl FnOnce() -> R + Send) -> Option<R> {
    if ON_COMPILE_STACK.with(Cell::get) {
        return Some(f());
    }
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("waystation-compile".to_owned())
            .stack_size(COMPILE_STACK_BYTES)
            .spawn_scoped(scope, || {
                ON_COMPILE_STACK.with(|c| c.set(true));
                f()
            })
            .ok()?;
        match worker.join() {
            Ok(r) => Some(r),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Compiles on the current thread, which must have a compile stack.
fn compile_checked(source: &str) -> Result<Expr, String> {
    precheck(source)?;
    let parsed = std::panic::catch_unwind(|| ENV.compile(source));
    let program = match parsed {
        Ok(Ok(program)) => program,
        Ok(Err(errors)) => return Err(syntax_error(source, &errors)),
        Err(_) => return Err(format!("CEL cannot parse `{}`", one_line(source))),
    };
    let mut expression = program.expression().clone();
    drop(program);
    let shape = measure(&expression);
    let complex = |what: String| {
        Err(format!(
            "`{}` is too complex: {what}; split the work across stages or variables",
            abbreviate(source)
        ))
    };
    if shape.depth > MAX_NESTING {
        return complex(format!(
            "it nests {} deep, at most {MAX_NESTING}",
            shape.depth
        ));
    }
    if shape.nodes > MAX_AST_NODES {
        return complex(format!(
            "it has {} syntax nodes, at most {MAX_AST_NODES}",
            shape.nodes
        ));
    }
    if shape.comprehensions > MAX_COMPREHENSION_NESTING {
        return complex(format!(
            "comprehensions (all, exists, map, filter) nest {} deep, at most {MAX_COMPREHENSION_NESTING}",
            shape.comprehensions
        ));
    }
    check_patterns(source, &expression)?;
    let mut free = std::collections::BTreeSet::new();
    free_variables(&expression, &mut Vec::new(), &mut free);
    let mut roots = 0u8;
    let mut unknown: Vec<&str> = Vec::new();
    for name in &free {
        match ROOTS.iter().position(|r| r == name) {
            Some(i) => roots |= 1 << i,
            None => unknown.push(name),
        }
    }
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return Err(format!(
            "`{source}` uses unknown name{} {}; expressions start from one of input, vars, event, now, instance",
            if unknown.len() > 1 { "s" } else { "" },
            unknown.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
        ));
    }
    rewrite(&mut expression);
    let depth = measure(&expression).depth;
    let path = member_path::MemberPath::of(&expression);
    Ok(Expr {
        source: source.into(),
        program: Arc::new(expression),
        roots,
        depth,
        path,
    })
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// The expression for a message: whole when short, its start otherwise.
fn abbreviate(source: &str) -> String {
    let line = one_line(source);
    if line.chars().count() <= 80 {
        line
    } else {
        format!("{}...", line.chars().take(77).collect::<String>())
    }
}

/// The limits that can be checked without parsing, and without recursion: length, tokens,
/// bracket nesting. After this, the parse is bounded by [`MAX_TOKENS`].
fn precheck(source: &str) -> Result<(), String> {
    let too = |what: String| {
        Err(format!(
            "`{}` is too long or deep: {what}; split the work across stages or variables",
            abbreviate(source)
        ))
    };
    if source.len() > MAX_EXPRESSION_BYTES {
        return too(format!(
            "{} bytes, at most {MAX_EXPRESSION_BYTES}",
            source.len()
        ));
    }
    let (tokens, deepest) = scan(source);
    if deepest > MAX_NESTING {
        return too(format!(
            "brackets nest {deepest} deep, at most {MAX_NESTING}"
        ));
    }
    if tokens > MAX_TOKENS {
        return too(format!("{tokens} tokens, at most {MAX_TOKENS}"));
    }
    Ok(())
}

/// `(tokens, deepest bracket nesting)` of `source`, counted in one pass over its bytes
/// without parsing: a name, a number, a string literal and any other character are one
/// token each.
fn scan(source: &str) -> (usize, usize) {
    let b = source.as_bytes();
    let mut tokens = 0usize;
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut i = 0;
    // The name just read, when it ends right before this byte: `r` and `b` prefix strings.
    let mut name_end = usize::MAX;
    let mut name_start = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            name_start = start;
            name_end = i;
            tokens += 1;
            continue;
        }
        if c == b'\'' || c == b'"' {
            let raw = name_end == i
                && source[name_start..name_end]
                    .to_ascii_lowercase()
                    .contains('r')
                && name_end - name_start <= 2;
            i = skip_string(b, i, raw);
            tokens += 1;
            continue;
        }
        match c {
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        tokens += 1;
        i += 1;
    }
    (tokens, deepest)
}

/// The index just past the string literal whose opening quote (`'`, `"`, or three of
/// either) is at `b[i]`, or `b.len()` when it is not closed. Backslash escapes are skipped
/// unless the string is `raw`.
fn skip_string(b: &[u8], mut i: usize, raw: bool) -> usize {
    let c = b[i];
    let triple = b.len() >= i + 3 && b[i + 1] == c && b[i + 2] == c;
    let quote_len = if triple { 3 } else { 1 };
    i += quote_len;
    loop {
        if i >= b.len() {
            return i;
        }
        if !raw && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == c && (!triple || (b.len() >= i + 3 && b[i + 1] == c && b[i + 2] == c)) {
            return i + quote_len;
        }
        i += 1;
    }
}

/// Compiles every pattern written as a literal in a `matches()` call (`s.matches('p')`,
/// `matches(s, 'p')`) as CEL will when it runs: a pattern the regex engine refuses (a
/// look-around, a repetition that compiles past its size limit) is refused at upload,
/// naming it, instead of failing every evaluation later as if the data were at fault.
/// Patterns built at run time are checked when they run.
///
/// # Errors
/// The expression, the pattern and the regex engine's reason.
fn check_patterns(source: &str, expr: &IdedExpr) -> Result<(), String> {
    use cel::common::ast::LiteralValue;
    let mut stack: Vec<&IdedExpr> = vec![expr];
    while let Some(e) = stack.pop() {
        if let E::Call(call) = &e.expr {
            let pattern = match (&call.target, call.args.as_slice()) {
                (Some(_), [p]) | (None, [_, p]) if call.func_name == "matches" => Some(p),
                _ => None,
            };
            if let Some(IdedExpr {
                expr: E::Literal(LiteralValue::String(p)),
                ..
            }) = pattern
            {
                if let Err(err) = regex::Regex::new(p.inner()) {
                    return Err(format!(
                        "`{}`: '{}' is not a pattern matches() can run: {}",
                        abbreviate(source),
                        p.inner(),
                        one_line(&err.to_string())
                    ));
                }
            }
        }
        each_child(e, |child, _| stack.push(child));
    }
    Ok(())
}

/// Calls `visit(child, in_loop)` for each direct child of `e`, `in_loop` true for the parts
/// of a comprehension that run once per element (its condition, step and result).
fn each_child<'a>(e: &'a IdedExpr, mut visit: impl FnMut(&'a IdedExpr, bool)) {
    match &e.expr {
        E::Unspecified | E::Literal(_) | E::Ident(_) => {}
        E::Select(s) => visit(&s.operand, false),
        E::Call(call) => {
            if let Some(t) = &call.target {
                visit(t, false);
            }
            call.args.iter().for_each(|a| visit(a, false));
        }
        E::List(list) => list.elements.iter().for_each(|a| visit(a, false)),
        E::Map(cel::common::ast::MapExpr { entries })
        | E::Struct(cel::common::ast::StructExpr { entries, .. }) => {
            for entry in entries {
                match &entry.expr {
                    EntryExpr::StructField(f) => visit(&f.value, false),
                    EntryExpr::MapEntry(m) => {
                        visit(&m.key, false);
                        visit(&m.value, false);
                    }
                }
            }
        }
        E::Comprehension(c) => {
            visit(&c.iter_range, false);
            visit(&c.accu_init, false);
            visit(&c.loop_cond, true);
            visit(&c.loop_step, true);
            visit(&c.result, true);
        }
    }
}

/// The shape of a parsed expression, for the limits.
struct Shape {
    depth: usize,
    nodes: usize,
    comprehensions: usize,
}

/// Measures `expr` without recursion: its parse may be as deep as [`MAX_TOKENS`].
fn measure(expr: &IdedExpr) -> Shape {
    let mut shape = Shape {
        depth: 0,
        nodes: 0,
        comprehensions: 0,
    };
    // (node, depth, comprehensions around it)
    let mut stack: Vec<(&IdedExpr, usize, usize)> = vec![(expr, 1, 0)];
    while let Some((e, depth, loops)) = stack.pop() {
        shape.nodes += 1;
        shape.depth = shape.depth.max(depth);
        shape.comprehensions = shape.comprehensions.max(loops);
        // A macro's expansion is one construct as written: its parts count one level
        // deeper, its body one comprehension deeper.
        each_child(e, |child, in_loop| {
            stack.push((child, depth + 1, loops + usize::from(in_loop)));
        });
    }
    shape
}

fn call(name: &str, target: Option<IdedExpr>, args: Vec<IdedExpr>) -> IdedExpr {
    IdedExpr {
        id: 0,
        expr: E::Call(CallExpr {
            func_name: name.to_owned(),
            target: target.map(Box::new),
            args,
        }),
    }
}

/// Wraps `e` in `@grow(e)` unless it is a literal, whose size the source already bounds.
fn charged(e: IdedExpr) -> IdedExpr {
    if matches!(e.expr, E::Literal(_)) {
        e
    } else {
        call("@grow", None, vec![e])
    }
}

/// Puts the engine's budget and functions into a checked expression:
/// - a comprehension's range goes through `@iterate`, charged per element;
/// - arithmetic goes through `@add`, `@sub`, `@mul`, `@div`, `@mod`: ints meet doubles,
///   and a sum of strings, lists or maps is charged by its size before it is built;
/// - values built into larger ones (list and map elements, what `map` collects, `join`
///   and `format` results) go through `@grow`, charged by size;
/// - `s.replace(..)` becomes `@replace(s, ..)`, charged before it allocates;
/// - `duration(x)` becomes `@duration(x)`, which also reads ISO 8601;
/// - `timestamp(x)` becomes `@timestamp(x)`, whose result is in UTC;
/// - `nonblank(a.b)` becomes `has(a.b) && @nonblank(a.b)`, `nonblank(x)` `@nonblank(x)`.
fn rewrite(e: &mut IdedExpr) {
    let taken = std::mem::take(&mut e.expr);
    e.expr = match taken {
        E::Call(c) => rewrite_call(c, e.id),
        E::Select(mut s) => {
            rewrite(&mut s.operand);
            E::Select(s)
        }
        E::List(ListExpr {
            elements,
            optional_indices,
        }) => E::List(ListExpr {
            elements: elements
                .into_iter()
                .map(|mut el| {
                    rewrite(&mut el);
                    charged(el)
                })
                .collect(),
            optional_indices,
        }),
        E::Map(mut m) => {
            for entry in &mut m.entries {
                if let EntryExpr::MapEntry(me) = &mut entry.expr {
                    rewrite(&mut me.key);
                    rewrite(&mut me.value);
                    let value = std::mem::take(&mut me.value);
                    me.value = charged(value);
                }
            }
            E::Map(m)
        }
        E::Comprehension(mut c) => {
            rewrite(&mut c.iter_range);
            let range = std::mem::take(&mut c.iter_range);
            c.iter_range = call("@iterate", None, vec![range]);
            rewrite(&mut c.accu_init);
            rewrite(&mut c.loop_cond);
            rewrite(&mut c.loop_step);
            rewrite(&mut c.result);
            E::Comprehension(c)
        }
        other => other,
    };
}

/// [`rewrite`] of a call (node `id`): its target and arguments first, then the call itself.
fn rewrite_call(mut c: CallExpr, id: u64) -> E {
    if let Some(t) = c.target.as_mut() {
        rewrite(t);
    }
    // `@result + [x]` is how `map` and `filter` collect: charge the element, and
    // keep the shape the evaluator appends in place.
    let collects = c.func_name == "_+_"
        && matches!(c.args.first().map(|a| &a.expr), Some(E::Ident(n)) if n.starts_with('@'));
    if collects {
        for arg in &mut c.args {
            if let E::List(list) = &mut arg.expr {
                for el in std::mem::take(&mut list.elements) {
                    let mut el = el;
                    rewrite(&mut el);
                    list.elements.push(charged(el));
                }
            } else {
                rewrite(arg);
            }
        }
        return E::Call(c);
    }
    c.args.iter_mut().for_each(rewrite);
    match (c.func_name.as_str(), c.target.is_some(), c.args.len()) {
        ("_+_", false, 2) => call("@add", None, c.args).expr,
        ("_-_", false, 2) => call("@sub", None, c.args).expr,
        ("_*_", false, 2) => call("@mul", None, c.args).expr,
        ("_/_", false, 2) => call("@div", None, c.args).expr,
        ("_%_", false, 2) => call("@mod", None, c.args).expr,
        ("join" | "format", true, _) => {
            call(
                "@grow",
                None,
                vec![IdedExpr {
                    id,
                    expr: E::Call(c),
                }],
            )
            .expr
        }
        ("replace", true, 2 | 3) => {
            let target = *c.target.take().expect("checked above");
            let mut args = vec![target];
            args.extend(c.args);
            call("@replace", None, args).expr
        }
        ("duration", false, 1) => call("@duration", None, c.args).expr,
        ("timestamp", false, 1) => call("@timestamp", None, c.args).expr,
        ("nonblank", false, 1) => rewrite_nonblank(c.args.pop().expect("checked above")),
        _ => E::Call(c),
    }
}

/// `nonblank(a.b)` as `has(a.b) && @nonblank(a.b)` (an absent field is blank, not an
/// error), `nonblank(x)` as `@nonblank(x)`.
fn rewrite_nonblank(arg: IdedExpr) -> E {
    match &arg.expr {
        E::Select(s) if !s.test => {
            let present = IdedExpr {
                id: 0,
                expr: E::Select(SelectExpr {
                    operand: s.operand.clone(),
                    field: s.field.clone(),
                    test: true,
                }),
            };
            call(
                "_&&_",
                None,
                vec![present, call("@nonblank", None, vec![arg])],
            )
            .expr
        }
        _ => call("@nonblank", None, vec![arg]).expr,
    }
}

/// An expression's parse errors as one line: the first, with its position, in words.
/// CEL's parser reports each problem on three lines (message, source, caret) followed by
/// the errors it cascades into.
fn syntax_error(source: &str, errors: &cel::ParseErrors) -> String {
    let Some(first) = errors.errors.first() else {
        return format!("CEL syntax error in `{}`", one_line(source));
    };
    let (line, column) = first.pos;
    let at = if source.contains('\n') {
        format!("line {line}, column {column}")
    } else {
        format!("column {column}")
    };
    format!(
        "CEL syntax error at {at} of `{}`: {}",
        one_line(source),
        parse_error_in_words(&first.msg)
    )
}

/// CEL's (ANTLR's) parse messages list every token the grammar would accept; say what was
/// found instead.
fn parse_error_in_words(message: &str) -> String {
    let message = message.strip_prefix("Syntax error: ").unwrap_or(message);
    let quoted = |rest: &str| -> String {
        // "'x' expecting {...}" -> "x"
        let rest = rest.strip_prefix('\'').unwrap_or(rest);
        match rest.find("' expecting") {
            Some(end) => rest[..end].to_owned(),
            None => rest.trim_end_matches('\'').to_owned(),
        }
    };
    for lead in ["mismatched input ", "extraneous input "] {
        if let Some(rest) = message.strip_prefix(lead) {
            let token = quoted(rest);
            return if token == "<EOF>" {
                "the expression ends where more was expected".to_owned()
            } else {
                format!("unexpected '{token}'")
            };
        }
    }
    if let Some(rest) = message.strip_prefix("token recognition error at: ") {
        let token = quoted(rest);
        return if token.starts_with(['\'', '"']) {
            "a string starts here but is never closed".to_owned()
        } else {
            format!("'{token}' is not part of the CEL language")
        };
    }
    if let Some(rest) = message.strip_prefix("no viable alternative at input ") {
        return format!("cannot read '{}'", quoted(rest));
    }
    match message.find(" expecting ") {
        Some(cut) => message[..cut].to_owned(),
        None => message.to_owned(),
    }
}

/// A CEL context holding the roots in the bit set `roots` (bit i: [`ROOTS`]\[i\]).
fn context(roots: u8, scope: &Scope<'_>) -> cel::Context<'static, 'static> {
    let reads = |i: usize| roots & (1 << i) != 0;
    let mut ctx = cel::Context::with_env(ENV.clone());
    if reads(0) {
        ctx.add_variable_from_value("input", json_to_cel(scope.input));
    }
    if reads(1) {
        ctx.add_variable_from_value("vars", map_to_cel(scope.vars));
    }
    if reads(2) {
        ctx.add_variable_from_value("event", scope.event.map_or(cel::Value::Null, json_to_cel));
    }
    if reads(3) {
        ctx.add_variable_from_value("now", cel::Value::Timestamp(scope.now.fixed_offset()));
    }
    if reads(4) {
        ctx.add_variable_from_value("instance", scope.instance.to_cel());
    }
    ctx
}

/// The identifiers `expr` reads that no comprehension (`exists`, `map`, ...) binds.
fn free_variables<'e>(
    expr: &'e cel::IdedExpr,
    bound: &mut Vec<&'e str>,
    out: &mut std::collections::BTreeSet<&'e str>,
) {
    use cel::common::ast::{EntryExpr, Expr as E};
    match &expr.expr {
        E::Unspecified | E::Literal(_) => {}
        E::Ident(name) => {
            if !name.starts_with('@') && !bound.contains(&name.as_str()) {
                out.insert(name);
            }
        }
        E::Select(select) => free_variables(&select.operand, bound, out),
        E::Call(call) => {
            if let Some(target) = &call.target {
                free_variables(target, bound, out);
            }
            for arg in &call.args {
                free_variables(arg, bound, out);
            }
        }
        E::List(list) => list
            .elements
            .iter()
            .for_each(|e| free_variables(e, bound, out)),
        E::Map(cel::common::ast::MapExpr { entries })
        | E::Struct(cel::common::ast::StructExpr { entries, .. }) => {
            for entry in entries {
                match &entry.expr {
                    EntryExpr::StructField(f) => free_variables(&f.value, bound, out),
                    EntryExpr::MapEntry(m) => {
                        free_variables(&m.key, bound, out);
                        free_variables(&m.value, bound, out);
                    }
                }
            }
        }
        E::Comprehension(c) => {
            free_variables(&c.iter_range, bound, out);
            free_variables(&c.accu_init, bound, out);
            let depth = bound.len();
            bound.push(&c.iter_var);
            if let Some(v) = &c.iter_var2 {
                bound.push(v);
            }
            bound.push(&c.accu_var);
            free_variables(&c.loop_cond, bound, out);
            free_variables(&c.loop_step, bound, out);
            free_variables(&c.result, bound, out);
            bound.truncate(depth);
        }
    }
}

fn describe(v: &cel::Value) -> String {
    match v {
        cel::Value::Null => "null".into(),
        cel::Value::Bool(b) => format!("the bool {b}"),
        cel::Value::Int(i) => format!("the int {i}"),
        cel::Value::UInt(i) => format!("the uint {i}"),
        cel::Value::Float(x) => format!("the double {x}"),
        cel::Value::String(s) => format!("the string {s:?}"),
        cel::Value::Duration(_) => "a duration".into(),
        cel::Value::Timestamp(_) => "a timestamp".into(),
        cel::Value::List(_) => "a list".into(),
        cel::Value::Map(_) => "a map".into(),
        _ => "a value of another type".into(),
    }
}

/// Parses an RFC 3339 timestamp, rejecting cheaply anything that cannot be one. The result
/// is in UTC whatever offset was written, and within the years 0001-9999 (UTC).
pub fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't')
    {
        return None;
    }
    let utc = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    (1..=9999).contains(&utc.year()).then(|| utc.fixed_offset())
}

/// JSON to CEL. Every number becomes a `double` (see the module documentation); RFC 3339
/// strings become timestamps in UTC.
pub fn json_to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => match parse_timestamp(s) {
            Some(t) => cel::Value::Timestamp(t),
            None => cel::Value::String(Arc::new(s.clone())),
        },
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(json_to_cel).collect())),
        Value::Object(map) => map_to_cel(map),
    }
}

/// Every number in `value` a double cannot hold exactly: integers of magnitude 2^53 or
/// more (`12345678901234567890123`), each at its JSON pointer under `prefix`. Such numbers
/// are refused where data enters (start input, event data) rather than silently rounded;
/// send them as strings.
pub fn unrepresentable_numbers(value: &Value, prefix: &str) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    // Iterative: data may nest as deep as its parser allowed.
    let mut stack: Vec<(&Value, String)> = vec![(value, prefix.to_owned())];
    while let Some((v, pointer)) = stack.pop() {
        match v {
            Value::Number(n) => {
                let exact = match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => i.unsigned_abs() < 1 << 53,
                    (_, Some(u), _) => u < 1 << 53,
                    (_, _, Some(f)) => f.is_finite() && f.abs() < MAX_EXACT_NUMBER,
                    _ => false,
                };
                if !exact {
                    errors.push(ValidationError::new(
                        pointer,
                        format!("{n} cannot be kept exactly: numbers must lie within ±9007199254740991 (2^53 - 1); send larger ones as strings"),
                    ));
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push((item, format!("{pointer}/{i}")));
                }
            }
            Value::Object(map) => {
                for (k, item) in map.iter().rev() {
                    stack.push((
                        item,
                        format!("{pointer}/{}", crate::source::escape_pointer_segment(k)),
                    ));
                }
            }
            _ => {}
        }
    }
    errors
}

fn map_to_cel(map: &Map<String, Value>) -> cel::Value {
    let mut out: HashMap<cel::objects::Key, cel::Value> = HashMap::with_capacity(map.len());
    for (k, v) in map {
        out.insert(
            cel::objects::Key::String(Arc::new(k.clone())),
            json_to_cel(v),
        );
    }
    cel::Value::Map(cel::objects::Map { map: Arc::new(out) })
}

/// CEL to JSON. Timestamps become RFC 3339 strings (UTC), durations ISO 8601 strings.
///
/// # Errors
/// Values JSON has no form for (bytes, functions, NaN), and maps with non-string keys.
pub fn cel_to_json(v: &cel::Value) -> Result<Value, String> {
    Ok(match v {
        cel::Value::Null => Value::Null,
        cel::Value::Bool(b) => Value::Bool(*b),
        cel::Value::Int(i) => Value::from(*i),
        cel::Value::UInt(u) => Value::from(*u),
        // A whole double is written as an integer: `5000.0 * 2.0` stores 10000, which
        // reads back as the same double.
        cel::Value::Float(x) if x.fract() == 0.0 && x.abs() < MAX_EXACT_NUMBER => {
            Value::from(*x as i64)
        }
        cel::Value::Float(x) => serde_json::Number::from_f64(*x)
            .map(Value::Number)
            .ok_or_else(|| format!("the number {x} cannot be stored as JSON"))?,
        cel::Value::String(s) => Value::String(s.to_string()),
        cel::Value::Timestamp(t) => Value::String(
            t.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        ),
        cel::Value::Duration(d) => Value::String(format_iso_duration(*d)),
        cel::Value::List(items) => {
            Value::Array(items.iter().map(cel_to_json).collect::<Result<_, _>>()?)
        }
        cel::Value::Map(m) => {
            let mut out = Map::new();
            let mut entries: Vec<_> = m.map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in entries {
                let key = match k {
                    cel::objects::Key::String(s) => s.to_string(),
                    other => {
                        return Err(format!(
                            "map key {other:?} is not a string; JSON keys are strings"
                        ))
                    }
                };
                out.insert(key, cel_to_json(v)?);
            }
            Value::Object(out)
        }
        other => return Err(format!("{} cannot be stored as JSON", describe(other))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope<'a>(input: &'a Value, vars: &'a Map<String, Value>, now: DateTime<Utc>) -> Scope<'a> {
        static TAGS: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let instance = InstanceView {
            id: "i",
            workflow: "w",
            version: 1,
            stage: "s",
            started_at: now,
            tags: &TAGS,
        };
        Scope {
            input,
            vars,
            event: None,
            now,
            instance,
            calendars: None,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn promised_time_minus_36_hours_is_a_timestamp() {
        let input = json!({"promised_at": "2024-05-10T12:00:00Z"});
        let vars = Map::new();
        let e = Expr::compile(r#"input.promised_at - duration("36h")"#).unwrap();
        let t = e
            .eval_time(&scope(&input, &vars, at("2024-05-01T00:00:00Z")))
            .unwrap();
        assert_eq!(t, at("2024-05-09T00:00:00Z"));
    }

    #[test]
    fn now_compares_with_a_stored_due_time() {
        let input = json!({});
        let mut vars = Map::new();
        vars.insert("due".into(), json!("2024-05-09T00:00:00Z"));
        let e = Expr::compile("now > vars.due").unwrap();
        assert!(!e
            .eval_bool(&scope(&input, &vars, at("2024-05-08T23:00:00Z")))
            .unwrap());
        assert!(e
            .eval_bool(&scope(&input, &vars, at("2024-05-09T01:00:00Z")))
            .unwrap());
    }

    #[test]
    fn unknown_roots_and_syntax_errors_are_named() {
        let e = Expr::compile("order.amount > 5").unwrap_err();
        assert!(e.contains("'order'"), "{e}");
        let e = Expr::compile("input.amount >").unwrap_err();
        assert!(e.contains("syntax"), "{e}");
    }

    #[test]
    fn comprehension_variables_are_not_roots() {
        Expr::compile("input.items.exists(i, i.qty > 3)").unwrap();
    }

    #[test]
    fn ints_and_doubles_compare() {
        let input = json!({"amount": 30000.5});
        let vars = Map::new();
        let e = Expr::compile("input.amount > 10000").unwrap();
        assert!(e
            .eval_bool(&scope(&input, &vars, at("2024-05-01T00:00:00Z")))
            .unwrap());
    }

    #[test]
    fn results_come_back_as_json() {
        let input = json!({"level": "vip", "amount": 120000});
        let vars = Map::new();
        let e = Expr::compile(
            r#"{"p": input.level == "vip" ? "high" : "low", "at": now + duration("1h")}"#,
        )
        .unwrap();
        let v = e
            .eval(&scope(&input, &vars, at("2024-05-01T00:00:00Z")))
            .unwrap();
        assert_eq!(v, json!({"at": "2024-05-01T01:00:00Z", "p": "high"}));
    }

    /// Every path over every kind of value answers what CEL answers, to the bit and to the
    /// error message: a timestamp string comes back as CEL's UTC form, a whole double as
    /// an integer, a missing member or a member of a string as CEL's error.
    #[test]
    fn a_member_path_answers_exactly_what_cel_answers() {
        let input = json!({
            "request_id": "REQ-1",
            "amount": 5000.0,
            "ratio": 0.25,
            "when": "2024-05-08T12:00:00+08:00",
            "flag": true,
            "none": null,
            "list": [1, "a", {"b": 2}],
            "order": {"total": 12, "customer": {"tier": "gold"}},
            "text": "plain"
        });
        let vars: Map<String, Value> = json!({"order": {"total": 7}, "n": 3})
            .as_object()
            .unwrap()
            .clone();
        let event = json!({"type": "note", "data": {"reason": "late"}});
        let mut scope = scope(&input, &vars, Utc::now());
        scope.event = Some(&event);
        let sources = [
            "input.request_id",
            "input.amount",
            "input.ratio",
            "input.when",
            "input.flag",
            "input.none",
            "input.list",
            "input.order",
            "input.order.customer.tier",
            "input.missing",
            "input.text.size",
            "input.order.customer.missing",
            "vars.order.total",
            "vars.n",
            "vars.missing",
            "event.data.reason",
            "event.type",
            "event.data.missing",
        ];
        for source in sources {
            let fast = Expr::compile(source).unwrap();
            assert!(fast.path.is_some(), "{source}");
            let mut through_cel = fast.clone();
            through_cel.path = None;
            assert_eq!(fast.eval(&scope), through_cel.eval(&scope), "{source}");
            let together = Expr::eval_all(&[&fast], &scope);
            assert_eq!(together, vec![through_cel.eval(&scope)], "{source}");
        }
    }
}
