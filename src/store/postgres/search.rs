//! Library search on PostgreSQL's own full-text search: the same query
//! language as the SQLite backend (plain words, each a prefix, any may
//! match; see `store::words`), words split as FTS5 splits them, the same
//! fields weighted alike, ranked by BM25 as FTS5 ranks.

use super::PgStore;
use crate::store::records::SearchHit;
use crate::store::words::tsquery;
use anyhow::Result;

impl PgStore {
    pub async fn search_flows(&self, query_text: &str, limit: u32) -> Result<Vec<SearchHit>> {
        let query = tsquery(query_text);
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let words = crate::store::search_words(query_text);
        let client = self.client().await?;
        // Ranked as FTS5 ranks on SQLite: BM25 (k1 = 1.2, b = 0.75) with the
        // same field weights (name 10, description 5, docstring and steps 2,
        // inputs and source 0.75 here, as PostgreSQL keeps four classes), a
        // prefix term's frequency summed over the words it starts. BM25 is
        // computed for the best 200 matches by `ts_rank` with those weights,
        // so a query matching most of a large library stays cheap; the
        // snippet and the join to the latest version are made for the best
        // `limit` alone.
        let statement = client
            .prepare_cached(
                "WITH q AS (SELECT to_tsquery('english', $1) AS query),
                 terms AS (
                     SELECT DISTINCT unnest(tsvector_to_array(to_tsvector('english', w))) AS term
                     FROM unnest($3::text[]) w
                 ),
                 library AS (SELECT count(*)::float8 AS flows, greatest(avg(tokens), 1)::float8 AS avg_tokens
                             FROM flow_search),
                 idf AS (
                     SELECT t.term, greatest(ln((l.flows - m.flows + 0.5) / (m.flows + 0.5)), 1e-6) AS idf
                     FROM terms t CROSS JOIN library l
                     CROSS JOIN LATERAL (
                         SELECT count(*)::float8 AS flows FROM flow_search s
                         WHERE s.document @@ to_tsquery('english', quote_literal(t.term) || ':*')
                     ) m
                 ),
                 candidates AS (
                     SELECT s.name, s.document, s.tokens,
                            concat_ws(' ', s.description, s.doc, s.steps, s.inputs, s.source) AS body
                     FROM flow_search s, q
                     WHERE s.document @@ q.query
                     ORDER BY ts_rank('{0.075, 0.2, 0.5, 1.0}', s.document, q.query, 1) DESC, s.name COLLATE \"C\"
                     LIMIT 200
                 ),
                 best AS (
                     SELECT c.name, c.body,
                            sum(i.idf * f.freq * 2.2 / (f.freq + 1.2 * (0.25 + 0.75 * c.tokens / l.avg_tokens))) AS rank
                     FROM candidates c CROSS JOIN library l CROSS JOIN idf i
                     CROSS JOIN LATERAL (
                         SELECT coalesce(sum(CASE w WHEN 'A' THEN 10 WHEN 'B' THEN 5 WHEN 'C' THEN 2 ELSE 0.75 END), 0)
                                AS freq
                         FROM unnest(c.document) u, unnest(u.weights) w
                         WHERE starts_with(u.lexeme, i.term)
                     ) f
                     WHERE f.freq > 0
                     GROUP BY c.name, c.body
                     ORDER BY rank DESC, c.name COLLATE \"C\"
                     LIMIT $2
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
        let rows = client.query(&statement, &[&query, &i64::from(limit), &words]).await?;
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

    /// PostgreSQL's search reads no early-stopping index: it is its own
    /// reference.
    pub async fn search_flows_ranking_every_match(&self, query_text: &str, limit: u32) -> Result<Vec<SearchHit>> {
        self.search_flows(query_text, limit).await
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
