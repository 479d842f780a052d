//! Fuzzing as a standing test (issue 12): ISO 8601 durations, CEL expressions compiled and
//! evaluated with their budget, and whole definitions validated, each over a fixed set of
//! generated cases so `cargo test` is repeatable. A failing case prints its seed; it
//! becomes a named test in `hostile.rs` once fixed.
//!
//! Run longer: `WAYSTATION_FUZZ_CASES=100000 cargo test -p waystation-core --release --test
//! fuzz` (fixed seeds, more of them), or a random search for a time:
//! `ARBTEST_BUDGET_MS=600000 cargo test -p waystation-core --release --test fuzz --
//! --ignored`. See `tests/README.md` for what was run and found.

use arbitrary::Unstructured;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::path::Path;
use waystation_core::definition::{format_iso_duration, parse_iso_duration, MAX_DURATION_DAYS};
use waystation_core::expr::{EvalErrorKind, Expr, InstanceView, Scope};
use waystation_core::{start, Workflow};

/// How many fixed cases each target runs in `cargo test`.
fn cases(default: u64) -> u64 {
    std::env::var("WAYSTATION_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `property` over `n` fixed seeds of `size` bytes each (arbtest's seed layout: the
/// size in the low half, the generator's state in the high half).
fn fixed_cases(
    n: u64,
    size: u32,
    mut property: impl FnMut(&mut Unstructured<'_>) -> arbitrary::Result<()>,
) {
    for i in 0..n {
        let state = (i.wrapping_mul(0x9E37_79B9) as u32) | 1;
        let seed = (u64::from(state) << 32) | u64::from(size);
        arbtest::arbtest(&mut property).seed(seed).run();
    }
}

// --- ISO 8601 durations -------------------------------------------------------------------

fn duration_text(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    const ALPHABET: &[u8] = b"PPPTTWDHMSSY0123456789012345678901234567890.,-";
    let len = u.int_in_range(0..=24)?;
    (0..len)
        .map(|_| u.choose(ALPHABET).map(|&b| char::from(b)))
        .collect()
}

fn duration_property(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let text = duration_text(u)?;
    if let Ok(d) = parse_iso_duration(&text) {
        assert!(d >= TimeDelta::zero(), "{text} -> {d}");
        assert!(d <= TimeDelta::days(MAX_DURATION_DAYS), "{text} -> {d}");
        let written = format_iso_duration(d);
        assert_eq!(parse_iso_duration(&written), Ok(d), "{text} -> {written}");
    }
    Ok(())
}

#[test]
fn iso_durations_parse_in_range_or_are_refused_never_panicking() {
    fixed_cases(cases(20_000), 64, duration_property);
}

#[test]
#[ignore = "a random search for as long as ARBTEST_BUDGET_MS says"]
fn iso_durations_random_search() {
    arbtest::arbtest(duration_property);
}

// --- CEL expressions -----------------------------------------------------------------------

/// What token soup is made of: names, operators, functions and bytes CEL does not know.
const SOUP_TOKENS: &[&str] = &[
    "input",
    "vars",
    "event",
    "now",
    "instance",
    ".",
    "a",
    "b",
    "items",
    "s",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "+",
    "-",
    "*",
    "/",
    "%",
    "==",
    "!=",
    "<",
    ">=",
    "&&",
    "||",
    "!",
    "?",
    "1",
    "2.5",
    "0",
    "-1",
    "9223372036854775807",
    "18446744073709551615u",
    "1e308",
    "'x'",
    "'PT1H'",
    "'2024-01-01T00:00:00Z'",
    "\"",
    "'",
    "'''",
    "r'",
    "b'",
    "\\",
    "true",
    "null",
    "size",
    "exists",
    "all",
    "map",
    "filter",
    "exists_one",
    "x",
    "y",
    "replace",
    "duration",
    "timestamp",
    "nonblank",
    "string",
    "int",
    "uint",
    "double",
    "in",
    "has",
    "getHours",
    "join",
    "split",
    "format",
    "lowerAscii",
    "matches",
    "'.*'",
    "@result",
    "`",
    "#",
    "\n",
    "é",
    "\u{0}",
];

/// Token soup: mostly not CEL, which the parser must refuse without crashing.
fn token_soup(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let len = u.int_in_range(0..=80)?;
    let mut out = String::new();
    for _ in 0..len {
        out.push_str(u.choose(SOUP_TOKENS)?);
        if u.ratio(1, 2)? {
            out.push(' ');
        }
    }
    Ok(out)
}

/// Grammar-shaped expressions: mostly CEL, which must evaluate or fail with a typed error.
fn grammar(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<String> {
    const LEAVES: &[&str] = &[
        "input.a",
        "input.b",
        "input.items",
        "input.s",
        "input.at",
        "input.map",
        "vars.n",
        "event",
        "now",
        "instance.tags",
        "1",
        "2",
        "0",
        "-3",
        "2.5",
        "1e300",
        "'x'",
        "''",
        "'   '",
        "'PT1H'",
        "'36h'",
        "true",
        "false",
        "null",
        "[]",
        "{}",
        "[1, 2, 3]",
        "9223372036854775807",
        "-9223372036854775808",
        "duration('PT1H')",
        "timestamp('9999-12-31T23:59:59Z')",
        "timestamp('0001-01-01T00:00:00Z')",
        "x",
        "y",
    ];
    if depth == 0 || u.ratio(1, 4)? {
        return Ok((*u.choose(LEAVES)?).to_owned());
    }
    let a = grammar(u, depth - 1)?;
    let b = grammar(u, depth - 1)?;
    Ok(match u.int_in_range(0..=21)? {
        0 => format!("({a} + {b})"),
        1 => format!("({a} - {b})"),
        2 => format!("({a} * {b})"),
        3 => format!("({a} / {b})"),
        4 => format!("({a} % {b})"),
        5 => format!("({a} == {b})"),
        6 => format!("({a} < {b})"),
        7 => format!("({a} && {b})"),
        8 => format!("({a} || {b})"),
        9 => format!("({a} ? {b} : {a})"),
        10 => format!("[{a}, {b}]"),
        11 => format!("{{'k': {a}, 'l': {b}}}"),
        12 => format!("{a}.exists(x, {b})"),
        13 => format!("{a}.map(y, {b})"),
        14 => format!("{a}.filter(x, {b})"),
        15 => format!("size({a})"),
        16 => format!("string({a})"),
        17 => format!("{a}.replace({b}, {a})"),
        18 => format!("duration({a})"),
        19 => format!("nonblank({a})"),
        20 => format!("{a}[{b}]"),
        _ => format!("{a}.getHours()"),
    })
}

fn evaluate(expr: &Expr) {
    static TAGS: BTreeSet<String> = BTreeSet::new();
    let input = json!({
        "a": 1, "b": 2.5, "items": [1, 2, 3, "x", null, {"k": 1}], "s": "abc",
        "at": "2024-05-10T12:00:00+08:00", "map": {"k": [1, 2]}
    });
    let mut vars = Map::new();
    vars.insert("n".into(), json!(3));
    let now: DateTime<Utc> = "2024-05-01T00:00:00Z".parse().expect("a time");
    let scope = Scope {
        input: &input,
        vars: &vars,
        event: None,
        now,
        instance: InstanceView {
            id: "i",
            workflow: "w",
            version: 1,
            stage: "s",
            started_at: now,
            tags: &TAGS,
        },
        calendars: None,
    };
    for outcome in [
        expr.eval(&scope).err(),
        expr.eval_bool(&scope).err(),
        expr.eval_time(&scope).err(),
    ]
    .into_iter()
    .flatten()
    {
        assert_ne!(outcome.kind, EvalErrorKind::Internal, "{outcome}");
    }
}

fn expression_property(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let source = if u.ratio(1, 3)? {
        token_soup(u)?
    } else {
        grammar(u, 6)?
    };
    if let Ok(expr) = Expr::compile(&source) {
        evaluate(&expr);
    }
    Ok(())
}

#[test]
fn expressions_compile_or_are_refused_and_evaluate_or_fail_with_a_typed_error() {
    fixed_cases(cases(3_000), 512, expression_property);
}

#[test]
#[ignore = "a random search for as long as ARBTEST_BUDGET_MS says"]
fn expressions_random_search() {
    arbtest::arbtest(expression_property);
}

// --- Definitions ------------------------------------------------------------------------------

fn reference_definitions() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let mut out: Vec<Value> = std::fs::read_dir(&dir)
        .expect("the reference workflows")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "json").then(|| {
                serde_json::from_str(&std::fs::read_to_string(&p).expect("readable")).expect("JSON")
            })
        })
        .collect();
    out.sort_by_key(|v| v["id"].to_string());
    out
}

