//! Registered services, sealed secrets, webhooks and the `kv` built-in's table.

use super::SqliteStore;
use crate::store::records::{KvFull, StoredHook, StoredService};
use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use std::sync::Arc;

fn service_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredService> {
    let document: String = row.get(2)?;
    Ok(StoredService {
        name: row.get(0)?,
        url: row.get(1)?,
        document: serde_json::from_str(&document).unwrap_or(Value::Null),
        timeout_ms: row.get(3)?,
        created_us: row.get(4)?,
        headers: serde_json::from_str(&row.get::<_, String>(5)?).unwrap_or_default(),
    })
}

fn hook_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredHook> {
    Ok(StoredHook { hook_id: row.get(0)?, flow: row.get(1)?, created_us: row.get(2)? })
}

impl SqliteStore {
    /// Register (or replace) a service.
    pub async fn save_service(&self, service: StoredService) -> Result<()> {
        let headers = serde_json::json!(service.headers).to_string();
        self.job(move |conn| {
            conn.execute(
                "INSERT INTO services (name, url, document, timeout_ms, created_us, headers) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (name) DO UPDATE SET url = excluded.url, document = excluded.document,
                                                  timeout_ms = excluded.timeout_ms, headers = excluded.headers",
                params![
                    service.name,
                    service.url,
                    service.document.to_string(),
                    service.timeout_ms,
                    service.created_us,
                    headers
                ],
            )
        })
        .await??;
        Ok(())
    }

