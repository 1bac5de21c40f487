//! `hero_logic run FILE.py`: describe the module, pick the flow, check the
//! input, run it in a fresh sandbox and print the tree (or one JSON object).

use super::output::outln;
use super::render::render_run;
use super::{CliError, QuotaArgs};
use crate::library::{PickError, StoredFlows, pick_flow};
use crate::sandbox::{ModuleFlows, NoServices, Quotas, RunEnv, RunRequest, Sandbox, SandboxOptions};
use crate::secrets::Secrets;
use crate::services::ServiceRegistry;
use crate::trace::{LogLine, RunEvent, Span};
use clap::Args;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The Python file that declares the flow.
    pub file: PathBuf,
    /// Which flow to run, when the file declares several.
    #[arg(long, value_name = "NAME")]
    pub flow: Option<String>,
    /// The flow's input, a JSON object.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub input: String,
    /// Print the run, its spans and its logs as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Use the services registered and the flows stored in this data
    /// directory (the one `serve` uses).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use the services and flows of this PostgreSQL database instead
    /// (`postgres://user@host:port/db`, the one `serve --database` uses).
    #[arg(long, value_name = "URL", env = "HERO_LOGIC_DATABASE", hide_env_values = true, conflicts_with = "data_dir")]
    pub database: Option<String>,
    #[command(flatten)]
    pub quotas: QuotaArgs,
}

pub async fn run(args: RunArgs, cache_dir: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let file = args.file.display().to_string();
    let source =
        std::fs::read_to_string(&args.file).map_err(|e| CliError::Usage(format!("cannot read {file}: {e}")))?;
    let input: Value =
        serde_json::from_str(&args.input).map_err(|e| CliError::Usage(format!("--input is not valid JSON: {e}")))?;
    let quotas = args.quotas.apply(Quotas::default()).map_err(CliError::Usage)?;

    let options = SandboxOptions { cache_dir, ..SandboxOptions::default() };
    let sandbox =
        Sandbox::new(&options).map_err(|e| CliError::Failed(format!("could not start the sandbox: {e:#}")))?;
    // Describing is the host's own check of the module, under default quotas;
    // the flags limit the run.
    let flows =
        sandbox.describe(&source, &Quotas::default()).await.map_err(|e| CliError::Usage(format!("{file}: {e}")))?;
    let info = pick_flow(&flows, args.flow.as_deref()).map_err(|e| match e {
        PickError::Unknown { .. } => CliError::Usage(format!("{file} {e}")),
        PickError::Ambiguous { .. } => CliError::Usage(format!("{file} {e}; choose one with --flow NAME")),
    })?;
    let arguments = info.check_input(&input).map_err(|e| CliError::Usage(e.to_string()))?;

    let source: Arc<str> = Arc::from(source);
    let module = ModuleFlows { source: source.clone(), flows: flows.clone() };
    let store_at = match (&args.database, &args.data_dir) {
        (Some(url), _) => Some((std::path::Path::new("."), Some(url.as_str()))),
        (None, Some(dir)) => Some((dir.as_path(), None)),
        (None, None) => None,
    };
    let (env, store) = match store_at {
        Some((dir, url)) => {
            let store = super::services::open_database(dir, url).await?;
            // The built-in flows are part of every library, as with `serve`,
            // so a flow run here can invoke them.
            crate::builtin_flows::load(&sandbox, &store).await.map_err(|e| CliError::Failed(format!("{e:#}")))?;
            let env = RunEnv {
                services: Arc::new(
                    ServiceRegistry::new(store.clone())
                        .with_secrets(Arc::new(Secrets::new(store.clone(), dir.to_path_buf()))),
                ),
                flows: Arc::new(StoredFlows { store: store.clone(), module: Some(module) }),
                narrow_services: None,
                journal: None,
                replay: None,
                workspace: Arc::from(crate::tenancy::DEFAULT_WORKSPACE),
            };
            (env, Some(store))
        }
        None => (
            RunEnv {
                services: Arc::new(NoServices),
                flows: Arc::new(module),
                narrow_services: None,
                journal: None,
                replay: None,
                workspace: Arc::from(crate::tenancy::DEFAULT_WORKSPACE),
            },
            None,
        ),
    };
    let (request, events) = RunRequest::new(source, info, arguments, quotas, env);
    let report = sandbox.run(request).await;
    if let Some(store) = store {
        store.close().await;
    }
    print_run(&report, events, args.json);
    Ok(if report.status == crate::trace::Status::Ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Print an ended run: its tree, or one JSON object with its spans and logs.
pub(super) fn print_run(
    report: &crate::sandbox::RunReport,
    mut events: tokio::sync::mpsc::UnboundedReceiver<RunEvent>,
    as_json: bool,
) {
    // The run has ended, so every event is already in the channel.
    let mut spans: BTreeMap<u64, Span> = BTreeMap::new();
    let mut logs: Vec<LogLine> = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event {
            RunEvent::SpanStarted { span, .. } | RunEvent::SpanEnded { span, .. } => {
                spans.insert(span.span_id, span);
            }
            RunEvent::Log(line) => logs.push(line),
        }
    }
    let spans: Vec<Span> = spans.into_values().collect();
    if as_json {
        let mut object = serde_json::to_value(report).unwrap_or_else(|_| json!({}));
        object["spans"] = json!(spans);
        object["logs"] = json!(logs);
        outln!("{object}");
    } else {
        super::output::write(format_args!("{}", render_run(report, &spans, &logs)));
    }
}
