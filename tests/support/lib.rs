//! Helpers shared by Waystation's end-to-end tests: the real `waystation` binary, the
//! built example plugins, and (from `waystation-fixtures`, shared with the core's tests)
//! where the repository is, the reference workflows, samples and calendars, and the
//! example plugins' catalog.

pub mod http;
pub mod pg;
pub mod server;
pub mod sse;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
pub use waystation_fixtures::{
    at, calendars_file, example_plugin, load_workflow, reference_calendars, root, sample,
    ExamplePlugins, EXAMPLE_PLUGINS,
};

/// The `waystation` binary, built once per test run with the same profile as the tests.
///
/// # Panics
/// If cargo cannot build it.
pub fn waystation_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        // The test executable lives in target/<profile>/deps; the binary in target/<profile>.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>")
            .to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut build = Command::new(cargo);
        build.current_dir(root()).args([
            "build",
            "--quiet",
            "-p",
            "waystation-server",
            "--bin",
            "waystation",
        ]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(
            status.success(),
            "cargo build of the waystation binary failed"
        );
        let bin = profile_dir.join(format!("waystation{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
}

/// Runs `waystation serve` on data directory `data` (with `env` set) where it must refuse
/// to start: asserts it exits with 2, and gives what it printed on stderr.
///
/// # Panics
/// If the binary cannot be run, or it exits otherwise.
pub fn serve_refused(data: &Path, env: &[(&str, &str)]) -> String {
    let out = Command::new(waystation_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .envs(env.iter().copied())
        .output()
        .expect("run waystation serve");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}
