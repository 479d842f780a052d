//! The plugin registry of a PostgreSQL store: the host's [`RegistryStorage`] over the
//! store's `plugin_index` and `plugin_blobs` tables, so every node sharing the database
//! runs the plugins uploaded to any of them (issue 17). Compiled artifacts stay in each
//! node's `{data}/plugins`: compiled code belongs to one engine build.

use std::sync::Arc;
use waystation_store::{PgStore, StoreError};
use waystation_wasm::{HostError, RegistryStorage, StoredIndex};

/// The registry in the database of `store`.
#[derive(Debug, Clone)]
pub struct PgRegistry {
    store: Arc<PgStore>,
}

impl PgRegistry {
    /// The registry kept in `store`'s database.
    pub fn new(store: Arc<PgStore>) -> Self {
        PgRegistry { store }
    }

    fn fail(&self, action: &'static str) -> impl FnOnce(StoreError) -> HostError + '_ {
        move |e| HostError::Storage {
            action,
            location: self.store.describe(),
            source: Box::new(e),
        }
    }
}

impl RegistryStorage for PgRegistry {
    fn describe(&self) -> String {
        self.store.describe()
    }

    fn load_index(&self) -> Result<Option<StoredIndex>, HostError> {
        Ok(self
            .store
            .plugin_index()
            .map_err(self.fail("reading the index of"))?
            .map(|(revision, document)| StoredIndex { revision, document }))
    }

    fn revision(&self) -> Result<Option<u64>, HostError> {
        self.store
            .plugin_index_revision()
            .map(Some)
            .map_err(self.fail("reading the revision of"))
    }

    fn save_index(&self, expected: u64, document: &[u8]) -> Result<bool, HostError> {
        self.store
            .save_plugin_index(expected, document)
            .map_err(self.fail("saving the index of"))
    }

    fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), HostError> {
        self.store
            .put_plugin_blob(digest, bytes)
            .map_err(self.fail("storing a component in"))
    }

    fn get_blob(&self, digest: &str) -> Result<Vec<u8>, HostError> {
        self.store
            .plugin_blob(digest)
            .map_err(self.fail("reading a component of"))?
            .ok_or_else(|| HostError::Storage {
                action: "reading a component of",
                location: self.describe(),
                source: format!("no component with digest {digest} is stored").into(),
            })
    }

    fn blobs(&self) -> Result<Vec<String>, HostError> {
        self.store
            .plugin_blobs()
            .map_err(self.fail("listing the components of"))
    }
}
