//! Hostile definitions and data (issue 12): expressions that would crash or stall the
//! engine are refused when compiled or stopped by their budget when run; time is checked
//! arithmetic; every input has one meaning.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use waystation_core::expr::{EvalErrorKind, Expr, InstanceView, Scope};
use waystation_core::{start, Input, Rejection, Status, Workflow};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Evaluates `source` over `input` and `vars` at a fixed time.
fn eval_with(
    source: &str,
    input: &Value,
    vars: &Map<String, Value>,
) -> Result<Value, waystation_core::expr::EvalError> {
    static TAGS: BTreeSet<String> = BTreeSet::new();
    let now = at("2024-05-01T00:00:00Z");
    let scope = Scope {
        input,
        vars,
        event: None,
        now,
        instance: InstanceView {
            id: "i-1",
            workflow: "w",
            version: 1,
            stage: "s",
            started_at: now,
            tags: &TAGS,
        },
        calendars: None,
    };
    Expr::compile(source)
        .expect("the expression compiles")
        .eval(&scope)
}

fn eval_compiled(expr: &Expr, input: &Value) -> Result<Value, waystation_core::expr::EvalError> {
    static TAGS: BTreeSet<String> = BTreeSet::new();
    let now = at("2024-05-01T00:00:00Z");
    let vars = Map::new();
    expr.eval(&Scope {
        input,
        vars: &vars,
        event: None,
        now,
        instance: InstanceView {
            id: "i-1",
            workflow: "w",
            version: 1,
            stage: "s",
            started_at: now,
            tags: &TAGS,
        },
        calendars: None,
    })
}

fn eval(source: &str, input: Value) -> Result<Value, waystation_core::expr::EvalError> {
    eval_with(source, &input, &Map::new())
}

fn compile_error(source: &str) -> String {
    Expr::compile(source).expect_err("the expression is refused")
}

// --- Expressions cannot crash the engine -----------------------------------------------

#[test]
fn a_sum_of_1500_string_literals_is_refused_when_compiled_not_when_run() {
    let sum = vec!["'a'"; 1500].join("+");
    let e = compile_error(&sum);
    assert!(
        e.contains("too long or deep") && e.contains("5999 bytes, at most 4096"),
        "{e}"
    );
    // Short enough, but too many tokens: refused before the parser sees it.
    let sum = vec!["'a'"; 600].join("+");
    let e = compile_error(&sum);
    assert!(e.contains("1199 tokens, at most 1024"), "{e}");
}

#[test]
fn a_member_chain_33000_deep_is_refused_when_compiled() {
    let chain = format!("input{}", ".a".repeat(33_000));
    let e = compile_error(&chain);
    assert!(e.contains("66005 bytes, at most 4096"), "{e}");
}

#[test]
fn the_deepest_member_chain_the_length_allows_is_refused_without_overflowing() {
    // 2047 selections: as deep as 4096 bytes can nest, past the token limit.
    let chain = format!("in{}", ".a".repeat(2047));
    assert!(chain.len() <= 4096);
    let e = compile_error(&chain);
    assert!(e.contains("tokens, at most 1024"), "{e}");
    // Within the token limit but past the nesting limit: the parse runs, the check refuses.
    let chain = format!("input{}", ".a".repeat(400));
    let e = compile_error(&chain);
    assert!(e.contains("it nests 401 deep, at most 32"), "{e}");
}

#[test]
fn an_unclosed_string_cannot_hide_a_deep_expression_from_the_checks() {
    let hidden = format!("'{}", " + 1".repeat(1000));
    let e = compile_error(&hidden);
    assert!(e.contains("too") || e.contains("syntax"), "{e}");
}

#[test]
fn brackets_nested_past_the_limit_are_refused_before_parsing() {
    let deep = format!("{}1{}", "(".repeat(40), ")".repeat(40));
    let e = compile_error(&deep);
    assert!(e.contains("brackets nest 40 deep, at most 32"), "{e}");
    let list = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    assert!(compile_error(&list).contains("bytes, at most 4096"));
}

#[test]
fn a_sum_of_200_terms_is_refused_for_its_depth() {
    let sum = vec!["input.a"; 200].join(" + ");
    let e = compile_error(&sum);
    assert!(e.contains("it nests"), "{e}");
    // Twenty terms is an ordinary expression.
    let sum = vec!["1"; 20].join(" + ");
    assert_eq!(eval(&sum, json!({})).unwrap(), json!(20));
}

