//! `waystation reports rebuild --data DIR`: recomputes the report rollups of a data
//! directory from its stored instances and their histories, after an upgrade that changes
//! what is rolled up (or to check the kept rollups against a recount). Run it while no
//! server runs on the directory (the store's files are locked by a running server).

use super::store::{open_store, StoreSetupError};
use std::io::Write;
use std::path::Path;
use waystation_store::{DiskStore, ReportStore};

/// Rebuilds the rollups of data directory `data` and says how many instances were read
/// and cells written.
///
/// # Errors
/// The store cannot be opened or read ([`StoreSetupError`]); output errors.
pub fn rebuild(data: &Path, out: &mut dyn Write) -> Result<(), StoreSetupError> {
    if !crate::config::store_dir(data).exists() {
        return Err(StoreSetupError::NoStore(data.display().to_string()));
    }
    let store = DiskStore::new(open_store(data, None)?);
    let done = store
        .rebuild_reports()
        .map_err(|source| StoreSetupError::Store {
            context: format!("rebuilding the report rollups of {}", data.display()),
            source,
        })?;
    writeln!(
        out,
        "rebuilt the report rollups of {}: {} instances read, {} cells written",
        data.display(),
        done.instances,
        done.cells
    )
    .map_err(|source| StoreSetupError::Io {
        context: "writing the summary".into(),
        source,
    })
}
