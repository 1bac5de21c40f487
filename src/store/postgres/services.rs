//! Registered services, sealed secrets, webhooks and the `kv` built-in's table.

use super::rows::{SERVICE_COLUMNS, all, service_from_row};
use super::{PgStore, text};
use crate::store::records::{KvFull, StoredHook, StoredService};
use anyhow::Result;
use serde_json::Value;

impl PgStore {
    /// Register (or replace) a service.
    pub async fn save_service(&self, service: StoredService) -> Result<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO services (name, url, document, timeout_ms, created_us, headers) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (name) DO UPDATE SET url = excluded.url, document = excluded.document,
                                                  timeout_ms = excluded.timeout_ms, headers = excluded.headers",
                &[
                    &service.name,
                    &service.url,
                    &text(&service.document.to_string()),
                    &(service.timeout_ms as i64),
                    &service.created_us,
                    &text(&serde_json::json!(service.headers).to_string()),
                ],
            )
            .await?;
        Ok(())
    }

    pub async fn services(&self) -> Result<Vec<StoredService>> {
        let client = self.client().await?;
        all(
            super::rows(&client, &format!("SELECT {SERVICE_COLUMNS} FROM services ORDER BY name"), &[]).await?,
            service_from_row,
        )
    }

    pub async fn service(&self, name: &str) -> Result<Option<StoredService>> {
        let client = self.client().await?;
        let row =
            super::row(&client, &format!("SELECT {SERVICE_COLUMNS} FROM services WHERE name = $1"), &[&name]).await?;
        row.as_ref().map(service_from_row).transpose()
    }

    /// Returns whether there was such a service.
    pub async fn remove_service(&self, name: &str) -> Result<bool> {
        Ok(self.client().await?.execute("DELETE FROM services WHERE name = $1", &[&name]).await? > 0)
    }

    /// Store a new webhook when its flow is stored, under the lock that
    /// removing a flow takes.
    pub async fn save_hook(&self, hook: StoredHook) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        super::exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&super::flows::SAVE_LOCK]).await?;
        let inserted = super::exec(
            &tx,
            "INSERT INTO hooks (hook_id, flow, created_us)
             SELECT $1::text, $2::text, $3::bigint WHERE EXISTS (SELECT 1 FROM flows WHERE name = $2)",
            &[&hook.hook_id, &hook.flow, &hook.created_us],
        )
        .await?;
        tx.commit().await?;
        Ok(inserted > 0)
    }

    pub async fn hook(&self, hook_id: &str) -> Result<Option<StoredHook>> {
        let client = self.client().await?;
        let row =
            super::row(&client, "SELECT hook_id, flow, created_us FROM hooks WHERE hook_id = $1", &[&hook_id]).await?;
        row.as_ref().map(hook_from_row).transpose()
    }

    pub async fn hooks(&self, flow: &str) -> Result<Vec<StoredHook>> {
        let client = self.client().await?;
        let sql = "SELECT hook_id, flow, created_us FROM hooks WHERE flow = $1 ORDER BY created_us";
        all(super::rows(&client, sql, &[&flow]).await?, hook_from_row)
    }

    /// Returns whether there was such a webhook.
    pub async fn remove_hook(&self, hook_id: &str) -> Result<bool> {
        Ok(self.client().await?.execute("DELETE FROM hooks WHERE hook_id = $1", &[&hook_id]).await? > 0)
    }

    pub async fn kv_get(&self, flow: &str, key: &str) -> Result<Option<Value>> {
        let client = self.client().await?;
        let row =
            super::row(&client, "SELECT value FROM kv WHERE flow = $1 AND key = $2", &[&flow, &text(key)]).await?;
        Ok(row.and_then(|row| serde_json::from_str(row.get::<_, &str>(0)).ok()))
    }

    /// Set a key, unless the flow would then hold more than `limit` bytes
    /// of keys and values (a write that shrinks what it holds always goes).
    /// The flow's total is locked for the transaction, so two nodes writing
    /// the same flow's keys at once cannot both slip under the limit.
    pub async fn kv_set(&self, flow: &str, key: &str, value: &Value, limit: u64) -> Result<Result<(), KvFull>> {
        let (key, value) = (text(key), text(&value.to_string()).into_owned());
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let held = lock_kv_held(&tx, flow).await?;
        let old: Option<i64> = super::row(
            &tx,
            "SELECT (octet_length(key) + octet_length(value))::int8 FROM kv WHERE flow = $1 AND key = $2",
            &[&flow, &key],
        )
        .await?
        .map(|row| row.get(0));
        let after = held - old.unwrap_or(0) as u64 + (key.len() + value.len()) as u64;
        if let Err(full) = KvFull::check(held, after, limit) {
            return Ok(Err(full));
        }
        super::exec(
            &tx,
            "INSERT INTO kv (flow, key, value, updated_us) VALUES ($1, $2, $3, $4)
             ON CONFLICT (flow, key) DO UPDATE SET value = excluded.value, updated_us = excluded.updated_us",
            &[&flow, &key, &value, &crate::trace::now_us()],
        )
        .await?;
        super::exec(&tx, "UPDATE kv_usage SET bytes = $2 WHERE flow = $1", &[&flow, &(after as i64)]).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Returns whether the key was there.
    pub async fn kv_delete(&self, flow: &str, key: &str) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let held = lock_kv_held(&tx, flow).await?;
        let freed: Option<i64> = super::row(
            &tx,
            "DELETE FROM kv WHERE flow = $1 AND key = $2 RETURNING (octet_length(key) + octet_length(value))::int8",
            &[&flow, &text(key)],
        )
        .await?
        .map(|row| row.get(0));
        if let Some(freed) = freed {
            super::exec(
                &tx,
                "UPDATE kv_usage SET bytes = $2 WHERE flow = $1",
                &[&flow, &(held.saturating_sub(freed as u64) as i64)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(freed.is_some())
    }

    /// Bytes of keys and values a flow holds in `kv`.
    pub async fn kv_bytes(&self, flow: &str) -> Result<u64> {
        let client = self.client().await?;
        let row = super::row(&client, "SELECT bytes FROM kv_usage WHERE flow = $1", &[&flow]).await?;
        Ok(row.map_or(0, |row| row.get::<_, i64>(0) as u64))
    }

    /// Keys of a flow starting with `prefix`, in order.
    pub async fn kv_keys(&self, flow: &str, prefix: &str, limit: u32) -> Result<Vec<String>> {
        let client = self.client().await?;
        let prefix = text(prefix);
        // Compared as bytes (`left` on the key), not with LIKE, whose `%` and
        // `_` a prefix may hold.
        let rows = super::rows(&client, "SELECT key FROM kv WHERE flow = $1 AND left(key, char_length($2)) = $2 ORDER BY key COLLATE \"C\" LIMIT $3",
                &[&flow, &prefix, &i64::from(limit)],
            )
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }
}

/// The flow's `kv` total, its row locked until the transaction ends.
async fn lock_kv_held(tx: &deadpool_postgres::Transaction<'_>, flow: &str) -> Result<u64> {
    super::exec(tx, "INSERT INTO kv_usage (flow, bytes) VALUES ($1, 0) ON CONFLICT (flow) DO NOTHING", &[&flow])
        .await?;
    let row = super::one_row(tx, "SELECT bytes FROM kv_usage WHERE flow = $1 FOR UPDATE", &[&flow]).await?;
    Ok(row.get::<_, i64>(0) as u64)
}

fn hook_from_row(row: &tokio_postgres::Row) -> Result<StoredHook> {
    Ok(StoredHook { hook_id: row.try_get(0)?, flow: row.try_get(1)?, created_us: row.try_get(2)? })
}
