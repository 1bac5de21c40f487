//! The schema, as numbered migrations applied in order at open. The number of
//! the last one applied is SQLite's `user_version`.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: sources, flows, runs, spans, logs.
    "
    CREATE TABLE sources (
        sha256 TEXT PRIMARY KEY,
        text   TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE flows (
        name          TEXT NOT NULL,
        version       INTEGER NOT NULL,
        source_sha256 TEXT NOT NULL REFERENCES sources(sha256),
        info          TEXT NOT NULL,
        created_us    INTEGER NOT NULL,
        PRIMARY KEY (name, version)
    ) WITHOUT ROWID;

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
        created_us    INTEGER NOT NULL,
        start_us      INTEGER,
        end_us        INTEGER,
        last_seq      INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_by_created ON runs (created_us DESC);
    CREATE INDEX runs_by_flow ON runs (flow, created_us DESC);
    CREATE INDEX runs_by_status ON runs (status, created_us DESC);

    CREATE TABLE spans (
        run_id    TEXT NOT NULL,
        span_id   INTEGER NOT NULL,
        parent_id INTEGER,
        kind      TEXT NOT NULL,
        name      TEXT NOT NULL,
        status    TEXT NOT NULL,
        start_us  INTEGER NOT NULL,
        end_us    INTEGER,
        attrs     TEXT NOT NULL,
        error     TEXT,
        line      INTEGER,
        start_seq INTEGER NOT NULL,
        end_seq   INTEGER,
        PRIMARY KEY (run_id, span_id)
    ) WITHOUT ROWID;

    CREATE TABLE logs (
        run_id  TEXT NOT NULL,
        seq     INTEGER NOT NULL,
        span_id INTEGER NOT NULL,
        ts_us   INTEGER NOT NULL,
        stream  TEXT NOT NULL,
        text    TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    ",
    // 2: registered services, the kv built-in, the library's full-text index.
    "
    CREATE TABLE services (
        name       TEXT PRIMARY KEY,
        url        TEXT NOT NULL,
        document   TEXT NOT NULL,
        timeout_ms INTEGER NOT NULL,
        created_us INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE kv (
        flow       TEXT NOT NULL,
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,
        updated_us INTEGER NOT NULL,
        PRIMARY KEY (flow, key)
    ) WITHOUT ROWID;

    CREATE VIRTUAL TABLE flows_fts USING fts5(
        name, description, doc, steps, inputs, source,
        tokenize = 'porter unicode61'
    );
    INSERT INTO flows_fts (name, description, doc, steps, inputs, source)
    SELECT f.name, json_extract(f.info, '$.description'), json_extract(f.info, '$.doc'),
           (SELECT group_concat(value, ' ') FROM json_each(f.info, '$.steps')),
           (SELECT group_concat(key, ' ') FROM json_each(f.info, '$.inputs')),
           s.text
    FROM flows f JOIN sources s ON s.sha256 = f.source_sha256
    WHERE f.version = (SELECT MAX(version) FROM flows g WHERE g.name = f.name);
    ",
    // 3: the index keyed by a row id per flow name, so replacing or removing
    // one flow's entry is a lookup, not a scan of the whole index.
    "
    CREATE TABLE flow_names (
        id   INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );
    INSERT INTO flow_names (name) SELECT DISTINCT name FROM flows ORDER BY name;

    DROP TABLE flows_fts;
    CREATE VIRTUAL TABLE flows_fts USING fts5(
        name, description, doc, steps, inputs, source,
        tokenize = 'porter unicode61'
    );
    INSERT INTO flows_fts (rowid, name, description, doc, steps, inputs, source)
    SELECT n.id, f.name, json_extract(f.info, '$.description'), json_extract(f.info, '$.doc'),
           (SELECT group_concat(value, ' ') FROM json_each(f.info, '$.steps')),
           (SELECT group_concat(key, ' ') FROM json_each(f.info, '$.inputs')),
           s.text
    FROM flows f
    JOIN sources s ON s.sha256 = f.source_sha256
    JOIN flow_names n ON n.name = f.name
    WHERE f.version = (SELECT MAX(version) FROM flows g WHERE g.name = f.name);
    ",
    // 4: finding the flows a module source is stored as, without a scan.
    "
    CREATE INDEX flows_by_source ON flows (source_sha256);
    ",
    // 5: where a flow ran as a subflow of another run, newest first. Partial,
    // so the other spans (nearly all) cost the index nothing.
    "
    CREATE INDEX spans_by_subflow ON spans (name, start_us) WHERE kind = 'subflow';
    ",
    // 6: which flow stored a version through `flows.save` (NULL: the
    // operator, by upload, the command line or as a built-in). A flow may
    // replace only flows it stored itself.
    "
    ALTER TABLE flows ADD COLUMN saved_by TEXT;
    ",
    // 7: the bytes each flow holds in `kv` (keys and values), kept beside
    // it so a write checks the flow's total without a scan.
    "
    CREATE TABLE kv_usage (
        flow  TEXT PRIMARY KEY,
        bytes INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO kv_usage (flow, bytes)
    SELECT flow, SUM(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))) FROM kv GROUP BY flow;
    ",
    // 8: the node that executes each run (runs stored before have none).
    "
    ALTER TABLE runs ADD COLUMN node TEXT;
    ",
    // 9: the search index beside FTS5: each term's postings ordered by
    // impact (a term's BM25 share in a flow), so a search reads the best
    // flows first and stops early. `search::build_index_if_missing` fills it at open,
    // since only FTS5's tokenizer, reached from Rust, splits words as FTS5
    // does; `built` says whether it holds the whole library.
    "
    CREATE TABLE search_terms (
        id    INTEGER PRIMARY KEY,
        term  TEXT NOT NULL UNIQUE,
        flows INTEGER NOT NULL
    );
    CREATE TABLE search_postings (
        term_id INTEGER NOT NULL,
        impact  INTEGER NOT NULL,
        flow_id INTEGER NOT NULL,
        freq    REAL NOT NULL,
        tokens  INTEGER NOT NULL,
        PRIMARY KEY (term_id, impact DESC, flow_id)
    ) WITHOUT ROWID;
    CREATE INDEX search_postings_by_flow ON search_postings (flow_id, term_id, freq);
    CREATE TABLE search_flows (
        flow_id INTEGER PRIMARY KEY,
        tokens  INTEGER NOT NULL
    );
    CREATE TABLE search_library (
        only             INTEGER PRIMARY KEY CHECK (only = 1),
        flows            INTEGER NOT NULL,
        tokens           INTEGER NOT NULL,
        reference_tokens REAL NOT NULL,
        built            INTEGER NOT NULL
    );
    INSERT INTO search_library VALUES (1, 0, 0, 0, 0);
    ",
    // 10: headers added to a service's calls (templates naming secrets),
    // and the secrets, sealed with the node's key (`secrets::SecretKey`).
    "
    ALTER TABLE services ADD COLUMN headers TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE secrets (
        name       TEXT PRIMARY KEY,
        key_id     TEXT NOT NULL,
        nonce      BLOB NOT NULL,
        sealed     BLOB NOT NULL,
        created_us INTEGER NOT NULL,
        updated_us INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
    // 11: what started each run (JSON; NULL for runs from before: the API),
    // and the webhooks that start runs of a flow.
    "
    ALTER TABLE runs ADD COLUMN started_by TEXT;
    CREATE TABLE hooks (
        hook_id    TEXT PRIMARY KEY,
        flow       TEXT NOT NULL,
        created_us INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX hooks_by_flow ON hooks (flow, created_us);
    ",
    // 12: schedules, each with the time it is next due.
    "
    CREATE TABLE schedules (
        schedule_id TEXT PRIMARY KEY,
        flow        TEXT NOT NULL,
        cron        TEXT NOT NULL,
        input       TEXT NOT NULL,
        next_us     INTEGER NOT NULL,
        created_us  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX schedules_by_next ON schedules (next_us);
    ",
    // 13: retries (each run's attempt, the first attempt's run when it is
    // not the first, and the attempts waiting to start) and concurrency
    // limits (a row per run that needs a place: waiting, or holding one).
    "
    ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE runs ADD COLUMN first_run_id TEXT;
    CREATE INDEX runs_by_first_run ON runs (first_run_id) WHERE first_run_id IS NOT NULL;
    CREATE TABLE retries (
        run_id TEXT PRIMARY KEY,
        due_us INTEGER NOT NULL,
        launch TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX retries_by_due ON retries (due_us);
    CREATE TABLE run_slots (
        run_id     TEXT PRIMARY KEY,
        flow       TEXT NOT NULL,
        slot_key   TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        held       BOOLEAN NOT NULL DEFAULT FALSE
    ) WITHOUT ROWID;
    CREATE INDEX run_slots_by_flow ON run_slots (flow, slot_key, held, created_us);
    ",
    // 14: the time zone a schedule's pattern is read in.
    "
    ALTER TABLE schedules ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
    ",
    // 15: each run's journal: every answer the host gave each instance.
    "
    CREATE TABLE journal (
        run_id TEXT NOT NULL,
        stream TEXT NOT NULL,
        idx    INTEGER NOT NULL,
        entry  TEXT NOT NULL,
        PRIMARY KEY (run_id, stream, idx)
    ) WITHOUT ROWID;
    ",
    // 16: durable runs: which runs are, how to start one again (`launch`,
    // as the nodes' shared queue keeps it on PostgreSQL), and how many
    // times each was resumed.
    "
    ALTER TABLE runs ADD COLUMN launch TEXT;
    ALTER TABLE runs ADD COLUMN durable BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE runs ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;
    ",
    // 17: webhooks and schedules whose flow was removed before removing a
    // flow removed them too: they would start any flow stored later under
    // the name.
    "
    DELETE FROM hooks WHERE flow NOT IN (SELECT name FROM flows);
    DELETE FROM schedules WHERE flow NOT IN (SELECT name FROM flows);
    ",
    // 18: workspaces, their keys (a digest each, never the key), the
    // audit log, and the workspace each run belongs to. Everything stored
    // before lives in `default`.
    "
    CREATE TABLE workspaces (
        name       TEXT PRIMARY KEY,
        created_us INTEGER NOT NULL,
        limits     TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO workspaces (name, created_us, limits) VALUES ('default', 0, '{}');
    CREATE TABLE workspace_keys (
        key_id     TEXT PRIMARY KEY,
        workspace  TEXT NOT NULL,
        name       TEXT NOT NULL,
        role       TEXT NOT NULL,
        digest     TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        revoked_us INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX workspace_keys_by_workspace ON workspace_keys (workspace, created_us);
    CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY,
        ts_us     INTEGER NOT NULL,
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

/// Bring the database up to the newest schema, in one transaction per step.
pub fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    // A newer hero_logic's database is left as it is, as on PostgreSQL:
    // this one would read (and write) tables it does not know.
    if current > MIGRATIONS.len() {
        anyhow::bail!(
            "the database's schema is version {current}, newer than this hero_logic knows ({}): upgrade hero_logic",
            MIGRATIONS.len()
        );
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Settings every connection needs.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_newer_than_this_hero_logic_is_refused_and_left_as_it_is() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "user_version", MIGRATIONS.len() + 1).unwrap();
        let refused = migrate(&mut conn).unwrap_err().to_string();
        assert!(refused.contains("newer than this hero_logic knows"), "{refused}");
        let version: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len() + 1);
    }

    #[test]
    fn a_library_indexed_by_name_is_reindexed_by_row_id() {
        let mut conn = Connection::open_in_memory().unwrap();
        // A database as the second schema left it, with two versions of a flow.
        for migration in &MIGRATIONS[..2] {
            conn.execute_batch(migration).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            r#"
            INSERT INTO sources VALUES ('a', 'old source'), ('b', 'new source about rainfall');
            INSERT INTO flows VALUES ('rain', 1, 'a', '{"description": "old"}', 1),
                                     ('rain', 2, 'b', '{"description": "rain report", "steps": ["fetch"]}', 2);
            INSERT INTO flows_fts (name, description, source) VALUES ('rain', 'rain report', 'new source about rainfall');
            "#,
        )
        .unwrap();

        migrate(&mut conn).unwrap();

        let version: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len());
        let (name, steps, id): (String, String, i64) = conn
            .query_row(
                "SELECT n.name, flows_fts.steps, flows_fts.rowid FROM flows_fts
                 JOIN flow_names n ON n.id = flows_fts.rowid WHERE flows_fts MATCH 'rainfall'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!((name.as_str(), steps.as_str()), ("rain", "fetch"));
        let rows: i64 = conn.query_row("SELECT count(*) FROM flows_fts", [], |row| row.get(0)).unwrap();
        assert_eq!(rows, 1, "one entry per flow, the latest version (row id {id})");
    }

    #[test]
    fn kv_written_before_its_totals_were_kept_is_counted_in_bytes() {
        let mut conn = Connection::open_in_memory().unwrap();
        for migration in &MIGRATIONS[..6] {
            conn.execute_batch(migration).unwrap();
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        conn.execute_batch(
            r#"
            INSERT INTO kv VALUES ('a', 'k1', '"été"', 1), ('a', 'k2', '12', 1), ('b', 'key', 'null', 1);
            "#,
        )
        .unwrap();

        migrate(&mut conn).unwrap();

        let held = |flow: &str| -> i64 {
            conn.query_row("SELECT bytes FROM kv_usage WHERE flow = ?1", [flow], |row| row.get(0)).unwrap()
        };
        // "été" in quotes is 7 bytes of UTF-8 (5 characters).
        assert_eq!((held("a"), held("b")), (2 + 7 + 2 + 2, 3 + 4));
    }

    /// A store written before the search index existed gets it built at
    /// open, and searches with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_from_before_the_search_index_gets_it_built_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let mut conn = Connection::open(&path).unwrap();
            for migration in &MIGRATIONS[..8] {
                conn.execute_batch(migration).unwrap();
            }
            conn.pragma_update(None, "user_version", 8).unwrap();
            conn.execute_batch(
                r#"
                INSERT INTO sources VALUES ('a', 'def rain(): forecast the rainfall');
                INSERT INTO flows VALUES ('rain', 1, 'a', '{"description": "Rain report"}', 1, NULL);
                INSERT INTO flow_names (id, name) VALUES (7, 'rain');
                INSERT INTO flows_fts (rowid, name, description, source)
                VALUES (7, 'rain', 'Rain report', 'def rain(): forecast the rainfall');
                "#,
            )
            .unwrap();
            migrate(&mut conn).unwrap();
        }
        let store = crate::store::Store::open(&crate::store::Database::Sqlite(path.clone())).await.unwrap();
        let hits = store.search_flows("rainfall forec", 10).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].name.as_str(), hits[0].version), ("rain", 1));
        assert!(hits[0].snippet.contains("[forecast]"), "{}", hits[0].snippet);
        store.close().await;
        let conn = Connection::open(&path).unwrap();
        let (flows, built): (i64, bool) = conn
            .query_row("SELECT flows, built FROM search_library", [], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap();
        assert_eq!((flows, built), (1, true));
    }
}
