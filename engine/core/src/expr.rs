//! CEL expressions: compiled once when a definition is loaded, evaluated over the five
//! roots `input`, `vars`, `event`, `now` and `instance`.
//!
//! JSON has no timestamp type, so a JSON string in RFC 3339 form (`2024-05-03T18:00:00Z`)
//! is a CEL `timestamp` inside expressions: `input.promised_at - duration("36h")` works
//! on the order's JSON as written. A timestamp or duration an expression returns is stored
//! back as an RFC 3339 string or an ISO 8601 duration string.

use crate::definition::duration::format_iso_duration;
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// The names an expression may start from.
pub const ROOTS: [&str; 5] = ["input", "vars", "event", "now", "instance"];

static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| {
    let mut env = cel::Env::stdlib();
    // The strings extension (lowerAscii, split, ...) is part of the documented language.
    let _ = env.add_extension(cel::extensions::strings);
    Arc::new(env)
});

/// A compiled CEL expression with the roots it reads.
#[derive(Clone)]
pub struct Expr {
    source: Arc<str>,
    program: Arc<cel::Program>,
    roots: u8,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expression `{expression}` failed: {message}")]
pub struct EvalError {
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
    /// Compiles `source`.
    ///
    /// # Errors
    /// A message a person can act on: the CEL syntax error, or the unknown root named.
    pub fn compile(source: &str) -> Result<Expr, String> {
        let program = ENV.compile(source).map_err(|e| {
            let text = e.to_string();
            format!("CEL syntax error in `{source}`: {}", text.trim())
        })?;
        let mut roots = 0u8;
        let mut free = std::collections::BTreeSet::new();
        free_variables(program.expression(), &mut Vec::new(), &mut free);
        let mut unknown: Vec<&str> = Vec::new();
        for name in free {
            match ROOTS.iter().position(|r| *r == name) {
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
        Ok(Expr {
            source: source.into(),
            program: Arc::new(program),
            roots,
        })
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

    fn run(&self, scope: &Scope<'_>) -> Result<cel::Value, EvalError> {
        self.program
            .execute(&context(self.roots, scope))
            .map_err(|e| self.error(e.to_string()))
    }

    /// Evaluates each of `exprs` to JSON over one `scope`, converting every root they read
    /// once rather than once per expression: the fields of a definition are evaluated
    /// together after every command, and converting the start payload to CEL is most of
    /// an evaluation's cost.
    pub fn eval_all(exprs: &[&Expr], scope: &Scope<'_>) -> Vec<Result<Value, EvalError>> {
        let roots = exprs.iter().fold(0, |r, e| r | e.roots);
        let ctx = context(roots, scope);
        exprs
            .iter()
            .map(|e| {
                let value = e
                    .program
                    .execute(&ctx)
                    .map_err(|x| e.error(x.to_string()))?;
                cel_to_json(&value).map_err(|m| e.error(m))
            })
            .collect()
    }

    fn error(&self, message: String) -> EvalError {
        EvalError {
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
        cel_to_json(&value).map_err(|m| self.error(m))
    }

    /// Evaluates a condition.
    ///
    /// # Errors
    /// As [`Expr::eval`], and when the result is not a boolean.
    pub fn eval_bool(&self, scope: &Scope<'_>) -> Result<bool, EvalError> {
        match self.run(scope)? {
            cel::Value::Bool(b) => Ok(b),
            other => Err(self.error(format!(
                "a condition must be true or false, but this gave {}",
                describe(&other)
            ))),
        }
    }

    /// Evaluates to a point in time (a timestamp, or an RFC 3339 string).
    ///
    /// # Errors
    /// As [`Expr::eval`], and when the result is not a time.
    pub fn eval_time(&self, scope: &Scope<'_>) -> Result<DateTime<Utc>, EvalError> {
        match self.run(scope)? {
            cel::Value::Timestamp(t) => Ok(t.with_timezone(&Utc)),
            other => Err(self.error(format!(
                "a deadline must be a timestamp, but this gave {}",
                describe(&other)
            ))),
        }
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

/// Parses an RFC 3339 timestamp, rejecting cheaply anything that cannot be one.
pub fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't')
    {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

/// JSON to CEL. Integral numbers become `int` (or `uint` past `i64`), others `double`;
/// RFC 3339 strings become timestamps.
pub fn json_to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                cel::Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                cel::Value::UInt(u)
            } else {
                cel::Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => match parse_timestamp(s) {
            Some(t) => cel::Value::Timestamp(t),
            None => cel::Value::String(Arc::new(s.clone())),
        },
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(json_to_cel).collect())),
        Value::Object(map) => map_to_cel(map),
    }
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
}
