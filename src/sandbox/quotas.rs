//! Per-run limits the host sets and the flow cannot touch, and what a run used.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The limits of one run, subflows included.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    pub wall_time_ms: u64,
    pub cpu_time_ms: u64,
    pub memory_bytes: u64,
    pub rpc_calls: u64,
    pub spans: u64,
    pub log_bytes: u64,
    /// What the run makes the store keep besides its logs and output: span
    /// names, attributes and errors, modules saved with `flows.save`, `kv` values.
    pub stored_bytes: u64,
    pub output_bytes: u64,
    pub subflow_depth: u32,
    pub input_bytes: u64,
}

pub const MIB: u64 = 1024 * 1024;

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            wall_time_ms: 30_000,
            cpu_time_ms: 10_000,
            memory_bytes: 128 * MIB,
            rpc_calls: 1_000,
            spans: 10_000,
            log_bytes: MIB,
            stored_bytes: 8 * MIB,
            output_bytes: MIB,
            subflow_depth: 4,
            input_bytes: MIB,
        }
    }
}

impl Quotas {
    pub fn wall_time(&self) -> Duration {
        Duration::from_millis(self.wall_time_ms)
    }
}

/// The name of a quota, as it appears in `error.quota`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quota {
    WallTime,
    CpuTime,
    Memory,
    RpcCalls,
    Spans,
    LogBytes,
    StoredBytes,
    OutputBytes,
    InputBytes,
    SubflowDepth,
}

impl Quota {
    pub fn name(self) -> &'static str {
        match self {
            Quota::WallTime => "wall_time",
            Quota::CpuTime => "cpu_time",
            Quota::Memory => "memory",
            Quota::RpcCalls => "rpc_calls",
            Quota::Spans => "spans",
            Quota::LogBytes => "log_bytes",
            Quota::StoredBytes => "stored_bytes",
            Quota::OutputBytes => "output_bytes",
            Quota::InputBytes => "input_bytes",
            Quota::SubflowDepth => "subflow_depth",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Quota::WallTime | Quota::CpuTime => " ms",
            Quota::Memory | Quota::LogBytes | Quota::StoredBytes | Quota::OutputBytes | Quota::InputBytes => " bytes",
            Quota::RpcCalls => " calls",
            Quota::Spans => " spans",
            Quota::SubflowDepth => " levels",
        }
    }
}

/// A run went over one of its quotas. Raised as a trap from inside a host call
/// or the epoch callback, so flow code cannot catch it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("quota {} exceeded: the limit is {limit}{}", quota.name(), quota.unit())]
pub struct QuotaExceeded {
    pub quota: Quota,
    pub limit: u64,
}

impl QuotaExceeded {
    pub fn new(quota: Quota, limit: u64) -> QuotaExceeded {
        QuotaExceeded { quota, limit }
    }

    /// The run's error.
    pub fn to_error(&self) -> crate::trace::ErrorInfo {
        crate::trace::ErrorInfo::quota("QuotaExceeded", self.quota.name(), self.limit, self.to_string())
    }
}

/// What a run used; reported in `usage` and on the root span's attrs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub wall_time_ms: f64,
    /// Guest execution time, counted in epoch ticks (1 ms each).
    pub cpu_time_ms: u64,
    /// Largest linear memory held at once by the run's live instances.
    pub peak_memory_bytes: u64,
    pub rpc_calls: u64,
    pub spans: u64,
    pub log_bytes: u64,
    /// Runs stored before this quota existed have no such field.
    #[serde(default)]
    pub stored_bytes: u64,
    pub output_bytes: u64,
    pub subflows: u64,
    pub max_subflow_depth: u32,
}
