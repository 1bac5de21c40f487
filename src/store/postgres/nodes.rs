//! Nodes on one database: each holds a lease it renews; one whose lease
//! ran out (killed, powered off) has its unfinished runs ended
//! `interrupted` by whichever node notices first, as a single node does to
//! its own at restart. And the notices commits carry (`NOTIFY hero_logic`),
//! heard on one listening connection per node and fanned out in-process.

use super::PgStore;
use crate::trace::ErrorInfo;
use anyhow::{Context, Result};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

/// The channel every notice goes out on.
pub(super) const CHANNEL: &str = "hero_logic";

/// NOTIFY's payload limit is 8000 bytes; a batch's notices are cut below it.
const PAYLOAD_BYTES: usize = 7000;

/// What a commit on some node told the others.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// A run's events up to `seq` are committed.
    Events { run_id: String, seq: u64 },
    /// A run's record changed (created, started, finished, interrupted);
    /// `by`: the node whose writes changed it, when it was one node's own.
    Run { run_id: String, by: Option<String> },
    /// Someone asked for a run to be cancelled; its node does it.
    Cancel { run_id: String },
    /// A run joined the shared queue; a node with a free place claims it.
    Queued,
    /// The listening connection was lost and is back: notices may have been
    /// missed, so whoever follows something reads it again.
    Resync,
}

impl Notice {
    fn encode(&self) -> String {
        match self {
            Notice::Events { run_id, seq } => format!("e {seq} {run_id}"),
            Notice::Run { run_id, by: Some(node) } => format!("r {run_id} {node}"),
            Notice::Run { run_id, by: None } => format!("r {run_id}"),
            Notice::Cancel { run_id } => format!("c {run_id}"),
            Notice::Queued => "q".into(),
            Notice::Resync => "s".into(),
        }
    }

    fn decode(line: &str) -> Option<Notice> {
        let mut parts = line.splitn(3, ' ');
        match (parts.next()?, parts.next(), parts.next()) {
            ("e", Some(seq), Some(run_id)) => Some(Notice::Events { run_id: run_id.into(), seq: seq.parse().ok()? }),
            ("r", Some(run_id), by) => Some(Notice::Run { run_id: run_id.into(), by: by.map(str::to_string) }),
            ("c", Some(run_id), None) => Some(Notice::Cancel { run_id: run_id.into() }),
            ("q", None, None) => Some(Notice::Queued),
            _ => None,
        }
    }
}

/// Notices as NOTIFY payloads: one per line, as few payloads as fit.
pub(super) fn payloads(notices: impl Iterator<Item = Notice>) -> Vec<String> {
    let mut payloads = vec![String::new()];
    for notice in notices {
        let line = notice.encode();
        let last = payloads.last_mut().expect("never empty");
        if !last.is_empty() && last.len() + 1 + line.len() > PAYLOAD_BYTES {
            payloads.push(line);
        } else {
            if !last.is_empty() {
                last.push('\n');
            }
            last.push_str(&line);
        }
    }
    payloads.retain(|payload| !payload.is_empty());
    payloads
}

/// Send `notices` on `client` (within its transaction, if it is one: then
/// they go out at its commit), as few NOTIFY payloads as fit.
pub(super) async fn send(
    client: &impl deadpool_postgres::GenericClient,
    notices: impl IntoIterator<Item = Notice>,
) -> Result<()> {
    for payload in payloads(notices.into_iter()) {
        super::exec(client, "SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await?;
    }
    Ok(())
}

/// Every notice any node's commits carry, in commit order, for whoever in
/// this process subscribes.
pub struct NoticeFeed {
    sender: broadcast::Sender<Notice>,
}

impl NoticeFeed {
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.sender.subscribe()
    }
}

