//! Recomputing the fields after a step.

use super::{Rejection, Run, Step};
use crate::fields::{scope, FieldValue};

impl Run<'_> {
    /// The fields over the state as it now is. A field whose expression cannot be
    /// evaluated yet (a variable not set so far) is empty; one whose value it cannot hold
    /// is returned as a problem and left as it was.
    fn computed_fields(&self) -> Vec<(String, Result<Option<FieldValue>, String>)> {
        let s = &self.state;
        let scope = scope(&s.input, &s.vars, self.now);
        let exprs: Vec<&crate::expr::Expr> = self.wf.fields.iter().map(|f| &f.value).collect();
        crate::expr::Expr::eval_all(&exprs, &scope)
            .into_iter()
            .zip(&self.wf.fields)
            .map(|(result, f)| {
                let value = match result {
                    Ok(json) => FieldValue::from_json(f.kind, &json),
                    Err(_) => Ok(None),
                };
                (f.name.clone(), value)
            })
            .collect()
    }

    /// Stores the computed fields; unusable values keep the field's previous value.
    pub(super) fn refresh_fields(&mut self) -> Option<Rejection> {
        let mut first_problem = None;
        for (name, value) in self.computed_fields() {
            match value {
                Ok(Some(v)) => {
                    self.state.fields.insert(name, v);
                }
                Ok(None) => {
                    self.state.fields.remove(&name);
                }
                Err(message) => {
                    first_problem.get_or_insert(Rejection::FieldUnfit {
                        field: name,
                        message,
                    });
                }
            }
        }
        first_problem
    }

    /// Finishes the step, refusing it when a field cannot hold what it computed.
    pub(super) fn finish_refusing_unfit_fields(self) -> Result<Step, Rejection> {
        match self.finish_checked() {
            (_, Some(problem)) => Err(problem),
            (step, None) => Ok(step),
        }
    }
}
