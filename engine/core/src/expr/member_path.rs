//! Expressions that only read a member path of a JSON root (`input.request_id`,
//! `vars.order.total`, `event.data.reason`), found when the expression is compiled.
//!
//! Why: most business keys and fields of the reference workflows are such paths, and they
//! are evaluated on every start and after every command. Through CEL, an evaluation
//! converts the whole root (the start payload) to CEL values first; walking the JSON and
//! converting only the value found costs a small fraction of that. The answer is the one
//! CEL gives: the value found is converted to CEL as a whole root would be, and a path
//! that does not lead to a value (a missing member, a member of something that is not an
//! object) is handed to CEL, so its error is CEL's own.

use cel::common::ast::{Expr as E, IdedExpr};
use serde_json::{Map, Value};

/// The roots that hold JSON, in the expression language's order of roots.
const JSON_ROOTS: [&str; 3] = ["input", "vars", "event"];

/// A root (0 `input`, 1 `vars`, 2 `event`: the first three roots of the expression
/// language, in its order) and the members read from it, outermost first.
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
                    let root = JSON_ROOTS.iter().position(|r| r == name)?;
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
    use super::MemberPath;
    use serde_json::{json, Map};

    fn path_of(source: &str) -> Option<MemberPath> {
        let program = cel::Program::compile(source).unwrap();
        MemberPath::of(program.expression())
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
}
