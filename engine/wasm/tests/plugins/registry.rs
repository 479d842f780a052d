//! What `add` accepts and refuses, versions, pins, the catalog, per-plugin limits.

use crate::support::{self, by_name};
use waystation_core::{PluginCatalog, PluginRef, World};
use waystation_wasm::{AddError, HostConfig, Limits, PluginHost, Sandbox};

#[test]
fn a_well_behaved_scorer_is_added_as_version_one_of_the_scorer_world() {
    let (dir, host) = support::host();
    let bytes = support::scorer();
    let info = host.add("order-priority", &bytes).unwrap();
    assert_eq!(info.name, "order-priority");
    assert_eq!(info.version, 1);
    assert_eq!(info.world, World::Scorer);
    assert_eq!(info.size, bytes.len() as u64);
    assert_eq!(info.digest, waystation_wasm::digest(&bytes));
    let stored = dir
        .path()
        .join("plugins")
        .join(format!("{}.wasm", info.digest));
    assert_eq!(std::fs::read(stored).unwrap(), bytes);
    assert!(dir.path().join("plugins/index.json").exists());
}

#[test]
fn a_well_behaved_notifier_is_added_in_the_notifier_world() {
    let (_dir, host) = support::host();
    let info = host.add("tiered-notifier", &support::notifier()).unwrap();
    assert_eq!(info.world, World::Notifier);
}

#[test]
fn adding_the_same_bytes_again_is_a_no_op_returning_the_existing_version() {
    let (_dir, host) = support::host();
    let first = host.add("order-priority", &support::scorer()).unwrap();
    let again = host.add("order-priority", &support::scorer()).unwrap();
    assert_eq!(first, again);
    assert_eq!(host.list().len(), 1);
}

#[test]
fn a_new_build_becomes_the_newest_version_and_the_old_one_stays_pinnable() {
    let (_dir, host) = support::host();
    let v1 = host.add("order-priority", &support::scorer()).unwrap();
    let v2 = host
        .add(
            "order-priority",
            &support::scorer_doing(support::bodies::REFUSE),
        )
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(host.resolve(&by_name("order-priority")).unwrap(), v2);
    assert_eq!(host.resolve(&v1.pinned()).unwrap(), v1);
    let unknown_pin = PluginRef {
        name: "order-priority".into(),
        digest: Some("0".repeat(64)),
    };
    assert!(host.resolve(&unknown_pin).is_none());
}

#[test]
fn bytes_that_are_not_wasm_are_refused_as_not_wasm() {
    let (_dir, host) = support::host();
    let err = host.add("p", b"#!/bin/sh\necho hello\n").unwrap_err();
    assert!(matches!(err, AddError::NotWasm), "{err}");
    assert_eq!(err.code(), "not_wasm");
}

#[test]
fn an_empty_file_is_refused_as_empty() {
    let (_dir, host) = support::host();
    let err = host.add("p", b"").unwrap_err();
    assert!(matches!(err, AddError::Empty), "{err}");
    assert!(err.to_string().contains("empty"));
}

#[test]
fn a_core_module_is_refused_as_not_a_component() {
    let (_dir, host) = support::host();
    let module = wat::parse_str("(module (func (export \"score\")))").unwrap();
    let err = host.add("p", &module).unwrap_err();
    assert!(matches!(err, AddError::NotAComponent), "{err}");
    assert!(err.to_string().contains("wasm-tools component new"));
}

#[test]
fn a_component_exporting_no_known_world_is_refused_as_unknown_world() {
    let (_dir, host) = support::host();
    let err = host.add("p", &support::wrong_world()).unwrap_err();
    match &err {
        AddError::UnknownWorld { exports } => assert_eq!(exports, &["run".to_owned()]),
        other => panic!("expected unknown world, got {other}"),
    }
}

