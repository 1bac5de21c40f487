//! The README and the guides under `docs/` against what they describe: every
//! relative link leads to a file (and heading) that exists, every command an
//! example gives is one `hero_logic` has, with flags it has, every file an
//! example names exists, and the README's flow is the file its commands run.
//! The tables are checked beside what they document: quotas and stream
//! messages by unit tests (`src/user_docs.rs` reads the same files), the
//! standard-library list by `stdlib.rs`.

use super::support::hero_logic;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// One page of the docs: its path from the checkout's root, and its text.
pub struct Page {
    pub path: PathBuf,
    pub text: String,
}

/// README.md, then every `docs/*.md` in name order.
pub fn pages() -> Vec<Page> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/ lies beside Cargo.toml")
        .map(|entry| entry.expect("docs/ can be listed").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "md"))
        .map(|path| path.strip_prefix(ROOT).expect("under the root").to_path_buf())
        .collect();
    paths.sort();
    paths.insert(0, PathBuf::from("README.md"));
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(Path::new(ROOT).join(&path))
                .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
            Page { path, text }
        })
        .collect()
}

/// Every page as one text, for checks that do not mind which page holds what.
pub fn text() -> String {
    pages().into_iter().map(|page| page.text).collect::<Vec<_>>().join("\n")
}

/// A fenced code block: its language (empty when none) and its lines.
struct Block {
    language: String,
    body: String,
}

/// A page split into its prose (fenced blocks left out) and its fenced blocks.
fn split_fences(text: &str) -> (String, Vec<Block>) {
    let mut prose = String::new();
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for line in text.lines() {
        match (open.take(), line.strip_prefix("```")) {
            (None, Some(language)) => open = Some(Block { language: language.trim().to_string(), body: String::new() }),
            (None, None) => {
                prose.push_str(line);
                prose.push('\n');
            }
            (Some(block), Some(_)) => blocks.push(block),
            (Some(mut block), None) => {
                block.body.push_str(line);
                block.body.push('\n');
                open = Some(block);
            }
        }
    }
    assert!(open.is_none(), "a code block is never closed");
    (prose, blocks)
}

/// The anchor a heading gets where the docs are read (GitHub, most editors):
/// lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings.
fn anchors(text: &str) -> Vec<String> {
    let (prose, _) = split_fences(text);
    prose
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| anchor(heading.trim_start_matches('#')))
        .collect()
}

/// The targets of the `[text](target)` links in some prose.
fn link_targets(prose: &str) -> Vec<&str> {
    prose
        .split("](")
        .skip(1)
        .filter_map(|after| after.split_once(')').map(|(target, _)| target))
        .filter(|target| !target.contains("://") && !target.starts_with("mailto:"))
        .collect()
}

