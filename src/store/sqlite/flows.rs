//! Stored flows: every upload of a module stores each flow it declares as a
//! new version, unless that flow's module source is unchanged.

use super::{SqliteStore, search};
use crate::flowdef::FlowInfo;
use crate::store::records::{
    FlowRemoved, FlowSummary, FlowVersion, SaveRefused, SavedFlow, Saver, StoredFlow, sha256_hex,
};
use crate::trace::Status;
use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::sync::Arc;

pub(crate) fn ensure_source(tx: &Transaction<'_>, sha256: &str, text: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO sources (sha256, text) VALUES (?1, ?2)")?
        .execute(params![sha256, text])?;
    Ok(())
}

fn save_module(
    conn: &mut Connection,
    source: &str,
    flows: &[FlowInfo],
    saver: &Saver,
    now_us: i64,
) -> rusqlite::Result<Result<Vec<SavedFlow>, SaveRefused>> {
    let sha256 = sha256_hex(source);
    let tx = conn.transaction()?;
    ensure_source(&tx, &sha256, source)?;
    if let Err(full) = room_for_new_flows(&tx, flows, saver)? {
        return Ok(Err(full));
    }
    let saved_by = saver.flow();
    let mut saved = Vec::new();
    for info in flows {
        let latest: Option<(u32, String, Option<String>)> = tx
            .query_row(
                "SELECT version, source_sha256, saved_by FROM flows WHERE name = ?1 ORDER BY version DESC LIMIT 1",
                [&info.name],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        if let (Some((_, _, owner)), Some(saver)) = (&latest, saved_by)
            && owner.as_deref() != Some(saver)
        {
            // Dropping the transaction rolls back whatever came before.
            return Ok(Err(SaveRefused::NotOwner { name: info.name.clone(), saver: saver.to_string() }));
        }
        match latest {
            Some((version, existing, _)) if existing == sha256 => {
                saved.push(SavedFlow { name: info.name.clone(), version, created: false });
            }
            latest => {
                let version = latest.map_or(1, |(v, _, _)| v + 1);
                let info_json = serde_json::to_string(info).unwrap_or_default();
                tx.execute(
                    "INSERT INTO flows (name, version, source_sha256, info, created_us, saved_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![info.name, version, sha256, info_json, now_us, saved_by],
                )?;
                index_latest(&tx, info, source)?;
                saved.push(SavedFlow { name: info.name.clone(), version, created: true });
            }
        }
    }
    tx.commit()?;
    Ok(Ok(saved))
}

/// Whether a flow saving `flows` may add the new names among them (see
/// `SavedFlowsBound`); counted in the save's transaction, which the
/// writer's one connection orders with every other save.
fn room_for_new_flows(
    tx: &Transaction<'_>,
    flows: &[FlowInfo],
    saver: &Saver,
) -> rusqlite::Result<Result<(), SaveRefused>> {
    let Saver::Flow(saver, bound) = saver else { return Ok(Ok(())) };
    let mut adding = std::collections::BTreeSet::new();
    for info in flows {
        let stored: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM flows WHERE name = ?1)", [&info.name], |row| row.get(0))?;
        if !stored {
            adding.insert(info.name.as_str());
        }
    }
    if adding.is_empty() {
        return Ok(Ok(()));
    }
    let own: u64 =
        tx.query_row("SELECT COUNT(DISTINCT name) FROM flows WHERE saved_by = ?1", [saver], |row| row.get(0))?;
    let all: u64 =
        tx.query_row("SELECT COUNT(DISTINCT name) FROM flows WHERE saved_by IS NOT NULL", [], |row| row.get(0))?;
    Ok(bound.check(saver, own, all, adding.len() as u64))
}

/// The search indexes (FTS5's and the impact-ordered postings) hold each
/// flow's latest version only, under the row id `flow_names` gives its name
/// (FTS5 finds a row by id, not by a column).
fn index_latest(tx: &Transaction<'_>, info: &FlowInfo, source: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO flow_names (name) VALUES (?1)")?.execute([&info.name])?;
    let id: i64 =
        tx.prepare_cached("SELECT id FROM flow_names WHERE name = ?1")?.query_row([&info.name], |row| row.get(0))?;
    tx.prepare_cached("DELETE FROM flows_fts WHERE rowid = ?1")?.execute([id])?;
    let steps = info.steps.join(" ");
    let inputs = info.inputs.keys().map(String::as_str).collect::<Vec<_>>().join(" ");
    let fields: search::Fields<'_> = [
        &info.name,
        info.description.as_deref().unwrap_or_default(),
        info.doc.as_deref().unwrap_or_default(),
        &steps,
        &inputs,
        source,
    ];
    tx.prepare_cached(
        "INSERT INTO flows_fts (rowid, name, description, doc, steps, inputs, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![id, info.name, info.description, info.doc, steps, inputs, source])?;
    search::index_flow(tx, id, &fields)
}

const FLOW_SELECT: &str = "SELECT f.name, f.version, s.text, f.source_sha256, f.info, f.created_us
     FROM flows f JOIN sources s ON s.sha256 = f.source_sha256";

fn flow_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredFlow> {
    let info: String = row.get(4)?;
    Ok(StoredFlow {
        name: row.get(0)?,
        version: row.get(1)?,
        source: row.get(2)?,
        source_sha256: row.get(3)?,
        info: serde_json::from_str(&info)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e)))?,
        created_us: row.get(5)?,
    })
}