    pub async fn services(self: &Arc<Self>) -> Result<Vec<StoredService>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT name, url, document, timeout_ms, created_us, headers FROM services ORDER BY name",
            )?;
            let rows = statement.query_map([], service_from_row)?;
            rows.collect()
        })
        .await
    }

    pub async fn service(self: &Arc<Self>, name: &str) -> Result<Option<StoredService>> {
        let name = name.to_string();
        self.read(move |conn| {
            conn.query_row(
                "SELECT name, url, document, timeout_ms, created_us, headers FROM services WHERE name = ?1",
                [name],
                service_from_row,
            )
            .optional()
        })
        .await
    }

    /// Returns whether there was such a service.
    pub async fn remove_service(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        Ok(self.job(move |conn| conn.execute("DELETE FROM services WHERE name = ?1", [name])).await?? > 0)
    }

    /// Store a new webhook when its flow is stored; the writer's one
    /// connection orders it with any removal of the flow.
    pub async fn save_hook(&self, hook: StoredHook) -> Result<bool> {
        let inserted = self.job(move |conn| {
            conn.execute(
                "INSERT INTO hooks (hook_id, flow, created_us)
                 SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM flows WHERE name = ?2)",
                params![hook.hook_id, hook.flow, hook.created_us],
            )
        });
        Ok(inserted.await?? > 0)
    }

    pub async fn hook(self: &Arc<Self>, hook_id: &str) -> Result<Option<StoredHook>> {
        let hook_id = hook_id.to_string();
        self.read(move |conn| {
            conn.query_row("SELECT hook_id, flow, created_us FROM hooks WHERE hook_id = ?1", [hook_id], hook_from_row)
                .optional()
        })
        .await
    }

    pub async fn hooks(self: &Arc<Self>, flow: &str) -> Result<Vec<StoredHook>> {
        let flow = flow.to_string();
        self.read(move |conn| {
            let mut statement =
                conn.prepare_cached("SELECT hook_id, flow, created_us FROM hooks WHERE flow = ?1 ORDER BY created_us")?;
            let rows = statement.query_map([flow], hook_from_row)?;
            rows.collect()
        })
        .await
    }

    /// Returns whether there was such a webhook.
    pub async fn remove_hook(&self, hook_id: &str) -> Result<bool> {
        let hook_id = hook_id.to_string();
        Ok(self.job(move |conn| conn.execute("DELETE FROM hooks WHERE hook_id = ?1", [hook_id])).await?? > 0)
    }

    pub async fn kv_get(self: &Arc<Self>, flow: &str, key: &str) -> Result<Option<Value>> {
        let (flow, key) = (flow.to_string(), key.to_string());
        let text: Option<String> = self
            .read(move |conn| {
                conn.query_row("SELECT value FROM kv WHERE flow = ?1 AND key = ?2", [flow, key], |row| row.get(0))
                    .optional()
            })
            .await?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Set a key, unless the flow would then hold more than `limit` bytes
    /// of keys and values (a write that shrinks what it holds always goes).
    pub async fn kv_set(&self, flow: &str, key: &str, value: &Value, limit: u64) -> Result<Result<(), KvFull>> {
        let (flow, key, value, now) = (flow.to_string(), key.to_string(), value.to_string(), crate::trace::now_us());
        self.job(move |conn| {
            let tx = conn.transaction()?;
            let held = kv_held(&tx, &flow)?;
            let old: Option<u64> = tx
                .query_row(
                    "SELECT length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)) FROM kv WHERE flow = ?1 AND key = ?2",
                    [&flow, &key],
                    |row| row.get(0),
                )
                .optional()?;
            let after = held - old.unwrap_or(0) + (key.len() + value.len()) as u64;
            if let Err(full) = KvFull::check(held, after, limit) {
                return Ok(Err(full));
            }
            tx.execute(
                "INSERT INTO kv (flow, key, value, updated_us) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (flow, key) DO UPDATE SET value = excluded.value, updated_us = excluded.updated_us",
                params![flow, key, value, now],
            )?;
            set_kv_held(&tx, &flow, after)?;
            tx.commit()?;
            Ok(Ok(()))
        })
        .await?
        .map_err(|e: rusqlite::Error| e.into())
    }

    /// Returns whether the key was there.
    pub async fn kv_delete(&self, flow: &str, key: &str) -> Result<bool> {
        let (flow, key) = (flow.to_string(), key.to_string());
        self.job(move |conn| {
            let tx = conn.transaction()?;
            let freed: Option<u64> = tx
                .query_row(
                    "DELETE FROM kv WHERE flow = ?1 AND key = ?2
                     RETURNING length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))",
                    [&flow, &key],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(freed) = freed {
                let held = kv_held(&tx, &flow)?;
                set_kv_held(&tx, &flow, held.saturating_sub(freed))?;
            }
            tx.commit()?;
            Ok(freed.is_some())
        })
        .await?
        .map_err(|e: rusqlite::Error| e.into())
    }

    /// Bytes of keys and values a flow holds in `kv`.
    pub async fn kv_bytes(self: &Arc<Self>, flow: &str) -> Result<u64> {
        let flow = flow.to_string();
        self.read(move |conn| kv_held(conn, &flow)).await
    }

    /// Keys of a flow starting with `prefix`, in order.
    pub async fn kv_keys(self: &Arc<Self>, flow: &str, prefix: &str, limit: u32) -> Result<Vec<String>> {
        let (flow, prefix) = (flow.to_string(), prefix.to_string());
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT key FROM kv WHERE flow = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key LIMIT ?3",
            )?;
            let rows = statement.query_map(params![flow, prefix, limit], |row| row.get(0))?;
            rows.collect()
        })
        .await
    }
}

fn kv_held(conn: &Connection, flow: &str) -> rusqlite::Result<u64> {
    Ok(conn.query_row("SELECT bytes FROM kv_usage WHERE flow = ?1", [flow], |row| row.get(0)).optional()?.unwrap_or(0))
}

fn set_kv_held(conn: &Connection, flow: &str, bytes: u64) -> rusqlite::Result<()> {
    if bytes == 0 {
        conn.execute("DELETE FROM kv_usage WHERE flow = ?1", [flow])?;
    } else {
        conn.execute(
            "INSERT INTO kv_usage (flow, bytes) VALUES (?1, ?2) ON CONFLICT (flow) DO UPDATE SET bytes = excluded.bytes",
            params![flow, bytes],
        )?;
    }
    Ok(())
}
