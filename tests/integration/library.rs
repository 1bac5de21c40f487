//! The sandbox used as a library, as the server will: runs racing a cancel,
//! events through the sink, runs side by side.

use hero_logic::flowdef::FlowInfo;
use hero_logic::sandbox::{Quotas, RunEnv, RunReport, RunRequest, Sandbox, SandboxOptions};
use hero_logic::trace::{RunEvent, Status};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        let cache_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artefacts");
        // Warm through the binary first so only one process compiles.
        drop(super::support::hero_logic());
        Sandbox::new(&SandboxOptions { cache_dir: Some(cache_dir), ..SandboxOptions::default() }).unwrap()
    })
}

async fn describe_one(source: &str) -> FlowInfo {
    sandbox().describe(source, &Quotas::default()).await.unwrap().remove(0)
}

fn request(
    source: &str,
    info: &FlowInfo,
    cancel: CancellationToken,
) -> (RunRequest, mpsc::UnboundedReceiver<RunEvent>) {
    let input = info.check_input(&serde_json::json!({})).unwrap();
    let (request, events) = RunRequest::new(Arc::from(source), info, input, Quotas::default(), RunEnv::isolated());
    (request.with_cancel(cancel), events)
}

const SLEEPER: &str = r#"import time
from hero_logic import flow

@flow()
def sleeper():
    with flow.step("before"):
        pass
    with flow.step("waiting"):
        time.sleep(20)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_run_ends_cancelled_with_its_spans_closed_and_events_streamed_live() {
    let info = describe_one(SLEEPER).await;
    let cancel = CancellationToken::new();
    let (request, mut events) = request(SLEEPER, &info, cancel.clone());
    let run = tokio::spawn(async move { sandbox().run(request).await });

    // Events arrive while the run is still going: wait for "waiting" to open.
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap();
        let opened_waiting = matches!(&event, RunEvent::SpanStarted { span, .. } if span.name == "waiting");
        seen.push(event);
        if opened_waiting {
            break;
        }
    }
    assert!(!run.is_finished());
    cancel.cancel();
    let report: RunReport = run.await.unwrap();
    assert_eq!(report.status, Status::Cancelled);
    assert_eq!(report.error.as_ref().unwrap().kind, "Cancelled");
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    let seqs: Vec<u64> = seen.iter().map(RunEvent::seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "seq has no gaps");
    let ended: Vec<(String, Status)> = seen
        .iter()
        .filter_map(|e| match e {
            RunEvent::SpanEnded { span, .. } => Some((span.name.clone(), span.status)),
            _ => None,
        })
        .collect();
    assert_eq!(
        ended,
        vec![
            ("before".to_string(), Status::Ok),
            ("waiting".to_string(), Status::Cancelled),
            ("sleeper".to_string(), Status::Cancelled)
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_side_by_side_do_not_see_each_other() {
    // Each run stores a value in module state and reads it back: a fresh
    // instance per run means no run ever sees another's.
    let source = r#"from hero_logic import flow
import json

SEEN = []

@flow()
def isolated():
    SEEN.append(1)
    json.STOLEN = getattr(json, "STOLEN", 0) + 1
    return {"seen": len(SEEN), "stolen": json.STOLEN}
"#;
    let info = describe_one(source).await;
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let (request, _events) = request(source, &info, CancellationToken::new());
            tokio::spawn(async move { sandbox().run(request).await })
        })
        .collect();
    for run in runs {
        let report = run.await.unwrap();
        assert_eq!(report.status, Status::Ok, "{report:?}");
        assert_eq!(report.output, Some(serde_json::json!({"seen": 1, "stolen": 1})));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_source_is_described_once_and_a_failure_is_not_remembered() {
    // A sandbox of its own: other tests' instances would move the count.
    sandbox();
    let cache_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artefacts");
    let sandbox = Sandbox::new(&SandboxOptions { cache_dir: Some(cache_dir), ..SandboxOptions::default() }).unwrap();
    let source = "from hero_logic import flow\n\n@flow()\ndef described_once():\n    return 1\n";
    let first = sandbox.describe(source, &Quotas::default()).await.unwrap();
    let started = sandbox.instances_started();
    let again = sandbox.describe(source, &Quotas::default()).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(sandbox.instances_started(), started, "the second describe took an instance");

    let broken = "from hero_logic import flow\n\n@flow(\n";
    for _ in 0..2 {
        let before = sandbox.instances_started();
        assert!(sandbox.describe(broken, &Quotas::default()).await.is_err());
        assert!(sandbox.instances_started() > before, "a failed describe was answered from memory");
    }
}
