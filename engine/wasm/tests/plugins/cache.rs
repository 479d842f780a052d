//! Compiled once: the artifact cache survives a restart and is not rebuilt.

use crate::support::{self, by_name};
use serde_json::json;
use std::path::{Path, PathBuf};
use waystation_core::World;
use waystation_wasm::PluginHost;

fn artifacts(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect()
}

#[test]
fn adding_compiles_once_and_caches_the_artifact_by_digest_and_engine() {
    let (dir, host) = support::host();
    let info = host.add("order-priority", &support::scorer()).unwrap();
    assert_eq!(host.stats().compiles, 1);
    let found = artifacts(&dir.path().join("plugins"));
    assert_eq!(found.len(), 1);
    let name = found[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(&format!("{}-", info.digest)), "{name}");
    // The same bytes under another name reuse the artifact.
    host.add("order-priority-copy", &support::scorer()).unwrap();
    assert_eq!(host.stats().compiles, 1);
}

#[test]
fn reopening_the_registry_maps_the_artifact_instead_of_recompiling() {
    let (dir, host) = support::host();
    let plugins = dir.path().join("plugins");
    host.add("order-priority", &support::scorer()).unwrap();
    drop(host);
    let artifact = artifacts(&plugins).remove(0);
    let written = std::fs::metadata(&artifact).unwrap().modified().unwrap();

    let reopened = PluginHost::open(&plugins, support::sandbox()).unwrap();
    let report = reopened.invoke_with_logs(&by_name("order-priority"), World::Scorer, &json!({}));
    assert!(report.result.is_ok(), "{:?}", report.result);
    let stats = reopened.stats();
    assert_eq!(stats.compiles, 0);
    assert_eq!(stats.artifact_loads, 1);
    assert_eq!(
        std::fs::metadata(&artifact).unwrap().modified().unwrap(),
        written
    );
    assert!(reopened.warm().is_empty());
    assert_eq!(reopened.stats().compiles, 0);
}

#[test]
fn a_damaged_artifact_is_compiled_again_from_the_stored_bytes() {
    let (dir, host) = support::host();
    let plugins = dir.path().join("plugins");
    host.add("order-priority", &support::scorer()).unwrap();
    drop(host);
    let artifact = artifacts(&plugins).remove(0);
    std::fs::write(&artifact, b"not an artifact").unwrap();

    let reopened = PluginHost::open(&plugins, support::sandbox()).unwrap();
    let report = reopened.invoke_with_logs(&by_name("order-priority"), World::Scorer, &json!({}));
    assert!(report.result.is_ok(), "{:?}", report.result);
    assert_eq!(reopened.stats().compiles, 1);
}
