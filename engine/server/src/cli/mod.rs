//! Command-line subcommands other than `serve`.

pub mod graph;
pub mod plugin;
pub mod reports;
pub mod store;
pub mod validate;

use std::path::Path;
use waystation_core::{ValidationError, Workflow};

/// Reads and compiles one definition file; plugin references are checked for form only,
/// calendar names against `calendars` (the `--config` file's).
///
/// # Errors
/// The file's validation errors; an unreadable file is one error at the document.
pub fn load(
    path: &Path,
    calendars: &waystation_core::calendar::Calendars,
) -> Result<Workflow, Vec<ValidationError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ValidationError::new(
            "",
            format!("cannot read the file: {e}"),
        )]
    })?;
    let value = waystation_core::source::parse_json(&text)?;
    Workflow::from_value_with(&value, None, calendars)
}

/// Formats errors as `FILE: /pointer: message` lines.
pub fn error_lines(path: &Path, errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {e}\n", path.display()))
        .collect()
}