#[test]
fn comprehensions_nested_four_deep_are_refused_when_compiled() {
    let ten = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]";
    let four =
        format!("{ten}.all(a, {ten}.all(b, {ten}.all(c, {ten}.all(d, a + b + c + d >= 0))))");
    let e = compile_error(&four);
    assert!(
        e.contains("comprehensions (all, exists, map, filter) nest 4 deep, at most 3"),
        "{e}"
    );
    let three = format!("{ten}.all(a, {ten}.all(b, {ten}.all(c, a + b + c >= 0)))");
    assert_eq!(eval(&three, json!({})).unwrap(), json!(true));
}

#[test]
fn nested_comprehensions_over_large_input_stop_at_the_iteration_budget() {
    let items: Vec<u32> = (0..100).collect();
    let source = "input.items.all(a, input.items.all(b, input.items.all(c, a + b + c >= 0.0)))";
    let e = eval(source, json!({ "items": items })).unwrap_err();
    assert_eq!(e.kind, EvalErrorKind::Budget, "{e}");
    assert!(e.message.contains("100000 comprehension iterations"), "{e}");
}

#[test]
fn an_error_absorbed_by_exists_still_stops_at_the_budget() {
    let items: Vec<u32> = (0..400).collect();
    // The inner loops exhaust the budget; `exists` would swallow an ordinary error when a
    // later element is true.
    let source =
        "input.items.exists(a, input.items.exists(b, input.items.exists(c, false)) || a == 399.0)";
    let e = eval(source, json!({ "items": items })).unwrap_err();
    assert_eq!(e.kind, EvalErrorKind::Budget, "{e}");
}

#[test]
fn a_chain_of_replace_doubling_a_string_stops_before_it_allocates_much() {
    let chain = format!("'a'{}", ".replace('a', 'aa')".repeat(27));
    assert!(chain.len() < 600, "{}", chain.len());
    let e = eval(&chain, json!({})).unwrap_err();
    assert_eq!(e.kind, EvalErrorKind::Budget, "{e}");
    assert!(e.message.contains("16 MiB"), "{e}");
    // A short chain is an ordinary replace.
    let short = "'a'.replace('a', 'aa').replace('a', 'aa')";
    assert_eq!(eval(short, json!({})).unwrap(), json!("aaaa"));
    assert_eq!(
        eval("'abab'.replace('ab', 'x', 1)", json!({})).unwrap(),
        json!("xab")
    );
}

#[test]
fn concatenating_a_large_input_over_and_over_stops_at_the_byte_budget() {
    let big = "x".repeat(1 << 20);
    let sum = vec!["input.s"; 20].join(" + ");
    let e = eval(&sum, json!({ "s": big })).unwrap_err();
    assert_eq!(e.kind, EvalErrorKind::Budget, "{e}");
    let list = format!("[{}]", vec!["input.s"; 40].join(", "));
    let e = eval(&list, json!({ "s": big })).unwrap_err();
    assert_eq!(e.kind, EvalErrorKind::Budget, "{e}");
    let mapped = "input.items.map(i, input.s)";
    let e = eval(mapped, json!({ "s": big, "items": vec![0; 40] })).unwrap_err();
    assert_eq!(e.kind, EvalErrorKind::Budget, "{e}");
}

#[test]
fn expressions_up_to_the_nesting_limit_evaluate_on_half_a_tokio_worker_stack() {
    // Nested conditionals from flat to as deep as the limit allows, each evaluated on a
    // 1 MiB stack (tokio's workers have 2 MiB): the evaluator recurses once per level.
    let mut source = String::from("input.a");
    let mut sources = vec![source.clone()];
    for _ in 0..29 {
        source = format!("(input.a > 0.0 ? {source} : 0.0)");
        sources.push(source.clone());
    }
    for source in sources {
        let expr = Expr::compile(&source).expect("within the limits");
        let handle = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || eval_compiled(&expr, &json!({ "a": 1 })))
            .unwrap();
        assert_eq!(handle.join().unwrap().unwrap(), json!(1));
    }
}

// --- Numbers have one meaning ------------------------------------------------------------

#[test]
fn an_amount_written_5000_or_5000_point_0_is_the_same_number() {
    for amount in [json!(5000), json!(5000.0)] {
        let input = json!({ "amount": amount });
        assert_eq!(
            eval("input.amount * 0.02", input.clone()).unwrap(),
            json!(100)
        );
        assert_eq!(
            eval("input.amount * 2", input.clone()).unwrap(),
            json!(10000)
        );
        assert_eq!(
            eval("input.amount > 4999", input.clone()).unwrap(),
            json!(true)
        );
        assert_eq!(eval("input.amount == 5000", input).unwrap(), json!(true));
    }
    for amount in [json!(5001), json!(5001.0)] {
        let input = json!({ "amount": amount });
        assert_eq!(eval("input.amount / 2", input).unwrap(), json!(2500.5));
    }
    // Two int literals stay CEL ints.
    assert_eq!(eval("5001 / 2", json!({})).unwrap(), json!(2500));
}

