//! Compiling a parallel stage. The checks that need the whole definition (branch scopes,
//! satisfiable joins) are in `compile::branch_scopes`.

use super::Checker;
use crate::definition::{BranchDef, ForEach, Join, JoinRule};
use crate::workflow::{CompiledBranchDef, CompiledForEach, CompiledKind};
use std::collections::HashSet;

impl Checker<'_> {
    /// The compiled kind of parallel stage `p` (its JSON pointer).
    pub(super) fn parallel(
        &mut self,
        p: &str,
        branches: &[BranchDef],
        for_each: Option<&ForEach>,
        join: &Join,
        transitions: &[crate::definition::Branch],
    ) -> CompiledKind {
        let compiled_each = match (for_each, branches.is_empty()) {
            (Some(_), false) => {
                self.error(
                    format!("{p}/for_each"),
                    "a parallel stage has either `branches` or `for_each`, not both",
                );
                None
            }
            (None, true) => {
                self.error(
                    p.to_owned(),
                    "a parallel stage needs `branches` (one or more) or `for_each`",
                );
                None
            }
            (Some(f), true) => self.for_each(p, f),
            (None, false) => None,
        };
        let (branches, bp_of): (&[BranchDef], Box<dyn Fn(usize) -> String>) = match for_each {
            Some(f) if branches.is_empty() => {
                let at = format!("{p}/for_each/branch");
                (
                    std::slice::from_ref(&f.branch),
                    Box::new(move |_| at.clone()),
                )
            }
            _ => {
                let p = p.to_owned();
                (branches, Box::new(move |i| format!("{p}/branches/{i}")))
            }
        };
        let compiled = self.branch_defs(branches, bp_of);
        // With `for_each` the number of branches is known only when the stage is entered:
        // a count larger than the list leaves the join unsatisfied then (its `on_error`).
        let total = if compiled_each.is_some() {
            usize::MAX
        } else {
            branches.len()
        };
        self.check_join_rule(p, join, total);
        let join_when = join
            .when
            .as_ref()
            .and_then(|w| self.expr(&format!("{p}/join/when"), w));
        let transitions = self.transitions(p, transitions);
        CompiledKind::Parallel {
            branches: compiled,
            for_each: compiled_each,
            join: join.clone(),
            join_when,
            transitions,
        }
    }

    /// The branches of a parallel stage, each with a unique name and an existing start
    /// stage; `bp_of(i)` is the pointer of branch `i`.
    fn branch_defs(
        &mut self,
        branches: &[BranchDef],
        bp_of: impl Fn(usize) -> String,
    ) -> Vec<CompiledBranchDef> {
        let mut names = HashSet::new();
        let mut compiled = Vec::with_capacity(branches.len());
        for (i, b) in branches.iter().enumerate() {
            let bp = bp_of(i);
            if !names.insert(b.name.as_str()) {
                self.error(
                    format!("{bp}/name"),
                    format!(
                        "two branches of this stage are called '{}'; branch names must be unique",
                        b.name
                    ),
                );
            }
            match self.by_name.get(&b.start).copied() {
                Some(start) => compiled.push(CompiledBranchDef {
                    name: b.name.clone(),
                    start,
                }),
                None => {
                    let hint = self.suggest(&b.start);
                    self.error(
                        format!("{bp}/start"),
                        format!("no stage named '{}'{hint}", b.start),
                    );
                }
            }
        }
        compiled
    }

    /// The compiled `for_each` of the stage at `p`: its list expression and variable.
    fn for_each(&mut self, p: &str, f: &ForEach) -> Option<CompiledForEach> {
        let items = self.expr(&format!("{p}/for_each/items"), &f.items);
        Some(CompiledForEach {
            items: items?,
            as_var: f.as_var.clone(),
        })
    }

    fn check_join_rule(&mut self, p: &str, join: &Join, total: usize) {
        match (join.rule, join.count) {
            (JoinRule::AtLeast, None) => self.error(
                format!("{p}/join"),
                "a join `at_least` needs `count`: how many branches must end",
            ),
            (JoinRule::AtLeast, Some(n)) if n as usize > total => self.error(
                format!("{p}/join/count"),
                format!(
                    "this join can never be satisfied: it needs {n} branches to end, but the stage has {total}"
                ),
            ),
            (JoinRule::All | JoinRule::Any, Some(_)) => self.error(
                format!("{p}/join/count"),
                "`count` applies only to the rule `at_least`",
            ),
            _ => {}
        }
    }
}
