//! How PostgreSQL rows map to the store's records. The column lists are the
//! SQLite backend's, so a record reads the same from either.

use super::unsigned;
use crate::store::records::{RunRecord, StoredFlow, StoredService};
use crate::store::replay::SpanRow;
use crate::trace::{LogLine, LogStream, Span, SpanKind, Status};
use anyhow::{Context, Result};
use serde_json::Value;
use tokio_postgres::Row;

fn parse<T: serde::de::DeserializeOwned>(row: &Row, column: usize) -> Result<T> {
    let text: &str = row.try_get(column)?;
    serde_json::from_str(text).with_context(|| format!("read column {column} as JSON"))
}

fn parse_opt<T: serde::de::DeserializeOwned>(row: &Row, column: usize) -> Result<Option<T>> {
    let text: Option<&str> = row.try_get(column)?;
    text.map(|t| serde_json::from_str(t).with_context(|| format!("read column {column} as JSON"))).transpose()
}

/// A column holding one spelling of a `spelled!` enum.
fn spelled<T>(row: &Row, column: usize, parse: fn(&str) -> Option<T>) -> Result<T> {
    let text: &str = row.try_get(column)?;
    parse(text).ok_or_else(|| anyhow::anyhow!("column {column} holds the unknown value '{text}'"))
}

pub(super) fn status(row: &Row, column: usize) -> Result<Status> {
    spelled(row, column, Status::parse)
}

pub(super) use crate::store::columns::{LOG_COLUMNS, RUN_COLUMNS, SPAN_COLUMNS};

pub(super) fn run_from_row(row: &Row) -> Result<RunRecord> {
    let run = RunRecord {
        run_id: row.try_get(0)?,
        flow: row.try_get(1)?,
        version: row.try_get::<_, Option<i32>>(2)?.map(|v| unsigned(v.into(), "version")).transpose()?,
        source_sha256: row.try_get(3)?,
        status: status(row, 4)?,
        input: parse(row, 5)?,
        output: parse_opt(row, 6)?,
        error: parse_opt(row, 7)?,
        usage: parse_opt(row, 8)?,
        quotas: parse(row, 9)?,
        created_us: row.try_get(10)?,
        start_us: row.try_get(11)?,
        end_us: row.try_get(12)?,
        last_seq: unsigned(row.try_get(13)?, "last_seq")?,
        node: row.try_get(14)?,
        trigger: parse_opt(row, 15)?.unwrap_or_default(),
        attempt: unsigned(i64::from(row.try_get::<_, i32>(16)?), "attempt")?,
        first_run_id: row.try_get::<_, Option<String>>(17)?.unwrap_or_else(|| row.get(0)),
        replay_of: None,
        durable: row.try_get(18)?,
        resumes: unsigned(i64::from(row.try_get::<_, i32>(19)?), "resumes")?,
        workspace: row.try_get(20)?,
    };
    Ok(RunRecord { replay_of: run.trigger.replay_of(), ..run })
}

pub(super) fn span_from_row(row: &Row) -> Result<SpanRow> {
    let span = Span {
        run_id: row.try_get(0)?,
        span_id: unsigned(row.try_get(1)?, "span_id")?,
        parent_id: row.try_get::<_, Option<i64>>(2)?.map(|id| unsigned(id, "parent_id")).transpose()?,
        kind: spelled(row, 3, SpanKind::parse)?,
        name: row.try_get(4)?,
        status: status(row, 5)?,
        start_us: row.try_get(6)?,
        end_us: row.try_get(7)?,
        attrs: parse(row, 8)?,
        error: parse_opt(row, 9)?,
        line: row.try_get::<_, Option<i32>>(10)?.map(|line| unsigned(line.into(), "line")).transpose()?,
    };
    let end_seq = row.try_get::<_, Option<i64>>(12)?.map(|seq| unsigned(seq, "end_seq")).transpose()?;
    Ok((span, unsigned(row.try_get(11)?, "start_seq")?, end_seq))
}

pub(super) fn log_from_row(row: &Row) -> Result<LogLine> {
    Ok(LogLine {
        run_id: row.try_get(0)?,
        seq: unsigned(row.try_get(1)?, "seq")?,
        span_id: unsigned(row.try_get(2)?, "span_id")?,
        ts_us: row.try_get(3)?,
        stream: spelled(row, 4, LogStream::parse)?,
        text: row.try_get(5)?,
    })
}

pub(super) const FLOW_SELECT: &str = "SELECT f.name, f.version, s.text, f.source_sha256, f.info, f.created_us
     FROM flows f JOIN sources s ON s.sha256 = f.source_sha256";

pub(super) fn flow_from_row(row: &Row) -> Result<StoredFlow> {
    Ok(StoredFlow {
        name: row.try_get(0)?,
        version: unsigned(row.try_get::<_, i32>(1)?.into(), "version")?,
        source: row.try_get(2)?,
        source_sha256: row.try_get(3)?,
        info: parse(row, 4)?,
        created_us: row.try_get(5)?,
    })
}

pub(super) const SERVICE_COLUMNS: &str = "name, url, document, timeout_ms, created_us, headers";

pub(super) fn service_from_row(row: &Row) -> Result<StoredService> {
    let document: &str = row.try_get(2)?;
    Ok(StoredService {
        name: row.try_get(0)?,
        url: row.try_get(1)?,
        document: serde_json::from_str(document).unwrap_or(Value::Null),
        timeout_ms: unsigned(row.try_get(3)?, "timeout_ms")?,
        created_us: row.try_get(4)?,
        headers: parse(row, 5)?,
    })
}

/// Rows mapped in order; the first that does not map is the error.
pub(super) fn all<T>(rows: Vec<Row>, map: fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(map).collect()
}
