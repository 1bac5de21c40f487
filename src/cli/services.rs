//! `hero_logic services add|list|remove`: the service registry in a data
//! directory (the same one `serve` uses; a running server sees changes at once).

use super::CliError;
use super::output::outln;
use crate::secrets::Secrets;
use crate::services::ServiceRegistry;
use crate::store::{Database, Store};
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
        /// A header added to each call, `NAME: VALUE`; `{{secret:NAME}}` in
        /// the value is that secret's value (repeatable).
        #[arg(long = "header", value_name = "HEADER")]
        headers: Vec<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List services, built-ins first, with their methods.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a registered service.
    Remove {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Where a command finds the store: `--database URL` (PostgreSQL, as `serve
/// --database` uses it), else the SQLite file in `--data-dir`.
#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// `postgres://user@host:port/db`: the database several `serve` nodes share.
    #[arg(long, value_name = "URL", env = "HERO_LOGIC_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
}

pub async fn open_store(args: &StoreArgs) -> Result<Arc<Store>, CliError> {
    open_database(&args.data_dir, args.database.as_deref()).await
}

pub async fn open_database(data_dir: &std::path::Path, url: Option<&str>) -> Result<Arc<Store>, CliError> {
    let database = Database::choose(url, data_dir).map_err(|e| CliError::Usage(format!("{e:#}")))?;
    if !database.is_postgres() {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| CliError::Usage(format!("cannot create {}: {e}", data_dir.display())))?;
    }
    Store::open(&database).await.map(Arc::new).map_err(|e| CliError::Usage(format!("{e:#}")))
}

pub async fn run(command: ServicesCommand) -> Result<ExitCode, CliError> {
    match command {
        ServicesCommand::Add { name, url, openrpc, timeout_ms, headers, store: store_args } => {
            let headers = headers
                .iter()
                .map(|header| {
                    let (name, value) = header
                        .split_once(':')
                        .ok_or_else(|| CliError::Usage(format!("--header '{header}' is not NAME: VALUE")))?;
                    Ok((name.trim().to_string(), value.trim().to_string()))
                })
                .collect::<Result<_, CliError>>()?;
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
            let store = open_store(&store_args).await?;
            let secrets = Arc::new(Secrets::new(store.clone(), store_args.data_dir.clone()));
            let registry = ServiceRegistry::new(store.clone()).with_secrets(secrets);
            let info = registry.register(&name, &url, document, timeout_ms, headers).await.map_err(CliError::Usage)?;
            store.close().await;
            outln!("registered {} at {} ({})", info.name, info.url, info.doc.method_names().join(", "));
            Ok(ExitCode::SUCCESS)
        }
        ServicesCommand::List { store: store_args, json } => {
            let store = open_store(&store_args).await?;
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
        ServicesCommand::Remove { name, store: store_args } => {
            let store = open_store(&store_args).await?;
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
