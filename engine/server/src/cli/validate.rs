//! `waystation validate FILE...`

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Validates each file, printing `FILE: /pointer: message` per error or `FILE: valid`.
/// Exits 1 if any file is invalid, 0 if all are valid.
pub fn run(
    files: &[PathBuf],
    calendars: &waystation_core::calendar::Calendars,
    out: &mut impl Write,
) -> std::io::Result<ExitCode> {
    let mut invalid = 0;
    for path in files {
        match super::load(path, calendars) {
            Ok(wf) => writeln!(
                out,
                "{}: valid ({} stages)",
                path.display(),
                wf.stage_names().count()
            )?,
            Err(errors) => {
                invalid += 1;
                out.write_all(super::error_lines(path, &errors).as_bytes())?;
            }
        }
    }
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
