//! The six built-in flows (`flows/*.py`), embedded in the binary and stored
//! at start like any upload: a new version only when their source changed.

use crate::library::add_module;
use crate::sandbox::Sandbox;
use crate::store::{SavedFlow, Store};
use anyhow::{Context, Result};
use std::sync::Arc;

pub const BUILT_IN_FLOWS: [(&str, &str); 6] = [
    ("service_agent.py", include_str!("../flows/service_agent.py")),
    ("service_code_gen.py", include_str!("../flows/service_code_gen.py")),
    ("benchmark_flow.py", include_str!("../flows/benchmark_flow.py")),
    ("pick_version_flow.py", include_str!("../flows/pick_version_flow.py")),
    ("optimize_flow.py", include_str!("../flows/optimize_flow.py")),
    ("service_check.py", include_str!("../flows/service_check.py")),
];

/// Store the built-in flows whose source changed; returns what was stored.
pub async fn load(sandbox: &Sandbox, store: &Arc<Store>) -> Result<Vec<SavedFlow>> {
    let mut saved = Vec::new();
    for (file, source) in BUILT_IN_FLOWS {
        // Describing costs a sandbox instance at every start (and every
        // `run --data-dir`); a module already stored as it is needs none.
        if store.is_latest_source(source).await? {
            continue;
        }
        saved.extend(add_module(sandbox, store, source.to_string()).await.with_context(|| format!("flows/{file}"))?);
    }
    Ok(saved)
}
