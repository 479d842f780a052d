//! `waystation plugin check FILE` and `waystation plugin invoke FILE --input JSON`: look at
//! and run a component under the same sandbox the server uses, without a registry.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use waystation_wasm::{HostConfig, Limits, Sandbox};

/// A sandbox for one command: the server's settings with a pool for a single call.
fn sandbox() -> std::io::Result<Sandbox> {
    Sandbox::new(HostConfig {
        max_concurrent_calls: 1,
        ..HostConfig::default()
    })
    .map_err(std::io::Error::other)
}

/// Reads the component, or prints why it cannot be read (`None`).
fn read(path: &Path, out: &mut impl Write) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) => {
            writeln!(out, "{}: cannot read the file: {e}", path.display())?;
            Ok(None)
        }
    }
}

/// Checks that FILE is a component of a known world and prints its world, imports,
/// exports, size and SHA-256 digest. Exits 1 with the reason when it is not a usable plugin.
///
/// # Errors
/// Only when writing to `out` fails or the sandbox cannot be built.
pub fn check(path: &Path, out: &mut impl Write) -> std::io::Result<ExitCode> {
    let Some(bytes) = read(path, out)? else {
        return Ok(ExitCode::FAILURE);
    };
    match sandbox()?.inspect(&bytes) {
        Ok(inspection) => {
            writeln!(out, "{}: a {} plugin", path.display(), inspection.world)?;
            writeln!(out, "world:   {}", inspection.world)?;
            writeln!(out, "size:    {} bytes", inspection.size)?;
            writeln!(out, "digest:  sha256:{}", inspection.digest)?;
            writeln!(out, "imports:")?;
            for import in &inspection.imports {
                writeln!(out, "  {import}")?;
            }
            writeln!(out, "exports:")?;
            for export in &inspection.exports {
                writeln!(out, "  {export}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            writeln!(out, "{}: {e} [{}]", path.display(), e.code())?;
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Runs FILE on `input_json` under the default limits (100 ms, 64 MiB, 1 MiB of output)
/// and prints the output JSON, the plugin's log lines and the duration. Exits 1 when the
/// component is refused, the input is not JSON, or the call fails.
///
/// # Errors
/// Only when writing to `out` fails or the sandbox cannot be built.
pub fn invoke(path: &Path, input_json: &str, out: &mut impl Write) -> std::io::Result<ExitCode> {
    invoke_with_limits(path, input_json, None, out)
}

/// [`invoke`] under the given limits instead of the defaults.
///
/// # Errors
/// Only when writing to `out` fails or the sandbox cannot be built.
pub fn invoke_with_limits(
    path: &Path,
    input_json: &str,
    limits: Option<Limits>,
    out: &mut impl Write,
) -> std::io::Result<ExitCode> {
    let input: serde_json::Value = match serde_json::from_str(input_json) {
        Ok(v) => v,
        Err(e) => {
            writeln!(out, "--input is not JSON: {e}")?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let Some(bytes) = read(path, out)? else {
        return Ok(ExitCode::FAILURE);
    };
    let sandbox = sandbox()?;
    let limits = limits.unwrap_or(sandbox.config().default_limits);
    if let Err(e) = limits.validate(sandbox.config().max_memory_bytes) {
        writeln!(out, "invalid limits: {e}")?;
        return Ok(ExitCode::FAILURE);
    }
    let plugin = match sandbox.load(&bytes) {
        Ok(plugin) => plugin,
        Err(e) => {
            writeln!(out, "{}: {e} [{}]", path.display(), e.code())?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let report = sandbox.call(&plugin, &input, &limits);
    let code = match &report.result {
        Ok(output) => {
            writeln!(out, "output:")?;
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(output).map_err(std::io::Error::other)?
            )?;
            ExitCode::SUCCESS
        }
        Err(e) => {
            writeln!(out, "error ({}): {e}", e.kind().as_str())?;
            ExitCode::FAILURE
        }
    };
    writeln!(out, "logs:")?;
    for line in &report.logs {
        writeln!(out, "  [{}] {}", line.level, line.message)?;
    }
    writeln!(
        out,
        "duration: {:.3} ms (budget {} ms, memory cap {} MiB)",
        report.duration.as_secs_f64() * 1000.0,
        limits.time_budget_ms,
        limits.memory_bytes >> 20
    )?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<ExitCode>) -> (ExitCode, String) {
        let mut out = Vec::new();
        let code = f(&mut out).unwrap();
        (code, String::from_utf8(out).unwrap())
    }

    #[test]
    fn check_refuses_bytes_that_are_not_wasm_and_an_empty_file_with_distinct_reasons() {
        let dir = std::env::temp_dir().join(format!("ws-plugin-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.wasm");
        std::fs::write(&junk, b"#!/bin/sh\n").unwrap();
        let empty = dir.join("empty.wasm");
        std::fs::write(&empty, b"").unwrap();
        let (code, text) = run(|out| check(&junk, out));
        assert_eq!(code, ExitCode::FAILURE);
        assert!(text.contains("[not_wasm]"), "{text}");
        let (code, text) = run(|out| check(&empty, out));
        assert_eq!(code, ExitCode::FAILURE);
        assert!(text.contains("[empty]"), "{text}");
        let (code, text) = run(|out| check(&dir.join("missing.wasm"), out));
        assert_eq!(code, ExitCode::FAILURE);
        assert!(text.contains("cannot read"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn invoke_refuses_input_that_is_not_json() {
        let (code, text) = run(|out| invoke(Path::new("whatever.wasm"), "{nope", out));
        assert_eq!(code, ExitCode::FAILURE);
        assert!(text.contains("not JSON"), "{text}");
    }

    #[test]
    fn check_and_invoke_an_example_plugin_when_one_is_built() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../plugins/dist/order-health-score.wasm");
        if !path.exists() {
            return;
        }
        let (code, text) = run(|out| check(&path, out));
        assert_eq!(code, ExitCode::SUCCESS, "{text}");
        assert!(text.contains("world:   scorer"), "{text}");
        assert!(text.contains("digest:  sha256:"), "{text}");
        let (code, text) = run(|out| invoke(&path, r#"{"order": {"id": "o1"}}"#, out));
        assert_eq!(code, ExitCode::SUCCESS, "{text}");
        assert!(text.contains("\"score\""), "{text}");
        assert!(text.contains("duration:"), "{text}");
    }
}
