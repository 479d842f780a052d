//! Reading a definition into a [`Workflow`]: JSON text, then the structural layer
//! ([`crate::validate`]), then the model, then the semantic layer (`compile`). Kept apart
//! from the `Workflow` type so that the compiled form and its compiler do not import each
//! other.

use crate::calendar::Calendars;
use crate::compile::compile;
use crate::definition::Definition;
use crate::expr::on_compile_stack;
use crate::plugin::PluginCatalog;
use crate::source::{parse_json, pointer_of_path};
use crate::validate::{structure, ValidationError};
use crate::workflow::Workflow;
use serde_json::Value;

impl Workflow {
    /// Parses, validates and compiles definition text.
    ///
    /// `catalog` answers which plugins exist; with `None`, plugin references are checked
    /// for form only.
    ///
    /// # Errors
    /// Every problem found, each with its JSON pointer (or line and column for malformed
    /// JSON). Structural problems are reported without the meaning checks, which need a
    /// well-formed document.
    pub fn from_text(
        text: &str,
        catalog: Option<&dyn PluginCatalog>,
    ) -> Result<Workflow, Vec<ValidationError>> {
        let value = parse_json(text)?;
        Workflow::from_value(&value, catalog)
    }

    /// Validates and compiles an already parsed definition.
    ///
    /// Runs on a thread of its own, whose stack fits the deepest expression parse the
    /// limits allow (see [`crate::expr`]); the caller's thread only waits.
    ///
    /// # Errors
    /// As [`Workflow::from_text`].
    pub fn from_value(
        value: &Value,
        catalog: Option<&dyn PluginCatalog>,
    ) -> Result<Workflow, Vec<ValidationError>> {
        Workflow::from_value_with(value, catalog, &Calendars::new())
    }

    /// As [`Workflow::from_value`], with the business calendars the definition may name
    /// (`calendar` of a stage, `{"duration", "calendar"}` spans, the CEL calendar functions).
    ///
    /// # Errors
    /// As [`Workflow::from_text`]; a calendar not in `calendars` is an error at its pointer.
    pub fn from_value_with(
        value: &Value,
        catalog: Option<&dyn PluginCatalog>,
        calendars: &Calendars,
    ) -> Result<Workflow, Vec<ValidationError>> {
        on_compile_stack(|| Workflow::from_value_here(value, catalog, calendars)).unwrap_or_else(|| {
            Err(vec![ValidationError::new(
                "",
                "the definition could not be checked: no thread could be started to compile it; try again",
            )])
        })
    }

    fn from_value_here(
        value: &Value,
        catalog: Option<&dyn PluginCatalog>,
        calendars: &Calendars,
    ) -> Result<Workflow, Vec<ValidationError>> {
        let errors = structure::check(value);
        if !errors.is_empty() {
            return Err(errors);
        }
        // The schema admits a few values the model cannot hold (a number too large for its
        // field, say); the path says which one.
        let definition: Definition =
            serde_path_to_error::deserialize(value.clone()).map_err(|e| {
                vec![ValidationError::new(
                    pointer_of_path(e.path()),
                    e.inner().to_string(),
                )]
            })?;
        compile(definition, catalog, calendars)
    }
}
