//! Adding a module to the library: it is untrusted code, so it is described
//! in the sandbox first, and only what loads and declares flows is stored.
//! Every way in (HTTP upload, `hero_logic flows add`, the `flows.save`
//! built-in, the built-in flows at start) goes through `add_module`.

use crate::flowdef::{FlowInfo, ModuleError};
use crate::sandbox::{Quotas, Sandbox};
use crate::store::{NotOwner, SavedFlow, Saver, Store};
use std::sync::Arc;

/// Why a module was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The module is empty, does not load, or declares no flow: its author's
    /// to fix. Nothing was stored.
    #[error("{0}")]
    Invalid(ModuleError),
    /// A flow tried to replace a flow it did not store; nothing was stored.
    #[error("{0}")]
    NotOwner(NotOwner),
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
    store.save_module_as(source, flows, saver).await.map_err(AddError::Store)?.map_err(AddError::NotOwner)
}
