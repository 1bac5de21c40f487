//! A query as the index reads it: each word (`store::words`) is a phrase
//! FTS5 would read as `"word"*`, stemmed by FTS5's own tokenizer, expanded
//! over the sorted terms to every term it starts, and weighted by its IDF.

use super::bm25::idf;
use super::index::Library;
use super::tokens::{Purpose, Tokenizer};
use rusqlite::Connection;
use std::collections::HashMap;

/// Most distinct terms a query's words may expand to. Past it (a short
/// prefix in a large library), FTS5 answers the query instead: reading so
/// many postings lists at once would not stop early.
const MOST_TERMS: usize = 48;
/// A phrase of several terms matches the flows that hold any of them. Up to
/// this many postings they are counted; past it the count is estimated as if
/// the terms occurred independently (IDF changes slowly with the count).
const COUNT_EXACTLY_UP_TO: i64 = 5_000;

pub struct Plan {
    /// The distinct terms the words expand to, by id: one postings list each.
    pub terms: Vec<i64>,
    /// The same terms as FTS5 reads them back (a term FTS5's tokenizer
    /// would stem again makes it None): FTS5 finds exact terms in a flow
    /// at once, while a prefix makes it read every flow the prefix matches.
    pub exact_terms: Option<Vec<String>>,
    pub phrases: Vec<Phrase>,
    pub library: Library,
}

pub struct Phrase {
    pub idf: f64,
    /// Positions in `Plan::terms` of the terms this word starts.
    pub terms: Vec<usize>,
}

/// The plan for `words`, or None when the index cannot answer them as FTS5
/// would: a word FTS5 splits into several tokens (or none), or too many
/// terms.
pub fn plan(conn: &Connection, words: &[String]) -> rusqlite::Result<Option<Plan>> {
    let tokenizer = Tokenizer::new(conn)?;
    let library = Library::read(conn)?;
    let mut terms = Vec::new();
    let mut exact_terms = Some(Vec::new());
    let mut position_of: HashMap<i64, usize> = HashMap::new();
    let mut phrases = Vec::new();
    for word in words {
        let tokens = tokenizer.collect(word, Purpose::QueryPrefix)?;
        let [prefix] = tokens.as_slice() else { return Ok(None) };
        let expansion = terms_starting(conn, prefix)?;
        let mut positions = Vec::with_capacity(expansion.len());
        for (id, _, term) in &expansion {
            let position = match position_of.get(id) {
                Some(&position) => position,
                None => {
                    terms.push(*id);
                    let reads_back = tokenizer.collect(term, Purpose::Document)? == [term.as_str()];
                    match exact_terms.as_mut() {
                        Some(exact) if reads_back => exact.push(term.clone()),
                        _ => exact_terms = None,
                    }
                    position_of.insert(*id, terms.len() - 1);
                    terms.len() - 1
                }
            };
            positions.push(position);
        }
        if terms.len() > MOST_TERMS {
            return Ok(None);
        }
        let matching = flows_matching(conn, &expansion, library.flows)?;
        phrases.push(Phrase { idf: idf(library.flows as f64, matching), terms: positions });
    }
    Ok(Some(Plan { terms, exact_terms, phrases, library }))
}

/// The terms that start with `prefix`: ids, how many flows hold each, and
/// the terms.
fn terms_starting(conn: &Connection, prefix: &str) -> rusqlite::Result<Vec<(i64, i64, String)>> {
    let mut statement =
        conn.prepare_cached("SELECT id, term, flows FROM search_terms WHERE term >= ?1 ORDER BY term")?;
    let mut rows = statement.query([prefix])?;
    let mut terms = Vec::new();
    while let Some(row) = rows.next()? {
        let term: String = row.get(1)?;
        if !term.starts_with(prefix) || terms.len() > MOST_TERMS {
            break;
        }
        terms.push((row.get(0)?, row.get(2)?, term));
    }
    Ok(terms)
}

/// How many flows hold any of `terms`.
fn flows_matching(conn: &Connection, terms: &[(i64, i64, String)], flows: i64) -> rusqlite::Result<f64> {
    match terms {
        [] => Ok(0.0),
        [(_, held, _)] => Ok(*held as f64),
        _ if terms.iter().map(|(_, held, _)| held).sum::<i64>() <= COUNT_EXACTLY_UP_TO => {
            let ids: Vec<String> = terms.iter().map(|(id, _, _)| id.to_string()).collect();
            conn.query_row(
                &format!("SELECT count(DISTINCT flow_id) FROM search_postings WHERE term_id IN ({})", ids.join(",")),
                [],
                |row| row.get::<_, i64>(0).map(|count| count as f64),
            )
        }
        _ => {
            let flows = flows.max(1) as f64;
            let missing_all: f64 = terms.iter().map(|(_, held, _)| 1.0 - *held as f64 / flows).product();
            Ok(flows * (1.0 - missing_all))
        }
    }
}

impl Plan {
    /// The query FTS5 marks a hit's snippet with: the terms the words
    /// expanded to, which match what the words' prefixes match.
    pub fn snippet_query(&self) -> Option<String> {
        let terms = self.exact_terms.as_ref()?;
        if terms.is_empty() {
            return None;
        }
        Some(terms.iter().map(|term| format!("\"{}\"", term.replace('"', "\"\""))).collect::<Vec<_>>().join(" OR "))
    }
}
