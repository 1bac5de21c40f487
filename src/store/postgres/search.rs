//! Library search on PostgreSQL's own full-text search: the same query
//! language as the SQLite backend (plain words, each a prefix, any may
//! match; see `store::words`), the same fields weighted in the same order,
//! ranked by `ts_rank` with the fields' weights.

use super::PgStore;
use crate::store::records::SearchHit;
use crate::store::words::tsquery;
use anyhow::Result;

impl PgStore {
    pub async fn search_flows(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
        let query = tsquery(query);
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        // Weights {D, C, B, A}: name 1, description 0.5, docstring and steps
        // 0.2, inputs and source 0.05, as the SQLite index weighs them
        // (10, 5, 2, 2, 1, 0.5). Ranked over every match, as FTS5 does; the
        // snippet and the join to the latest version are made for the best
        // `limit` alone.
        let statement = client
            .prepare_cached(
                "WITH q AS (SELECT to_tsquery('english', $1) AS query),
                 best AS (
                     SELECT s.name, ts_rank('{0.05, 0.2, 0.5, 1.0}', s.document, q.query, 1) AS rank,
                            concat_ws(' ', s.description, s.doc, s.steps, s.inputs, s.source) AS body
                     FROM flow_search s, q
                     WHERE s.document @@ q.query
                     ORDER BY rank DESC, s.name COLLATE \"C\" LIMIT $2
                 )
                 SELECT f.name, f.version, f.info, best.rank::float8,
                        ts_headline('english', best.body, q.query,
                                    'StartSel=[, StopSel=], MaxWords=12, MinWords=4, MaxFragments=1, FragmentDelimiter=…')
                 FROM best CROSS JOIN q
                 JOIN flows f ON f.name = best.name
                  AND f.version = (SELECT MAX(version) FROM flows g WHERE g.name = best.name)
                 ORDER BY best.rank DESC, best.name COLLATE \"C\"",
            )
            .await?;
        let rows = client.query(&statement, &[&query, &i64::from(limit)]).await?;
        rows.iter()
            .map(|row| {
                let info: crate::flowdef::FlowInfo = serde_json::from_str(row.try_get(2)?)?;
                Ok(SearchHit {
                    name: row.try_get(0)?,
                    version: super::unsigned(row.try_get::<_, i32>(1)?.into(), "version")?,
                    description: info.description,
                    score: row.try_get(3)?,
                    snippet: row.try_get(4)?,
                })
            })
            .collect()
    }

    /// The baseline search benchmarks compare with: the latest flows whose
    /// sources contain most of the words, found by reading every source.
    pub async fn scan_sources(&self, text: &str, limit: u32) -> Result<Vec<String>> {
        let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        let client = self.client().await?;
        let rows = super::rows(
            &client,
            "SELECT f.name,
                        (SELECT count(*) FROM unnest($1::text[]) w WHERE strpos(s.text, w) > 0) AS score
                 FROM flows f JOIN sources s ON s.sha256 = f.source_sha256
                 WHERE f.version = (SELECT MAX(version) FROM flows g WHERE g.name = f.name)
                 ORDER BY score DESC LIMIT $2",
            &[&words, &i64::from(limit)],
        )
        .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }
}
