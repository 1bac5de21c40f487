//! Stored flows: every upload of a module stores each flow it declares as a
//! new version, unless that flow's module source is unchanged.

use super::rows::{FLOW_SELECT, flow_from_row};
use super::{PgStore, text, unsigned};
use crate::flowdef::FlowInfo;
use crate::store::records::{
    FlowRemoved, FlowSummary, FlowVersion, SaveRefused, SavedFlow, Saver, StoredFlow, sha256_hex,
};
use crate::trace::Status;
use anyhow::Result;
use deadpool_postgres::Transaction;

/// The advisory lock module saves take, so two nodes saving the same flow
/// at once number their versions one after the other; removing a flow and
/// making a trigger for one take it too, so no trigger outlives its flow.
pub(super) const SAVE_LOCK: i64 = 0x6865_726f_0002;

impl PgStore {
    /// Store every flow `source` declares on behalf of `saver`: all or none,
    /// refused whole when a flow may not replace one of them.
    pub async fn save_module_as(
        &self,
        source: String,
        flows: Vec<FlowInfo>,
        saver: Saver,
    ) -> Result<Result<Vec<SavedFlow>, SaveRefused>> {
        let now_us = crate::trace::now_us();
        let sha256 = sha256_hex(&source);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        super::exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&SAVE_LOCK]).await?;
        super::exec(
            &tx,
            "INSERT INTO sources (sha256, text) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
            &[&sha256, &text(&source)],
        )
        .await?;
        if let Err(full) = room_for_new_flows(&tx, &flows, &saver).await? {
            return Ok(Err(full));
        }
        let saved_by = saver.flow();
        let mut saved = Vec::new();
        for info in &flows {
            let latest = super::row(
                &tx,
                "SELECT version, source_sha256, saved_by FROM flows WHERE name = $1 ORDER BY version DESC LIMIT 1",
                &[&info.name],
            )
            .await?
            .map(|row| (row.get::<_, i32>(0), row.get::<_, String>(1), row.get::<_, Option<String>>(2)));
            if let (Some((_, _, owner)), Some(saver)) = (&latest, saved_by)
                && owner.as_deref() != Some(saver)
            {
                // Dropping the transaction rolls back whatever came before.
                return Ok(Err(SaveRefused::NotOwner { name: info.name.clone(), saver: saver.to_string() }));
            }
            match latest {
                Some((version, existing, _)) if existing == sha256 => {
                    saved.push(SavedFlow {
                        name: info.name.clone(),
                        version: unsigned(version.into(), "version")?,
                        created: false,
                    });
                }
                latest => {
                    let version = latest.map_or(1, |(v, _, _)| v + 1);
                    super::exec(
                        &tx,
                        "INSERT INTO flows (name, version, source_sha256, info, created_us, saved_by)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&info.name, &version, &sha256, &text(&serde_json::to_string(info)?), &now_us, &saved_by],
                    )
                    .await?;
                    index_latest(&tx, info, &source).await?;
                    saved.push(SavedFlow {
                        name: info.name.clone(),
                        version: unsigned(version.into(), "version")?,
                        created: true,
                    });
                }
            }
        }
        tx.commit().await?;
        Ok(Ok(saved))
    }

    /// A flow's latest version, or `version` when given.
    pub async fn flow(&self, name: &str, version: Option<u32>) -> Result<Option<StoredFlow>> {
        let client = self.client().await?;
        let row = match version {
            Some(version) => {
                super::row(
                    &client,
                    &format!("{FLOW_SELECT} WHERE f.name = $1 AND f.version = $2"),
                    &[&name, &(version as i32)],
                )
                .await?
            }
            None => {
                super::row(
                    &client,
                    &format!("{FLOW_SELECT} WHERE f.name = $1 ORDER BY f.version DESC LIMIT 1"),
                    &[&name],
                )
                .await?
            }
        };
        row.as_ref().map(flow_from_row).transpose()
    }

    pub async fn flow_versions(&self, name: &str) -> Result<Vec<FlowVersion>> {
        let client = self.client().await?;
        let rows = super::rows(
            &client,
            "SELECT version, source_sha256, created_us FROM flows WHERE name = $1 ORDER BY version",
            &[&name],
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FlowVersion {
                    version: unsigned(row.try_get::<_, i32>(0)?.into(), "version")?,
                    source_sha256: row.try_get(1)?,
                    created_us: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// Whether the latest version of `name` was stored by a flow through
    /// `flows.save` rather than by the operator (false when there is none).
    pub async fn saved_by_a_flow(&self, name: &str) -> Result<bool> {
        let client = self.client().await?;
        let row =
            super::row(&client, "SELECT saved_by FROM flows WHERE name = $1 ORDER BY version DESC LIMIT 1", &[&name])
                .await?;
        Ok(row.is_some_and(|row| row.get::<_, Option<String>>(0).is_some()))
    }

    /// The first `limit` flow names, in order (for "unknown flow" messages).
    pub async fn flow_names(&self, limit: usize) -> Result<Vec<String>> {
        let client = self.client().await?;
        let rows = super::rows(
            &client,
            "SELECT DISTINCT name COLLATE \"C\" AS name FROM flows ORDER BY 1 LIMIT $1",
            &[&(limit as i64)],
        )
        .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Every flow's latest version, by name.
    pub async fn flows(&self) -> Result<Vec<FlowSummary>> {
        let client = self.client().await?;
        let rows = super::rows(
            &client,
            "SELECT f.name, f.version, f.info, f.created_us, counts.versions,
                        (SELECT status FROM runs r WHERE r.flow = f.name ORDER BY created_us DESC LIMIT 1)
                 FROM flows f
                 JOIN (SELECT name, MAX(version) AS latest, COUNT(*) AS versions FROM flows GROUP BY name) counts
                   ON counts.name = f.name AND counts.latest = f.version
                 ORDER BY f.name COLLATE \"C\"",
            &[],
        )
        .await?;
        rows.iter()
            .map(|row| {
                let info: FlowInfo = serde_json::from_str(row.try_get(2)?)?;
                let status: Option<&str> = row.try_get(5)?;
                Ok(FlowSummary {
                    name: row.try_get(0)?,
                    version: unsigned(row.try_get::<_, i32>(1)?.into(), "version")?,
                    description: info.description.clone(),
                    info,
                    created_us: row.try_get(3)?,
                    versions: unsigned(row.try_get(4)?, "versions")?,
                    last_run_status: status.and_then(Status::parse),
                })
            })
            .collect()
    }

    /// Is this module source the latest version of a flow it declares?
    pub async fn is_latest_source(&self, source: &str) -> Result<bool> {
        let client = self.client().await?;
        let row = super::one_row(
            &client,
            "SELECT EXISTS (SELECT 1 FROM flows f WHERE f.source_sha256 = $1
                    AND f.version = (SELECT MAX(version) FROM flows g WHERE g.name = f.name))",
            &[&sha256_hex(source)],
        )
        .await?;
        Ok(row.try_get(0)?)
    }

    /// A stored module source by its SHA-256.
    pub async fn source(&self, sha256: &str) -> Result<Option<String>> {
        let client = self.client().await?;
        Ok(super::row(&client, "SELECT text FROM sources WHERE sha256 = $1", &[&sha256]).await?.map(|row| row.get(0)))
    }

    /// Remove every version of a flow; its runs stay. Returns versions removed.
    pub async fn delete_flow(&self, name: &str) -> Result<FlowRemoved> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        super::exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&SAVE_LOCK]).await?;
        super::exec(&tx, "DELETE FROM flow_search WHERE name = $1", &[&name]).await?;
        let removed = FlowRemoved {
            versions_removed: super::exec(&tx, "DELETE FROM flows WHERE name = $1", &[&name]).await? as usize,
            hooks_removed: super::exec(&tx, "DELETE FROM hooks WHERE flow = $1", &[&name]).await? as usize,
            schedules_removed: super::exec(&tx, "DELETE FROM schedules WHERE flow = $1", &[&name]).await? as usize,
        };
        tx.commit().await?;
        Ok(removed)
    }
}

