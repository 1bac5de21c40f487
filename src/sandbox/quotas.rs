//! Per-run limits the host sets and the flow cannot touch, and what a run used.
//!
//! Every quota is one row of `quota_table!` below: its name, its field in a
//! run's `quotas`, its default, the `serve`/`run` flag that sets it, the
//! field of `usage` that shows what a run used of it, and its label on the
//! page. The `Quotas` struct, the `Quota` enum, the flags, capping by the
//! operator's maxima and `GET /api/quotas` (which the page reads) all come
//! from the table; a new quota is a row here plus the place the run spends it.

use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const MIB: u64 = 1024 * 1024;

/// How a quota's flag is written on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagUnit {
    /// Seconds (fractions allowed), kept in milliseconds.
    Seconds,
    /// Mebibytes, kept in bytes.
    Mebibytes,
    /// The number itself.
    Count,
}

impl FlagUnit {
    /// The flag's value for a quota value, as `--help` shows a default.
    pub fn show(self, value: u64) -> String {
        match self {
            FlagUnit::Seconds => format!("{}", value as f64 / 1000.0),
            FlagUnit::Mebibytes => (value / MIB).to_string(),
            FlagUnit::Count => value.to_string(),
        }
    }
}

/// One quota, as the table gives it.
#[derive(Debug, Serialize)]
pub struct QuotaDef {
    #[serde(skip)]
    pub quota: Quota,
    /// As it appears in `error.quota`.
    pub name: &'static str,
    /// Its field in a run's `quotas`.
    pub field: &'static str,
    pub default: u64,
    /// The smallest value a request may ask for.
    pub min: u64,
    /// Its unit in messages (`... the limit is 10 spans`).
    #[serde(skip)]
    pub unit: &'static str,
    /// The command-line flag, without `--`.
    pub flag: &'static str,
    pub flag_unit: FlagUnit,
    /// The field of a run's `usage` that shows what it used, if one does.
    pub usage: Option<&'static str>,
    /// Its name on the page.
    pub label: &'static str,
    pub help: &'static str,
}

macro_rules! quota_table {
    ($(
        $variant:ident {
            name: $name:literal, field: $field:ident, default: $default:expr, min: $min:literal, unit: $unit:literal,
            flag: $flag:literal in $flag_unit:ident, usage: $usage:expr, label: $label:literal, help: $help:literal $(,)?
        }
    )*) => {
        /// The name of a quota, as it appears in `error.quota`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Quota {
            $($variant,)*
        }

        /// The limits of one run, subflows included.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Quotas {
            $(#[doc = $help] pub $field: u64,)*
        }

        /// Every quota, in the order the page and `--help` show them.
        pub const QUOTAS: &[QuotaDef] = &[$(
            QuotaDef {
                quota: Quota::$variant,
                name: $name,
                field: stringify!($field),
                default: $default,
                min: $min,
                unit: $unit,
                flag: $flag,
                flag_unit: FlagUnit::$flag_unit,
                usage: $usage,
                label: $label,
                help: $help,
            },
        )*];

        impl Default for Quotas {
            fn default() -> Quotas {
                Quotas { $($field: $default,)* }
            }
        }

        impl Quotas {
            pub fn get(&self, quota: Quota) -> u64 {
                match quota {
                    $(Quota::$variant => self.$field,)*
                }
            }

            pub fn set(&mut self, quota: Quota, value: u64) {
                match quota {
                    $(Quota::$variant => self.$field = value,)*
                }
            }
        }
    };
}

quota_table! {
    WallTime {
        name: "wall_time", field: wall_time_ms, default: 30_000, min: 1, unit: " ms",
        flag: "wall-time" in Seconds, usage: Some("wall_time_ms"), label: "wall time",
        help: "Wall-clock limit of the run, in seconds",
    }
    CpuTime {
        name: "cpu_time", field: cpu_time_ms, default: 10_000, min: 1, unit: " ms",
        flag: "cpu-time" in Seconds, usage: Some("cpu_time_ms"), label: "CPU time",
        help: "Guest CPU time limit, in seconds",
    }
    Memory {
        name: "memory", field: memory_bytes, default: 128 * MIB, min: 1, unit: " bytes",
        flag: "memory-mb" in Mebibytes, usage: Some("peak_memory_bytes"), label: "memory",
        help: "Linear memory limit, in MiB",
    }
    RpcCalls {
        name: "rpc_calls", field: rpc_calls, default: 1_000, min: 0, unit: " calls",
        flag: "max-rpc-calls" in Count, usage: Some("rpc_calls"), label: "service calls",
        help: "Most service calls",
    }
    Spans {
        name: "spans", field: spans, default: 10_000, min: 0, unit: " spans",
        flag: "max-spans" in Count, usage: Some("spans"), label: "spans",
        help: "Most spans the run may open",
    }
    LogBytes {
        name: "log_bytes", field: log_bytes, default: MIB, min: 0, unit: " bytes",
        flag: "max-log-bytes" in Count, usage: Some("log_bytes"), label: "log bytes",
        help: "Most bytes of log lines (print, stderr, flow.log)",
    }
    StoredBytes {
        name: "stored_bytes", field: stored_bytes, default: 8 * MIB, min: 0, unit: " bytes",
        flag: "max-stored-bytes" in Count, usage: Some("stored_bytes"), label: "stored bytes",
        help: "Most bytes the run makes the store keep: span names, attributes and errors, saved modules, kv values",
    }
    OutputBytes {
        name: "output_bytes", field: output_bytes, default: MIB, min: 0, unit: " bytes",
        flag: "max-output-bytes" in Count, usage: Some("output_bytes"), label: "output bytes",
        help: "Largest output, in bytes of JSON",
    }
    SubflowDepth {
        name: "subflow_depth", field: subflow_depth, default: 4, min: 0, unit: " levels",
        flag: "max-subflow-depth" in Count, usage: Some("max_subflow_depth"), label: "subflow depth",
        help: "Deepest nesting of flow.invoke",
    }
    InputBytes {
        name: "input_bytes", field: input_bytes, default: MIB, min: 0, unit: " bytes",
        flag: "max-input-bytes" in Count, usage: None, label: "input bytes",
        help: "Largest input (and service call parameters, subflow input), in bytes of JSON",
    }
    JournalBytes {
        name: "journal_bytes", field: journal_bytes, default: 16 * MIB, min: 4096, unit: " bytes",
        flag: "max-journal-bytes" in Count, usage: Some("journal_bytes"), label: "journal bytes",
        help: "Most bytes of the run's journal: every answer the host gives it (service results, subflow outputs, clock reads, random bytes, sleeps)",
    }
}

