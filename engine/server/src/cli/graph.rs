//! `waystation graph FILE`

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Prints a Mermaid flowchart of the file's stages and transitions, or its errors.
pub fn run(
    path: &Path,
    calendars: &waystation_core::calendar::Calendars,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<ExitCode> {
    match super::load(path, calendars) {
        Ok(wf) => {
            out.write_all(waystation_core::graph::mermaid(&wf.definition).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            err.write_all(super::error_lines(path, &errors).as_bytes())?;
            Ok(ExitCode::FAILURE)
        }
    }
}
