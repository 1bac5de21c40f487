//! The library search's query language, the same on both backends: plain
//! words, each matching as a prefix, any of them may match, common words
//! left out (unless nothing else is left). Anything that is not a letter or
//! digit separates words, so no input is a syntax error.

/// Words too common to say what a query is about.
const STOPWORDS: [&str; 40] = [
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "for", "from", "how", "i", "in", "is", "it", "me", "my",
    "of", "on", "or", "please", "show", "that", "the", "there", "this", "to", "was", "what", "when", "which", "who",
    "why", "will", "with", "you", "can", "give", "get",
];

/// Most words of a query searched for. A query is typed by a person or sent
/// by a flow; past a few dozen words it says nothing more, and each word
/// costs the search (FTS5's ranking grows with their square).
pub const MAX_QUERY_WORDS: usize = 32;

/// The words of a query that are searched for, lower-cased, each once, the
/// first `MAX_QUERY_WORDS` of them. Reading stops once that many are found,
/// and each list stays that short, so a huge query costs one pass at most.
pub fn search_words(query: &str) -> Vec<String> {
    let mut meaningful: Vec<String> = Vec::new();
    let mut common: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase) {
        let kept = if STOPWORDS.contains(&word.as_str()) { &mut common } else { &mut meaningful };
        if kept.len() < MAX_QUERY_WORDS && !kept.contains(&word) {
            kept.push(word);
        }
        if meaningful.len() == MAX_QUERY_WORDS {
            break;
        }
    }
    if meaningful.is_empty() { common } else { meaningful }
}

/// The query as FTS5 (SQLite) reads it: `"word"*` terms joined by OR.
pub fn fts_query(query: &str) -> String {
    search_words(query).iter().map(|word| format!("\"{word}\"*")).collect::<Vec<_>>().join(" OR ")
}

/// The query as PostgreSQL's `to_tsquery` reads it: `word:*` terms joined
/// by `|`. Words hold letters and digits only, so none needs quoting.
pub fn tsquery(query: &str) -> String {
    search_words(query).iter().map(|word| format!("{word}:*")).collect::<Vec<_>>().join(" | ")
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
        assert_eq!(super::tsquery("Weather: forecast's & !"), "weather:* | forecast:* | s:*");
        assert_eq!(super::tsquery("'); DROP"), "drop:*");
    }

    #[test]
    fn a_word_is_searched_once_and_a_long_query_is_cut() {
        assert_eq!(super::search_words("rain Rain RAIN wind rain"), ["rain", "wind"]);
        let long: String = (0..1000).map(|i| format!("w{i} ")).collect();
        let words = super::search_words(&long);
        assert_eq!(words.len(), super::MAX_QUERY_WORDS);
        assert_eq!((words[0].as_str(), words[31].as_str()), ("w0", "w31"));
        assert_eq!(super::search_words(&"rain ".repeat(10_000)), ["rain"]);
    }
}
