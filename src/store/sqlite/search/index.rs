//! Keeping the search index: a flow's terms, each with its weighted
//! frequency and impact, written in the transaction that stores the flow,
//! and the library's totals BM25 needs (flows, tokens).

use super::bm25::{FIELD_WEIGHTS, stored_impact};
use super::tokens::{Purpose, Tokenizer};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;

/// Scores are computed with the average flow length the stored impacts
/// were (so an impact bounds what a posting adds), not today's. While the
/// library has at most this many flows, every impact is computed again
/// when the average drifts (cheap then); past it, one flow hardly moves the
/// average, and the index is rebuilt at open once it has drifted far.
const REIMPACT_UP_TO_FLOWS: i64 = 1_000;
/// ... and holding at most this many words in all (postings are fewer):
/// computing them again rewrites every posting while the store's one writer
/// waits, so a few flows full of distinct words must not make each save do
/// that (a flow can save flows). Past it, drift is corrected at open.
const REIMPACT_UP_TO_TOKENS: i64 = 200_000;
/// The drift of the average flow length that makes a small library's
/// impacts be computed again.
const REIMPACT_DRIFT: f64 = 0.01;
/// The drift that makes a large library's index be rebuilt at open.
const REBUILD_AT_OPEN_DRIFT: f64 = 0.25;

/// The library's totals, as the search index holds them.
#[derive(Clone, Copy, Debug)]
pub struct Library {
    pub flows: i64,
    pub tokens: i64,
    /// The average flow length the stored impacts were computed with.
    pub reference_tokens: f64,
}

impl Library {
    pub fn read(conn: &Connection) -> rusqlite::Result<Library> {
        conn.prepare_cached("SELECT flows, tokens, reference_tokens FROM search_library")?
            .query_row([], |row| Ok(Library { flows: row.get(0)?, tokens: row.get(1)?, reference_tokens: row.get(2)? }))
    }

    pub fn average_tokens(&self) -> f64 {
        if self.flows == 0 { 0.0 } else { self.tokens as f64 / self.flows as f64 }
    }

    fn add(conn: &Connection, flows: i64, tokens: i64) -> rusqlite::Result<()> {
        conn.prepare_cached("UPDATE search_library SET flows = flows + ?1, tokens = tokens + ?2")?
            .execute([flows, tokens])?;
        Ok(())
    }
}

/// A flow's searchable fields, in `flows_fts`'s column order (name,
/// description, docstring, steps, inputs, source).
pub type Fields<'a> = [&'a str; 6];

/// The terms of a flow with their weighted frequencies, and how many tokens
/// it has in all: what FTS5's `bm25()` reads of a row.
pub struct Terms {
    pub freq: HashMap<String, f64>,
    pub tokens: i64,
}

pub fn terms(tokenizer: &Tokenizer<'_>, fields: &Fields<'_>) -> rusqlite::Result<Terms> {
    let mut freq: HashMap<String, f64> = HashMap::new();
    let mut tokens = 0;
    for (text, weight) in fields.iter().zip(FIELD_WEIGHTS) {
        tokenizer.tokens(text, Purpose::Document, |token| {
            tokens += 1;
            match freq.get_mut(token) {
                Some(sum) => *sum += weight,
                None => {
                    freq.insert(token.to_string(), weight);
                }
            }
        })?;
    }
    Ok(Terms { freq, tokens })
}

/// Index a flow's latest version under `flow_id`, replacing what was there.
/// Call inside the transaction that stores the version.
pub fn index_flow(conn: &Connection, flow_id: i64, fields: &Fields<'_>) -> rusqlite::Result<()> {
    unindex(conn, flow_id)?;
    let terms = terms(&Tokenizer::new(conn)?, fields)?;
    let mut library = Library::read(conn)?;
    if library.reference_tokens <= 0.0 {
        // The first flow of an empty library: impacts need an average.
        library.reference_tokens = terms.tokens.max(1) as f64;
        conn.execute("UPDATE search_library SET reference_tokens = ?1", [library.reference_tokens])?;
    }
    insert(conn, flow_id, &terms, library.reference_tokens)?;
    Library::add(conn, 1, terms.tokens)?;
    keep_small_library_impacts_current(conn)
}

/// Remove a flow from the index. Call inside the transaction that removes it.
pub fn unindex_flow(conn: &Connection, flow_id: i64) -> rusqlite::Result<()> {
    unindex(conn, flow_id)?;
    keep_small_library_impacts_current(conn)
}

fn unindex(conn: &Connection, flow_id: i64) -> rusqlite::Result<()> {
    let tokens: Option<i64> = conn
        .prepare_cached("SELECT tokens FROM search_flows WHERE flow_id = ?1")?
        .query_row([flow_id], |row| row.get(0))
        .optional()?;
    let Some(tokens) = tokens else { return Ok(()) };
    conn.prepare_cached(
        "UPDATE search_terms SET flows = flows - 1
         WHERE id IN (SELECT term_id FROM search_postings WHERE flow_id = ?1)",
    )?
    .execute([flow_id])?;
    // A term no flow holds any more would only lengthen prefix expansions.
    conn.prepare_cached(
        "DELETE FROM search_terms
         WHERE id IN (SELECT term_id FROM search_postings WHERE flow_id = ?1) AND flows = 0",
    )?
    .execute([flow_id])?;
    conn.prepare_cached("DELETE FROM search_postings WHERE flow_id = ?1")?.execute([flow_id])?;
    conn.prepare_cached("DELETE FROM search_flows WHERE flow_id = ?1")?.execute([flow_id])?;
    Library::add(conn, -1, -tokens)
}