#[test]
fn a_counter_kept_in_vars_counts_on() {
    let mut vars = Map::new();
    vars.insert("notices".into(), json!(1));
    let v = eval_with(
        "has(vars.notices) ? vars.notices + 1 : 1",
        &json!({}),
        &vars,
    )
    .unwrap();
    assert_eq!(v, json!(2));
}

#[test]
fn numbers_a_double_cannot_keep_are_refused_at_their_pointer() {
    let input = serde_json::from_str::<Value>(
        r#"{"order": {"lines": [{"qty": 12345678901234567890123}]}, "id": 9007199254740993, "ok": 9007199254740991}"#,
    )
    .unwrap();
    let errors = waystation_core::expr::unrepresentable_numbers(&input, "");
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/order/lines/0/qty", "/id"]);
    assert!(errors[0].message.contains("send larger ones as strings"));
}

// --- Functions for ISO durations and required text ---------------------------------------

#[test]
fn duration_reads_the_iso_form_the_engine_writes_and_go_style_still() {
    let plus = |d: &str| eval(&format!("now + duration('{d}')"), json!({})).unwrap();
    assert_eq!(plus("PT1H"), json!("2024-05-01T01:00:00Z"));
    assert_eq!(plus("P1DT12H"), json!("2024-05-02T12:00:00Z"));
    assert_eq!(plus("36h"), json!("2024-05-02T12:00:00Z"));
    assert_eq!(plus("-PT1H"), json!("2024-04-30T23:00:00Z"));
    let e = eval("duration('PT1H1H')", json!({})).unwrap_err();
    assert!(e.message.contains("each unit may appear once"), "{e}");
}

#[test]
fn nonblank_is_true_only_for_a_string_with_something_in_it() {
    let holds = |data: Value| {
        eval("nonblank(input.reason)", data)
            .unwrap()
            .as_bool()
            .unwrap()
    };
    assert!(holds(json!({ "reason": "supplier late" })));
    for fooled_before in [
        json!({ "reason": null }),
        json!({ "reason": 0 }),
        json!({ "reason": false }),
        json!({ "reason": {} }),
        json!({ "reason": [] }),
        json!({ "reason": "" }),
        json!({ "reason": "   " }),
        json!({ "reason": "\t\n" }),
        json!({}),
    ] {
        assert!(!holds(fooled_before.clone()), "{fooled_before}");
    }
    assert_eq!(eval("nonblank(' x ')", json!({})).unwrap(), json!(true));
}

// --- Timestamps in UTC ---------------------------------------------------------------------

#[test]
fn get_hours_is_the_utc_hour_whatever_offset_the_client_wrote() {
    for written in ["2024-05-10T12:00:00+08:00", "2024-05-10T04:00:00Z"] {
        let input = json!({ "at": written });
        assert_eq!(
            eval("input.at.getHours()", input.clone()).unwrap(),
            json!(4)
        );
        assert_eq!(
            eval("input.at", input).unwrap(),
            json!("2024-05-10T04:00:00Z")
        );
    }
    let mut vars = Map::new();
    vars.insert(
        "at".into(),
        eval("input.at", json!({ "at": "2024-05-10T12:00:00+08:00" })).unwrap(),
    );
    assert_eq!(
        eval_with("vars.at.getHours()", &json!({}), &vars).unwrap(),
        json!(4)
    );
}

// --- Time is checked arithmetic --------------------------------------------------------------

fn waiting_workflow(deadline: &str, at_risk: Option<&str>) -> Workflow {
    let mut stage =
        json!({ "kind": "wait", "deadline": deadline, "on": { "done": { "to": "end" } } });
    if let Some(r) = at_risk {
        stage["at_risk"] = json!(r);
    }
    let def = json!({
        "id": "hold", "title": "Hold", "start": "hold",
        "stages": { "hold": stage, "end": { "kind": "end", "outcome": "done" } }
    });
    Workflow::from_value(&def, None).expect("the definition is valid")
}

#[test]
fn a_deadline_past_year_9999_fails_the_start_with_a_reason() {
    let wf = waiting_workflow("P36525D", None);
    let step = start(&wf, "i-1".into(), json!({}), at("9950-01-01T00:00:00Z")).unwrap();
    assert_eq!(step.state.status, Status::Failed);
    let reason = step.state.failure.unwrap();
    assert!(
        reason.contains("deadline of stage 'hold'")
            && reason.contains("9950-01-01T00:00:00Z + P36525D falls outside the years 0001-9999"),
        "{reason}"
    );
}

