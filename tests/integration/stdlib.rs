//! The curated standard library: docs/sdk.md lists it, every listed module
//! imports inside the sandbox, and anything else fails naming the list.

use super::support::run_json;
use serde_json::json;

/// The modules the docs list between their stdlib markers.
fn documented_modules() -> Vec<String> {
    let docs = super::docs::text();
    let start = docs.find("<!-- stdlib:start -->").expect("the docs have a stdlib:start marker");
    let end = docs.find("<!-- stdlib:end -->").expect("the docs have a stdlib:end marker");
    docs[start..end].split('`').skip(1).step_by(2).map(str::to_string).collect()
}

#[test]
fn every_listed_module_imports_and_the_docs_match_the_sdk() {
    let modules = documented_modules();
    assert!(modules.len() > 30, "{modules:?}");
    let imports: String = modules.iter().map(|m| format!("import {m}\n")).collect();
    let source = format!(
        "{imports}import hero_logic\nfrom hero_logic import flow\n\n@flow()\ndef listed():\n    return list(hero_logic.STDLIB_MODULES)\n"
    );
    let (code, report) = run_json(&source, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["output"], json!(modules), "docs/sdk.md and hero_logic.STDLIB_MODULES differ");
}

#[test]
fn importing_an_unlisted_module_names_the_list() {
    let source = "from hero_logic import flow\n\n@flow()\ndef f():\n    import sqlite3\n";
    let (code, report) = run_json(source, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["error"]["type"], "ModuleNotFoundError");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("module 'sqlite3' is not available in the hero_logic sandbox"), "{message}");
    assert!(message.contains("json") && message.contains("urllib.parse"), "{message}");
    assert_eq!(report["error"]["line"], 5);
}

#[test]
fn listed_modules_work_as_expected_inside() {
    let source = r##"import hashlib, json, re, datetime, decimal, zlib, random, uuid, statistics
from urllib.parse import urlparse
from hero_logic import flow

@flow()
def f():
    return {
        "sha": hashlib.sha256(b"abc").hexdigest()[:8],
        "re": re.sub(r"\d", "#", "a1b2"),
        "dec": str(decimal.Decimal("1.1") + decimal.Decimal("2.2")),
        "zlib": len(zlib.compress(b"a" * 1000)) < 100,
        "host": urlparse("https://example.org/x").netloc,
        "mean": statistics.mean([1, 2, 3]),
        "uuid": len(str(uuid.uuid4())),
        "year": datetime.date(2024, 5, 1).year,
    }
"##;
    let (code, report) = run_json(source, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        report["output"],
        json!({"sha": "ba7816bf", "re": "a#b#", "dec": "3.3", "zlib": true, "host": "example.org", "mean": 2, "uuid": 36, "year": 2024})
    );
}
