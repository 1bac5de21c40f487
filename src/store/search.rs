//! Library search: full-text search over the latest version of every flow
//! (FTS5, ranked by BM25), in plain words.

use super::Store;
use anyhow::Result;
use rusqlite::params;
use serde::Serialize;
use std::sync::Arc;

/// One hit of a library search.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchHit {
    pub name: String,
    pub version: u32,
    pub description: Option<String>,
    /// BM25 relevance: higher is better.
    pub score: f64,
    pub snippet: String,
}

impl Store {
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
}

/// Words too common to say what a query is about.
const STOPWORDS: [&str; 40] = [
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "for", "from", "how", "i", "in", "is", "it", "me", "my",
    "of", "on", "or", "please", "show", "that", "the", "there", "this", "to", "was", "what", "when", "which", "who",
    "why", "will", "with", "you", "can", "give", "get",
];

/// Plain words as an FTS5 query: `"word"*` terms joined by OR, common words
/// left out (unless nothing else is left). Anything that is not a letter or
/// digit separates words, so no input is a syntax error.
pub fn fts_query(words: &str) -> String {
    let all: Vec<String> =
        words.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    let meaningful: Vec<&String> = all.iter().filter(|w| !STOPWORDS.contains(&w.as_str())).collect();
    let chosen: Vec<&String> = if meaningful.is_empty() { all.iter().collect() } else { meaningful };
    chosen.into_iter().map(|word| format!("\"{word}\"*")).collect::<Vec<_>>().join(" OR ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_words_become_prefix_terms() {
        assert_eq!(super::fts_query("Weather forecast!"), r#""weather"* OR "forecast"*"#);
        assert_eq!(super::fts_query(r#"" OR NEAR( *"#), r#""near"*"#);
        assert_eq!(super::fts_query("which is the best"), r#""best"*"#);
        assert_eq!(super::fts_query("the"), r#""the"*"#, "a query of common words only keeps them");
        assert_eq!(super::fts_query("  "), "");
    }
}
