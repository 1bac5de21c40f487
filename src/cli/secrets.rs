//! `hero_logic secrets set|list|remove`: the secrets in a data directory's
//! store (the same one `serve` uses), sealed with the key `serve` uses.

use super::CliError;
use super::output::outln;
use super::services::{StoreArgs, open_store};
use crate::secrets::{SecretError, Secrets};
use clap::Subcommand;
use std::io::Read;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    /// Set a secret; its value is read from standard input (one trailing newline dropped).
    Set {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List secrets: names and dates, never values.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret.
    Remove {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: SecretsCommand) -> Result<ExitCode, CliError> {
    match command {
        SecretsCommand::Set { name, store: store_args } => {
            // Read from stdin, not an argument, so the value stays out of
            // process lists and shell history.
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .map_err(|e| CliError::Usage(format!("cannot read the value from standard input: {e}")))?;
            let value = value.strip_suffix('\n').unwrap_or(&value);
            let value = value.strip_suffix('\r').unwrap_or(value);
            let store = open_store(&store_args).await?;
            let set = Secrets::new(store.clone(), store_args.data_dir.clone()).set(&name, value).await;
            store.close().await;
            let summary = set.map_err(|e| match e {
                SecretError::Invalid(message) => CliError::Usage(message),
                other => CliError::Failed(format!("{other:#}")),
            })?;
            outln!("set {}", summary.name);
            Ok(ExitCode::SUCCESS)
        }
        SecretsCommand::List { store: store_args, json } => {
            let store = open_store(&store_args).await?;
            let listed = Secrets::new(store.clone(), store_args.data_dir.clone()).list().await;
            store.close().await;
            let secrets = listed.map_err(|e| CliError::Failed(format!("{e:#}")))?;
            if json {
                outln!("{}", serde_json::json!({ "secrets": secrets }));
            } else {
                for secret in &secrets {
                    outln!("{}", secret.name);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SecretsCommand::Remove { name, store: store_args } => {
            let store = open_store(&store_args).await?;
            let removed = Secrets::new(store.clone(), store_args.data_dir.clone()).remove(&name).await;
            store.close().await;
            if !removed.map_err(|e| CliError::Failed(format!("{e:#}")))? {
                return Err(CliError::Usage(format!("no secret named '{name}'")));
            }
            outln!("removed {name}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
