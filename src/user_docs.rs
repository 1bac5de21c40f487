//! The user's documentation, README.md and every guide under `docs/`, read
//! as one text for the unit tests that check a table in it against the code,
//! so a table may live in whichever guide suits it. (The integration tests
//! read the same files in `tests/integration/docs.rs`.)

use std::path::Path;

/// README.md, then every `docs/*.md` in name order, read now (not compiled
/// in, so editing a guide does not rebuild the crate).
pub fn text() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ lies beside Cargo.toml")
        .map(|entry| entry.expect("docs/ can be listed").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "md"))
        .collect();
    files.sort();
    files.insert(0, root.join("README.md"));
    let texts: Vec<String> = files
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display())))
        .collect();
    texts.join("\n")
}
