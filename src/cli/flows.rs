//! `hero_logic flows add|list|search`: the flow library in a data directory.

use super::CliError;
use super::output::outln;
use super::services::{StoreArgs, open_store};
use crate::library::{AddError, add_module};
use crate::sandbox::{Sandbox, SandboxOptions};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum FlowsCommand {
    /// Store the flows a Python file declares (a new version when changed).
    Add {
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List stored flows (latest versions).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Search the library in plain words.
    Search {
        query: String,
        #[arg(long, default_value_t = 10)]
        limit: u32,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: FlowsCommand, cache_dir: Option<PathBuf>) -> Result<ExitCode, CliError> {
    match command {
        FlowsCommand::Add { file, store: store_args } => {
            let source = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
            let sandbox = Sandbox::new(&SandboxOptions { cache_dir, ..SandboxOptions::default() })
                .map_err(|e| CliError::Failed(format!("could not start the sandbox: {e:#}")))?;
            let store = open_store(&store_args).await?;
            let saved = add_module(&sandbox, &store, source).await.map_err(|error| match error {
                AddError::Invalid(module) => CliError::Usage(format!("{}: {module}", file.display())),
                AddError::Refused(_) | AddError::Store(_) => CliError::Usage(error.to_string()),
            })?;
            store.close().await;
            for flow in saved {
                let what = if flow.created { "stored" } else { "unchanged" };
                outln!("{what} {} version {}", flow.name, flow.version);
            }
            Ok(ExitCode::SUCCESS)
        }
        FlowsCommand::List { store: store_args } => {
            let store = open_store(&store_args).await?;
            for flow in store.flows().await.map_err(|e| CliError::Usage(format!("{e:#}")))? {
                outln!("{:<24} v{:<4} {}", flow.name, flow.version, flow.description.unwrap_or_default());
            }
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        FlowsCommand::Search { query, limit, store: store_args } => {
            if crate::store::fts_query(&query).is_empty() {
                return Err(CliError::Usage("the search query has no words".into()));
            }
            let store = open_store(&store_args).await?;
            let hits =
                store.search_flows(&query, limit.clamp(1, 100)).await.map_err(|e| CliError::Usage(format!("{e:#}")))?;
            for hit in hits {
                outln!("{:<24} {:>7.3}  {}", hit.name, hit.score, hit.snippet.replace('\n', " "));
            }
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}
