//! The `hero_logic` command line: argument parsing and dispatch. Each
//! subcommand lives in its own module.

mod flows;
mod output;
mod render;
mod replay;
mod run;
mod schedules;
mod secrets;
mod serve;
mod services;
mod workspaces;

use crate::sandbox::{FlagUnit, MIB, QUOTAS, Quota, Quotas};
use clap::{Parser, Subcommand};
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

    /// How the process's own log lines are written to stderr: `text` for
    /// people, `json` (one object a line) for log collectors. Which lines:
    /// HERO_LOGIC_LOG (default `warn`)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "HERO_LOGIC_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// The shape of the process's log lines.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API, the live span stream and the UI.
    Serve(Box<serve::ServeArgs>),
    /// Run a flow from a Python file in a fresh sandbox and print its span tree.
    Run(Box<run::RunArgs>),
    /// Run an ended run again from its journal (nothing called, no sleep waited) and print its tree.
    Replay(Box<replay::ReplayArgs>),
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
    /// Add, list and remove cron schedules that start runs of a flow.
    Schedules {
        #[command(subcommand)]
        command: schedules::SchedulesCommand,
    },
    /// Set, list and remove the secrets services' headers name (values never shown).
    Secrets {
        #[command(subcommand)]
        command: secrets::SecretsCommand,
    },
    /// Make, list and remove workspaces (the operator's).
    Workspaces {
        #[command(subcommand)]
        command: workspaces::WorkspacesCommand,
    },
    /// Make, list and revoke a workspace's keys (the key is printed once).
    Keys {
        #[command(subcommand)]
        command: workspaces::KeysCommand,
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

/// Per-run limits, as command-line flags: one per row of the quota table
/// (`sandbox::QUOTAS`). Unset flags keep the defaults.
#[derive(Debug, Clone, Default)]
pub struct QuotaArgs {
    /// The flags given: a number of seconds, MiB or units, by quota.
    given: Vec<(Quota, FlagValue)>,
}

#[derive(Debug, Clone, Copy)]
enum FlagValue {
    Seconds(f64),
    Whole(u64),
}

impl clap::Args for QuotaArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        QUOTAS.iter().fold(command, |command, def| {
            let arg = clap::Arg::new(def.flag).long(def.flag).help(format!(
                "{} [default: {}]",
                def.help,
                def.flag_unit.show(def.default)
            ));
            command.arg(match def.flag_unit {
                FlagUnit::Seconds => {
                    arg.value_name("SECS").allow_negative_numbers(true).value_parser(clap::value_parser!(f64))
                }
                FlagUnit::Mebibytes | FlagUnit::Count => arg.value_name("N").value_parser(clap::value_parser!(u64)),
            })
        })
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

impl clap::FromArgMatches for QuotaArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let given = QUOTAS
            .iter()
            .filter_map(|def| {
                let value = match def.flag_unit {
                    FlagUnit::Seconds => FlagValue::Seconds(*matches.get_one::<f64>(def.flag)?),
                    FlagUnit::Mebibytes | FlagUnit::Count => FlagValue::Whole(*matches.get_one::<u64>(def.flag)?),
                };
                Some((def.quota, value))
            })
            .collect();
        Ok(QuotaArgs { given })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl QuotaArgs {
    pub fn apply(&self, mut quotas: Quotas) -> Result<Quotas, String> {
        for &(quota, value) in &self.given {
            let def = quota.def();
            let value = match (def.flag_unit, value) {
                (FlagUnit::Seconds, FlagValue::Seconds(secs)) if secs.is_finite() && secs > 0.0 => {
                    (secs * 1000.0).round().max(1.0) as u64
                }
                (FlagUnit::Seconds, FlagValue::Seconds(secs)) => {
                    return Err(format!("--{} must be a positive number of seconds, not {secs}", def.flag));
                }
                (FlagUnit::Mebibytes, FlagValue::Whole(mib)) => mib.saturating_mul(MIB),
                (_, FlagValue::Whole(n)) => n,
                (_, FlagValue::Seconds(_)) => unreachable!("only seconds flags are read as seconds"),
            };
            quotas.set(quota, value);
        }
        Ok(quotas)
    }
}

/// The process's own log lines, on stderr, of the levels HERO_LOGIC_LOG
/// names. As JSON, each line is one object: `timestamp`, `level`,
/// `target`, `fields` (with `message`), and the spans it happened in.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERO_LOGIC_LOG").unwrap_or_else(|_| "warn".into());
    let lines = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => lines.init(),
        LogFormat::Json => lines.json().flatten_event(false).with_current_span(true).with_span_list(false).init(),
    }
}

/// Why a command did not succeed, said in one line on stderr.
#[derive(Debug)]
pub enum CliError {
    /// What the user asked for is wrong (a file, a flag, an input): exit 2.
    Usage(String),
    /// The command could not do its work (the sandbox or the server could
    /// not start or stopped, the benchmark failed): exit 1.
    Failed(String),
}

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
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let cache_dir = cli.cache_dir.clone().or_else(crate::sandbox::default_cache_dir);
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args, cache_dir).await,
            Command::Run(args) => run::run(*args, cache_dir).await,
            Command::Replay(args) => replay::replay(*args, cache_dir).await,
            Command::Services { command } => services::run(command).await,
            Command::Secrets { command } => secrets::run(command).await,
            Command::Workspaces { command } => workspaces::workspaces(command).await,
            Command::Keys { command } => workspaces::keys(command).await,
            Command::Schedules { command } => schedules::run(command).await,
            Command::Flows { command } => flows::run(command, cache_dir).await,
            Command::Bench { quick, only } => crate::bench::run(crate::bench::BenchOptions { quick, only, cache_dir })
                .await
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| CliError::Failed(format!("the benchmark failed: {e:#}"))),
        }
    });
    match result {
        Ok(code) => code,
        Err(CliError::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(CliError::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}