/// Whether a flow saving `flows` may add the new names among them (see
/// `SavedFlowsBound`); counted under the save lock, so saves on every node
/// are counted one after the other.
async fn room_for_new_flows(
    tx: &Transaction<'_>,
    flows: &[FlowInfo],
    saver: &Saver,
) -> Result<Result<(), SaveRefused>> {
    let Saver::Flow(saver, bound) = saver else { return Ok(Ok(())) };
    let names: Vec<&str> = flows.iter().map(|info| info.name.as_str()).collect();
    let stored = super::rows(tx, "SELECT DISTINCT name FROM flows WHERE name = ANY($1)", &[&names]).await?;
    let stored: std::collections::BTreeSet<String> = stored.iter().map(|row| row.get(0)).collect();
    let adding: std::collections::BTreeSet<&str> = names.into_iter().filter(|name| !stored.contains(*name)).collect();
    if adding.is_empty() {
        return Ok(Ok(()));
    }
    let own = super::row(tx, "SELECT COUNT(DISTINCT name) FROM flows WHERE saved_by = $1", &[saver]).await?;
    let all = super::row(tx, "SELECT COUNT(DISTINCT name) FROM flows WHERE saved_by IS NOT NULL", &[]).await?;
    let count = |row: Option<tokio_postgres::Row>| row.map_or(0, |row| row.get::<_, i64>(0) as u64);
    let (own, all) = (count(own), count(all));
    Ok(bound.check(saver, own, all, adding.len() as u64))
}

/// The search index holds each flow's latest version only.
async fn index_latest(tx: &Transaction<'_>, info: &FlowInfo, source: &str) -> Result<()> {
    let inputs: Vec<&str> = info.inputs.keys().map(String::as_str).collect();
    let statement = tx
        .prepare_cached(
            "INSERT INTO flow_search (name, description, doc, steps, inputs, source, document, tokens)
             SELECT $1, $2, $3, $4, $5, $6, d.document,
                    (SELECT coalesce(sum(array_length(positions, 1)), 0) FROM unnest(d.document))
             FROM (SELECT setweight(to_tsvector('english', words($1)), 'A')
                       || setweight(to_tsvector('english', words(coalesce($2, ''))), 'B')
                       || setweight(to_tsvector('english', words(coalesce($3, '') || ' ' || $4)), 'C')
                       || setweight(to_tsvector('english', words($5 || ' ' || $6)), 'D') AS document) d
             ON CONFLICT (name) DO UPDATE SET description = excluded.description, doc = excluded.doc,
                steps = excluded.steps, inputs = excluded.inputs, source = excluded.source,
                document = excluded.document, tokens = excluded.tokens",
        )
        .await?;
    tx.execute(
        &statement,
        &[
            &info.name,
            &info.description.as_deref().map(text),
            &info.doc.as_deref().map(text),
            &text(&info.steps.join(" ")),
            &inputs.join(" "),
            &text(source),
        ],
    )
    .await?;
    Ok(())
}
