//! Library search: full-text search over the latest version of every flow,
//! in plain words, ranked by BM25 as FTS5 ranks. The best flows come from
//! the index's impact-ordered postings, which stop reading early; FTS5
//! gives their snippets, and answers the rare query the index cannot.

mod bm25;
mod index;
mod plan;
#[cfg(test)]
mod tests;
mod tokens;
mod top_k;

pub use index::{Fields, build_index_if_missing, index_flow, unindex_flow};

use super::SqliteStore;
use crate::store::records::SearchHit;
use crate::store::words::{fts_query, search_words};
use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;
use top_k::Ranked;

impl SqliteStore {
    /// Full-text search over the latest version of every flow, in plain
    /// words: each word matches as a prefix, and any word may match.
    pub async fn search_flows(self: &Arc<Self>, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
        let fts5_query = fts_query(query);
        if fts5_query.is_empty() {
            return Ok(Vec::new());
        }
        let words = search_words(query);
        self.read(move |conn| {
            // One snapshot for the whole search: the plan's totals, the
            // postings it reads and the hits must be of the same library, or
            // a save committed in between could break the bounds it stops on.
            let conn = &conn.unchecked_transaction()?;
            let (best, snippet_query) = match plan::plan(conn, &words)? {
                Some(plan) => {
                    let snippet_query = plan.snippet_query().unwrap_or_else(|| fts5_query.clone());
                    (top_k::best_flows(conn, &plan, limit as usize)?, snippet_query)
                }
                None => (ranked_by_fts5(conn, &fts5_query, limit)?, fts5_query),
            };
            hits(conn, &best, &snippet_query)
        })
        .await
    }

    /// The search as FTS5 alone answers it, ranking every flow that matches:
    /// what the index's answers are checked and measured against.
    pub async fn search_flows_ranking_every_match(self: &Arc<Self>, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
        let fts5_query = fts_query(query);
        if fts5_query.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |conn| hits(conn, &ranked_by_fts5(conn, &fts5_query, limit)?, &fts5_query)).await
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

/// The best `limit` flows by FTS5's own BM25 with the library's field
/// weights, which scores every match.
fn ranked_by_fts5(conn: &Connection, fts5_query: &str, limit: u32) -> rusqlite::Result<Vec<Ranked>> {
    let mut statement = conn.prepare_cached(
        "SELECT rowid, -rank FROM flows_fts WHERE flows_fts MATCH ?1 AND rank MATCH ?3 ORDER BY rank LIMIT ?2",
    )?;
    let rows = statement.query_map(params![fts5_query, limit, bm25::fts5_rank()], |row| {
        Ok(Ranked { flow_id: row.get(0)?, score: row.get(1)? })
    })?;
    rows.collect()
}

/// The hits for the best flows, in their order: each flow's latest version
/// and, from FTS5, a snippet with the words `snippet_query` matches in
/// brackets.
fn hits(conn: &Connection, best: &[Ranked], snippet_query: &str) -> rusqlite::Result<Vec<SearchHit>> {
    let mut flow = conn.prepare_cached(
        "SELECT f.name, f.version, json_extract(f.info, '$.description')
         FROM flow_names n JOIN flows f ON f.name = n.name
         WHERE n.id = ?1 ORDER BY f.version DESC LIMIT 1",
    )?;
    let mut snippet = conn.prepare_cached(
        "SELECT snippet(flows_fts, -1, '[', ']', '…', 12) FROM flows_fts WHERE flows_fts MATCH ?1 AND rowid = ?2",
    )?;
    let mut hits = Vec::with_capacity(best.len());
    for ranked in best {
        let found = flow.query_row([ranked.flow_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))).optional()?;
        // The index and the flows are written in one transaction: a flow
        // it holds is stored. Skipped rather than trusted, all the same.
        let Some((name, version, description)) = found else { continue };
        let snippet: Option<String> =
            snippet.query_row(params![snippet_query, ranked.flow_id], |row| row.get(0)).optional()?;
        hits.push(SearchHit { name, version, description, score: ranked.score, snippet: snippet.unwrap_or_default() });
    }
    Ok(hits)
}
