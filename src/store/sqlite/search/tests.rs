//! The index held to FTS5: the same best flows for a generated library, no
//! trace of a replaced or removed flow, and totals that add up.

use crate::bench::search::{Words, generated_flow};
use crate::store::{Database, SearchHit, Store};
use rusqlite::Connection;
use std::path::Path;

async fn open(path: &Path) -> Store {
    Store::open(&Database::Sqlite(path.to_path_buf())).await.unwrap()
}

/// Scores are computed with the average flow length the impacts were, which
/// in a library past a thousand flows may differ a little from FTS5's.
const SCORE_TOLERANCE: f64 = 0.02;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_ranks_a_generated_library_as_fts5_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db")).await;
    let mut words = Words::new();
    for index in 0..1_500 {
        let (source, info) = generated_flow(&mut words, index);
        store.save_module(source, vec![info]).await.unwrap();
    }
    for index in 0..150 {
        let mut query = words.sentence(1 + index % 3);
        if index % 4 == 0 {
            // Typed so far: one letter short of a word, a prefix.
            query.pop();
        }
        let found = store.search_flows(&query, 10).await.unwrap();
        let reference = store.search_flows_ranking_every_match(&query, 10).await.unwrap();
        assert_eq!(found.len(), reference.len(), "{query:?}");
        let Some(last) = reference.last() else { continue };
        for (hit, expected) in found.iter().zip(&reference) {
            let off = (hit.score - expected.score).abs() / expected.score.abs();
            assert!(
                off <= SCORE_TOLERANCE,
                "{query:?}: {} scores {} where FTS5's has {}",
                hit.name,
                hit.score,
                expected.score
            );
            assert!(hit.snippet.contains('['), "{query:?}: {}", hit.snippet);
        }
        // Whatever FTS5 ranks clearly above its tenth, the index finds.
        let names: Vec<&str> = found.iter().map(|hit| hit.name.as_str()).collect();
        for expected in reference.iter().filter(|hit| hit.score > last.score * (1.0 + 2.0 * SCORE_TOLERANCE)) {
            assert!(names.contains(&expected.name.as_str()), "{query:?}: {} missing from {names:?}", expected.name);
        }
    }
    store.close().await;
    assert_totals_add_up(&dir.path().join("db"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_or_removed_flow_is_no_longer_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("db")).await;
    let flow = |name: &str, description: &str| -> crate::flowdef::FlowInfo {
        serde_json::from_value(serde_json::json!({
            "name": name, "description": description, "doc": null, "inputs": {}, "services": [], "line": 1,
            "steps": []
        }))
        .unwrap()
    };
    let names = |hits: Vec<SearchHit>| hits.into_iter().map(|hit| hit.name).collect::<Vec<_>>();
    store.save_module("# a\n".into(), vec![flow("crossing", "Zebra crossings counted")]).await.unwrap();
    store.save_module("# b\n".into(), vec![flow("stripes", "Zebra stripes drawn")]).await.unwrap();
    assert_eq!(names(store.search_flows("zebra", 10).await.unwrap()).len(), 2);

    store.save_module("# a, again\n".into(), vec![flow("crossing", "Lions counted")]).await.unwrap();
    assert_eq!(names(store.search_flows("zebra", 10).await.unwrap()), ["stripes"], "the old version is gone");
    assert_eq!(names(store.search_flows("lion", 10).await.unwrap()), ["crossing"], "the new one is found");

    assert_eq!(store.delete_flow("stripes").await.unwrap().versions_removed, 1);
    assert!(store.search_flows("zebra stripes", 10).await.unwrap().is_empty(), "a removed flow is not found");
    store.close().await;
    let conn = Connection::open(dir.path().join("db")).unwrap();
    let zebra: i64 =
        conn.query_row("SELECT count(*) FROM search_terms WHERE term = 'zebra'", [], |r| r.get(0)).unwrap();
    assert_eq!(zebra, 0, "a term no flow holds is dropped");
    assert_totals_add_up(&dir.path().join("db"));
}

/// The index's totals agree with what it holds, and with FTS5's.
fn assert_totals_add_up(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |row| row.get(0)).unwrap() };
    assert_eq!(count("SELECT flows FROM search_library"), count("SELECT count(*) FROM flows_fts"));
    assert_eq!(count("SELECT flows FROM search_library"), count("SELECT count(*) FROM search_flows"));
    assert_eq!(count("SELECT tokens FROM search_library"), count("SELECT coalesce(sum(tokens), 0) FROM search_flows"));
    assert_eq!(
        count("SELECT coalesce(sum(flows), 0) FROM search_terms"),
        count("SELECT count(*) FROM search_postings")
    );
    assert_eq!(count("SELECT count(*) FROM search_terms WHERE flows <= 0"), 0);
}
