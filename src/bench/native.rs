//! The baseline: the same flow run by starting native `python3` per run, with
//! a pure-Python stand-in for the SDK (`bench/baseline/`).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const STAND_IN_SDK: &str = include_str!("../../bench/baseline/hero_logic/__init__.py");
const RUNNER: &str = include_str!("../../bench/baseline/run.py");

pub struct Native {
    /// The interpreter itself, not a launcher shim in front of it.
    pub python: PathBuf,
    pub version: String,
    dir: tempfile::TempDir,
}

impl Native {
    /// Finds `python3` and lays out the stand-in SDK; None when there is none.
    pub fn find() -> Result<Option<Native>> {
        let probe = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable); print(sys.version.split()[0])"])
            .output();
        let Ok(probe) = probe else { return Ok(None) };
        if !probe.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&probe.stdout).into_owned();
        let mut lines = text.lines();
        let python = PathBuf::from(lines.next().unwrap_or("python3"));
        let version = lines.next().unwrap_or("?").to_string();
        let dir = tempfile::tempdir().context("create the baseline's directory")?;
        std::fs::create_dir_all(dir.path().join("hero_logic"))?;
        std::fs::write(dir.path().join("hero_logic/__init__.py"), STAND_IN_SDK)?;
        std::fs::write(dir.path().join("run.py"), RUNNER)?;
        Ok(Some(Native { python, version, dir }))
    }

    pub fn write_flow(&self, name: &str, source: &str) -> Result<PathBuf> {
        let path = self.dir.path().join(name);
        std::fs::write(&path, source)?;
        Ok(path)
    }

    /// One run in a fresh process: its wall time and its stdout.
    pub fn run(&self, flow_file: &Path, flow: &str, input: &str) -> Result<(Duration, String)> {
        self.run_with(&[], flow_file, flow, input)
    }

    /// One run in a fresh process started with the interpreter's own
    /// `flags` (`-S`: no site packages).
    pub fn run_with(&self, flags: &[&str], flow_file: &Path, flow: &str, input: &str) -> Result<(Duration, String)> {
        let started = Instant::now();
        let output = Command::new(&self.python)
            .args(flags)
            .arg(self.dir.path().join("run.py"))
            .arg(flow_file)
            .arg(flow)
            .arg(input)
            .output()
            .context("start python3")?;
        let elapsed = started.elapsed();
        if !output.status.success() {
            bail!("the native baseline failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok((elapsed, String::from_utf8_lossy(&output.stdout).trim().to_string()))
    }
}
