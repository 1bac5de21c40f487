//! The compiled-artefact cache: written once, reused, and never trusted when
//! what is on disk is not what this build compiled.

use hero_logic::sandbox::{Sandbox, SandboxOptions};

fn sandbox_with_cache(dir: &std::path::Path) -> Sandbox {
    let options = SandboxOptions { cache_dir: Some(dir.to_path_buf()), ..SandboxOptions::default() };
    Sandbox::new(&options).expect("the sandbox starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_artefact_is_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let first = sandbox_with_cache(dir.path());
    let path = first.artefact_path().unwrap().to_path_buf();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("guest-") && name.ends_with(".cwasm"), "{name}");
    let compiled = std::fs::metadata(&path).expect("the artefact was cached").len();
    assert!(compiled > 1 << 20);

    // Something else sits where this build's artefact belongs.
    std::fs::write(&path, b"\x7fELF not an artefact of this build").unwrap();
    let second = sandbox_with_cache(dir.path());
    assert_eq!(second.artefact_path(), Some(path.as_path()));
    let flows = second
        .describe("from hero_logic import flow\n@flow()\ndef f():\n    pass\n", &Default::default())
        .await
        .expect("the recompiled guest works");
    assert_eq!(flows[0].name, "f");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), compiled, "the foreign file was replaced");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no partial files are left: {leftovers:?}");
}
