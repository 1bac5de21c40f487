//! `hero_logic replay RUN_ID`: run an ended run again from its journal, in a
//! fresh sandbox, and print its tree — no service called, no sleep waited,
//! the original's clock and random values — to see what a run did without
//! calling anything again. `--source FILE` replays a changed module against
//! the journal instead. The replay is printed, not stored.

use super::services::{StoreArgs, open_store};
use super::{CliError, run::print_run};
use crate::library::StoredFlows;
use crate::replays::{ReplayRefused, plan};
use crate::sandbox::{NoServices, RunEnv, RunRequest, Sandbox, SandboxOptions};
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
    let options = SandboxOptions { cache_dir, ..SandboxOptions::default() };
    let sandbox =
        Sandbox::new(&options).map_err(|e| CliError::Failed(format!("could not start the sandbox: {e:#}")))?;
    let describe = async |source: &str, quotas: &_| sandbox.describe(source, quotas).await;
    let plan = plan(store, run_id, changed, describe).await.map_err(|refused| match refused {
        ReplayRefused::Unreadable(..) => CliError::Failed(refused.to_string()),
        ReplayRefused::Store(error) => CliError::Failed(format!("{error:#}")),
        ReplayRefused::Module(error) => CliError::Usage(format!("the source: {error}")),
        ReplayRefused::NoSuchRun(_) | ReplayRefused::NotEnded(..) | ReplayRefused::NoSuchFlow(_) => {
            CliError::Usage(refused.to_string())
        }
    })?;
    let env = RunEnv {
        // A replay is answered from the journal: it has nothing to call.
        services: Arc::new(NoServices),
        flows: Arc::new(StoredFlows { store: store.clone(), module: plan.module }),
        narrow_services: None,
        journal: None,
        replay: Some(Arc::new(plan.journal)),
        workspace: Arc::from(plan.run.workspace.as_str()),
    };
    let (request, events) =
        RunRequest::new(plan.source, &plan.info, plan.run.input_object(), plan.run.quotas.clone(), env);
    Ok((sandbox, request, events, plan.run))
}
