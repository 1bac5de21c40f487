//! The records the store keeps, as the API serves them, and how rows map to them.

pub(crate) use crate::store::columns::{LOG_COLUMNS, RUN_COLUMNS, SPAN_COLUMNS};
use crate::store::records::RunRecord;
use crate::store::replay::SpanRow;
use crate::trace::{LogLine, LogStream, Span, SpanKind, Status};
use rusqlite::Row;

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

pub(crate) fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let run = RunRecord {
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
        node: row.get(14)?,
        trigger: parse_opt(row.get(15)?, 15)?.unwrap_or_default(),
        attempt: row.get(16)?,
        first_run_id: row.get::<_, Option<String>>(17)?.map_or_else(|| row.get(0), Ok)?,
        replay_of: None,
        durable: row.get(18)?,
        resumes: row.get(19)?,
        workspace: row.get(20)?,
    };
    Ok(RunRecord { replay_of: run.trigger.replay_of(), ..run })
}

/// A span and the seqs of its start and end events.
pub(crate) fn span_from_row(row: &Row<'_>) -> rusqlite::Result<SpanRow> {
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