/// A value to put somewhere in a definition.
fn replacement(u: &mut Unstructured<'_>) -> arbitrary::Result<Value> {
    Ok(match u.int_in_range(0..=9)? {
        0 => Value::Null,
        1 => json!(u.arbitrary::<i64>()?),
        2 => json!(u
            .arbitrary::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .unwrap_or(0.5)),
        3 => json!(duration_text(u)?),
        4 => json!(grammar(u, 3)?),
        5 => json!(token_soup(u)?),
        6 => json!([]),
        7 => json!({}),
        8 => json!(u.arbitrary::<String>()?),
        _ => json!({"to": "done", "when": grammar(u, 2)?}),
    })
}

/// Every pointer into `v`, containers included.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, item) in m {
                pointers(
                    item,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn definition_property(definitions: &[Value], u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let mut def = u.choose(definitions)?.clone();
    for _ in 0..u.int_in_range(1..=4)? {
        let mut all = Vec::new();
        pointers(&def, String::new(), &mut all);
        let at = u.choose(&all)?.clone();
        let value = replacement(u)?;
        if let Some(slot) = def.pointer_mut(&at) {
            *slot = value;
        }
    }
    if let Ok(wf) = Workflow::from_value(&def, None) {
        let now: DateTime<Utc> = "2024-05-01T00:00:00Z".parse().expect("a time");
        let _ = start(&wf, "i-1".into(), json!({}), now);
    }
    Ok(())
}

#[test]
fn mutated_reference_definitions_validate_or_are_refused_never_panicking() {
    let definitions = reference_definitions();
    fixed_cases(cases(300), 256, |u| definition_property(&definitions, u));
}

#[test]
#[ignore = "a random search for as long as ARBTEST_BUDGET_MS says"]
fn definitions_random_search() {
    let definitions = reference_definitions();
    arbtest::arbtest(|u| definition_property(&definitions, u));
}