impl PgStore {
    /// Listen for notices until `stop`, reconnecting when the connection
    /// is lost (and then telling subscribers to read again).
    pub fn listen(&self, stop: CancellationToken) -> NoticeFeed {
        let (sender, _) = broadcast::channel(16 * 1024);
        let config = self.config.clone();
        let feed = sender.clone();
        tokio::spawn(async move {
            let mut first = true;
            while !stop.is_cancelled() {
                if let Err(error) = listen_once(&config, &feed, &stop, first).await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "listening for other nodes' notices failed; again in 1 s"
                    );
                }
                first = false;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.cancelled() => {}
                }
            }
        });
        NoticeFeed { sender }
    }

    /// Tell every node (this one too) something, at once.
    pub async fn notify(&self, notice: Notice) -> Result<()> {
        send(&self.client().await?, [notice]).await
    }

    /// Take the lease of node `name` for `lease`, at start; refused while
    /// another live process holds a lease under that name. A holder is
    /// live while its lease runs and it is connected to the database; one
    /// with no connection left that renewed since the database started (it
    /// died) gives way at once, any other is watched until it renews its
    /// lease (live: refused) or the lease runs out (dead or stopped: taken). Only what the database
    /// sees decides, never the process table, which a process in another
    /// PID namespace or on another host of the same name cannot read. The
    /// runs a replaced holder left unfinished end `interrupted` in the same
    /// transaction. Leases are timed by the database's clock, so the nodes'
    /// clocks need not agree.
    pub async fn take_lease(&self, name: &str, lease: Duration) -> Result<()> {
        // What this node's writer commits, it tells the others as this node's.
        let _ = self.node.set(name.to_string());
        let mut first_seen: Option<Holder> = None;
        loop {
            let Some(holder) = self.try_take_lease(name, lease).await? else { return Ok(()) };
            // This very process holds it (and is live, being here).
            let this_one = holder.instance == self.instance;
            match &first_seen {
                _ if this_one => anyhow::bail!("node '{name}' is held by a running process: this one"),
                None => first_seen = Some(holder),
                // It renewed its lease (or another process took the name):
                // a live process holds it.
                Some(seen) if *seen != holder => anyhow::bail!(
                    "node '{name}' is held by a running process (it renews its lease): give this one another --node"
                ),
                Some(_) => {}
            }
            tokio::time::sleep(WATCH_HOLDER).await;
        }
    }

    /// Take the name if no live process holds it; else the holder seen,
    /// still connected with its lease running.
    async fn try_take_lease(&self, name: &str, lease: Duration) -> Result<Option<Holder>> {
        let lease_us = lease.as_micros() as i64;
        let (host, pid) = (this_host(), i64::from(std::process::id()));
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // A holder with no connection is dead only if it renewed since the
        // database started: a live one cut off by a restart reconnects
        // within a third of its lease, so that one is watched instead. A
        // holder from before instances were kept ('') is watched too.
        let holder = super::row(
            &tx,
            &format!(
                "SELECT instance, lease_until_us, lease_until_us < {NOW_US},
                        instance = '' OR EXISTS (SELECT 1 FROM pg_stat_activity
                                                 WHERE application_name = 'hero_logic/' || nodes.instance)
                        OR renewed_us < (extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint
                 FROM nodes WHERE name = $1 FOR UPDATE"
            ),
            &[&name],
        )
        .await?;
        let holder = holder.map(|row| {
            let seen = Holder { instance: row.get(0), lease_until_us: row.get(1) };
            let (expired, may_be_live): (bool, bool) = (row.get(2), row.get(3));
            (seen, expired || !may_be_live)
        });
        if let Some((seen, false)) = holder {
            return Ok(Some(seen));
        }
        // Replaces only the holder seen above: a process that inserted the
        // name meanwhile (none was seen) keeps it.
        let seen_instance = holder.map_or(String::new(), |(seen, _)| seen.instance);
        let taken = super::exec(
            &tx,
            &format!(
                "INSERT INTO nodes (name, started_us, lease_until_us, host, pid, instance, renewed_us)
                 VALUES ($1, {NOW_US}, {NOW_US} + $2, $3, $4, $5, {NOW_US})
                 ON CONFLICT (name) DO UPDATE SET started_us = excluded.started_us,
                    lease_until_us = excluded.lease_until_us, host = $3, pid = $4, instance = $5,
                    renewed_us = excluded.renewed_us
                 WHERE nodes.instance = $6"
            ),
            &[&name, &lease_us, &host, &pid, &self.instance, &seen_instance],
        )
        .await?;
        if taken == 0 {
            anyhow::bail!(
                "node '{name}' was taken by another process at the same moment: give this one another --node"
            );
        }
        // A process that ran under this name before and died: its runs end
        // now rather than when its lease would have.
        interrupt_runs(&tx, &[name.to_string()], Some(name)).await?;
        tx.commit().await?;
        Ok(None)
    }

    /// Renew this node's lease: false when it is gone (another node took
    /// this one for dead and ended its runs, or another process took the
    /// name); an error when the database could not be asked.
    pub async fn renew_lease(&self, name: &str, lease: Duration) -> Result<bool> {
        let client = self.client().await?;
        let renewed = super::exec(
            &client,
            &format!(
                "UPDATE nodes SET lease_until_us = {NOW_US} + $2, renewed_us = {NOW_US} WHERE name = $1 AND instance = $3"
            ),
            &[&name, &(lease.as_micros() as i64), &self.instance],
        )
        .await?;
        Ok(renewed > 0)
    }

    /// Hold the name again after losing the lease, without ending anything:
    /// the runs this node had were ended by whoever swept it, and those it
    /// starts from now on are under a live lease again.
    pub async fn retake_lease(&self, name: &str, lease: Duration) -> Result<()> {
        let client = self.client().await?;
        let taken = super::exec(
            &client,
            &format!(
                "INSERT INTO nodes (name, started_us, lease_until_us, host, pid, instance, renewed_us)
                 VALUES ($1, {NOW_US}, {NOW_US} + $2, $3, $4, $5, {NOW_US})
                 ON CONFLICT (name) DO UPDATE SET lease_until_us = excluded.lease_until_us, host = $3, pid = $4,
                    instance = $5, renewed_us = excluded.renewed_us
                 WHERE nodes.lease_until_us < {NOW_US} OR nodes.instance = $5"
            ),
            &[&name, &(lease.as_micros() as i64), &this_host(), &i64::from(std::process::id()), &self.instance],
        )
        .await?;
        if taken == 0 {
            anyhow::bail!("node '{name}' is now held by another process");
        }
        Ok(())
    }

    /// Give the lease back at a clean shutdown, once the node's runs are
    /// stored; any it could not store end `interrupted` with it.
    pub async fn drop_lease(&self, name: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        super::exec(&tx, "DELETE FROM nodes WHERE name = $1", &[&name]).await?;
        // Its durable runs stay, for another node (or this one's next start).
        interrupt_runs(&tx, &[name.to_string()], None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// End the runs of every node whose lease ran out, and forget the node;
    /// and the unfinished runs of nodes that are gone without a trace (no
    /// lease at all). Each in one transaction with the lease it ends, so a
    /// sweeper that dies half-way leaves the lease for the next one. Their
    /// durable runs become this node's, to resume. Returns the nodes and how
    /// many runs each had interrupted, and the durable runs taken.
    pub async fn sweep_expired(&self) -> Result<Swept> {
        let taker = self.node.get().cloned();
        // Never this node itself: one that was paused past its lease renews
        // it when it runs again (unless another node swept it meanwhile).
        let me = taker.clone().unwrap_or_default();
        let mut client = self.client().await?;
        let mut swept = Swept::default();
        loop {
            let tx = client.transaction().await?;
            // One expired node at a time, locked so that one sweeper ends it.
            let expired = super::row(
                &tx,
                &format!(
                    "DELETE FROM nodes WHERE name = (SELECT name FROM nodes WHERE lease_until_us < {NOW_US} AND name <> $1
                                                     ORDER BY name LIMIT 1 FOR UPDATE SKIP LOCKED)
                     RETURNING name"
                ),
                &[&me],
            )
            .await?;
            let Some(expired) = expired else { break };
            let name: String = expired.get(0);
            let (runs, taken) = interrupt_runs(&tx, std::slice::from_ref(&name), taker.as_deref()).await?;
            tx.commit().await?;
            swept.nodes.push((name, runs));
            swept.durable.extend(taken);
        }
        let tx = client.transaction().await?;
        let orphans: Vec<String> = super::rows(
            &tx,
            "SELECT DISTINCT node FROM runs
             WHERE status IN ('queued', 'running') AND node IS NOT NULL AND node <> $1
               AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.name = runs.node)",
            &[&me],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
        if !orphans.is_empty() {
            let (runs, taken) = interrupt_runs(&tx, &orphans, taker.as_deref()).await?;
            if runs > 0 {
                tracing::warn!(nodes = ?orphans, runs, "unfinished runs of nodes without a lease were ended");
            }
            swept.durable.extend(taken);
        }
        tx.commit().await?;
        Ok(swept)
    }
}

/// What a sweep found: the nodes whose lease ran out, with how many runs
/// each had interrupted, and the durable runs this node took to resume.
#[derive(Debug, Default)]
pub struct Swept {
    pub nodes: Vec<(String, u64)>,
    pub durable: Vec<String>,
}

/// The database's clock, in µs: every lease is timed by it.
const NOW_US: &str = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

/// End the unfinished runs of `nodes` `interrupted`, with their open spans
/// closed, numbering the closing events as replay numbers them, and tell
/// every node. Their durable runs go to node `taker` instead, to resume
/// (with no taker they stay, for whichever node sweeps them next). Returns
/// how many runs were interrupted, and the durable runs taken.
async fn interrupt_runs(
    tx: &deadpool_postgres::Transaction<'_>,
    nodes: &[String],
    taker: Option<&str>,
) -> Result<(u64, Vec<String>)> {
    // A batch of the gone node still being written holds its durable runs'
    // rows; a sweep does not wait long for it (its lease renewal is next),
    // it fails and the next sweep tries again.
    tx.batch_execute("SET LOCAL lock_timeout = '500ms'").await?;
    let taken: Vec<String> = match taker {
        Some(taker) => super::rows(
            tx,
            "UPDATE runs SET node = $2 WHERE status IN ('queued', 'running') AND durable AND node = ANY($1)
             RETURNING run_id",
            &[&nodes, &taker],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect(),
        None => Vec::new(),
    };
    let now = crate::trace::now_us();
    let error = ErrorInfo::interrupted().to_json_string();
    super::exec(
        tx,
        "UPDATE runs r SET last_seq =
             GREATEST(COALESCE((SELECT MAX(start_seq) FROM spans s WHERE s.run_id = r.run_id), 0),
                      COALESCE((SELECT MAX(end_seq) FROM spans s WHERE s.run_id = r.run_id), 0),
                      COALESCE((SELECT MAX(seq) FROM logs l WHERE l.run_id = r.run_id), 0))
             + (SELECT COUNT(*) FROM spans s WHERE s.run_id = r.run_id AND s.status = 'running') + 1
         WHERE status IN ('queued', 'running') AND NOT durable AND node = ANY($1)",
        &[&nodes],
    )
    .await?;
    super::exec(
        tx,
        "UPDATE spans SET status = 'interrupted', end_us = GREATEST(start_us, $2), error = $3
         WHERE status = 'running'
           AND run_id IN (SELECT run_id FROM runs
                          WHERE status IN ('queued', 'running') AND NOT durable AND node = ANY($1))",
        &[&nodes, &now, &error],
    )
    .await?;
    let runs: Vec<String> = super::rows(
        tx,
        "UPDATE runs SET status = 'interrupted', end_us = $2, error = $3
         WHERE status IN ('queued', 'running') AND NOT durable AND node = ANY($1) RETURNING run_id",
        &[&nodes, &now, &error],
    )
    .await?
    .iter()
    .map(|row| row.get(0))
    .collect();
    send(tx, runs.iter().chain(&taken).map(|run_id| Notice::Run { run_id: run_id.clone(), by: None })).await?;
    if !runs.is_empty() {
        tracing::warn!(nodes = ?nodes, runs = runs.len(), "runs of a node that is gone were marked interrupted");
    }
    if !taken.is_empty() {
        tracing::warn!(nodes = ?nodes, taker, runs = taken.len(), "durable runs a node left unfinished are taken to resume");
    }
    Ok((runs.len() as u64, taken))
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|name| name.trim().to_string()).unwrap_or_default()
}

/// How often a process that wants a node's name looks at a holder that is
/// still connected, for its next renewal or the end of its lease.
const WATCH_HOLDER: Duration = Duration::from_millis(100);

/// A live-looking holder of a node's name, as last seen: a renewal changes it.
#[derive(Debug, PartialEq)]
struct Holder {
    instance: String,
    lease_until_us: i64,
}

async fn listen_once(
    config: &tokio_postgres::Config,
    feed: &broadcast::Sender<Notice>,
    stop: &CancellationToken,
    first: bool,
) -> Result<()> {
    let (client, mut connection) = config.connect(NoTls).await.context("connect to listen")?;
    let (messages_tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            if messages_tx.send(message).is_err() {
                break;
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await.context("LISTEN")?;
    if !first {
        let _ = feed.send(Notice::Resync);
    }
    let result = loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(Ok(AsyncMessage::Notification(notification))) => {
                    for line in notification.payload().lines() {
                        if let Some(notice) = Notice::decode(line) {
                            let _ = feed.send(notice);
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => break Err(error.into()),
                None => break Err(anyhow::anyhow!("the listening connection closed")),
            },
            _ = stop.cancelled() => break Ok(()),
        }
    };
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_travel_as_lines_in_payloads_under_the_limit() {
        let notices: Vec<Notice> = (0..2000)
            .map(|i| {
                if i % 2 == 0 {
                    Notice::Events { run_id: format!("run-{i}"), seq: i }
                } else {
                    Notice::Run { run_id: format!("run-{i}"), by: None }
                }
            })
            .collect();
        let payloads = payloads(notices.clone().into_iter());
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= PAYLOAD_BYTES));
        let decoded: Vec<Notice> = payloads.iter().flat_map(|p| p.lines().filter_map(Notice::decode)).collect();
        assert_eq!(decoded, notices);
    }
}
