//! Expressions that only read a member path of a JSON root (`input.request_id`,
//! `vars.order.total`, `event.data.reason`), found when the expression is compiled.
//!
//! Why: most business keys and fields of the reference workflows are such paths, and they
//! are evaluated on every start and after every command. Through CEL, an evaluation
//! converts the whole root (the start payload) to CEL values first; walking the JSON and
//! converting only the value found costs a small fraction of that. The answer is the one
//! CEL gives: the value found is converted with the same [`super::json_to_cel`], and a path
//! that does not lead to a value (a missing member, a member of something that is not an
//! object) is handed to CEL, so its error is CEL's own.

use cel::common::ast::{Expr as E, IdedExpr};
use serde_json::{Map, Value};

/// A root ([`super::ROOTS`] index: 0 `input`, 1 `vars`, 2 `event`) and the members read
/// from it, outermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MemberPath {
    root: usize,
    members: Vec<String>,
}

impl MemberPath {
    /// The path `program` reads, when it is nothing but member selections (no `has()`,
    /// no index, no call) on `input`, `vars` or `event`.
    pub(super) fn of(program: &IdedExpr) -> Option<MemberPath> {
        let mut members = Vec::new();
        let mut at = program;
        loop {
            match &at.expr {
                E::Select(s) if !s.test => {
                    members.push(s.field.clone());
                    at = &s.operand;
                }
                E::Ident(name) => {
                    let root = super::ROOTS[..3].iter().position(|r| r == name)?;
                    members.reverse();
                    return (!members.is_empty()).then_some(MemberPath { root, members });
                }
                _ => return None,
            }
        }
    }

    /// The JSON value at the path in `input`, `vars` or `event`, or `None` when the path
    /// leads to nothing (CEL then reports why).
    pub(super) fn find<'a>(
        &self,
        input: &'a Value,
        vars: &'a Map<String, Value>,
        event: Option<&'a Value>,
    ) -> Option<&'a Value> {
        let (first, rest) = self.members.split_first()?;
        let mut at = match self.root {
            0 => input.as_object()?.get(first)?,
            1 => vars.get(first)?,
            _ => event?.as_object()?.get(first)?,
        };
        for member in rest {
            at = at.as_object()?.get(member)?;
        }
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Expr, InstanceView, Scope};
    use super::MemberPath;
    use serde_json::{json, Map, Value};

    fn path_of(source: &str) -> Option<MemberPath> {
        Expr::compile(source).unwrap().path
    }

    #[test]
    fn plain_member_paths_of_input_vars_and_event_are_recognised() {
        for source in ["input.request_id", "vars.order.total", "event.data.reason"] {
            assert!(path_of(source).is_some(), "{source}");
        }
    }

    #[test]
    fn anything_more_than_a_member_path_is_left_to_cel() {
        for source in [
            "input",
            "now",
            "instance.id",
            "has(input.a)",
            "input['a']",
            "input.a + 1",
            "input.a.size()",
            "[input.a]",
        ] {
            assert_eq!(path_of(source), None, "{source}");
        }
    }

    #[test]
    fn a_path_that_leads_nowhere_finds_nothing() {
        let input = json!({"a": {"b": 1}, "s": "text"});
        let vars = Map::new();
        let find = |source: &str| path_of(source).unwrap().find(&input, &vars, None).cloned();
        assert_eq!(find("input.a.b"), Some(json!(1)));
        assert_eq!(find("input.a.c"), None);
        assert_eq!(find("input.s.b"), None);
        assert_eq!(find("vars.x"), None);
        assert_eq!(find("event.data"), None);
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
        let tags = std::collections::BTreeSet::new();
        let now = chrono::Utc::now();
        let scope = Scope {
            input: &input,
            vars: &vars,
            event: Some(&event),
            now,
            instance: InstanceView {
                id: "i",
                workflow: "w",
                version: 1,
                stage: "s",
                started_at: now,
                tags: &tags,
            },
            calendars: None,
        };
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
