//! Library search at scale: a store filled with generated flows, searched in
//! plain words through `Store::search_flows` (impact-ordered postings, BM25),
//! against a baseline measured in the same run: the same words found by
//! scanning every stored source with `LIKE`, which is what a library without
//! an index would do. Its answers are held to FTS5 ranking every match: the
//! share of FTS5's best ten that the search also gives.

use super::stats::Latencies;
use crate::flowdef::{FlowInfo, InputSpec};
use crate::store::{Database, Store};
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

pub struct SearchFigures {
    pub flows: usize,
    pub fill_s: f64,
    pub indexed: Latencies,
    pub scanned: Latencies,
    /// Of FTS5's best ten for a query, how many the search gave, on average
    /// (1.0: all of them).
    pub overlap_at_10: f64,
}

/// A small deterministic generator, so every run searches the same library
/// (and tests hold the index to FTS5 on a library like it).
pub(crate) struct Words {
    state: u64,
    vocabulary: Vec<String>,
}

impl Words {
    pub(crate) fn new() -> Words {
        const SYLLABLES: [&str; 16] =
            ["ka", "lo", "mi", "ne", "ru", "ta", "vi", "zo", "pe", "sa", "dor", "fen", "gul", "hax", "jun", "wex"];
        let mut vocabulary = Vec::new();
        for a in SYLLABLES {
            for b in SYLLABLES {
                for c in SYLLABLES {
                    vocabulary.push(format!("{a}{b}{c}"));
                }
            }
        }
        Words { state: 0x9E37_79B9_7F4A_7C15, vocabulary }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A word, drawn so that a few words are common and most are rare, as in
    /// real text (log-uniform over the vocabulary's ranks).
    fn word(&mut self) -> String {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let rank = (self.vocabulary.len() as f64).powf(u) as usize - 1;
        self.vocabulary[rank.min(self.vocabulary.len() - 1)].clone()
    }

    pub(crate) fn sentence(&mut self, words: usize) -> String {
        (0..words).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }
}

pub(crate) fn generated_flow(words: &mut Words, index: usize) -> (String, FlowInfo) {
    let name = format!("{}_{}_{index}", words.word(), words.word());
    let description = words.sentence(12);
    let doc = words.sentence(20);
    let steps: Vec<String> = (0..4).map(|_| words.word()).collect();
    let inputs: BTreeMap<String, InputSpec> = (0..2)
        .map(|_| {
            let spec = InputSpec {
                kind: crate::flowdef::InputType::String,
                required: true,
                default: serde_json::Value::Null,
                description: None,
            };
            (words.word(), spec)
        })
        .collect();
    let params = inputs.keys().cloned().collect::<Vec<_>>().join(", ");
    let mut source = format!(
        "from hero_logic import flow\n\n\n@flow(name={name:?}, description={description:?})\ndef {name}({params}):\n    \"\"\"{doc}\"\"\"\n"
    );
    for step in &steps {
        source.push_str(&format!("    with flow.step({step:?}):\n        # {}\n        pass\n", words.sentence(8)));
    }
    let info = FlowInfo {
        name,
        description: Some(description),
        doc: Some(doc),
        inputs,
        services: Vec::new(),
        line: Some(4),
        steps,
        retry: None,
        concurrency: None,
        durable: false,
    };
    (source, info)
}

pub async fn measure(flows: usize, queries: usize, scans: usize) -> Result<SearchFigures> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(&Database::Sqlite(dir.path().join("search.db"))).await?);
    let mut words = Words::new();

    let started = Instant::now();
    for index in 0..flows {
        let (source, info) = generated_flow(&mut words, index);
        store.save_module(source, vec![info]).await?;
    }
    let fill_s = started.elapsed().as_secs_f64();

    // Queries of one to three words, as a user types them.
    let texts: Vec<String> = (0..queries).map(|i| words.sentence(1 + i % 3)).collect();
    for text in texts.iter().take(20) {
        store.search_flows(text, 10).await?;
    }
    let mut indexed = Vec::with_capacity(queries);
    for text in &texts {
        let started = Instant::now();
        store.search_flows(text, 10).await?;
        indexed.push(started.elapsed());
    }

    let mut overlap = 0.0;
    let compared = texts.len().min(COMPARED_WITH_FTS5);
    for text in texts.iter().take(compared) {
        overlap += overlap_at_10(&store, text).await?;
    }

    let mut scanned = Vec::with_capacity(scans);
    for text in texts.iter().take(scans) {
        let started = Instant::now();
        scan(&store, text).await?;
        scanned.push(started.elapsed());
    }
    store.close().await;
    Ok(SearchFigures {
        flows,
        fill_s,
        indexed: Latencies::new(&indexed),
        scanned: Latencies::new(&scanned),
        overlap_at_10: overlap / compared.max(1) as f64,
    })
}

/// Queries whose answers are compared with FTS5's (each FTS5 answer ranks
/// every match, so this many, not all).
const COMPARED_WITH_FTS5: usize = 200;

/// The share of FTS5's best ten for `text` that the search also gives.
async fn overlap_at_10(store: &Arc<Store>, text: &str) -> Result<f64> {
    let names = |hits: Vec<crate::store::SearchHit>| -> std::collections::HashSet<String> {
        hits.into_iter().map(|hit| hit.name).collect()
    };
    let found = names(store.search_flows(text, 10).await?);
    let reference = names(store.search_flows_ranking_every_match(text, 10).await?);
    if reference.is_empty() {
        return Ok(if found.is_empty() { 1.0 } else { 0.0 });
    }
    Ok(reference.intersection(&found).count() as f64 / reference.len() as f64)
}

/// The baseline: the ten latest flows whose sources contain most of the
/// words, found by reading every source (no index).
async fn scan(store: &Arc<Store>, text: &str) -> Result<()> {
    store.scan_sources(text, 10).await?;
    Ok(())
}