impl Quota {
    pub fn def(self) -> &'static QuotaDef {
        QUOTAS.iter().find(|def| def.quota == self).expect("every quota has a row")
    }

    pub fn name(self) -> &'static str {
        self.def().name
    }

    fn unit(self) -> &'static str {
        self.def().unit
    }
}

impl Quotas {
    pub fn wall_time(&self) -> Duration {
        Duration::from_millis(self.wall_time_ms)
    }

    /// These quotas, each no more than the operator's maximum.
    pub fn capped_by(&self, maxima: &Quotas) -> Quotas {
        let mut capped = self.clone();
        for def in QUOTAS {
            capped.set(def.quota, self.get(def.quota).min(maxima.get(def.quota)));
        }
        capped
    }

    /// A quota asked below its smallest value (no wall time, say).
    pub fn check(&self) -> Result<(), String> {
        match QUOTAS.iter().find(|def| self.get(def.quota) < def.min) {
            Some(def) => Err(format!("{} must be at least {}", def.field, def.min)),
            None => Ok(()),
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
    pub max_subflow_depth: u64,
    /// Runs stored before the journal existed have no such field.
    #[serde(default)]
    pub journal_bytes: u64,
    /// Flows the run stored through `flows.save` (none: left out).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flows_saved: u64,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

impl Usage {
    /// What the run has used of a quota the host counts up as it goes
    /// (`Ledger::charge`); None for quotas measured another way.
    pub fn counted_mut(&mut self, quota: Quota) -> Option<&mut u64> {
        match quota {
            Quota::RpcCalls => Some(&mut self.rpc_calls),
            Quota::LogBytes => Some(&mut self.log_bytes),
            Quota::StoredBytes => Some(&mut self.stored_bytes),
            Quota::JournalBytes => Some(&mut self.journal_bytes),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_drives_the_struct_its_names_and_its_limits() {
        let defaults = serde_json::to_value(Quotas::default()).unwrap();
        for def in QUOTAS {
            assert_eq!(defaults[def.field], def.default, "{} defaults from the table", def.field);
            assert_eq!(serde_json::to_value(def.quota).unwrap(), def.name, "the enum spells {}", def.name);
        }
        assert_eq!(defaults.as_object().unwrap().len(), QUOTAS.len());
        assert_eq!(QuotaExceeded::new(Quota::Spans, 10).to_string(), "quota spans exceeded: the limit is 10 spans");
    }

    #[test]
    fn the_docs_list_every_quota_with_its_flag() {
        let docs = crate::user_docs::text();
        for def in QUOTAS {
            // Other tables (the benchmark's) may have a row that starts alike.
            let rows: Vec<&str> = docs.lines().filter(|line| line.starts_with(&format!("| {} ", def.label))).collect();
            assert!(
                rows.iter().any(|row| row.contains(&format!("`--{} ", def.flag)) && row.contains(def.name)),
                "neither README.md nor docs/*.md has a row for the quota {} with --{} and {}: {rows:#?}",
                def.label,
                def.flag,
                def.name
            );
        }
    }

    #[test]
    fn capping_takes_the_smaller_of_each_and_check_names_the_quota() {
        let asked = Quotas { spans: 50, wall_time_ms: 1, ..Quotas::default() };
        let maxima = Quotas { spans: 20, memory_bytes: MIB, ..Quotas::default() };
        let capped = asked.capped_by(&maxima);
        assert_eq!((capped.spans, capped.wall_time_ms, capped.memory_bytes), (20, 1, MIB));
        assert_eq!(capped.rpc_calls, Quotas::default().rpc_calls);
        let none = Quotas { cpu_time_ms: 0, ..Quotas::default() };
        assert_eq!(none.check(), Err("cpu_time_ms must be at least 1".to_string()));
        assert_eq!(Quotas::default().check(), Ok(()));
    }
}
