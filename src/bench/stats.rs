//! Percentiles over measured durations.

use anyhow::Result;
use std::time::{Duration, Instant};

/// Runs a measured step `warm_up` times unmeasured, then `runs` times
/// measured one after another; the step is given its index.
pub async fn time_each(
    warm_up: usize,
    runs: usize,
    mut step: impl AsyncFnMut(usize) -> Result<()>,
) -> Result<Latencies> {
    for n in 0..warm_up {
        step(n).await?;
    }
    let mut samples = Vec::with_capacity(runs);
    for n in 0..runs {
        let started = Instant::now();
        step(n).await?;
        samples.push(started.elapsed());
    }
    Ok(Latencies::new(&samples))
}

pub struct Latencies {
    sorted_ms: Vec<f64>,
}

impl Latencies {
    pub fn new(samples: &[Duration]) -> Latencies {
        let mut sorted_ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        sorted_ms.sort_by(f64::total_cmp);
        Latencies { sorted_ms }
    }

    /// The `p`-th percentile (0–100), nearest-rank; 0 for no samples.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.sorted_ms.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.sorted_ms.len() as f64).ceil() as usize;
        self.sorted_ms[rank.clamp(1, self.sorted_ms.len()) - 1]
    }

    pub fn p50(&self) -> f64 {
        self.percentile(50.0)
    }

    pub fn p99(&self) -> f64 {
        self.percentile(99.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let latencies = Latencies::new(&samples);
        assert_eq!(latencies.p50(), 50.0);
        assert_eq!(latencies.p99(), 99.0);
        assert_eq!(latencies.percentile(100.0), 100.0);
        assert_eq!(Latencies::new(&[]).p50(), 0.0);
    }
}
