//! Compiling an approval stage's levels, with the checks that need a whole level (a name
//! used twice, an approver listed twice, a quorum no set of named users can meet).

use super::Checker;
use crate::definition::{ApprovalLevel, Approver, Quorum};
use crate::workflow::CompiledLevel;
use std::collections::HashSet;

impl Checker<'_> {
    /// The compiled levels of the approval stage at `p` (its JSON pointer), in order.
    pub(super) fn levels(&mut self, p: &str, levels: &[ApprovalLevel]) -> Vec<CompiledLevel> {
        let mut compiled = Vec::with_capacity(levels.len());
        let mut seen = HashSet::new();
        for (i, level) in levels.iter().enumerate() {
            let lp = format!("{p}/levels/{i}");
            let name = level
                .name
                .clone()
                .unwrap_or_else(|| format!("level-{}", i + 1));
            if !seen.insert(name.clone()) {
                // An unnamed level is called level-N; point at it, not at a missing name.
                let at = if level.name.is_some() {
                    format!("{lp}/name")
                } else {
                    lp.clone()
                };
                self.error(
                    at,
                    format!(
                        "two levels of this stage are called '{name}'; level names must be unique"
                    ),
                );
            }
            self.check_approvers(&lp, level);
            let skip_when = level
                .skip_when
                .as_ref()
                .and_then(|s| self.expr(&format!("{lp}/skip_when"), s));
            compiled.push(CompiledLevel {
                name,
                approvers: level.approvers.clone(),
                quorum: level.quorum,
                skip_when,
            });
        }
        compiled
    }

    /// A level at `lp` names at least one approver, each once, and enough named users to
    /// meet its quorum when it names only users.
    fn check_approvers(&mut self, lp: &str, level: &ApprovalLevel) {
        if level.approvers.is_empty() {
            self.error(
                format!("{lp}/approvers"),
                "an approval level needs at least one approver",
            );
        }
        let mut distinct = HashSet::new();
        for (j, a) in level.approvers.iter().enumerate() {
            if !distinct.insert(a) {
                self.error(
                    format!("{lp}/approvers/{j}"),
                    format!("{a} is listed twice in this level"),
                );
            }
        }
        if let Quorum::Count(n) = level.quorum {
            let only_users = level
                .approvers
                .iter()
                .all(|a| matches!(a, Approver::User(_)));
            if only_users && n as usize > level.approvers.len() {
                self.error(
                    format!("{lp}/quorum"),
                    format!(
                        "quorum {n} can never be met: only {} named user{} may decide",
                        level.approvers.len(),
                        if level.approvers.len() == 1 { "" } else { "s" }
                    ),
                );
            }
        }
    }
}
