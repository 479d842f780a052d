//! Definitions: validated and versioned on upload, compiled once per version and cached.

use crate::{Runtime, RuntimeError};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use waystation_core::calendar::Calendars;
use waystation_core::definition::{ChildWorkflow, MAX_SUBWORKFLOW_DEPTH};
use waystation_core::{Actor, PluginCatalog, Workflow};
use waystation_store::Store;

/// Compiled workflows by (id, version), and the newest version of each id.
#[derive(Default)]
pub(crate) struct WorkflowCache {
    // std RwLock: held for a map lookup or insert, never across an await.
    compiled: RwLock<HashMap<(String, u32), Arc<Workflow>>>,
    latest: RwLock<HashMap<String, u32>>,
    /// The business calendars definitions may name (server configuration).
    calendars: RwLock<Calendars>,
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
    fn cached(&self, id: &str, version: u32) -> Option<Arc<Workflow>> {
        self.compiled
            .read()
            .expect("cache lock")
            .get(&(id.to_owned(), version))
            .cloned()
    }

    fn latest_version(&self, store: &dyn Store, id: &str) -> Result<u32, RuntimeError> {
        if let Some(v) = self.latest.read().expect("cache lock").get(id).copied() {
            return Ok(v);
        }
        let stored = store
            .latest_definition(id)?
            .ok_or_else(|| RuntimeError::NotFound {
                what: "workflow",
                id: id.to_owned(),
            })?;
        self.latest
            .write()
            .expect("cache lock")
            .insert(id.to_owned(), stored.version);
        Ok(stored.version)
    }
}

/// Validates and compiles `definition` on the blocking pool: a definition is caller input
/// of up to the size limit, and its validation is recursive and can take long (a 10,000
/// stage definition took a minute on an async worker and stalled `/healthz` for as long).
/// A panic in the core comes back as [`RuntimeError::Engine`].
pub(crate) async fn compile_off_workers(
    definition: Value,
    catalog: Option<Arc<dyn crate::Plugins>>,
    calendars: Calendars,
) -> Result<Workflow, RuntimeError> {
    tokio::task::spawn_blocking(move || {
        let catalog = catalog.as_deref().map(|c| c as &dyn PluginCatalog);
        Workflow::from_value_with(&definition, catalog, &calendars)
    })
    .await
    .map_err(|e| RuntimeError::from_join("compiling a definition", e))?
    .map_err(RuntimeError::InvalidDefinition)
}

impl Runtime {
    /// Sets the business calendars definitions may name, and drops the compiled workflows
    /// so they are compiled again with them. Set once at startup, before commands run.
    pub fn set_calendars(&self, calendars: Calendars) {
        *self.workflows.calendars.write().expect("calendars lock") = calendars;
        self.workflows.compiled.write().expect("cache lock").clear();
    }

    /// The business calendars in use.
    pub fn calendars(&self) -> Calendars {
        self.workflows
            .calendars
            .read()
            .expect("calendars lock")
            .clone()
    }

    /// Validates `definition` (with the plugin registry) and stores it as a new version of
    /// its workflow, unless it equals the newest version. Durable when it returns.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidDefinition`] with every problem found; store errors.
    pub async fn put_definition(
        &self,
        definition: &Value,
    ) -> Result<(String, DefinitionOutcome), RuntimeError> {
        self.put_definition_by(None, definition).await
    }

