//! Definitions: validated and versioned on upload, compiled once per version and cached.

use crate::{Runtime, RuntimeError};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use waystation_core::{PluginCatalog, Workflow};
use waystation_store::Store;

/// Compiled workflows by (id, version), and the newest version of each id.
#[derive(Default)]
pub(crate) struct WorkflowCache {
    // std RwLock: held for a map lookup or insert, never across an await.
    compiled: RwLock<HashMap<(String, u32), Arc<Workflow>>>,
    latest: RwLock<HashMap<String, u32>>,
}

/// The result of uploading a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefinitionOutcome {
    /// The version the definition has.
    pub version: u32,
    /// True when the upload made a new version.
    pub created: bool,
}

impl WorkflowCache {
    fn get(
        &self,
        store: &dyn Store,
        id: &str,
        version: u32,
    ) -> Result<Arc<Workflow>, RuntimeError> {
        if let Some(wf) = self
            .compiled
            .read()
            .expect("cache lock")
            .get(&(id.to_owned(), version))
        {
            return Ok(wf.clone());
        }
        let stored = store
            .definition(id, version)?
            .ok_or_else(|| RuntimeError::NotFound {
                what: "workflow version",
                id: format!("{id}@{version}"),
            })?;
        // Validated with the plugin registry at upload; compiled again here without it, so a
        // plugin removed since cannot strand the instances already running on this version.
        let mut wf = Workflow::from_value(&stored.definition, None)
            .map_err(RuntimeError::InvalidDefinition)?;
        wf.version = version;
        let wf = Arc::new(wf);
        self.compiled
            .write()
            .expect("cache lock")
            .insert((id.to_owned(), version), wf.clone());
        Ok(wf)
    }

    fn latest(&self, store: &dyn Store, id: &str) -> Result<Arc<Workflow>, RuntimeError> {
        let known = self.latest.read().expect("cache lock").get(id).copied();
        let version = match known {
            Some(v) => v,
            None => {
                let stored =
                    store
                        .latest_definition(id)?
                        .ok_or_else(|| RuntimeError::NotFound {
                            what: "workflow",
                            id: id.to_owned(),
                        })?;
                self.latest
                    .write()
                    .expect("cache lock")
                    .insert(id.to_owned(), stored.version);
                stored.version
            }
        };
        self.get(store, id, version)
    }
}

impl Runtime {
    /// Validates `definition` (with the plugin registry) and stores it as a new version of
    /// its workflow, unless it equals the newest version. Durable when it returns.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidDefinition`] with every problem found; store errors.
    pub async fn put_definition(
        &self,
        definition: &Value,
    ) -> Result<(String, DefinitionOutcome), RuntimeError> {
        let catalog: &dyn PluginCatalog = self.plugins.as_ref();
        let wf = Workflow::from_value(definition, Some(catalog))
            .map_err(RuntimeError::InvalidDefinition)?;
        let id = wf.id().to_owned();
        let put = self.store.put_definition(&id, definition, self.now())?;
        self.durability.durable().await?;
        self.workflows
            .latest
            .write()
            .expect("cache lock")
            .insert(id.clone(), put.version);
        Ok((
            id,
            DefinitionOutcome {
                version: put.version,
                created: put.created,
            },
        ))
    }

    /// The compiled workflow `id` at `version`, or its newest version.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; store errors.
    pub fn workflow(&self, id: &str, version: Option<u32>) -> Result<Arc<Workflow>, RuntimeError> {
        match version {
            Some(v) => self.workflows.get(self.store.as_ref(), id, v),
            None => self.workflows.latest(self.store.as_ref(), id),
        }
    }
}
