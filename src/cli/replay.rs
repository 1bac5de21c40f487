//! `hero_logic replay RUN_ID`: run an ended run again from its journal, in a
//! fresh sandbox, and print its tree — no service called, no sleep waited,
//! the original's clock and random values — to see what a run did without
//! calling anything again. `--source FILE` replays a changed module against
//! the journal instead. The replay is printed, not stored.

use super::services::{StoreArgs, open_store};
use super::{CliError, run::print_run};
use crate::library::{StoredFlows, pick_flow};
use crate::sandbox::{ModuleFlows, NoServices, Replay, RunEnv, RunRequest, Sandbox, SandboxOptions};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The run to replay (an ended one).
    pub run_id: String,
    /// Replay this module in place of the one the run ran.
    #[arg(long, value_name = "FILE")]
    pub source: Option<PathBuf>,
    /// Print the replay, its spans and its logs as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub async fn replay(args: ReplayArgs, cache_dir: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let changed = match &args.source {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?,
        ),
        None => None,
    };
    let store = open_store(&args.store).await?;
    let prepared = prepare(&store, &args.run_id, changed, cache_dir).await;
    let (sandbox, request, events, original) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            store.close().await;
            return Err(error);
        }
    };
    let report = sandbox.run(request).await;
    store.close().await;
    print_run(&report, events, args.json);
    if report.status == original.status && report.output == original.output {
        eprintln!("replayed run {}: it ended {} as the original did", args.run_id, report.status);
        Ok(ExitCode::SUCCESS)
    } else {
        let how = report
            .error
            .as_ref()
            .map_or_else(|| format!("ended {}", report.status), |e| format!("{}: {}", e.kind, e.message));
        eprintln!("replayed run {}: {how} (the original ended {})", args.run_id, original.status);
        Ok(ExitCode::from(1))
    }
}

type Prepared =
    (Sandbox, RunRequest, tokio::sync::mpsc::UnboundedReceiver<crate::trace::RunEvent>, crate::store::RunRecord);

async fn prepare(
    store: &Arc<crate::store::Store>,
    run_id: &str,
    changed: Option<String>,
    cache_dir: Option<PathBuf>,
) -> Result<Prepared, CliError> {
    let failed = |e: anyhow::Error| CliError::Failed(format!("{e:#}"));
    let run = store
        .run(run_id)
        .await
        .map_err(failed)?
        .ok_or_else(|| CliError::Usage(format!("no run with id '{run_id}'")))?;
    if !run.status.is_final() {
        return Err(CliError::Usage(format!("run '{run_id}' is {}; a run is replayed once it has ended", run.status)));
    }
    let rows = store.journal(run_id).await.map_err(failed)?;
    let rows = rows.into_iter().map(|row| (row.stream, row.index, row.entry)).collect();
    let journal = Replay::new(run_id.to_string(), rows)
        .map_err(|problem| CliError::Failed(format!("run '{run_id}' cannot be replayed: {problem}")))?;
    let is_changed = changed.is_some();
    let source: Arc<str> = match changed {
        Some(source) => Arc::from(source),
        None => Arc::from(
            store
                .source(&run.source_sha256)
                .await
                .map_err(failed)?
                .ok_or_else(|| CliError::Failed("the run's source is no longer stored".into()))?,
        ),
    };
    let options = SandboxOptions { cache_dir, ..SandboxOptions::default() };
    let sandbox =
        Sandbox::new(&options).map_err(|e| CliError::Failed(format!("could not start the sandbox: {e:#}")))?;
    let flows =
        sandbox.describe(&source, &run.quotas).await.map_err(|e| CliError::Usage(format!("the source: {e}")))?;
    let info = pick_flow(&flows, Some(&run.flow)).cloned().map_err(|e| CliError::Usage(format!("the source {e}")))?;
    // A stored version's subflows are found in the library, as they were.
    let module = (run.version.is_none() || is_changed).then(|| ModuleFlows { source: source.clone(), flows });
    let env = RunEnv {
        // A replay is answered from the journal: it has nothing to call.
        services: Arc::new(NoServices),
        flows: Arc::new(StoredFlows { store: store.clone(), module }),
        narrow_services: None,
        journal: None,
        replay: Some(Arc::new(journal)),
    };
    let input = run.input_object();
    let (request, events) = RunRequest::new(source, &info, input, run.quotas.clone(), env);
    Ok((sandbox, request, events, run))
}