#[test]
fn an_at_risk_time_before_year_1_fails_with_a_reason() {
    let wf = waiting_workflow("timestamp('0001-01-02T00:00:00Z')", Some("P3D"));
    let step = start(&wf, "i-1".into(), json!({}), at("0001-01-01T00:00:00Z")).unwrap();
    assert_eq!(step.state.status, Status::Failed);
    assert!(step.state.failure.unwrap().contains("at-risk time"));
}

#[test]
fn deadlines_that_cannot_be_written_are_refused_by_validation() {
    for bad in [
        "P1653439W",
        "PT999999999999S",
        "PT1H1H",
        "PT30M1H",
        "PT.5S",
        "PT5.S",
    ] {
        let def = json!({
            "id": "hold", "title": "Hold", "start": "hold",
            "stages": {
                "hold": { "kind": "wait", "deadline": bad, "on": { "done": { "to": "end" } } },
                "end": { "kind": "end", "outcome": "done" }
            }
        });
        let errors = Workflow::from_value(&def, None).unwrap_err();
        assert_eq!(
            errors[0].pointer, "/stages/hold/deadline",
            "{bad}: {errors:?}"
        );
    }
}

// --- Input enters with one meaning ---------------------------------------------------------------

fn schema_workflow(schema: Value) -> Workflow {
    let def = json!({
        "id": "order", "title": "Order", "start": "wait", "input_schema": schema,
        "stages": {
            "wait": { "kind": "wait", "on": { "done": { "to": "end" } } },
            "end": { "kind": "end", "outcome": "done" }
        }
    });
    Workflow::from_value(&def, None).expect("the definition is valid")
}

#[test]
fn a_date_time_that_is_not_one_is_refused_at_start_with_its_pointer() {
    let wf = schema_workflow(json!({
        "type": "object",
        "properties": {
            "promised_at": { "type": "string", "format": "date-time" },
            "day": { "type": "string", "format": "date" },
            "email": { "type": "string", "format": "email" },
            "site": { "type": "string", "format": "uri" },
            "ref": { "type": "string", "format": "uuid" }
        }
    }));
    let now = at("2024-05-01T00:00:00Z");
    for (field, bad) in [
        ("promised_at", "2024-02-30T12:00:00Z"),
        ("promised_at", "tomorrow"),
        ("day", "2024-13-01"),
        ("email", "not an address"),
        ("site", "no scheme"),
        ("ref", "1234"),
    ] {
        let input = json!({ field: bad });
        match start(&wf, "i".into(), input, now) {
            Err(Rejection::InvalidInput(errors)) => {
                assert_eq!(errors[0].pointer, format!("/{field}"), "{bad}: {errors:?}")
            }
            other => panic!("{field}={bad} was not refused: {other:?}"),
        }
    }
    let good = json!({
        "promised_at": "2024-02-29T12:00:00+08:00", "day": "2024-02-29",
        "email": "ana@example.com", "site": "https://example.com/a",
        "ref": "6f1c2c1e-4b0a-4b8e-9a57-2f0f4bb5d2a1"
    });
    assert!(start(&wf, "i".into(), good, now).is_ok());
}

