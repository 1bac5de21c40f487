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
        let client = self.client().await?;
        for payload in payloads(std::iter::once(notice)) {
            super::exec(&client, "SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await?;
        }
        Ok(())
    }

    /// Take the lease of node `name` for `lease`; refused while another
    /// live process holds a lease under that name. A holder whose lease ran
    /// out, or a dead process on this same host, gives way at once.
    pub async fn take_lease(&self, name: &str, lease: Duration) -> Result<()> {
        // What this node's writer commits, it tells the others as this node's.
        let _ = self.node.set(name.to_string());
        let now = crate::trace::now_us();
        let until = now + lease.as_micros() as i64;
        let (host, pid) = (this_host(), i64::from(std::process::id()));
        let client = self.client().await?;
        let holder = super::row(&client, "SELECT host, pid, lease_until_us FROM nodes WHERE name = $1", &[&name])
            .await?
            .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)));
        // The holder this process may replace: none, one whose lease ran
        // out, or a process of this host that no longer exists.
        let replaceable = match &holder {
            None => true,
            Some((_, _, lease_until)) if *lease_until < now => true,
            Some((holder_host, holder_pid, _)) => {
                *holder_host == host && *holder_pid != pid && !process_exists(*holder_pid)
            }
        };
        if !replaceable {
            anyhow::bail!(
                "node '{name}' is held by a running process (its lease has not run out): give this one another --node"
            );
        }
        let (old_host, old_pid) = holder.map_or((String::new(), 0), |(h, p, _)| (h, p));
        let taken = super::exec(
            &client,
            "INSERT INTO nodes (name, started_us, lease_until_us, host, pid) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET started_us = $2, lease_until_us = $3, host = $4, pid = $5
                 WHERE nodes.host = $6 AND nodes.pid = $7",
            &[&name, &now, &until, &host, &pid, &old_host, &old_pid],
        )
        .await?;
        if taken == 0 {
            anyhow::bail!(
                "node '{name}' was taken by another process at the same moment: give this one another --node"
            );
        }
        // A process that ran under this name before and died: its runs end
        // now rather than when its lease would have.
        self.interrupt_runs_of(name).await?;
        Ok(())
    }

    /// Renew this node's lease; an error when another process took it over
    /// (this node was thought dead).
    pub async fn renew_lease(&self, name: &str, lease: Duration) -> Result<()> {
        let until = crate::trace::now_us() + lease.as_micros() as i64;
        let client = self.client().await?;
        let renewed =
            super::exec(&client, "UPDATE nodes SET lease_until_us = $2 WHERE name = $1", &[&name, &until]).await?;
        if renewed == 0 {
            anyhow::bail!("node '{name}' lost its lease: another node ended its runs");
        }
        Ok(())
    }

    /// Give the lease back at a clean shutdown, once the node's runs are stored.
    pub async fn drop_lease(&self, name: &str) -> Result<()> {
        self.client().await?.execute("DELETE FROM nodes WHERE name = $1", &[&name]).await?;
        Ok(())
    }

    /// End the runs of every node whose lease ran out, and forget the node.
    /// Returns the nodes and how many runs each had in hand.
    pub async fn sweep_expired(&self) -> Result<Vec<(String, u64)>> {
        let now = crate::trace::now_us();
        let expired: Vec<String> = self
            .client()
            .await?
            .query("SELECT name FROM nodes WHERE lease_until_us < $1", &[&now])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let mut swept = Vec::new();
        for name in expired {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            // Whoever deletes the row ends the runs; a node sweeping at the
            // same moment finds nothing to delete.
            let gone =
                super::exec(&tx, "DELETE FROM nodes WHERE name = $1 AND lease_until_us < $2", &[&name, &now]).await?;
            tx.commit().await?;
            if gone == 1 {
                swept.push((name.clone(), self.interrupt_runs_of(&name).await?));
            }
        }
        Ok(swept)
    }

    /// End a node's unfinished runs `interrupted`, with their open spans
    /// closed, numbering the closing events as replay numbers them.
    async fn interrupt_runs_of(&self, node: &str) -> Result<u64> {
        let now = crate::trace::now_us();
        let error = ErrorInfo::interrupted().to_json_string();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        super::exec(
            &tx,
            "UPDATE runs r SET last_seq =
                 GREATEST(COALESCE((SELECT MAX(start_seq) FROM spans s WHERE s.run_id = r.run_id), 0),
                          COALESCE((SELECT MAX(end_seq) FROM spans s WHERE s.run_id = r.run_id), 0),
                          COALESCE((SELECT MAX(seq) FROM logs l WHERE l.run_id = r.run_id), 0))
                 + (SELECT COUNT(*) FROM spans s WHERE s.run_id = r.run_id AND s.status = 'running') + 1
             WHERE status IN ('queued', 'running') AND node = $1",
            &[&node],
        )
        .await?;
        super::exec(
            &tx,
            "UPDATE spans SET status = 'interrupted', end_us = GREATEST(start_us, $2), error = $3
             WHERE status = 'running'
               AND run_id IN (SELECT run_id FROM runs WHERE status IN ('queued', 'running') AND node = $1)",
            &[&node, &now, &error],
        )
        .await?;
        let runs: Vec<String> = super::rows(
            &tx,
            "UPDATE runs SET status = 'interrupted', end_us = $2, error = $3
                 WHERE status IN ('queued', 'running') AND node = $1 RETURNING run_id",
            &[&node, &now, &error],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
        for payload in payloads(runs.iter().map(|run_id| Notice::Run { run_id: run_id.clone(), by: None })) {
            super::exec(&tx, "SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await?;
        }
        tx.commit().await?;
        if !runs.is_empty() {
            tracing::warn!(node, runs = runs.len(), "runs of a node that is gone were marked interrupted");
        }
        Ok(runs.len() as u64)
    }
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|name| name.trim().to_string()).unwrap_or_default()
}

fn process_exists(pid: i64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
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