fn insert(conn: &Connection, flow_id: i64, terms: &Terms, reference_tokens: f64) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO search_flows (flow_id, tokens) VALUES (?1, ?2)")?
        .execute([flow_id, terms.tokens])?;
    let mut term_id = conn.prepare_cached(
        "INSERT INTO search_terms (term, flows) VALUES (?1, 1)
         ON CONFLICT (term) DO UPDATE SET flows = flows + 1 RETURNING id",
    )?;
    let mut posting = conn.prepare_cached(
        "INSERT INTO search_postings (term_id, impact, flow_id, freq, tokens) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (term, &freq) in &terms.freq {
        let id: i64 = term_id.query_row([term], |row| row.get(0))?;
        let impact = stored_impact(freq, terms.tokens as f64, reference_tokens);
        posting.execute(params![id, impact, flow_id, freq, terms.tokens])?;
    }
    Ok(())
}

/// In a small library, compute every impact again when the average flow
/// length has drifted from the one they were computed with: then a search's
/// scores stay BM25's as FTS5 computes them.
fn keep_small_library_impacts_current(conn: &Connection) -> rusqlite::Result<()> {
    let library = Library::read(conn)?;
    let average = library.average_tokens();
    if library.flows == 0 || library.flows > REIMPACT_UP_TO_FLOWS || library.tokens > REIMPACT_UP_TO_TOKENS {
        return Ok(());
    }
    if (average / library.reference_tokens - 1.0).abs() <= REIMPACT_DRIFT {
        return Ok(());
    }
    reimpact(conn, average)
}

/// Compute every stored impact again, for a library `reference_tokens` long
/// on average.
fn reimpact(conn: &Connection, reference_tokens: f64) -> rusqlite::Result<()> {
    let postings: Vec<(i64, i64, f64, i64)> = conn
        .prepare("SELECT term_id, flow_id, freq, tokens FROM search_postings")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    conn.execute("DELETE FROM search_postings", [])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO search_postings (term_id, impact, flow_id, freq, tokens) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (term_id, flow_id, freq, tokens) in postings {
        let impact = stored_impact(freq, tokens as f64, reference_tokens);
        insert.execute(params![term_id, impact, flow_id, freq, tokens])?;
    }
    conn.execute("UPDATE search_library SET reference_tokens = ?1", [reference_tokens])?;
    Ok(())
}

/// Fill the index from `flows_fts` when it does not hold the library yet
/// (a store made before it existed), or when the library's average flow
/// length has drifted far from its impacts'. One transaction: a crash
/// half-way leaves it as it was, and the next open builds it again.
pub fn build_index_if_missing(conn: &mut Connection) -> rusqlite::Result<()> {
    let built: bool = conn.query_row("SELECT built FROM search_library", [], |row| row.get(0))?;
    let library = Library::read(conn)?;
    let drifted =
        library.flows > 0 && (library.average_tokens() / library.reference_tokens - 1.0).abs() > REBUILD_AT_OPEN_DRIFT;
    if built && !drifted {
        return Ok(());
    }
    let tx = conn.transaction()?;
    tx.execute_batch(
        "DELETE FROM search_postings; DELETE FROM search_terms; DELETE FROM search_flows;
         UPDATE search_library SET flows = 0, tokens = 0, reference_tokens = 0;",
    )?;
    {
        let tokenizer = Tokenizer::new(&tx)?;
        // Impacts are computed with the library's average as it is now,
        // known once every flow is read: the first pass counts tokens.
        let (mut flows, mut total) = (0i64, 0i64);
        each_indexed_flow(&tx, |_, fields| {
            flows += 1;
            total += terms(&tokenizer, fields)?.tokens;
            Ok(())
        })?;
        let reference = if flows == 0 { 0.0 } else { (total as f64 / flows as f64).max(1.0) };
        each_indexed_flow(&tx, |flow_id, fields| insert(&tx, flow_id, &terms(&tokenizer, fields)?, reference))?;
        tx.execute(
            "UPDATE search_library SET flows = ?1, tokens = ?2, reference_tokens = ?3",
            params![flows, total, reference],
        )?;
    }
    tx.execute("UPDATE search_library SET built = 1", [])?;
    tx.commit()
}

/// Call `each` with every flow `flows_fts` holds: its row id and fields.
fn each_indexed_flow(
    conn: &Connection,
    mut each: impl FnMut(i64, &Fields<'_>) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let mut statement = conn.prepare("SELECT rowid, name, description, doc, steps, inputs, source FROM flows_fts")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let text = |column: usize| -> rusqlite::Result<String> {
            Ok(row.get::<_, Option<String>>(column)?.unwrap_or_default())
        };
        let fields = [text(1)?, text(2)?, text(3)?, text(4)?, text(5)?, text(6)?];
        each(row.get(0)?, &std::array::from_fn(|i| fields[i].as_str()))?;
    }
    Ok(())
}
