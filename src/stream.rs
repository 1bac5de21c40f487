//! The messages the two WebSockets send, in one place: what a run's watcher
//! gets on `/api/runs/{id}/events` and what a run list gets on
//! `/api/events`. Each is a JSON object whose `type` names it; `TABLE`
//! documents them, and the table in docs/server-and-api.md is checked
//! against it.

use crate::store::RunRecord;
use crate::trace::RunEvent;
use serde::Serialize;
use std::sync::Arc;

pub enum StreamMessage<'a> {
    /// `span_started`, `span_ended` or `log`: one event of a run, with its seq.
    Event(&'a RunEvent),
    /// The last message of a run's stream: the stored run, with the seq after
    /// its last event.
    RunFinished(&'a RunRecord),
    /// For run lists: a run was accepted, started, or finished and stored.
    RunQueued(&'a RunRecord),
    RunStarted(&'a RunRecord),
    RunListed(&'a RunRecord),
    /// For run lists: this watcher missed `missed` messages; reload the list.
    Lagged {
        missed: u64,
    },
}

/// `(stream, type, fields, when)` for every message: the table in the docs.
pub const TABLE: &[(&str, &str, &str, &str)] = &[
    ("run", "span_started", "`seq`, the span", "a span opened"),
    ("run", "span_ended", "`seq`, the span with its status, end, attributes and error", "a span closed"),
    ("run", "log", "`seq`, `span_id`, `ts_us`, `stream`, `text`", "a line of output or `flow.log`"),
    ("run", "run_finished", "`seq`, the run (status, output, error, usage, ...)", "last, once the run is stored"),
    ("list", "run_queued", "`run`", "a run was accepted"),
    ("list", "run_started", "`run`", "a run started"),
    ("list", "run_finished", "`run`", "a run finished and is stored"),
    ("list", "lagged", "`missed`, `message`", "this watcher fell behind; reload the list"),
];

/// `{"type", "seq", ...the run}`
#[derive(Serialize)]
struct Finished<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    #[serde(flatten)]
    run: &'a RunRecord,
}

/// `{"type", "run"}`
#[derive(Serialize)]
struct Listed<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    run: &'a RunRecord,
}

#[derive(Serialize)]
struct Lagged {
    #[serde(rename = "type")]
    kind: &'static str,
    missed: u64,
    message: &'static str,
}

impl StreamMessage<'_> {
    /// The message as it is sent: JSON text, shared by every watcher.
    pub fn to_text(&self) -> Arc<str> {
        let listed = |kind, run| serde_json::to_string(&Listed { kind, run });
        let text = match self {
            StreamMessage::Event(event) => serde_json::to_string(event),
            StreamMessage::RunFinished(run) => {
                serde_json::to_string(&Finished { kind: "run_finished", seq: run.last_seq, run })
            }
            StreamMessage::RunQueued(run) => listed("run_queued", run),
            StreamMessage::RunStarted(run) => listed("run_started", run),
            StreamMessage::RunListed(run) => listed("run_finished", run),
            StreamMessage::Lagged { missed } => {
                serde_json::to_string(&Lagged { kind: "lagged", missed: *missed, message: "reload the run list" })
            }
        };
        Arc::from(text.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Quotas;
    use crate::trace::{LogLine, LogStream, Status};
    use serde_json::{Value, json};

    fn run() -> RunRecord {
        RunRecord {
            run_id: "r1".into(),
            flow: "greet".into(),
            version: Some(1),
            source_sha256: "00".into(),
            status: Status::Ok,
            input: json!({}),
            output: Some(json!("hi")),
            error: None,
            usage: None,
            quotas: Quotas::default(),
            created_us: 1,
            start_us: Some(2),
            end_us: Some(3),
            last_seq: 7,
            node: Some("n1".into()),
            trigger: Default::default(),
            attempt: 1,
            first_run_id: "r1".into(),
            replay_of: None,
            durable: false,
            resumes: 0,
            workspace: "default".into(),
        }
    }

    fn sent(message: StreamMessage<'_>) -> Value {
        serde_json::from_str(&message.to_text()).unwrap()
    }

    #[test]
    fn every_message_has_the_type_and_fields_the_table_gives() {
        let run = run();
        let log = RunEvent::Log(LogLine {
            run_id: "r1".into(),
            span_id: 1,
            seq: 3,
            ts_us: 5,
            stream: LogStream::Stdout,
            text: "hello".into(),
        });
        let messages = [
            ("run", sent(StreamMessage::Event(&log))),
            ("run", sent(StreamMessage::RunFinished(&run))),
            ("list", sent(StreamMessage::RunQueued(&run))),
            ("list", sent(StreamMessage::RunStarted(&run))),
            ("list", sent(StreamMessage::RunListed(&run))),
            ("list", sent(StreamMessage::Lagged { missed: 4 })),
        ];
        for (stream, message) in &messages {
            let kind = message["type"].as_str().unwrap();
            assert!(TABLE.iter().any(|row| (row.0, row.1) == (*stream, kind)), "{stream} {kind} is in the table");
        }
        assert_eq!(messages[1].1["seq"], 7);
        assert_eq!(messages[1].1["status"], "ok", "the run's fields beside type and seq");
        assert_eq!(messages[2].1["run"]["run_id"], "r1");
        assert_eq!(messages[5].1, json!({"type": "lagged", "missed": 4, "message": "reload the run list"}));
    }

    #[test]
    fn the_docs_list_every_message() {
        let docs = crate::user_docs::text();
        for (stream, kind, fields, when) in TABLE {
            let row = format!("| {stream} | `{kind}` | {fields} | {when} |");
            assert!(docs.contains(&row), "neither README.md nor docs/*.md has the row:\n{row}");
        }
    }
}
