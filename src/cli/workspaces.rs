//! `hero_logic workspaces add|list|remove` and `hero_logic keys
//! add|list|revoke`: the operator's commands, on a data directory's store
//! (the one `serve` uses). A key revoked here is refused by every node
//! within `FRESH_FOR`. Each change is in the audit log, as the operator's.

use super::CliError;
use super::output::outln;
use super::services::{StoreArgs, open_store};
use crate::store::{AuditEntry, Store, StoredKey};
use crate::tenancy::{DEFAULT_WORKSPACE, Role, is_workspace_name, keys};
use clap::Subcommand;
use serde_json::{Value, json};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Subcommand, Debug)]
pub enum WorkspacesCommand {
    /// Make a workspace (lower-case letters, digits, - and _).
    Add {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List workspaces.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an empty workspace and its keys.
    Remove {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a key; it is printed once, and only its digest is kept.
    Add {
        /// The key's name, e.g. who holds it.
        name: String,
        /// viewer, runner, developer or admin.
        #[arg(long)]
        role: String,
        #[arg(long, default_value = DEFAULT_WORKSPACE)]
        workspace: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List a workspace's keys, without their secrets.
    List {
        #[arg(long, default_value = DEFAULT_WORKSPACE)]
        workspace: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id.
    Revoke {
        key_id: String,
        #[arg(long, default_value = DEFAULT_WORKSPACE)]
        workspace: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn workspaces(command: WorkspacesCommand) -> Result<ExitCode, CliError> {
    match command {
        WorkspacesCommand::Add { name, store } => {
            if !is_workspace_name(&name) {
                return Err(CliError::Usage(format!(
                    "'{name}' is not a workspace name: lower-case letters, digits, - and _, starting with a letter"
                )));
            }
            let store = open_store(&store).await?;
            let made = store.create_workspace(&name, crate::trace::now_us()).await;
            let made = finish(&store, made).await?;
            if !made {
                return Err(CliError::Usage(format!("a workspace named '{name}' exists")));
            }
            audit(&store, &name, "workspace.create", &name, json!({})).await?;
            outln!("made workspace {name}");
        }
        WorkspacesCommand::List { store, json } => {
            let store = open_store(&store).await?;
            let listed = store.workspaces().await;
            let listed = finish(&store, listed).await?;
            if json {
                outln!("{}", json!({ "workspaces": listed }));
            } else {
                for workspace in &listed {
                    outln!("{}", workspace.name);
                }
            }
        }
        WorkspacesCommand::Remove { name, store } => {
            if name == DEFAULT_WORKSPACE {
                return Err(CliError::Usage("the workspace 'default' cannot be removed".into()));
            }
            let store = open_store(&store).await?;
            let removed = store.remove_workspace(&name).await;
            match finish(&store, removed).await? {
                None => return Err(CliError::Usage(format!("no such workspace: {name}"))),
                Some(Err(in_use)) => {
                    return Err(CliError::Usage(format!("the workspace '{name}' still holds {}", in_use.holds)));
                }
                Some(Ok(())) => {}
            }
            audit(&store, &name, "workspace.remove", &name, json!({})).await?;
            outln!("removed workspace {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn keys(command: KeysCommand) -> Result<ExitCode, CliError> {
    match command {
        KeysCommand::Add { name, role, workspace, store } => {
            let role = Role::parse(&role).ok_or_else(|| {
                CliError::Usage(format!("role must be viewer, runner, developer or admin, not '{role}'"))
            })?;
            if name.trim().is_empty() || name.chars().any(char::is_control) {
                return Err(CliError::Usage("a key's name must be text without control characters".into()));
            }
            let store = open_store(&store).await?;
            existing(&store, &workspace).await?;
            let made = keys::generate();
            let stored = StoredKey {
                key_id: made.key_id.clone(),
                workspace: workspace.clone(),
                name: name.clone(),
                role,
                digest: made.digest,
                created_us: crate::trace::now_us(),
                revoked_us: None,
            };
            let saved = store.save_key(&stored).await;
            finish(&store, saved).await?;
            audit(&store, &workspace, "key.create", &made.key_id, json!({"name": name, "role": role})).await?;
            // The key alone on stdout, so a script can take it; the rest on stderr.
            eprintln!("key {} ({role}) in {workspace}: shown once, keep it now", made.key_id);
            outln!("{}", made.key);
        }
        KeysCommand::List { workspace, store, json } => {
            let store = open_store(&store).await?;
            existing(&store, &workspace).await?;
            let listed = store.keys(&workspace).await;
            let listed = finish(&store, listed).await?;
            if json {
                outln!("{}", json!({ "keys": listed }));
            } else {
                for key in &listed {
                    let state = if key.revoked_us.is_some() { " (revoked)" } else { "" };
                    outln!("{}  {:<9}  {}{state}", key.key_id, key.role.as_str(), key.name);
                }
            }
        }
        KeysCommand::Revoke { key_id, workspace, store } => {
            let store = open_store(&store).await?;
            let revoked = store.revoke_key(&workspace, &key_id, crate::trace::now_us()).await;
            if !finish(&store, revoked).await? {
                return Err(CliError::Usage(format!("no key '{key_id}' in the workspace '{workspace}'")));
            }
            audit(&store, &workspace, "key.revoke", &key_id, json!({})).await?;
            outln!("revoked {key_id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn existing(store: &Arc<Store>, workspace: &str) -> Result<(), CliError> {
    match store.workspace(workspace).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => {
            store.close().await;
            Err(CliError::Usage(format!("no such workspace: {workspace}")))
        }
        Err(error) => finish(store, Err(error)).await,
    }
}

/// The store's answer, with the store closed when it is an error.
async fn finish<T>(store: &Arc<Store>, result: anyhow::Result<T>) -> Result<T, CliError> {
    match result {
        Ok(value) => Ok(value),
        Err(error) => {
            store.close().await;
            Err(CliError::Failed(format!("{error:#}")))
        }
    }
}

/// The change, in the audit log as the operator's from the command line;
/// then the store is closed.
async fn audit(store: &Arc<Store>, workspace: &str, action: &str, target: &str, detail: Value) -> Result<(), CliError> {
    let mut detail = detail;
    detail["via"] = json!("command line");
    let entry = AuditEntry {
        seq: 0,
        ts_us: crate::trace::now_us(),
        workspace: workspace.to_string(),
        actor: "operator".to_string(),
        key_id: None,
        key_name: None,
        action: action.to_string(),
        target: target.to_string(),
        detail,
        client: None,
    };
    let appended = store.append_audit(&entry).await;
    finish(store, appended).await?;
    store.close().await;
    Ok(())
}
