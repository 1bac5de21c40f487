//! The PostgreSQL schema, as numbered migrations applied in order at start.
//! Nodes that start at once take turns: each migrates under a session-level
//! advisory lock, so one applies a step and the others find it applied.

use anyhow::Result;
use deadpool_postgres::Object;

/// The advisory lock key migrations are taken under ("hero" in ASCII, then 1).
const MIGRATION_LOCK: i64 = 0x6865_726f_0001;

const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite schema holds after its 8th step, in one go,
    // and the nodes' leases. JSON is kept as text, as it was written, so
    // key order (which `jsonb` would not keep) survives.
    "
    CREATE TABLE sources (
        sha256 TEXT PRIMARY KEY,
        text   TEXT NOT NULL
    );

    CREATE TABLE flows (
        name          TEXT NOT NULL,
        version       INTEGER NOT NULL,
        source_sha256 TEXT NOT NULL REFERENCES sources(sha256),
        info          TEXT NOT NULL,
        created_us    BIGINT NOT NULL,
        saved_by      TEXT,
        PRIMARY KEY (name, version)
    );
    CREATE INDEX flows_by_source ON flows (source_sha256);

    CREATE TABLE runs (
        run_id        TEXT PRIMARY KEY,
        flow          TEXT NOT NULL,
        version       INTEGER,
        source_sha256 TEXT NOT NULL REFERENCES sources(sha256),
        status        TEXT NOT NULL,
        input         TEXT NOT NULL,
        output        TEXT,
        error         TEXT,
        usage         TEXT,
        quotas        TEXT NOT NULL,
        created_us    BIGINT NOT NULL,
        start_us      BIGINT,
        end_us        BIGINT,
        last_seq      BIGINT NOT NULL DEFAULT 0,
        -- The node executing the run; NULL while it waits in the shared
        -- queue, where `launch` says how to start it.
        node          TEXT,
        launch        TEXT
    );
    CREATE INDEX runs_waiting ON runs (created_us, run_id) WHERE status = 'queued' AND node IS NULL;
    CREATE INDEX runs_by_created ON runs (created_us DESC);
    CREATE INDEX runs_by_flow ON runs (flow, created_us DESC);
    CREATE INDEX runs_by_status ON runs (status, created_us DESC);
    CREATE INDEX runs_unfinished_by_node ON runs (node) WHERE status IN ('queued', 'running');

    CREATE TABLE spans (
        run_id    TEXT NOT NULL,
        span_id   BIGINT NOT NULL,
        parent_id BIGINT,
        kind      TEXT NOT NULL,
        name      TEXT NOT NULL,
        status    TEXT NOT NULL,
        start_us  BIGINT NOT NULL,
        end_us    BIGINT,
        attrs     TEXT NOT NULL,
        error     TEXT,
        line      INTEGER,
        start_seq BIGINT NOT NULL,
        end_seq   BIGINT,
        PRIMARY KEY (run_id, span_id)
    );
    CREATE INDEX spans_by_subflow ON spans (name, start_us) WHERE kind = 'subflow';
    -- Watchers on other nodes read a live run's new events by seq, a page
    -- at a time: without these, each page sorts every span of the run.
    CREATE INDEX spans_by_start_seq ON spans (run_id, start_seq);
    CREATE INDEX spans_by_end_seq ON spans (run_id, end_seq) WHERE end_seq IS NOT NULL;

    CREATE TABLE logs (
        run_id  TEXT NOT NULL,
        seq     BIGINT NOT NULL,
        span_id BIGINT NOT NULL,
        ts_us   BIGINT NOT NULL,
        stream  TEXT NOT NULL,
        text    TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );

    CREATE TABLE services (
        name       TEXT PRIMARY KEY,
        url        TEXT NOT NULL,
        document   TEXT NOT NULL,
        timeout_ms BIGINT NOT NULL,
        created_us BIGINT NOT NULL
    );

    CREATE TABLE kv (
        flow       TEXT NOT NULL,
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,
        updated_us BIGINT NOT NULL,
        PRIMARY KEY (flow, key)
    );
    CREATE TABLE kv_usage (
        flow  TEXT PRIMARY KEY,
        bytes BIGINT NOT NULL
    );

    -- The library's search index: each flow's latest version, its fields
    -- weighted as the SQLite index weighs them (name A, description B,
    -- docstring and steps C, inputs and source D).
    CREATE TABLE flow_search (
        name        TEXT PRIMARY KEY,
        description TEXT,
        doc         TEXT,
        steps       TEXT NOT NULL,
        inputs      TEXT NOT NULL,
        source      TEXT NOT NULL,
        document    TSVECTOR NOT NULL,
        -- Words the document holds (its length, for BM25).
        tokens      INTEGER NOT NULL
    );
    CREATE INDEX flow_search_document ON flow_search USING GIN (document);
    -- Text as the SQLite index splits it (FTS5's unicode61: every character
    -- that is not a letter or digit separates words), so `library.search`
    -- is two words here too, not one host name as PostgreSQL's parser
    -- would have it.
    CREATE FUNCTION words(text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT regexp_replace($1, '[^[:alnum:]]+', ' ', 'g') $$;

    -- Each live node and how long its lease lasts; the host and process
    -- holding it, so a process restarted on the same host under the same
    -- name takes over at once from its dead predecessor.
    CREATE TABLE nodes (
        name           TEXT PRIMARY KEY,
        started_us     BIGINT NOT NULL,
        lease_until_us BIGINT NOT NULL,
        host           TEXT NOT NULL,
        pid            BIGINT NOT NULL
    );
    ",
    // 2: headers added to a service's calls (templates naming secrets),
    // and the secrets, sealed with the nodes' key (`secrets::SecretKey`).
    "
    ALTER TABLE services ADD COLUMN headers TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE secrets (
        name       TEXT PRIMARY KEY,
        key_id     TEXT NOT NULL,
        nonce      BYTEA NOT NULL,
        sealed     BYTEA NOT NULL,
        created_us BIGINT NOT NULL,
        updated_us BIGINT NOT NULL
    );
    ",
    // 3: what started each run (JSON; NULL for runs from before: the API),
    // and the webhooks that start runs of a flow.
    "
    ALTER TABLE runs ADD COLUMN started_by TEXT;
    CREATE TABLE hooks (
        hook_id    TEXT PRIMARY KEY,
        flow       TEXT NOT NULL,
        created_us BIGINT NOT NULL
    );
    CREATE INDEX hooks_by_flow ON hooks (flow, created_us);
    ",
    // 4: schedules, each with the time it is next due.
    "
    CREATE TABLE schedules (
        schedule_id TEXT PRIMARY KEY,
        flow        TEXT NOT NULL,
        cron        TEXT NOT NULL,
        input       TEXT NOT NULL,
        next_us     BIGINT NOT NULL,
        created_us  BIGINT NOT NULL
    );
    CREATE INDEX schedules_by_next ON schedules (next_us);
    ",
    // 5: retries (each run's attempt, the first attempt's run when it is
    // not the first, and the attempts waiting to start) and concurrency
    // limits (a row per run that needs a place: waiting, or holding one).
    "
    ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE runs ADD COLUMN first_run_id TEXT;
    CREATE INDEX runs_by_first_run ON runs (first_run_id) WHERE first_run_id IS NOT NULL;
    CREATE TABLE retries (
        run_id TEXT PRIMARY KEY,
        due_us BIGINT NOT NULL,
        launch TEXT NOT NULL
    );
    CREATE INDEX retries_by_due ON retries (due_us);
    CREATE TABLE run_slots (
        run_id     TEXT PRIMARY KEY,
        flow       TEXT NOT NULL,
        slot_key   TEXT NOT NULL,
        created_us BIGINT NOT NULL,
        held       BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX run_slots_by_flow ON run_slots (flow, slot_key, held, created_us);
    ",
    // 6: the time zone a schedule's pattern is read in.
    "
    ALTER TABLE schedules ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
    ",
    // 7: each run's journal: every answer the host gave each instance.
    "
    CREATE TABLE journal (
        run_id TEXT NOT NULL,
        stream TEXT NOT NULL,
        idx    INTEGER NOT NULL,
        entry  TEXT NOT NULL,
        PRIMARY KEY (run_id, stream, idx)
    );
    ",
    // 8: durable runs: which runs are (their `launch` says how to start
    // them again), and how many times each was resumed.
    "
    ALTER TABLE runs ADD COLUMN durable BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE runs ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;
    ",
    // 9: webhooks and schedules whose flow was removed before removing a
    // flow removed them too: they would start any flow stored later under
    // the name.
    "
    DELETE FROM hooks WHERE flow NOT IN (SELECT name FROM flows);
    DELETE FROM schedules WHERE flow NOT IN (SELECT name FROM flows);
    ",
    // 10: which process holds each node's lease, by a random id it drew at
    // start (`PgStore::instance`): a process id is not, across PID
    // namespaces and hosts of one name. And when it last renewed it.
    "
    ALTER TABLE nodes ADD COLUMN instance TEXT NOT NULL DEFAULT '';
    ALTER TABLE nodes ADD COLUMN renewed_us BIGINT NOT NULL DEFAULT 0;
    ",
    // 11: workspaces, their keys (a digest each, never the key), the
    // audit log, and the workspace each run belongs to. Everything stored
    // before lives in `default`.
    "
    CREATE TABLE workspaces (
        name       TEXT PRIMARY KEY,
        created_us BIGINT NOT NULL,
        limits     TEXT NOT NULL
    );
    INSERT INTO workspaces (name, created_us, limits) VALUES ('default', 0, '{}');
    CREATE TABLE workspace_keys (
        key_id     TEXT PRIMARY KEY,
        workspace  TEXT NOT NULL,
        name       TEXT NOT NULL,
        role       TEXT NOT NULL,
        digest     TEXT NOT NULL,
        created_us BIGINT NOT NULL,
        revoked_us BIGINT
    );
    CREATE INDEX workspace_keys_by_workspace ON workspace_keys (workspace, created_us);
    CREATE TABLE audit (
        seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ts_us     BIGINT NOT NULL,
        workspace TEXT NOT NULL,
        actor     TEXT NOT NULL,
        key_id    TEXT,
        key_name  TEXT,
        action    TEXT NOT NULL,
        target    TEXT NOT NULL,
        detail    TEXT NOT NULL,
        client    TEXT
    );
    CREATE INDEX audit_by_workspace ON audit (workspace, seq);
    ALTER TABLE runs ADD COLUMN workspace TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX runs_by_workspace ON runs (workspace, created_us DESC);
    ",
];

/// Bring the database up to the newest schema, one step per transaction.
pub async fn migrate(client: &mut Object) -> Result<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
    let result = apply_missing(client).await;
    // Released whatever happened: the connection goes back to the pool.
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
    result
}

async fn apply_missing(client: &mut Object) -> Result<()> {
    client.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)").await?;
    let current: Option<i32> =
        client.query_opt("SELECT max(version) FROM schema_version", &[]).await?.and_then(|row| row.get(0));
    let current = current.unwrap_or(0) as usize;
    if current > MIGRATIONS.len() {
        anyhow::bail!(
            "the database's schema is version {current}, newer than this hero_logic knows ({}): upgrade hero_logic",
            MIGRATIONS.len()
        );
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = client.transaction().await?;
        tx.batch_execute(migration).await?;
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&((index + 1) as i32)]).await?;
        tx.commit().await?;
    }
    Ok(())
}
