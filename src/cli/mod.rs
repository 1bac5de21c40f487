//! The `hero_logic` command line: argument parsing and dispatch. Each
//! subcommand lives in its own module.

mod flows;
mod output;
mod run;
mod serve;
mod services;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "hero_logic",
    version,
    about = "Run untrusted Python flows in a WebAssembly sandbox and watch their span trees."
)]
pub struct Cli {
    /// Where compiled guest artefacts are cached [default: $HERO_LOGIC_CACHE_DIR,
    /// else $XDG_CACHE_HOME/hero_logic, else ~/.cache/hero_logic]
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API, the live span stream and the UI.
    Serve(Box<serve::ServeArgs>),
    /// Run a flow from a Python file in a fresh sandbox and print its span tree.
    Run(Box<run::RunArgs>),
    /// Store, list and search flows in the library.
    Flows {
        #[command(subcommand)]
        command: flows::FlowsCommand,
    },
    /// Register, list and remove the JSON-RPC services flows can call.
    Services {
        #[command(subcommand)]
        command: services::ServicesCommand,
    },
    /// Measure the sandbox against native python3; prints a table and a JSON line.
    Bench {
        /// A short run that checks the harness works (figures are noisy).
        #[arg(long)]
        quick: bool,
        /// Measure one part only.
        #[arg(long, value_enum)]
        only: Option<crate::bench::Section>,
    },
}

/// Per-run limits, as command-line flags. Unset flags keep the defaults.
#[derive(Args, Debug, Clone, Default)]
pub struct QuotaArgs {
    /// Wall-clock limit of the run, in seconds [default: 30]
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub wall_time: Option<f64>,
    /// Guest CPU time limit, in seconds [default: 10]
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub cpu_time: Option<f64>,
    /// Linear memory limit, in MiB [default: 128]
    #[arg(long, value_name = "N")]
    pub memory_mb: Option<u64>,
    /// Most spans the run may open [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_spans: Option<u64>,
    /// Most bytes of log lines (print, stderr, flow.log) [default: 1048576]
    #[arg(long, value_name = "N")]
    pub max_log_bytes: Option<u64>,
    /// Most bytes the run makes the store keep: span names, attributes and errors, saved modules, kv values [default: 8388608]
    #[arg(long, value_name = "N")]
    pub max_stored_bytes: Option<u64>,
    /// Largest output, in bytes of JSON [default: 1048576]
    #[arg(long, value_name = "N")]
    pub max_output_bytes: Option<u64>,
    /// Most service calls [default: 1000]
    #[arg(long, value_name = "N")]
    pub max_rpc_calls: Option<u64>,
    /// Deepest nesting of flow.invoke [default: 4]
    #[arg(long, value_name = "N")]
    pub max_subflow_depth: Option<u32>,
    /// Largest input, in bytes of JSON [default: 1048576]
    #[arg(long, value_name = "N")]
    pub max_input_bytes: Option<u64>,
}

impl QuotaArgs {
    pub fn apply(&self, mut quotas: crate::sandbox::Quotas) -> Result<crate::sandbox::Quotas, String> {
        let seconds = |flag: &str, value: f64| -> Result<u64, String> {
            if value.is_finite() && value > 0.0 {
                Ok((value * 1000.0).round().max(1.0) as u64)
            } else {
                Err(format!("{flag} must be a positive number of seconds, not {value}"))
            }
        };
        if let Some(secs) = self.wall_time {
            quotas.wall_time_ms = seconds("--wall-time", secs)?;
        }
        if let Some(secs) = self.cpu_time {
            quotas.cpu_time_ms = seconds("--cpu-time", secs)?;
        }
        if let Some(mb) = self.memory_mb {
            quotas.memory_bytes = mb.saturating_mul(crate::sandbox::MIB);
        }
        quotas.spans = self.max_spans.unwrap_or(quotas.spans);
        quotas.log_bytes = self.max_log_bytes.unwrap_or(quotas.log_bytes);
        quotas.stored_bytes = self.max_stored_bytes.unwrap_or(quotas.stored_bytes);
        quotas.output_bytes = self.max_output_bytes.unwrap_or(quotas.output_bytes);
        quotas.rpc_calls = self.max_rpc_calls.unwrap_or(quotas.rpc_calls);
        quotas.subflow_depth = self.max_subflow_depth.unwrap_or(quotas.subflow_depth);
        quotas.input_bytes = self.max_input_bytes.unwrap_or(quotas.input_bytes);
        Ok(quotas)
    }
}

/// A problem with what the user asked for: exit 2 with one line.
#[derive(Debug)]
pub struct UsageError(pub String);

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => {
            // One line, as for every other usage problem; --help has the rest.
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{first} (see hero_logic --help)");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HERO_LOGIC_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let cache_dir = cli.cache_dir.clone().or_else(crate::sandbox::default_cache_dir);
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args, cache_dir).await,
            Command::Run(args) => run::run(*args, cache_dir).await,
            Command::Services { command } => services::run(command).await,
            Command::Flows { command } => flows::run(command, cache_dir).await,
            Command::Bench { quick, only } => crate::bench::run(crate::bench::BenchOptions { quick, only, cache_dir })
                .await
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| UsageError(format!("the benchmark failed: {e:#}"))),
        }
    });
    match result {
        Ok(code) => code,
        Err(UsageError(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
