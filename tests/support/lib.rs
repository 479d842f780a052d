//! Helpers shared by Waystation's end-to-end, golden and scenario tests: where the
//! repository is, the reference workflows and their samples, the plugin catalog of the
//! example plugins, and the real `waystation` binary.

pub mod http;
pub mod pg;
pub mod server;
pub mod sse;

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use waystation_core::{PluginCatalog, PluginRef, Workflow, World};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The example plugins of `plugins/` and their worlds, as a registry would report them.
pub struct ExamplePlugins;

/// Names and worlds of the example plugins.
pub const EXAMPLE_PLUGINS: [(&str, World); 4] = [
    ("order-health-score", World::Scorer),
    ("order-priority", World::Scorer),
    ("dispute-classifier", World::Scorer),
    ("tiered-notifier", World::Notifier),
];

impl PluginCatalog for ExamplePlugins {
    fn world_of(&self, reference: &PluginRef) -> Option<World> {
        EXAMPLE_PLUGINS
            .iter()
            .find(|(n, _)| *n == reference.name)
            .map(|(_, w)| *w)
    }
}

/// The built component of example plugin `name` (`plugins/dist/<name>.wasm`).
///
/// # Panics
/// When it has not been built, saying how to build it.
pub fn example_plugin(name: &str) -> Vec<u8> {
    let path = root().join("plugins/dist").join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the example plugins first: bash plugins/install-toolchains.sh && bash plugins/build-all.sh",
            path.display()
        )
    })
}

/// Loads and compiles `workflows/<id>.json` against the example plugins.
///
/// # Panics
/// With every validation error, if the workflow is invalid.
pub fn load_workflow(id: &str) -> Workflow {
    load_workflow_at(id)
}

/// The business calendars of the reference workflows (`workflows/calendars.toml`), which
/// test servers are configured with too.
///
/// # Panics
/// If the file is missing or a calendar in it is unusable.
pub fn reference_calendars() -> waystation_core::calendar::Calendars {
    let path = calendars_file();
    let config = waystation_server::config::Config::from_file(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    config
        .calendars()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `workflows/calendars.toml`.
pub fn calendars_file() -> PathBuf {
    root().join("workflows").join("calendars.toml")
}

fn load_workflow_at(id: &str) -> Workflow {
    let path = root().join("workflows").join(format!("{id}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Workflow::from_value_with(&value, Some(&ExamplePlugins), &reference_calendars()).unwrap_or_else(
        |errors| {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            panic!("{} is invalid:\n{}", path.display(), lines.join("\n"))
        },
    )
}

/// Reads `workflows/<id>.samples/<name>.json`.
///
/// # Panics
/// If the sample is missing or not JSON.
pub fn sample(id: &str, name: &str) -> Value {
    let path = root()
        .join("workflows")
        .join(format!("{id}.samples"))
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses an RFC 3339 time.
///
/// # Panics
/// If `text` is not RFC 3339.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339 time")
        .with_timezone(&Utc)
}

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
