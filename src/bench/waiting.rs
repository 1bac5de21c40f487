//! `hero_logic bench --only waiting`: many runs that wait at once. A
//! `hero_logic serve --max-concurrent N` process (a child, so its memory is
//! its own) gets N runs at once of a flow that sleeps; the figures are how
//! long until every run has ended `ok`, the server's peak memory while they
//! wait, and how much of it the server still holds 10 s after the last one.

use super::memory_of;
use super::server::{post, upload};
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SLEEPER: &str = include_str!("../../bench/sleeper.py");

/// How long the server is left alone after the burst before its memory is
/// read again.
pub const SETTLE: Duration = Duration::from_secs(10);

pub struct WaitingFigures {
    pub runs: usize,
    pub sleep_s: f64,
    /// From the first submission to the last answer.
    pub all_ended_s: f64,
    /// The kernel's peak RSS (VmHWM): every mapping of the shared guest
    /// image counted once per instance.
    pub peak_rss_mib: f64,
    /// Peak of memory only the server holds (private pages), sampled.
    pub peak_private_mib: f64,
    /// Peak proportional set size, sampled: shared pages counted once.
    pub peak_pss_mib: f64,
    /// RSS idle after a warm-up, before the burst.
    pub idle_rss_mib: f64,
    /// RSS `SETTLE` after the last run ended.
    pub after_rss_mib: f64,
}

/// A `hero_logic serve` child process; killed when dropped.
struct ServeProcess {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl ServeProcess {
    fn start(cache_dir: Option<&std::path::Path>, max_concurrent: usize) -> Result<ServeProcess> {
        let exe = std::env::current_exe().context("find the hero_logic executable")?;
        let dir = tempfile::tempdir()?;
        let mut command = Command::new(exe);
        if let Some(cache) = cache_dir {
            command.arg("--cache-dir").arg(cache);
        }
        let mut child = command
            .args(["serve", "--addr", "127.0.0.1:0", "--max-concurrent", &max_concurrent.to_string()])
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("serve.log"))?)
            .spawn()
            .context("start hero_logic serve")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let Some(line) = lines.next() else { bail!("hero_logic serve ended before listening") };
            if let Some(url) = line?.strip_prefix("listening on http://") {
                break url.trim().to_string();
            }
        };
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(ServeProcess { child, addr, _dir: dir })
    }

    /// The end of what the server logged, to explain a failure.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self._dir.path().join("serve.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// The kernel's peak resident set of the process, in MiB.
    fn peak_rss_mib(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kb = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .context("VmHWM in /proc/PID/status")?;
        Ok(kb / 1024.0)
    }

    fn rss_mib(&self) -> Result<f64> {
        Ok(memory_of(&self.pid())?.rss as f64 / MIB)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// `runs` runs at once, each sleeping `sleep_s`, on a server allowed exactly
/// that many at once.
pub async fn measure(cache_dir: Option<std::path::PathBuf>, runs: usize, sleep_s: f64) -> Result<WaitingFigures> {
    let server = ServeProcess::start(cache_dir.as_deref(), runs)?;
    let addr = server.addr.clone();
    upload(&addr, SLEEPER).await?;

    // Warm up as a day's work would: a few bursts of quick runs, so the
    // warm pool is in use, then a pause.
    for _ in 0..3 {
        burst(&addr, 64, 0.0).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss_mib = server.rss_mib()?;

    // Sample memory while the burst waits.
    let sampling = Arc::new(AtomicBool::new(true));
    let (peak_private, peak_pss) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let sampler = {
        let (sampling, peak_private, peak_pss, pid) =
            (sampling.clone(), peak_private.clone(), peak_pss.clone(), server.pid());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Ok(memory) = memory_of(&pid) {
                    peak_private.fetch_max(memory.private, Ordering::Relaxed);
                    peak_pss.fetch_max(memory.pss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let ended = burst(&addr, runs, sleep_s).await;
    ended.with_context(|| format!("{runs} runs at once; the server logged:\n{}", server.log_tail()))?;
    let all_ended_s = started.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    let peak_rss_mib = server.peak_rss_mib()?;

    tokio::time::sleep(SETTLE).await;
    let after_rss_mib = server.rss_mib()?;
    Ok(WaitingFigures {
        runs,
        sleep_s,
        all_ended_s,
        peak_rss_mib,
        peak_private_mib: peak_private.load(Ordering::Relaxed) as f64 / MIB,
        peak_pss_mib: peak_pss.load(Ordering::Relaxed) as f64 / MIB,
        idle_rss_mib,
        after_rss_mib,
    })
}

/// `count` runs of the sleeper sent at once, each waited for; every one
/// must end `ok`.
async fn burst(addr: &str, count: usize, sleep_s: f64) -> Result<()> {
    let body = json!({"flow": "sleeper", "input": {"seconds": sleep_s}});
    let runs: Vec<_> = (0..count)
        .map(|_| {
            let (addr, body) = (addr.to_string(), body.clone());
            tokio::spawn(async move { post(&addr, "/api/runs?wait=true", &body).await })
        })
        .collect();
    for run in runs {
        let run = run.await??;
        if run["status"] != "ok" {
            bail!("a waiting run ended {}: {}", run["status"], run["error"]);
        }
    }
    Ok(())
}
