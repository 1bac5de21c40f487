//! Builds the guest component (CPython + the hero_logic SDK) from `runtime/`
//! with a pinned componentize-py, so that `cargo build` on a fresh machine
//! produces a working binary.
//!
//! The built component is cached under `target/hero_logic-guest/`, keyed on a
//! hash of every source it is built from; two builds of the same source are not
//! byte-identical, so the key is the source, never the output. The key is also
//! handed to the crate as `HERO_LOGIC_GUEST_HASH`, where it becomes part of
//! the compiled-artefact cache key. It is built from a copy of the sources
//! there too, so that building writes nothing into the checkout.

use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The manifest of the wasmtime copy `Cargo.toml` patches in.
const WASMTIME_MANIFEST: &str = "vendor/wasmtime/Cargo.toml";

/// The inputs of the guest build, relative to the crate root.
const GUEST_INPUTS: &[&str] = &["runtime/wit", "runtime/guest", "runtime/requirements.txt"];

fn main() {
    let root = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env("OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=HERO_LOGIC_PYTHON");
    for input in GUEST_INPUTS {
        println!("cargo:rerun-if-changed={input}");
    }

    let key = source_hash(&root);
    println!("cargo:rustc-env=HERO_LOGIC_GUEST_HASH={key}");

    // The wasmtime release compiled in, read from the copy that is compiled
    // rather than typed a second time: it is part of the artefact cache key.
    println!("cargo:rerun-if-changed={WASMTIME_MANIFEST}");
    let wasmtime = package_version(&root.join(WASMTIME_MANIFEST));
    println!("cargo:rustc-env=HERO_LOGIC_WASMTIME_VERSION={wasmtime}");

    let work = guest_work_dir(&out_dir);
    fs::create_dir_all(&work).expect("create the guest build directory under target/");
    let cached = work.join(format!("guest-{key}.wasm"));
    if !cached.exists() {
        let builder = ensure_builder(&root, &work);
        build_component(&root, &work, &key, &builder, &cached);
    }
    fs::copy(&cached, out_dir.join("guest.wasm")).expect("copy the guest component into OUT_DIR");
}

/// The `version` of a manifest's `[package]` table.
fn package_version(manifest: &Path) -> String {
    let text = fs::read_to_string(manifest).unwrap_or_else(|e| panic!("read {}: {e}", manifest.display()));
    let mut in_package = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package
            && let Some(value) = line.strip_prefix("version")
            && let Some(version) = value.trim_start().strip_prefix('=')
        {
            return version.trim().trim_matches('"').to_string();
        }
    }
    panic!("{} has no [package] version", manifest.display())
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

/// `target/hero_logic-guest`: outside OUT_DIR so the venv and built components
/// survive `cargo clean -p` and are shared by every profile.
fn guest_work_dir(out_dir: &Path) -> PathBuf {
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out.
    let target = out_dir.ancestors().nth(4).unwrap_or(out_dir);
    target.join("hero_logic-guest")
}

fn source_hash(root: &Path) -> String {
    let mut files = Vec::new();
    for input in GUEST_INPUTS {
        collect_files(&root.join(input), &mut files);
    }
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        let relative = file.strip_prefix(root).expect("inputs live under the crate root");
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(fs::read(&file).expect("read a guest source file"));
        hasher.update([0]);
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect::<String>()[..16].to_string()
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_file() {
        files.push(path.to_path_buf());
        return;
    }
    let entries = fs::read_dir(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for entry in entries {
        let path = entry.expect("list a guest source directory").path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name == "__pycache__" || name.ends_with(".pyc") {
            continue;
        }
        collect_files(&path, files);
    }
}

/// The componentize-py executable in its own venv, installed on first use from
/// `runtime/requirements.txt` with hashes required.
fn ensure_builder(root: &Path, work: &Path) -> PathBuf {
    let venv = work.join("venv");
    let builder = venv.join("bin/componentize-py");
    let stamp = venv.join("requirements.sha256");
    let requirements = root.join("runtime/requirements.txt");
    let wanted = format!("{:x}", Sha256::digest(fs::read(&requirements).expect("read runtime/requirements.txt")));
    if builder.exists() && fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return builder;
    }
    let python = std::env::var("HERO_LOGIC_PYTHON").unwrap_or_else(|_| "python3".into());
    let _ = fs::remove_dir_all(&venv);
    run(
        Command::new(&python).args(["-m", "venv"]).arg(&venv),
        "create the guest builder's venv (needs python3 with venv)",
    );
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "--no-deps", "--require-hashes", "-r"])
            .arg(&requirements)
            .env_remove("VIRTUAL_ENV"),
        "install componentize-py from runtime/requirements.txt",
    );
    fs::write(&stamp, wanted).expect("write the venv's requirements stamp");
    builder
}

/// Builds from a copy of the inputs under `work`, never from the source tree:
/// componentize-py imports `app.py` to snapshot it, and its interpreter writes
/// `__pycache__/` beside what it imports whatever `PYTHONDONTWRITEBYTECODE`
/// says. In `runtime/guest/`, a directory this script watches, that would make
/// the next cargo command run this script again and relink the crate, and
/// leave files in the checkout.
fn build_component(root: &Path, work: &Path, key: &str, builder: &Path, cached: &Path) {
    let staging = work.join(format!("src-{key}"));
    let _ = fs::remove_dir_all(&staging);
    let mut files = Vec::new();
    for input in GUEST_INPUTS {
        collect_files(&root.join(input), &mut files);
    }
    for file in &files {
        let copy = staging.join(file.strip_prefix(root).expect("inputs live under the crate root"));
        fs::create_dir_all(copy.parent().expect("a copied file has a directory"))
            .unwrap_or_else(|e| panic!("create {}: {e}", copy.display()));
        fs::copy(file, &copy).unwrap_or_else(|e| panic!("copy {} to {}: {e}", file.display(), copy.display()));
    }
    let partial = cached.with_extension("wasm.partial");
    run(
        Command::new(builder)
            .current_dir(&staging)
            // An outer venv confuses componentize-py's search for its own stdlib.
            .env_remove("VIRTUAL_ENV")
            .env_remove("PYTHONPATH")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args(["-d", "runtime/wit", "-w", "flow-guest", "componentize", "-p", "runtime/guest", "app", "-o"])
            .arg(&partial),
        "build the guest component with componentize-py",
    );
    fs::rename(&partial, cached).expect("move the built guest component into the cache");
    let _ = fs::remove_dir_all(&staging);
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("could not {what}: {e}"));
    if !output.status.success() {
        panic!(
            "could not {what}: {}\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
