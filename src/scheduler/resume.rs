//! Resuming durable runs (`@flow(durable=True)`) that a process died with:
//! at this node's start, every one it is to resume (with SQLite, all of
//! them; with PostgreSQL, its own), and with PostgreSQL those of nodes
//! whose lease ran out, once this node's sweep takes them.
//!
//! A resumed run keeps its id. It runs again from the start in a fresh
//! sandbox, answered from its own journal wherever the journal holds the
//! answer (no service is called again, sleeps do not wait), then live from
//! the first place the journal lacks; its recorder leaves out what the
//! store holds already, so its tree goes on where it stopped.

use super::{Scheduler, StartRun};
use crate::sandbox::Replay;
use crate::store::{RunRecord, Write};
use crate::stream::StreamMessage;
use crate::trace::{ErrorInfo, Recorder, RunEvent, Status, now_us};
use anyhow::{Context, Result};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Stored events read per page while gathering a resumed run's tree.
const EVENTS_PER_PAGE: usize = 4096;

impl Scheduler {
    /// Resume every unfinished durable run this node is to resume; how many.
    pub async fn resume_left(self: &Arc<Self>) -> usize {
        let run_ids = match self.store.durable_runs(&self.config.node).await {
            Ok(run_ids) => run_ids,
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "looking for durable runs to resume failed");
                return 0;
            }
        };
        for run_id in &run_ids {
            self.resume_by_id(run_id).await;
        }
        run_ids.len()
    }

    /// Resume durable run `run_id`, unless it is going on here already or
    /// is no longer unfinished. A failure is logged; the run stays, for the
    /// next start or another node.
    pub async fn resume_by_id(self: &Arc<Self>, run_id: &str) {
        if let Err(error) = self.resume(run_id).await {
            tracing::error!(run_id, error = format!("{error:#}"), "resuming a durable run failed");
        }
    }

    async fn resume(self: &Arc<Self>, run_id: &str) -> Result<()> {
        if self.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        // Taken here at once, so a start and a sweep that both find the run
        // resume it once; a cancel meanwhile lands on this token.
        {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            if active.contains_key(run_id) {
                return Ok(());
            }
            active.insert(run_id.to_string(), Default::default());
        }
        let prepared = self.prepare_resume(run_id).await;
        match prepared {
            Ok(Some((run, start))) => {
                let (done, _) = oneshot::channel();
                let counted = self.count_waiting(start.client);
                self.start_here(run, start, counted, done);
                Ok(())
            }
            Ok(None) | Err(_) => {
                self.active.lock().unwrap_or_else(|p| p.into_inner()).remove(run_id);
                prepared.map(|_| ())
            }
        }
    }

    /// The resumed run's record and start; None when it is not to be resumed.
    async fn prepare_resume(&self, run_id: &str) -> Result<Option<(RunRecord, StartRun)>> {
        let Some(launch) = self.store.resume_launch(run_id, &self.config.node).await? else { return Ok(None) };
        let mut run = self.store.run(run_id).await?.context("the run is gone")?;
        // The module it ran, even when its flow was removed from the
        // library meanwhile: a run going on is finished.
        let Some(source) = self.store.source(&run.source_sha256).await? else {
            self.end_unresumable(run, "its flow's source is gone").await?;
            return Ok(None);
        };
        let rows = self.store.journal(run_id).await?;
        let rows = rows.into_iter().map(|row| (row.stream, row.index, row.entry)).collect();
        let journal = match Replay::new(run_id.to_string(), rows) {
            Ok(journal) => journal.resuming(),
            Err(problem) => {
                self.end_unresumable(run, &format!("its journal cannot be read: {problem}")).await?;
                return Ok(None);
            }
        };
        let earlier = self.stored_events(run_id).await?;
        tracing::info!(run_id, resumes = run.resumes, stored_events = earlier.len(), "resuming a durable run");
        let mut start = StartRun::from_stored(&run, launch, Arc::from(source));
        start.replay = Some(Arc::new(journal));
        start.earlier = earlier;
        // A run that had not started when its process died just starts now.
        if run.status == Status::Running {
            self.metrics.runs_resumed.inc();
        }
        run.node = Some(self.config.node.clone());
        run.status = Status::Queued;
        Ok(Some((run, start)))
    }

    /// Every event the store holds of run `run_id`, in seq order.
    async fn stored_events(&self, run_id: &str) -> Result<Vec<RunEvent>> {
        let mut events = Vec::new();
        loop {
            let after = events.last().map_or(0, RunEvent::seq);
            let Some((_, page)) = self.store.replay_page(run_id, after, EVENTS_PER_PAGE).await? else { break };
            let full = page.len() == EVENTS_PER_PAGE;
            events.extend(page);
            if !full {
                break;
            }
        }
        Ok(events)
    }

    /// A durable run that cannot be resumed ends `interrupted`, saying why,
    /// with the spans it left open closed as a crash's are.
    async fn end_unresumable(&self, mut run: RunRecord, why: &str) -> Result<()> {
        tracing::warn!(run_id = run.run_id, why, "a durable run cannot be resumed; it ends interrupted");
        let error = ErrorInfo::new("Interrupted", format!("the server stopped while the run was going on, and {why}"));
        let earlier = self.stored_events(&run.run_id).await?;
        let mut last_seq = earlier.last().map_or(0, RunEvent::seq);
        for event in first_life_closed(&run.run_id, &earlier, Status::Interrupted, &error) {
            if let RunEvent::SpanEnded { span, seq } = event {
                last_seq = seq;
                self.store.write(Write::SpanEnded { span, seq, publish: None });
            }
        }
        run.status = Status::Interrupted;
        run.error = Some(error);
        run.end_us = Some(now_us());
        run.last_seq = last_seq + 1;
        let (stored, committed) = oneshot::channel();
        self.store.write(Write::RunFinished { run: Box::new(run.clone()), stored: Some(stored), retry: None });
        let _ = committed.await;
        self.bus.announce(&run.workspace, StreamMessage::RunListed(&run).to_text());
        Ok(())
    }
}

/// The events that close the spans a durable run's first life left open
/// (stored as `earlier`), innermost first, for a resume that ends before
/// its run goes on: cancelled while it waited for a worker, or unable to
/// be resumed at all.
pub(super) fn first_life_closed(
    run_id: &str,
    earlier: &[RunEvent],
    status: Status,
    error: &ErrorInfo,
) -> Vec<RunEvent> {
    let (sink, mut closing) = tokio::sync::mpsc::unbounded_channel();
    let mut recorder = Recorder::resuming(run_id.to_string(), sink, earlier);
    recorder.close_left_behind(status, Some(error));
    drop(recorder);
    std::iter::from_fn(|| closing.try_recv().ok()).collect()
}
