//! Workspaces, their keys and the audit log, written once for both
//! databases. The `default` workspace is always there (its row is made by
//! the migration that brought workspaces) and cannot be removed.

use super::Store;
use super::sql::{Row, query};
use crate::tenancy::Role;
use anyhow::{Result, anyhow};
use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredWorkspace {
    pub name: String,
    pub created_us: i64,
    /// The operator's limits for it (`PUT /api/workspaces/{ws}/limits`).
    pub limits: Value,
}

/// A workspace key as stored: its digest, never the key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredKey {
    pub key_id: String,
    pub workspace: String,
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub digest: String,
    pub created_us: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_us: Option<i64>,
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Its place in the log (0 until appended).
    pub seq: i64,
    pub ts_us: i64,
    pub workspace: String,
    /// `operator`, or `key`.
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// What was done: `flow.upload`, `run.start`, `key.revoke`, ...
    pub action: String,
    /// What it was done to: a flow's name, a run's id, a key's id, ...
    pub target: String,
    /// The particulars (never a secret's value or a key).
    pub detail: Value,
    /// The client's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// Which entries `audit` answers: newest first, before `before` (a seq).
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// One workspace's entries, or (None: the operator) all.
    pub workspace: Option<String>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// The workspace `remove_workspace` was asked to remove still holds things.
#[derive(Debug, PartialEq, Eq)]
pub struct WorkspaceInUse {
    /// What it holds, e.g. `3 runs, 1 flow`.
    pub holds: String,
}

const KEY_COLUMNS: &str = "key_id, workspace, name, role, digest, created_us, revoked_us";

fn workspace_from_row(row: &Row) -> Result<StoredWorkspace> {
    Ok(StoredWorkspace { name: row.get(0)?, created_us: row.get(1)?, limits: row.json(2)? })
}

fn key_from_row(row: &Row) -> Result<StoredKey> {
    let role: String = row.get(3)?;
    Ok(StoredKey {
        key_id: row.get(0)?,
        workspace: row.get(1)?,
        name: row.get(2)?,
        role: Role::parse(&role).ok_or_else(|| anyhow!("a key with an unknown role '{role}'"))?,
        digest: row.get(4)?,
        created_us: row.get(5)?,
        revoked_us: row.get(6)?,
    })
}

fn audit_from_row(row: &Row) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: row.get(0)?,
        ts_us: row.get(1)?,
        workspace: row.get(2)?,
        actor: row.get(3)?,
        key_id: row.get(4)?,
        key_name: row.get(5)?,
        action: row.get(6)?,
        target: row.get(7)?,
        detail: row.json(8)?,
        client: row.get(9)?,
    })
}

/// The tables that hold a workspace's things, and what one of each is
/// called, for `remove_workspace`'s refusal.
const HOLDINGS: &[(&str, &str)] = &[("runs", "run")];

impl Store {
    /// Make a workspace; false when one of the name exists.
    pub async fn create_workspace(&self, name: &str, created_us: i64) -> Result<bool> {
        let insert = query!(
            "INSERT INTO workspaces (name, created_us, limits) VALUES ($1, $2, '{}') ON CONFLICT (name) DO NOTHING",
            name,
            created_us
        );
        Ok(self.execute(insert).await? > 0)
    }

    pub async fn workspaces(&self) -> Result<Vec<StoredWorkspace>> {
        let rows = self.rows(query!("SELECT name, created_us, limits FROM workspaces ORDER BY name")).await?;
        rows.iter().map(workspace_from_row).collect()
    }

    pub async fn workspace(&self, name: &str) -> Result<Option<StoredWorkspace>> {
        let row = self.row(query!("SELECT name, created_us, limits FROM workspaces WHERE name = $1", name)).await?;
        row.as_ref().map(workspace_from_row).transpose()
    }

    /// Replace a workspace's limits; false when there is no such workspace.
    pub async fn set_workspace_limits(&self, name: &str, limits: &Value) -> Result<bool> {
        Ok(self.execute(query!("UPDATE workspaces SET limits = $2 WHERE name = $1", name, limits)).await? > 0)
    }

