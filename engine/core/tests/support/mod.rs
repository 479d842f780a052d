//! What the core's scenario and golden tests share: where the repository is, the reference
//! workflows with their samples and business calendars, and the example plugins' worlds
//! (the core needs only the worlds; the plugins run as fakes).

#![allow(dead_code)] // each test binary uses a part

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use waystation_core::calendar::{Calendar, CalendarDef, Calendars};
use waystation_core::{PluginCatalog, PluginRef, Workflow, World};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The example plugins of `plugins/` and their worlds, as a registry would report them.
pub struct ExamplePlugins;

/// Names and worlds of the example plugins.
const EXAMPLE_PLUGINS: [(&str, World); 4] = [
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

/// `workflows/calendars.toml`: the `[calendars.<name>]` tables a server is configured with.
#[derive(serde::Deserialize)]
struct CalendarsFile {
    calendars: BTreeMap<String, CalendarDef>,
}

/// The business calendars of the reference workflows (`workflows/calendars.toml`).
///
/// # Panics
/// If the file is missing or a calendar in it is unusable.
pub fn reference_calendars() -> Calendars {
    let path = root().join("workflows").join("calendars.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file: CalendarsFile =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.calendars
        .into_iter()
        .map(|(name, def)| {
            let calendar =
                Calendar::new(&def).unwrap_or_else(|e| panic!("{}: {name}: {e}", path.display()));
            (name, Arc::new(calendar))
        })
        .collect()
}

/// Loads and compiles `workflows/<id>.json` against the example plugins.
///
/// # Panics
/// With every validation error, if the workflow is invalid.
pub fn load_workflow(id: &str) -> Workflow {
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
