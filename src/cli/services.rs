//! `hero_logic services add|list|remove`: the service registry in a data
//! directory (the same one `serve` uses; a running server sees changes at once).

use super::CliError;
use super::output::outln;
use crate::services::ServiceRegistry;
use crate::store::Store;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Subcommand, Debug)]
pub enum ServicesCommand {
    /// Register a JSON-RPC service (its document from --openrpc, or asked with rpc.discover).
    Add {
        name: String,
        /// `http://host:port/path`, `https://host/path` or `unix:///path/to.sock`.
        url: String,
        /// The service's OpenRPC document (JSON).
        #[arg(long, value_name = "FILE")]
        openrpc: Option<PathBuf>,
        /// Per-call timeout [default: 10000]
        #[arg(long, value_name = "MS")]
        timeout_ms: Option<u64>,
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
    },
    /// List services, built-ins first, with their methods.
    List {
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a registered service.
    Remove {
        name: String,
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
    },
}

pub fn open_store(data_dir: &std::path::Path) -> Result<Arc<Store>, CliError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", data_dir.display())))?;
    Store::open(&data_dir.join("hero_logic.db")).map(Arc::new).map_err(|e| CliError::Usage(format!("{e:#}")))
}

pub async fn run(command: ServicesCommand) -> Result<ExitCode, CliError> {
    match command {
        ServicesCommand::Add { name, url, openrpc, timeout_ms, data_dir } => {
            let document = match openrpc {
                Some(file) => {
                    let text = std::fs::read_to_string(&file)
                        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
                    Some(
                        serde_json::from_str(&text)
                            .map_err(|e| CliError::Usage(format!("{} is not JSON: {e}", file.display())))?,
                    )
                }
                None => None,
            };
            let store = open_store(&data_dir)?;
            let registry = ServiceRegistry::new(store.clone());
            let info = registry.register(&name, &url, document, timeout_ms).await.map_err(CliError::Usage)?;
            store.close().await;
            outln!("registered {} at {} ({})", info.name, info.url, info.doc.method_names().join(", "));
            Ok(ExitCode::SUCCESS)
        }
        ServicesCommand::List { data_dir, json } => {
            let store = open_store(&data_dir)?;
            let services =
                ServiceRegistry::new(store.clone()).list().await.map_err(|e| CliError::Usage(format!("{e:#}")))?;
            if json {
                outln!("{}", serde_json::json!({ "services": services }));
            } else {
                for service in &services {
                    outln!("{:<12} {:<32} {}", service.name, service.url, service.doc.method_names().join(", "));
                }
            }
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        ServicesCommand::Remove { name, data_dir } => {
            let store = open_store(&data_dir)?;
            let removed = ServiceRegistry::new(store.clone())
                .remove(&name)
                .await
                .map_err(|e| CliError::Usage(format!("{e:#}")))?;
            store.close().await;
            if !removed {
                return Err(CliError::Usage(format!("no registered service named '{name}'")));
            }
            outln!("removed {name}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
