//! BM25 as FTS5's `bm25()` computes it (k1 = 1.2, b = 0.75), with the
//! library's field weights: the one formula the postings' impacts and the
//! search's scores are both made of.

const K1: f64 = 1.2;
const B: f64 = 0.75;

/// The most a word's share of a score can be, before its IDF.
pub const SATURATED: f64 = K1 + 1.0;

/// Weights of `flows_fts`'s columns, in order: name, description,
/// docstring, steps, inputs, source. A flow's name says most about it.
pub const FIELD_WEIGHTS: [f64; 6] = [10.0, 5.0, 2.0, 2.0, 1.0, 0.5];

/// FTS5's own ranking with `FIELD_WEIGHTS`, as `rank MATCH` takes it.
pub fn fts5_rank() -> String {
    let weights: Vec<String> = FIELD_WEIGHTS.iter().map(f64::to_string).collect();
    format!("bm25({})", weights.join(", "))
}

/// The weight FTS5 gives a word found in `matching` of `flows` flows; a word
/// in half of them or more still counts, a little.
pub fn idf(flows: f64, matching: f64) -> f64 {
    let idf = ((flows - matching + 0.5) / (matching + 0.5)).ln();
    if idf <= 0.0 { 1e-6 } else { idf }
}

/// A word's share of a flow's score before its IDF: its weighted frequency
/// `freq`, saturated, and lowered in flows longer than the average.
pub fn saturation(freq: f64, tokens: f64, average_tokens: f64) -> f64 {
    if freq <= 0.0 {
        return 0.0;
    }
    freq * (K1 + 1.0) / (freq + K1 * (1.0 - B + B * tokens / average_tokens))
}

/// Stored impacts are integers in millionths, rounded up: an impact read
/// back is never below the saturation it stands for.
const IMPACT_SCALE: f64 = 1e6;

/// A posting's impact as stored: its saturation in a library whose average
/// flow is `reference_tokens` long.
pub fn stored_impact(freq: f64, tokens: f64, reference_tokens: f64) -> i64 {
    (saturation(freq, tokens, reference_tokens) * IMPACT_SCALE).floor() as i64 + 1
}

/// The saturation a stored impact stands for, at most.
pub fn impact_bound(stored: i64) -> f64 {
    stored as f64 / IMPACT_SCALE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_in_most_flows_weighs_almost_nothing_and_shares_saturate() {
        assert!((idf(100.0, 1.0) - (99.5f64 / 1.5).ln()).abs() < 1e-12);
        assert_eq!(idf(100.0, 60.0), 1e-6);
        assert!(saturation(1000.0, 10.0, 10.0) < SATURATED);
        assert!(saturation(2.0, 10.0, 20.0) > saturation(2.0, 40.0, 20.0), "a longer flow says less per word");
        assert_eq!(saturation(0.0, 10.0, 10.0), 0.0);
    }

    #[test]
    fn fts5_ranks_with_the_same_weights() {
        assert_eq!(fts5_rank(), "bm25(10, 5, 2, 2, 1, 0.5)");
    }
}
