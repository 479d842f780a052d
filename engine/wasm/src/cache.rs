//! The compiled-artifact cache: `<digest>-<engine key>.cwasm` beside the component bytes,
//! written once after compiling and loaded again by mmap, so that nothing is recompiled
//! after a restart (until the engine build changes, which changes the key).

use crate::errors::{AddError, HostError};
use crate::sandbox::Sandbox;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::Component;

/// Compiles or loads components, counting each.
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    compiles: AtomicU64,
    loads: AtomicU64,
}

impl ArtifactCache {
    pub(crate) fn new(dir: &Path) -> ArtifactCache {
        ArtifactCache {
            dir: dir.to_owned(),
            compiles: AtomicU64::new(0),
            loads: AtomicU64::new(0),
        }
    }

    /// Where the artifact of `digest` compiled by this engine lives.
    pub(crate) fn path(&self, sandbox: &Sandbox, digest: &str) -> PathBuf {
        self.dir
            .join(format!("{digest}-{}.cwasm", sandbox.engine_key()))
    }

    /// How many components were compiled and how many artifacts loaded.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.compiles.load(Ordering::Relaxed),
            self.loads.load(Ordering::Relaxed),
        )
    }

    /// The component of `digest`: from its artifact when there is a usable one, otherwise
    /// compiled from `bytes()` and written as an artifact first.
    pub(crate) fn get(
        &self,
        sandbox: &Sandbox,
        digest: &str,
        bytes: impl FnOnce() -> Result<Vec<u8>, HostError>,
    ) -> Result<Component, AddError> {
        let path = self.path(sandbox, digest);
        if path.exists() {
            match load_artifact(sandbox, &path) {
                Ok(component) => {
                    self.loads.fetch_add(1, Ordering::Relaxed);
                    return Ok(component);
                }
                Err(e) => tracing::warn!(
                    artifact = %path.display(),
                    "compiled artifact unusable, compiling again: {e:#}"
                ),
            }
        }
        let bytes = bytes()?;
        crate::inspect::check_header(&bytes, sandbox.config().max_plugin_bytes)?;
        let started = std::time::Instant::now();
        let compiled = sandbox.engine().precompile_component(&bytes).map_err(|e| {
            let (message, source) = crate::errors::wasmtime_cause(e);
            AddError::Invalid {
                message,
                source: Some(source),
            }
        })?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            digest,
            elapsed = ?started.elapsed(),
            size = compiled.len(),
            "compiled plugin component"
        );
        crate::storage::write_atomically(&path, &compiled)?;
        let component = load_artifact(sandbox, &path).map_err(|e| {
            let (message, source) = crate::errors::wasmtime_cause(e);
            HostError::Artifact {
                digest: digest.to_owned(),
                message,
                source,
            }
        })?;
        self.loads.fetch_add(1, Ordering::Relaxed);
        Ok(component)
    }

    /// Deletes the artifact of `digest` (for a component that was refused).
    pub(crate) fn remove(&self, sandbox: &Sandbox, digest: &str) {
        let _ = std::fs::remove_file(self.path(sandbox, digest));
    }
}

/// Maps a compiled artifact into memory.
#[allow(unsafe_code)]
fn load_artifact(sandbox: &Sandbox, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be an artifact wasmtime produced and
    // to stay unchanged while mapped. Both hold: this registry's directory only holds
    // artifacts that `precompile_component` produced in this module, named by the SHA-256
    // of the source component and the key of the engine that compiled them (wasmtime
    // additionally checks version and configuration in the artifact's header), and every
    // write goes to a fresh temporary file renamed into place, so a mapped file is never
    // modified: a replacement is a new inode.
    unsafe { Component::deserialize_file(sandbox.engine(), path) }
}