    /// As [`Runtime::put_definition`], recording who uploaded the version.
    ///
    /// # Errors
    /// As [`Runtime::put_definition`].
    pub(crate) async fn put_definition_by(
        &self,
        by: Option<&Actor>,
        definition: &Value,
    ) -> Result<(String, DefinitionOutcome), RuntimeError> {
        self.check_definition_size(definition)?;
        let wf = compile_off_workers(
            definition.clone(),
            Some(self.plugins.clone()),
            self.calendars(),
        )
        .await?;
        self.check_calls(&wf).await?;
        let wf = Arc::new(wf);
        self.check_callers(&wf).await?;
        let id = wf.id().to_owned();
        let put = self.store.put_definition(&id, definition, self.now(), by)?;
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

    /// Validates `definition` (with the plugin registry) without storing it, off the async
    /// workers.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidDefinition`] with every problem found;
    /// [`RuntimeError::TooLarge`] over the definition size limit.
    pub async fn validate_definition(&self, definition: &Value) -> Result<Workflow, RuntimeError> {
        self.check_definition_size(definition)?;
        let wf = compile_off_workers(
            definition.clone(),
            Some(self.plugins.clone()),
            self.calendars(),
        )
        .await?;
        self.check_calls(&wf).await?;
        let wf = Arc::new(wf);
        self.check_callers(&wf).await?;
        // The checks keep no reference once they return.
        Ok(Arc::into_inner(wf).expect("the caller checks hold no reference to the workflow"))
    }

    /// The sub-workflow stages of `wf` against the stored workflows they call, and theirs
    /// (see [`waystation_core::validate::calls`]): loads every workflow reachable within
    /// [`MAX_SUBWORKFLOW_DEPTH`] + 1 calls, then checks.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidDefinition`] with every problem, at its pointer; store errors.
    async fn check_calls(&self, wf: &Workflow) -> Result<(), RuntimeError> {
        if !wf.starts_children() {
            return Ok(());
        }
        let known = self.reachable(wf, None).await?;
        let lookup = |id: &str, version: Option<u32>| {
            known.get(&(id.to_owned(), version)).cloned().flatten()
        };
        let errors = waystation_core::validate::calls::check_calls(wf, &lookup);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RuntimeError::InvalidDefinition(errors))
        }
    }

    /// The stored workflows that call `wf`'s id (newest, unpinned) checked again as if `wf`
    /// were stored: a new version of a called workflow must not break its callers (an input
    /// their mappings no longer satisfy) nor make calls nest deeper than
    /// [`MAX_SUBWORKFLOW_DEPTH`] or go round through it. Each problem is reported on `wf`,
    /// naming the caller and where in it.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidDefinition`]; store errors.
    async fn check_callers(&self, wf: &Arc<Workflow>) -> Result<(), RuntimeError> {
        let mut errors = Vec::new();
        for (id, _) in self.store.list_definitions()? {
            if id == wf.id() {
                continue;
            }
            let caller = match self.workflow(&id, None).await {
                Ok(caller) => caller,
                Err(RuntimeError::NotFound { .. } | RuntimeError::InvalidDefinition(_)) => continue,
                Err(e) => return Err(e),
            };
            if !caller.starts_children() {
                continue;
            }
            let known = self.reachable(&caller, Some(wf)).await?;
            if !known.contains_key(&(wf.id().to_owned(), None)) {
                continue; // does not reach `wf` unpinned: the new version changes nothing
            }
            let lookup = |id: &str, version: Option<u32>| {
                known.get(&(id.to_owned(), version)).cloned().flatten()
            };
            for problem in waystation_core::validate::calls::call_problems(&caller, &lookup) {
                use waystation_core::validate::calls::CallKind;
                // The part of the new version at fault: its input_schema when the caller's
                // mapping no longer fits it, else its stages (it now calls too deep or back,
                // or no longer ends with an outcome the caller routes).
                let at = match problem.kind {
                    CallKind::Input => "/input_schema",
                    _ => "/stages",
                };
                let e = problem.error;
                errors.push(waystation_core::ValidationError::new(
                    at,
                    format!(
                        "stored workflow '{id}' calls this one and would break, at {}: {}",
                        e.pointer, e.message
                    ),
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RuntimeError::InvalidDefinition(errors))
        }
    }

    /// Every workflow reachable from `wf`'s calls within [`MAX_SUBWORKFLOW_DEPTH`] + 1 calls,
    /// by (id, pinned version); `None` for one that does not exist. `replacing`, when given,
    /// stands for the newest version of its id (a version being uploaded).
    async fn reachable(
        &self,
        wf: &Workflow,
        replacing: Option<&Arc<Workflow>>,
    ) -> Result<HashMap<(String, Option<u32>), Option<Arc<Workflow>>>, RuntimeError> {
        let mut known: HashMap<(String, Option<u32>), Option<Arc<Workflow>>> = HashMap::new();
        let mut frontier: Vec<ChildWorkflow> =
            wf.children_called().into_iter().map(|(_, c)| c).collect();
        for _ in 0..=MAX_SUBWORKFLOW_DEPTH {
            let mut next = Vec::new();
            for c in frontier {
                let key = (c.workflow.clone(), c.version);
                if c.workflow == wf.id() || known.contains_key(&key) {
                    continue;
                }
                let found = match replacing {
                    Some(r) if r.id() == c.workflow && c.version.is_none() => Some(r.clone()),
                    _ => match self.workflow(&c.workflow, c.version).await {
                        Ok(found) => Some(found),
                        Err(RuntimeError::NotFound { .. } | RuntimeError::InvalidDefinition(_)) => {
                            None
                        }
                        Err(e) => return Err(e),
                    },
                };
                if let Some(f) = &found {
                    next.extend(f.children_called().into_iter().map(|(_, c)| c));
                }
                known.insert(key, found);
            }
            frontier = next;
        }
        Ok(known)
    }

    /// The compiled workflow `id` at `version`, or its newest version. Compiled once per
    /// version (off the async workers) and cached.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`]; store errors; [`RuntimeError::InvalidDefinition`] when a
    /// stored version no longer compiles.
    pub async fn workflow(
        &self,
        id: &str,
        version: Option<u32>,
    ) -> Result<Arc<Workflow>, RuntimeError> {
        let version = match version {
            Some(v) => v,
            None => self.workflows.latest_version(self.store.as_ref(), id)?,
        };
        if let Some(wf) = self.workflows.cached(id, version) {
            return Ok(wf);
        }
        let stored = self
            .store
            .definition(id, version)?
            .ok_or_else(|| RuntimeError::NotFound {
                what: "workflow version",
                id: format!("{id}@{version}"),
            })?;
        // Validated with the plugin registry at upload; compiled again here without it, so a
        // plugin removed since cannot strand the instances already running on this version.
        let mut wf = compile_off_workers(stored.definition, None, self.calendars()).await?;
        wf.version = version;
        let wf = Arc::new(wf);
        self.workflows
            .compiled
            .write()
            .expect("cache lock")
            .insert((id.to_owned(), version), wf.clone());
        Ok(wf)
    }
}