/// `path` taken from `page`'s directory, `..` resolved, from the root.
fn resolve(page: &Path, path: &str) -> PathBuf {
    let mut resolved = PathBuf::new();
    for part in page.parent().unwrap_or(Path::new("")).join(path).components() {
        match part {
            Component::ParentDir => assert!(resolved.pop(), "{path} leads out of the checkout"),
            Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    resolved
}

#[test]
fn every_relative_link_in_the_docs_leads_to_a_file_and_heading_that_exist() {
    let mut broken = Vec::new();
    let mut links = 0;
    for page in pages() {
        let (prose, _) = split_fences(&page.text);
        for target in link_targets(&prose) {
            links += 1;
            let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
            let file = if path.is_empty() { page.path.clone() } else { resolve(&page.path, path) };
            let full = Path::new(ROOT).join(&file);
            if !full.exists() {
                broken.push(format!("{}: ({target}): {} does not exist", page.path.display(), file.display()));
                continue;
            }
            let is_markdown = file.extension().is_some_and(|extension| extension == "md");
            if !fragment.is_empty() && is_markdown {
                let text = std::fs::read_to_string(&full).unwrap();
                if !anchors(&text).iter().any(|heading| heading == fragment) {
                    broken.push(format!(
                        "{}: ({target}): {} has no heading #{fragment}",
                        page.path.display(),
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(links > 50, "the links are found ({links})");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The lines of the docs' examples that a shell would run: every line of an
/// `sh` block, and `$ ` lines of any block, continuations joined.
fn example_lines() -> Vec<(PathBuf, String)> {
    let mut lines: Vec<(PathBuf, String)> = Vec::new();
    for page in pages() {
        let (_, blocks) = split_fences(&page.text);
        for block in blocks {
            for line in block.body.replace("\\\n", " ").lines() {
                // A synopsis goes on over indented lines of `[--flag ...]`.
                if block.language == "sh"
                    && line.starts_with(' ')
                    && line.trim_start().starts_with('[')
                    && let Some((_, previous)) = lines.last_mut()
                {
                    previous.push_str(line);
                    continue;
                }
                match line.strip_prefix("$ ") {
                    Some(command) => lines.push((page.path.clone(), command.to_string())),
                    None if block.language == "sh" => lines.push((page.path.clone(), line.to_string())),
                    None => {}
                }
            }
        }
    }
    lines
}

/// The `hero_logic` command a line of an example gives, without its comment:
/// what follows `cargo run --release --`, or a line that starts with the binary.
fn hero_logic_command(line: &str) -> Option<&str> {
    let command = match line.split_once("cargo run --release -- ") {
        Some((_, command)) => command,
        None => line.trim_start().strip_prefix("hero_logic ")?,
    };
    Some(command.split_once(" #").map_or(command, |(command, _)| command))
}

/// The commands that take a subcommand (`flows add`, `secrets list`, ...).
const WITH_SUBCOMMANDS: &[&str] = &["flows", "services", "schedules", "secrets", "workspaces", "keys"];

#[test]
fn every_command_in_the_docs_examples_is_one_hero_logic_has_with_its_flags() {
    let mut helps: HashMap<Vec<String>, Option<String>> = HashMap::new();
    let mut wrong = Vec::new();
    let mut commands = 0;
    for (page, line) in example_lines() {
        let Some(command) = hero_logic_command(&line) else { continue };
        commands += 1;
        let words: Vec<&str> = command.split_whitespace().collect();
        let depth = if WITH_SUBCOMMANDS.contains(&words[0]) { 2 } else { 1 };
        let path: Vec<String> = words.iter().take(depth).map(|word| word.to_string()).collect();
        let help = helps.entry(path.clone()).or_insert_with(|| {
            let output = hero_logic().args(&path).arg("--help").output().expect("run hero_logic");
            output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
        });
        let Some(help) = help else {
            wrong.push(format!("{}: `hero_logic {}` is not a command: {line}", page.display(), path.join(" ")));
            continue;
        };
        let known: Vec<&str> = help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).collect();
        for word in &words[depth..] {
            let Some(flag) = word.trim_start_matches('[').strip_prefix("--") else { continue };
            let flag: String = flag.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            if !known.contains(&format!("--{flag}").as_str()) {
                wrong.push(format!("{}: `hero_logic {}` has no --{flag}: {line}", page.display(), path.join(" ")));
            }
        }
    }
    assert!(commands > 20, "the commands are found ({commands})");
    assert!(wrong.is_empty(), "examples that would fail:\n{}", wrong.join("\n"));
}

#[test]
fn every_file_the_docs_examples_name_exists() {
    let mut missing = Vec::new();
    let mut files = 0;
    for (page, line) in example_lines() {
        for word in line.split_whitespace() {
            let word = word.trim_start_matches(['@', '\'', '"', '(']);
            if !(word.starts_with("examples/") || word.starts_with("flows/")) {
                continue;
            }
            let file = word.trim_end_matches(['\'', '"', ')', ';', ',']);
            files += 1;
            if !Path::new(ROOT).join(file).exists() {
                missing.push(format!("{}: {file} does not exist: {line}", page.display()));
            }
        }
    }
    assert!(files > 10, "the files are found ({files})");
    assert!(missing.is_empty(), "examples naming files that are not there:\n{}", missing.join("\n"));
}

#[test]
fn the_readme_flow_is_the_file_its_commands_run() {
    let readme = &pages()[0];
    let (_, blocks) = split_fences(&readme.text);
    let flow = blocks.iter().find(|block| block.language == "python").expect("the README shows a flow");
    let file = std::fs::read_to_string(Path::new(ROOT).join("examples/flows/greet.py")).unwrap();
    assert_eq!(flow.body, file, "the README's flow and examples/flows/greet.py differ");
}