#[test]
fn a_score_export_of_the_wrong_type_is_refused_as_wrong_world() {
    let (_dir, host) = support::host();
    let wat = r#"(component
        (core module $M (func (export "score") (result i32) (i32.const 7)))
        (core instance $m (instantiate $M))
        (func $score (result u32) (canon lift (core func $m "score")))
        (export "score" (func $score)))"#;
    let err = host.add("p", &wat::parse_str(wat).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            AddError::WrongWorld {
                world: World::Scorer,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_log_import_of_the_wrong_type_is_refused_as_wrong_world_not_as_an_unknown_import() {
    // wasmtime's linker error has no type or code saying which import failed; the sandbox
    // finds `log` in its text. This pins that text.
    let (_dir, host) = support::host();
    let wat = r#"(component
        (import "log" (func $log (param "n" u32)))
        (core func $l (canon lower (func $log)))
        (core module $M
            (import "host" "log" (func (param i32)))
            (func (export "score") (result i32) (i32.const 7)))
        (core instance $m (instantiate $M (with "host" (instance (export "log" (func $l))))))
        (func $score (result u32) (canon lift (core func $m "score")))
        (export "score" (func $score)))"#;
    let err = host.add("p", &wat::parse_str(wat).unwrap()).unwrap_err();
    assert!(
        std::error::Error::source(&err).is_some(),
        "wasmtime's error is kept as the source: {err}"
    );
    match &err {
        AddError::WrongWorld {
            world: World::Scorer,
            message,
            ..
        } => assert!(
            message.starts_with(
                "component imports function `log`, but a matching implementation was not \
                 found in the linker"
            ),
            "{message}"
        ),
        other => panic!("expected a wrong world, got {other}"),
    }
}

#[test]
fn an_import_the_sandbox_does_not_provide_is_refused() {
    let (_dir, host) = support::host();
    let wat = r#"(component
        (import "launch-missiles" (func $launch))
        (core func $l (canon lower (func $launch)))
        (core module $M
            (import "host" "launch" (func))
            (func (export "score") (result i32) (i32.const 7)))
        (core instance $m (instantiate $M (with "host" (instance (export "launch" (func $l))))))
        (func $score (result u32) (canon lift (core func $m "score")))
        (export "score" (func $score)))"#;
    let err = host.add("p", &wat::parse_str(wat).unwrap()).unwrap_err();
    assert!(matches!(err, AddError::Imports { .. }), "{err}");
    assert!(err.to_string().contains("launch-missiles"), "{err}");
}

#[test]
fn a_component_over_the_size_limit_is_refused() {
    let sandbox = Sandbox::new(HostConfig {
        max_concurrent_calls: 1,
        max_plugin_bytes: 100,
        ..HostConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::open(dir.path(), sandbox).unwrap();
    let err = host.add("p", &support::scorer()).unwrap_err();
    assert!(matches!(err, AddError::TooLarge { max: 100, .. }), "{err}");
}

#[test]
fn bad_names_are_refused() {
    let (_dir, host) = support::host();
    for name in ["", "Order Priority", "p@sha256:abc", "ünïcode"] {
        let err = host.add(name, &support::scorer()).unwrap_err();
        assert!(matches!(err, AddError::BadName { .. }), "{name}: {err}");
    }
}

#[test]
fn refused_components_leave_nothing_behind() {
    let (dir, host) = support::host();
    host.add("p", &support::wrong_world()).unwrap_err();
    host.add("p", b"junk").unwrap_err();
    assert!(host.list().is_empty());
    let left: Vec<_> = std::fs::read_dir(dir.path().join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wasm") || n.ends_with(".cwasm"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn the_catalog_answers_worlds_for_names_and_pins() {
    let (_dir, host) = support::host();
    let scorer = host.add("order-priority", &support::scorer()).unwrap();
    host.add("tiered-notifier", &support::notifier()).unwrap();
    assert_eq!(
        host.world_of(&by_name("order-priority")),
        Some(World::Scorer)
    );
    assert_eq!(host.world_of(&scorer.pinned()), Some(World::Scorer));
    assert_eq!(
        host.world_of(&by_name("tiered-notifier")),
        Some(World::Notifier)
    );
    assert_eq!(host.world_of(&by_name("missing")), None);
}

#[test]
fn limits_are_configurable_per_plugin_and_persist() {
    let (dir, host) = support::host();
    host.add("order-priority", &support::scorer()).unwrap();
    assert_eq!(host.limits("order-priority"), Limits::default());
    let tight = Limits {
        time_budget_ms: 20,
        memory_bytes: 2 << 20,
        output_bytes: 4096,
    };
    host.set_limits("order-priority", Some(tight)).unwrap();
    assert!(host.set_limits("missing", Some(tight)).is_err());
    let absurd = Limits {
        memory_bytes: 1 << 40,
        ..tight
    };
    assert!(host.set_limits("order-priority", Some(absurd)).is_err());
    drop(host);
    let reopened = PluginHost::open(dir.path().join("plugins"), support::sandbox()).unwrap();
    assert_eq!(reopened.limits("order-priority"), tight);
}
