//! The columns of the run tables in the order both backends read them, so a
//! record maps from a row of either the same way.

pub(crate) const RUN_COLUMNS: &str = "run_id, flow, version, source_sha256, status, input, output, error, usage, quotas, created_us, start_us, end_us, last_seq, node, started_by, attempt, first_run_id, durable, resumes, workspace";

pub(crate) const SPAN_COLUMNS: &str =
    "run_id, span_id, parent_id, kind, name, status, start_us, end_us, attrs, error, line, start_seq, end_seq";

pub(crate) const LOG_COLUMNS: &str = "run_id, seq, span_id, ts_us, stream, text";
