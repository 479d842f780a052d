//! `waystation validate FILE...`

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use waystation_core::Workflow;

/// Validates each file, printing `FILE: /pointer: message` per error or `FILE: valid`.
/// Sub-workflow calls are checked among the files given (a workflow calling itself, calls
/// going round, an input mapping the called workflow's `input_schema` refuses, nesting
/// deeper than the limit); a call to a workflow not among them is named as checked only at
/// upload, against the stored workflows. Exits 1 if any file is invalid, 0 if all are
/// valid.
pub fn run(
    files: &[PathBuf],
    calendars: &waystation_core::calendar::Calendars,
    out: &mut impl Write,
) -> std::io::Result<ExitCode> {
    let mut invalid = 0;
    let results: Vec<_> = files
        .iter()
        .map(|path| (path, super::load(path, calendars).map(Arc::new)))
        .collect();
    let given: HashMap<String, Arc<Workflow>> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|wf| (wf.id().to_owned(), wf.clone()))
        .collect();
    // A pinned version is not in the files: only the workflows given, as their newest.
    let lookup = |id: &str, version: Option<u32>| {
        version.is_none().then(|| given.get(id).cloned()).flatten()
    };
    for (path, result) in &results {
        let wf = match result {
            Ok(wf) => wf,
            Err(errors) => {
                invalid += 1;
                out.write_all(super::error_lines(path, errors).as_bytes())?;
                continue;
            }
        };
        let mut unchecked: Vec<String> = Vec::new();
        let errors: Vec<_> = waystation_core::validate::calls::call_problems(wf, &lookup)
            .into_iter()
            .filter_map(|p| {
                // A workflow outside the files given may exist on the server: not checked here.
                if p.kind == waystation_core::validate::calls::CallKind::Missing {
                    unchecked.push(p.error.pointer);
                    return None;
                }
                Some(p.error)
            })
            .collect();
        if !errors.is_empty() {
            invalid += 1;
            out.write_all(super::error_lines(path, &errors).as_bytes())?;
            continue;
        }
        writeln!(
            out,
            "{}: valid ({} stages){}",
            path.display(),
            wf.stage_names().count(),
            if unchecked.is_empty() {
                String::new()
            } else {
                format!(
                    "; the calls at {} name workflows not among these files: checked at upload",
                    unchecked.join(", ")
                )
            }
        )?;
    }
    Ok(if invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