impl SqliteStore {
    /// Store every flow `source` declares on behalf of `saver`: all or none,
    /// refused whole when a flow may not replace one of them.
    pub async fn save_module_as(
        &self,
        source: String,
        flows: Vec<FlowInfo>,
        saver: Saver,
    ) -> Result<Result<Vec<SavedFlow>, SaveRefused>> {
        let now = crate::trace::now_us();
        Ok(self.job(move |conn| save_module(conn, &source, &flows, &saver, now)).await??)
    }

    /// A flow's latest version, or `version` when given.
    pub async fn flow(self: &Arc<Self>, name: &str, version: Option<u32>) -> Result<Option<StoredFlow>> {
        let name = name.to_string();
        self.read(move |conn| match version {
            Some(version) => conn
                .query_row(
                    &format!("{FLOW_SELECT} WHERE f.name = ?1 AND f.version = ?2"),
                    params![name, version],
                    flow_from_row,
                )
                .optional(),
            None => conn
                .query_row(
                    &format!("{FLOW_SELECT} WHERE f.name = ?1 ORDER BY f.version DESC LIMIT 1"),
                    [name],
                    flow_from_row,
                )
                .optional(),
        })
        .await
    }

    pub async fn flow_versions(self: &Arc<Self>, name: &str) -> Result<Vec<FlowVersion>> {
        let name = name.to_string();
        self.read(move |conn| {
            let mut statement =
                conn.prepare("SELECT version, source_sha256, created_us FROM flows WHERE name = ?1 ORDER BY version")?;
            let rows = statement.query_map([name], |row| {
                Ok(FlowVersion { version: row.get(0)?, source_sha256: row.get(1)?, created_us: row.get(2)? })
            })?;
            rows.collect()
        })
        .await
    }

    /// Whether the latest version of `name` was stored by a flow through
    /// `flows.save` rather than by the operator (false when there is none).
    pub async fn saved_by_a_flow(self: &Arc<Self>, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.read(move |conn| {
            let saver: Option<Option<String>> = conn
                .query_row("SELECT saved_by FROM flows WHERE name = ?1 ORDER BY version DESC LIMIT 1", [name], |row| {
                    row.get(0)
                })
                .optional()?;
            Ok(matches!(saver, Some(Some(_))))
        })
        .await
    }

    /// The first `limit` flow names, in order (for "unknown flow" messages).
    pub async fn flow_names(self: &Arc<Self>, limit: usize) -> Result<Vec<String>> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached("SELECT DISTINCT name FROM flows ORDER BY name LIMIT ?1")?;
            let rows = statement.query_map([limit as i64], |row| row.get(0))?;
            rows.collect()
        })
        .await
    }

    /// Every flow's latest version, by name.
    pub async fn flows(self: &Arc<Self>) -> Result<Vec<FlowSummary>> {
        self.read(|conn| {
            let mut statement = conn.prepare(
                "SELECT f.name, f.version, f.info, f.created_us, counts.versions,
                        (SELECT status FROM runs r WHERE r.flow = f.name ORDER BY created_us DESC LIMIT 1)
                 FROM flows f
                 JOIN (SELECT name, MAX(version) AS latest, COUNT(*) AS versions FROM flows GROUP BY name) counts
                   ON counts.name = f.name AND counts.latest = f.version
                 ORDER BY f.name",
            )?;
            let rows = statement.query_map([], |row| {
                let info: FlowInfo = serde_json::from_str(&row.get::<_, String>(2)?).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
                })?;
                let status: Option<String> = row.get(5)?;
                Ok(FlowSummary {
                    name: row.get(0)?,
                    version: row.get(1)?,
                    description: info.description.clone(),
                    info,
                    created_us: row.get(3)?,
                    versions: row.get(4)?,
                    last_run_status: status.and_then(|s| Status::parse(&s)),
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Is this module source the latest version of a flow it declares?
    /// Then storing it again would change nothing.
    pub async fn is_latest_source(self: &Arc<Self>, source: &str) -> Result<bool> {
        let sha256 = sha256_hex(source);
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM flows f WHERE f.source_sha256 = ?1
                    AND f.version = (SELECT MAX(version) FROM flows g WHERE g.name = f.name))",
            )?
            .query_row([&sha256], |row| row.get(0))
        })
        .await
    }

    /// A stored module source by its SHA-256 (every run keeps its source's).
    pub async fn source(self: &Arc<Self>, sha256: &str) -> Result<Option<String>> {
        let sha256 = sha256.to_string();
        self.read(move |conn| {
            conn.prepare_cached("SELECT text FROM sources WHERE sha256 = ?1")?
                .query_row([&sha256], |row| row.get(0))
                .optional()
        })
        .await
    }

    /// Remove every version of a flow, and its webhooks and schedules, in
    /// one transaction; its runs stay.
    pub async fn delete_flow(&self, name: &str) -> Result<FlowRemoved> {
        let name = name.to_string();
        Ok(self
            .job(move |conn| {
                let tx = conn.transaction()?;
                let id: Option<i64> =
                    tx.query_row("SELECT id FROM flow_names WHERE name = ?1", [&name], |row| row.get(0)).optional()?;
                if let Some(id) = id {
                    tx.execute("DELETE FROM flows_fts WHERE rowid = ?1", [id])?;
                    search::unindex_flow(&tx, id)?;
                }
                tx.execute("DELETE FROM flow_names WHERE name = ?1", [&name])?;
                let removed = FlowRemoved {
                    versions_removed: tx.execute("DELETE FROM flows WHERE name = ?1", [&name])?,
                    hooks_removed: tx.execute("DELETE FROM hooks WHERE flow = ?1", [&name])?,
                    schedules_removed: tx.execute("DELETE FROM schedules WHERE flow = ?1", [&name])?,
                };
                tx.commit()?;
                Ok::<_, rusqlite::Error>(removed)
            })
            .await??)
    }
}
