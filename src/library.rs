//! Adding a module to the library: it is untrusted code, so it is described
//! in the sandbox first, and only what loads and declares flows is stored.
//! Every way in (HTTP upload, `hero_logic flows add`, the `flows.save`
//! built-in, the built-in flows at start) goes through `add_module`.
//!
//! Also how runs find flows: `pick_flow` (the flow of a module to run) and
//! `StoredFlows` (what `flow.invoke` finds in a server run).

use crate::flowdef::{FlowInfo, ModuleError};
use crate::sandbox::{BoxFuture, FlowResolver, ModuleFlows, Quotas, ResolvedFlow, Sandbox};
use crate::store::{SaveRefused, SavedFlow, Saver, Store};
use std::sync::Arc;

/// Why a module was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The module is empty, does not load, or declares no flow: its author's
    /// to fix. Nothing was stored.
    #[error("{0}")]
    Invalid(ModuleError),
    /// A flow tried to replace a flow it did not store, or to add more new
    /// flows than it may; nothing was stored.
    #[error("{0}")]
    Refused(SaveRefused),
    /// The store failed; the transaction was rolled back whole.
    #[error("the store failed: {0:#}")]
    Store(anyhow::Error),
}

/// Describe `source` under default quotas (the command line, the built-in
/// flows at start) and store each flow it declares, a new version of each
/// flow whose source changed.
pub async fn add_module(sandbox: &Sandbox, store: &Arc<Store>, source: String) -> Result<Vec<SavedFlow>, AddError> {
    let described = sandbox.describe(&source, &Quotas::default()).await;
    add_described(store, source, described).await
}

/// Store the flows of a module described already (by the server under its
/// limits, or by a run on its own account); refused whole when it is not valid.
pub async fn add_described(
    store: &Arc<Store>,
    source: String,
    described: Result<Vec<FlowInfo>, ModuleError>,
) -> Result<Vec<SavedFlow>, AddError> {
    add_described_as(store, source, described, Saver::Operator).await
}

/// `add_described` on behalf of `saver` (a flow through `flows.save` may
/// replace only the flows it stored itself).
pub async fn add_described_as(
    store: &Arc<Store>,
    source: String,
    described: Result<Vec<FlowInfo>, ModuleError>,
    saver: Saver,
) -> Result<Vec<SavedFlow>, AddError> {
    let flows = described.map_err(AddError::Invalid)?;
    store.save_module_as(source, flows, saver).await.map_err(AddError::Store)?.map_err(AddError::Refused)
}

/// Why no flow of a module was picked to run.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PickError {
    #[error("declares no flow named '{name}' (it declares: {declared})")]
    Unknown { name: String, declared: String },
    #[error("declares several flows ({declared})")]
    Ambiguous { declared: String },
}

/// The flow of a module to run: the one named, or the only one.
pub fn pick_flow<'a>(flows: &'a [FlowInfo], name: Option<&str>) -> Result<&'a FlowInfo, PickError> {
    let declared = || flows.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ");
    match name {
        Some(name) => flows
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| PickError::Unknown { name: name.to_string(), declared: declared() }),
        None if flows.len() == 1 => Ok(&flows[0]),
        None => Err(PickError::Ambiguous { declared: declared() }),
    }
}

/// `flow.invoke` in a server run: the module's own flows first (for source
/// from the editor), then the latest stored version of each flow.
pub struct StoredFlows {
    pub store: Arc<Store>,
    pub module: Option<ModuleFlows>,
}

impl FlowResolver for StoredFlows {
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<ResolvedFlow>> {
        Box::pin(async move {
            if let Some(found) = self.module.as_ref().and_then(|m| m.find(name)) {
                return Some(found);
            }
            // `name@3` is version 3 of a stored flow; plain `name` the latest.
            let (name, version) = match name.rsplit_once('@') {
                Some((name, version)) => (name, Some(version.parse().ok()?)),
                None => (name, None),
            };
            let stored = self.store.flow(name, version).await.ok().flatten()?;
            Some(ResolvedFlow { source: Arc::from(stored.source), info: stored.info, version: Some(stored.version) })
        })
    }

    fn names(&self, limit: usize) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut names: Vec<String> = self.store.flow_names(limit).await.unwrap_or_default();
            if let Some(module) = &self.module {
                names.extend(module.flows.iter().map(|f| f.name.clone()));
            }
            names.sort();
            names.dedup();
            names.truncate(limit);
            names
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(name: &str) -> FlowInfo {
        serde_json::from_value(serde_json::json!({"name": name, "description": null, "doc": null, "inputs": {}, "services": [], "line": null})).unwrap()
    }

    #[test]
    fn pick_flow_takes_the_named_or_the_only_flow() {
        let one = [flow("a")];
        let two = [flow("a"), flow("b")];
        assert_eq!(pick_flow(&one, None).unwrap().name, "a");
        assert_eq!(pick_flow(&two, Some("b")).unwrap().name, "b");
        assert_eq!(pick_flow(&two, None), Err(PickError::Ambiguous { declared: "a, b".into() }));
        let unknown = pick_flow(&two, Some("c")).unwrap_err();
        assert_eq!(unknown.to_string(), "declares no flow named 'c' (it declares: a, b)");
    }
}
