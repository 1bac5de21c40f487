//! The records the store keeps, as the API serves them, and how rows map to them.

use crate::flowdef::FlowInfo;
use crate::sandbox::{Quotas, Usage};
use crate::trace::{ErrorInfo, LogLine, LogStream, Span, SpanKind, Status};
use rusqlite::Row;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One run, whatever its state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub flow: String,
    /// The stored version that ran; None for source sent from the editor.
    pub version: Option<u32>,
    pub source_sha256: String,
    pub status: Status,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<ErrorInfo>,
    pub usage: Option<Usage>,
    pub quotas: Quotas,
    pub created_us: i64,
    pub start_us: Option<i64>,
    pub end_us: Option<i64>,
    /// The seq of the run's last event (`run_finished`), 0 while it runs.
    pub last_seq: u64,
}

/// One stored version of a flow.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredFlow {
    pub name: String,
    pub version: u32,
    pub source: String,
    pub source_sha256: String,
    pub info: FlowInfo,
    pub created_us: i64,
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, column: usize) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e)))
}

fn parse_opt<T: serde::de::DeserializeOwned>(text: Option<String>, column: usize) -> rusqlite::Result<Option<T>> {
    text.map(|t| parse(&t, column)).transpose()
}

/// A column holding one spelling of a `spelled!` enum.
fn spelled<T>(text: &str, column: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    parse(text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("unknown value '{text}'").into(),
        )
    })
}

pub(crate) fn status(text: &str, column: usize) -> rusqlite::Result<Status> {
    spelled(text, column, Status::parse)
}

pub(crate) const RUN_COLUMNS: &str = "run_id, flow, version, source_sha256, status, input, output, error, usage, quotas, created_us, start_us, end_us, last_seq";

pub(crate) fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        run_id: row.get(0)?,
        flow: row.get(1)?,
        version: row.get(2)?,
        source_sha256: row.get(3)?,
        status: status(&row.get::<_, String>(4)?, 4)?,
        input: parse(&row.get::<_, String>(5)?, 5)?,
        output: parse_opt(row.get(6)?, 6)?,
        error: parse_opt(row.get(7)?, 7)?,
        usage: parse_opt(row.get(8)?, 8)?,
        quotas: parse(&row.get::<_, String>(9)?, 9)?,
        created_us: row.get(10)?,
        start_us: row.get(11)?,
        end_us: row.get(12)?,
        last_seq: row.get(13)?,
    })
}

pub(crate) const SPAN_COLUMNS: &str =
    "run_id, span_id, parent_id, kind, name, status, start_us, end_us, attrs, error, line, start_seq, end_seq";

/// A span and the seqs of its start and end events.
pub(crate) fn span_from_row(row: &Row<'_>) -> rusqlite::Result<(Span, u64, Option<u64>)> {
    let span = Span {
        run_id: row.get(0)?,
        span_id: row.get(1)?,
        parent_id: row.get(2)?,
        kind: spelled(&row.get::<_, String>(3)?, 3, SpanKind::parse)?,
        name: row.get(4)?,
        status: status(&row.get::<_, String>(5)?, 5)?,
        start_us: row.get(6)?,
        end_us: row.get(7)?,
        attrs: parse(&row.get::<_, String>(8)?, 8)?,
        error: parse_opt(row.get(9)?, 9)?,
        line: row.get(10)?,
    };
    Ok((span, row.get(11)?, row.get(12)?))
}

pub(crate) const LOG_COLUMNS: &str = "run_id, seq, span_id, ts_us, stream, text";

pub(crate) fn log_from_row(row: &Row<'_>) -> rusqlite::Result<LogLine> {
    Ok(LogLine {
        run_id: row.get(0)?,
        seq: row.get(1)?,
        span_id: row.get(2)?,
        ts_us: row.get(3)?,
        stream: spelled(&row.get::<_, String>(4)?, 4, LogStream::parse)?,
        text: row.get(5)?,
    })
}