#[test]
fn an_exact_number_too_large_for_a_double_is_refused_at_start_and_in_event_data() {
    let wf = schema_workflow(json!({ "type": "object" }));
    let now = at("2024-05-01T00:00:00Z");
    let huge: Value = serde_json::from_str(r#"{"amount": 12345678901234567890123}"#).unwrap();
    match start(&wf, "i".into(), huge.clone(), now) {
        Err(Rejection::InvalidInput(errors)) => assert_eq!(errors[0].pointer, "/amount"),
        other => panic!("not refused: {other:?}"),
    }
    let step = start(&wf, "i".into(), json!({}), now).unwrap();
    let event = Input::Event {
        name: "done".into(),
        data: huge,
        stage: None,
    };
    match waystation_core::apply(&wf, step.state, event, now) {
        Err(Rejection::InvalidEventData(errors)) => assert_eq!(errors[0].pointer, "/amount"),
        other => panic!("not refused: {other:?}"),
    }
}

// --- Validation stays near-linear -----------------------------------------------------------------

#[test]
fn a_definition_of_10000_stages_with_misspelt_targets_validates_and_names_each() {
    let mut stages = Map::new();
    for i in 0..10_000 {
        stages.insert(
            format!("stage_{i:05}"),
            json!({ "kind": "task", "transitions": [{ "to": format!("stagee_{i:05}") }] }),
        );
    }
    stages.insert("end".into(), json!({ "kind": "end", "outcome": "done" }));
    let def = json!({ "id": "big", "title": "Big", "start": "stage_00000", "stages": stages });
    let errors = Workflow::from_value(&def, None).unwrap_err();
    let misspelt = errors
        .iter()
        .filter(|e| e.message.starts_with("no stage named 'stagee_"))
        .count();
    assert_eq!(misspelt, 10_000);
    assert!(
        errors[0].message.contains("did you mean 'stage_00000'"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_plan_due_twice_the_response_hours_from_now_is_two_hours_for_high_priority() {
    // order-quick-response: `response_hours` is stored as the JSON number 1 and read back
    // as a double.
    let mut vars = Map::new();
    vars.insert("response_hours".into(), json!(1));
    let due = eval_with(
        "now + duration(string(2 * vars.response_hours) + 'h')",
        &json!({}),
        &vars,
    )
    .unwrap();
    assert_eq!(due, json!("2024-05-01T02:00:00Z"));
}

#[test]
fn a_pattern_the_regex_engine_refuses_is_refused_at_upload_naming_it() {
    for (source, pattern) in [
        ("event.data.s.matches('(?=x)')", "(?=x)"),
        (
            "matches(input.s, 'a{1000}{1000}{1000}')",
            "a{1000}{1000}{1000}",
        ),
        ("input.list.exists(x, x.matches('(?<!y)z'))", "(?<!y)z"),
        ("[input.s.matches('[')].size() > 0", "["),
    ] {
        let message = compile_error(source);
        assert!(message.contains(pattern), "{source}: {message}");
        assert!(message.contains("matches()"), "{source}: {message}");
    }
    // Patterns the engine runs compile; a pattern built at run time is checked when run.
    for fine in [
        "input.s.matches('^[A-Z]{2}-[0-9]+$')",
        "matches(input.s, '(?i)refund')",
        "input.s.matches(input.pattern)",
    ] {
        assert!(Expr::compile(fine).is_ok(), "{fine}");
    }
}

/// A definition of `n` task stages in a row (`s0` to `s{n-1}`, each moving on at once),
/// then an end; with `back`, the last task stage goes back to `s0` instead.
fn task_chain(n: usize, back: bool) -> Workflow {
    let mut stages = Map::new();
    for i in 0..n {
        let transitions = if i + 1 < n {
            json!([{"to": format!("s{}", i + 1)}])
        } else if back {
            // An end the data never takes, so the definition is valid.
            json!([{"to": "done", "when": "1 == 2"}, {"to": "s0"}])
        } else {
            json!([{"to": "done"}])
        };
        stages.insert(
            format!("s{i}"),
            json!({"kind": "task", "transitions": transitions}),
        );
    }
    stages.insert("done".into(), json!({"kind": "end", "outcome": "done"}));
    let def = json!({"id": "chain", "title": "Chain", "start": "s0", "stages": stages});
    Workflow::from_text(&def.to_string(), None).unwrap()
}

#[test]
fn a_step_through_more_stages_than_allowed_says_whether_it_looped_or_ran_too_long() {
    let now = at("2026-10-01T00:00:00Z");
    let long = start(&task_chain(300, false), "c-1".into(), json!({}), now).unwrap();
    assert_eq!(long.state.status, Status::Failed);
    let why = long.state.failure.unwrap();
    assert!(
        why.contains("at most 256 stages") && !why.contains("loop"),
        "{why}"
    );
    let looped = start(&task_chain(3, true), "c-2".into(), json!({}), now).unwrap();
    assert_eq!(looped.state.status, Status::Failed);
    let why = looped.state.failure.unwrap();
    assert!(why.contains("part of a loop of task stages"), "{why}");
    // 200 in a row fit in one step.
    let fits = start(&task_chain(200, false), "c-3".into(), json!({}), now).unwrap();
    assert_eq!(fits.state.status, Status::Completed);
}

#[test]
fn arithmetic_errors_are_said_in_words_not_as_rust_debug_text() {
    for (source, words) in [
        ("1 / 0", "division by zero"),
        ("7 % 0", "remainder of a division by zero"),
        ("9223372036854775807 + 1", "does not fit a 64-bit integer"),
        (
            "timestamp('9999-12-31T23:00:00Z') + duration('2h')",
            "outside the years 0001-9999",
        ),
    ] {
        let e = eval(source, json!({})).expect_err(source);
        let message = e.to_string();
        assert!(message.contains(words), "{source}: {message}");
        for debug in ["Int(", "Timestamp(", "TimeDelta", "Duration("] {
            assert!(!message.contains(debug), "{source}: {message}");
        }
    }
}
