//! The command line as a user starts it: `hero_logic run FILE` once per
//! process, against native `python3 -S` running the same flow once per
//! process (the stand-in SDK, no site packages), measured in the same run.
//! Cold start is the first `run` with an empty artefact cache, which
//! compiles the guest.

use super::native::Native;
use super::stats::Latencies;
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A flow with one step and no services, so that it runs alike in both.
const ONE_STEP: &str =
    "from hero_logic import flow\n\n\n@flow()\ndef one_step():\n    with flow.step('one'):\n        return 1\n";

pub struct CliFigures {
    pub cold_start_ms: f64,
    pub cached_ms: f64,
    /// `hero_logic run FILE`, artefact cached, one process per run.
    pub per_process: Latencies,
    /// `python3 -S run.py FILE`, one process per run; None without python3.
    pub native_no_site: Option<Latencies>,
}

pub fn measure(native: Option<&Native>, runs: usize) -> Result<CliFigures> {
    let exe = std::env::current_exe().context("find the hero_logic executable")?;
    let dir = tempfile::tempdir()?;
    let flow = dir.path().join("one_step.py");
    std::fs::write(&flow, ONE_STEP)?;
    // An artefact cache of its own, empty at first: the first run compiles.
    let cache = dir.path().join("cache");
    let run_once = || -> Result<Duration> {
        let started = Instant::now();
        let status = Command::new(&exe)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("run")
            .arg(&flow)
            .stdout(Stdio::null())
            .status()
            .context("start hero_logic run")?;
        if !status.success() {
            bail!("hero_logic run {} failed", flow.display());
        }
        Ok(started.elapsed())
    };
    let cold_start = run_once()?;
    let cached = run_once()?;
    let per_process = timed(runs, run_once)?;
    let native_no_site = match native {
        Some(native) => Some(native_per_process(native, &flow, runs)?),
        None => None,
    };
    Ok(CliFigures { cold_start_ms: millis(cold_start), cached_ms: millis(cached), per_process, native_no_site })
}

fn native_per_process(native: &Native, flow: &Path, runs: usize) -> Result<Latencies> {
    native.run_with(&["-S"], flow, "one_step", "{}")?;
    timed(runs, || Ok(native.run_with(&["-S"], flow, "one_step", "{}")?.0))
}

/// One warm-up, then `runs` samples one after another.
fn timed(runs: usize, mut once: impl FnMut() -> Result<Duration>) -> Result<Latencies> {
    once()?;
    let samples = (0..runs).map(|_| once()).collect::<Result<Vec<_>>>()?;
    Ok(Latencies::new(&samples))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
