//! The web page (`ui/`) and the vendored Monaco editor (`vendor/monaco/`),
//! embedded in the binary so the page works offline and from any directory.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::AppError;

/// `(path under the site root, bytes)` for every file the page may load.
macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path)) as &[u8])),*]
    };
}

const FILES: &[(&str, &[u8])] = embedded![
    "ui/index.html",
    "ui/style.css",
    "ui/app.js",
    "ui/identity.js",
    "ui/page.js",
    "ui/views/library.js",
    "ui/views/runs.js",
    "ui/views/editor.js",
    "ui/run_pane.js",
    "ui/details.js",
    "ui/input_form.js",
    "ui/drafts.js",
    "ui/api.js",
    "ui/tree.js",
    "ui/tree_state.js",
    "ui/treeview.js",
    "ui/row_painter.js",
    "ui/stubs.js",
    "ui/monaco.js",
    "ui/theme.js",
    "ui/attempts.js",
    "ui/time.js",
    "ui/run_stream.js",
    "ui/logs.js",
    "ui/quota_form.js",
    "ui/views/services.js",
    "vendor/monaco/vs/loader.js",
    "vendor/monaco/vs/editor/editor.main.js",
    "vendor/monaco/vs/editor/editor.main.css",
    "vendor/monaco/vs/base/worker/workerMain.js",
    "vendor/monaco/vs/base/browser/ui/codicons/codicon/codicon.ttf",
    "vendor/monaco/vs/basic-languages/python/python.js",
];

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("ttf") => "font/ttf",
        _ => "application/octet-stream",
    }
}

/// Set to the checkout's root, the page's own files are read from there on
/// each request instead of from the binary: edit `ui/`, reload, without a
/// rebuild. Only the files `FILES` names are served, as without it.
const UI_DIR_VAR: &str = "HERO_LOGIC_UI_DIR";

fn serve(path: &str) -> Response {
    match FILES.iter().find(|(name, _)| *name == path) {
        Some((name, bytes)) => {
            // The page's own files change with the binary; Monaco is pinned.
            let cache = if name.starts_with("vendor/") { "public, max-age=86400" } else { "no-cache" };
            let bytes = match std::env::var_os(UI_DIR_VAR) {
                Some(root) if name.starts_with("ui/") => std::fs::read(std::path::Path::new(&root).join(name))
                    .map(std::borrow::Cow::Owned)
                    .unwrap_or(std::borrow::Cow::Borrowed(*bytes)),
                _ => std::borrow::Cow::Borrowed(*bytes),
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, content_type(name)), (header::CACHE_CONTROL, cache)], bytes)
                .into_response()
        }
        None => AppError::not_found(format!("no such file: /{path}")).into_response(),
    }
}

pub async fn index() -> Response {
    serve("ui/index.html")
}

pub async fn page_file(Path(path): Path<String>) -> Response {
    serve(&format!("ui/{path}"))
}

pub async fn vendor_file(Path(path): Path<String>) -> Response {
    serve(&format!("vendor/{path}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_page_module_is_embedded() {
        // A module the page imports but the binary lacks would fail only in
        // the browser; catch it here, in `ui/` and the folders under it
        // (but its tests and their packages).
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut folders = vec![root.join("ui")];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_str().unwrap();
                if path.is_dir() {
                    if !matches!(name, "tests" | "node_modules") {
                        folders.push(path);
                    }
                } else if name.ends_with(".js") || name.ends_with(".css") || name.ends_with(".html") {
                    let relative = path.strip_prefix(root).unwrap().to_str().unwrap().to_string();
                    assert!(super::FILES.iter().any(|(p, _)| *p == relative), "{relative} is not embedded");
                }
            }
        }
    }
}