    /// Remove an empty workspace and its keys in one transaction: `Ok(None)`
    /// when there was no such workspace, `Ok(Some(Err))` (nothing removed)
    /// while it still holds runs or other things.
    pub async fn remove_workspace(&self, name: &str) -> Result<Option<Result<(), WorkspaceInUse>>> {
        let name = name.to_string();
        self.transaction(move |tx| {
            if tx.row(&query!("SELECT name FROM workspaces WHERE name = $1", &name))?.is_none() {
                return Ok(None);
            }
            let mut holds = Vec::new();
            for (table, thing) in HOLDINGS {
                let counted = tx.row(&query!(format!("SELECT count(*) FROM {table} WHERE workspace = $1"), &name))?;
                let count: i64 = counted.map(|row| row.get(0)).transpose()?.unwrap_or(0);
                if count > 0 {
                    holds.push(format!("{count} {thing}{}", if count == 1 { "" } else { "s" }));
                }
            }
            if !holds.is_empty() {
                return Ok(Some(Err(WorkspaceInUse { holds: holds.join(", ") })));
            }
            tx.execute(&query!("DELETE FROM workspace_keys WHERE workspace = $1", &name))?;
            tx.execute(&query!("DELETE FROM workspaces WHERE name = $1", &name))?;
            Ok(Some(Ok(())))
        })
        .await
    }

    pub async fn save_key(&self, key: &StoredKey) -> Result<()> {
        let insert = query!(
            "INSERT INTO workspace_keys (key_id, workspace, name, role, digest, created_us) VALUES ($1, $2, $3, $4, $5, $6)",
            &key.key_id,
            &key.workspace,
            &key.name,
            key.role.as_str(),
            &key.digest,
            key.created_us,
        );
        self.execute(insert).await?;
        Ok(())
    }

    pub async fn key(&self, key_id: &str) -> Result<Option<StoredKey>> {
        let row =
            self.row(query!(format!("SELECT {KEY_COLUMNS} FROM workspace_keys WHERE key_id = $1"), key_id)).await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// A workspace's keys, revoked ones included, oldest first.
    pub async fn keys(&self, workspace: &str) -> Result<Vec<StoredKey>> {
        let rows = self
            .rows(query!(
                format!("SELECT {KEY_COLUMNS} FROM workspace_keys WHERE workspace = $1 ORDER BY created_us, key_id"),
                workspace
            ))
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revoke a workspace's key; false when it has no such key (or it was
    /// revoked before).
    pub async fn revoke_key(&self, workspace: &str, key_id: &str, now_us: i64) -> Result<bool> {
        let revoke = query!(
            "UPDATE workspace_keys SET revoked_us = $3 WHERE workspace = $1 AND key_id = $2 AND revoked_us IS NULL",
            workspace,
            key_id,
            now_us
        );
        Ok(self.execute(revoke).await? > 0)
    }

    /// Append to the audit log (nothing in the API rewrites or removes it).
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let insert = query!(
            "INSERT INTO audit (ts_us, workspace, actor, key_id, key_name, action, target, detail, client)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            entry.ts_us,
            &entry.workspace,
            &entry.actor,
            entry.key_id.as_deref(),
            entry.key_name.as_deref(),
            &entry.action,
            &entry.target,
            &entry.detail,
            entry.client.as_deref(),
        );
        self.execute(insert).await?;
        Ok(())
    }

    pub async fn audit(&self, filter: AuditFilter) -> Result<Vec<AuditEntry>> {
        let select = query!(
            "SELECT seq, ts_us, workspace, actor, key_id, key_name, action, target, detail, client FROM audit
             WHERE (CAST($1 AS TEXT) IS NULL OR workspace = CAST($1 AS TEXT))
               AND (CAST($2 AS BIGINT) IS NULL OR seq < CAST($2 AS BIGINT))
             ORDER BY seq DESC LIMIT $3",
            filter.workspace,
            filter.before,
            filter.limit,
        );
        self.rows(select).await?.iter().map(audit_from_row).collect()
    }
}
