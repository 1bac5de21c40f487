//! Library search: full-text search over the latest version of every flow
//! (FTS5, ranked by BM25), in plain words.

use super::SqliteStore;
use crate::store::records::SearchHit;
use crate::store::words::fts_query;
use anyhow::Result;
use rusqlite::params;
use std::sync::Arc;

impl SqliteStore {
    /// Full-text search over the latest version of every flow, in plain
    /// words: each word matches as a prefix, and any word may match.
    pub async fn search_flows(self: &Arc<Self>, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
        let query = fts_query(query);
        if query.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |conn| {
            // Name and description weigh more than docstrings and steps,
            // which weigh more than inputs and source.
            // FTS5 ranks every match but, sorted by its own `rank`, hands
            // over only the best `limit`; the snippet and the join to the
            // flow's latest version are made for those alone.
            let mut statement = conn.prepare_cached(
                "WITH best AS (
                     SELECT rowid AS id, rank, snippet(flows_fts, -1, '[', ']', '…', 12) AS snippet
                     FROM flows_fts
                     WHERE flows_fts MATCH ?1 AND rank MATCH 'bm25(10.0, 5.0, 2.0, 2.0, 1.0, 0.5)'
                     ORDER BY rank LIMIT ?2
                 )
                 SELECT f.name, f.version, json_extract(f.info, '$.description'), -best.rank, best.snippet
                 FROM best
                 JOIN flow_names n ON n.id = best.id
                 JOIN flows f ON f.name = n.name
                  AND f.version = (SELECT MAX(version) FROM flows g WHERE g.name = n.name)
                 ORDER BY best.rank",
            )?;
            let rows = statement.query_map(params![query, limit], |row| {
                Ok(SearchHit {
                    name: row.get(0)?,
                    version: row.get(1)?,
                    description: row.get(2)?,
                    score: row.get(3)?,
                    snippet: row.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// The baseline search benchmarks compare with: the latest flows whose
    /// sources contain most of the words, found by reading every source.
    pub async fn scan_sources(self: &Arc<Self>, text: &str, limit: u32) -> Result<Vec<String>> {
        let words: Vec<String> = text.split_whitespace().map(|w| format!("%{w}%")).collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |conn| {
            let score: Vec<String> = (1..=words.len()).map(|i| format!("(s.text LIKE ?{i})")).collect();
            let sql = format!(
                "SELECT f.name, {score} AS score FROM flows f JOIN sources s ON s.sha256 = f.source_sha256
                 WHERE f.version = (SELECT MAX(version) FROM flows g WHERE g.name = f.name) AND score > 0
                 ORDER BY score DESC LIMIT {limit}",
                score = score.join(" + ")
            );
            let mut statement = conn.prepare(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(words.iter()), |row| row.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
    }
}
