//! A throwaway PostgreSQL cluster, for the tests (the store's unit tests,
//! the server's integration tests) and `hero_logic bench --only postgres`:
//! started once per process on a free loopback port (`initdb` into a temporary directory, as the
//! `postgres` user when the tests run as root), one fresh database per
//! test, and stopped and removed by a watchdog when the process exits.
//! `tests/postgres/setup.sh` installs PostgreSQL when it is missing.
//!
//! `HERO_LOGIC_TEST_POSTGRES=postgres://user@host:port` uses that server
//! instead (its user must be allowed to create databases).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Cluster {
    /// `postgres://postgres@127.0.0.1:PORT`, without a database.
    server: String,
    psql: PathBuf,
}

/// A new, empty database on the tests' cluster: its URL.
pub fn fresh_database() -> String {
    let cluster = cluster();
    create_database(&cluster.server, &cluster.psql)
}

/// A new, empty database on the server `server` (`postgres://user@host:port`).
pub fn fresh_database_on(server: &str) -> String {
    create_database(server.trim_end_matches('/'), &postgres_bin().join("psql"))
}

fn create_database(server: &str, psql: &Path) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    let created = Command::new(psql)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", &format!("{server}/postgres"), "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("run psql");
    assert!(created.status.success(), "CREATE DATABASE failed: {}", String::from_utf8_lossy(&created.stderr));
    format!("{server}/{name}")
}

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let bin = postgres_bin();
        let psql = bin.join("psql");
        match std::env::var("HERO_LOGIC_TEST_POSTGRES") {
            Ok(server) if !server.is_empty() => Cluster { server: server.trim_end_matches('/').into(), psql },
            _ => start_cluster(&bin, psql),
        }
    })
}

/// The directory of PostgreSQL's programs, installing it when missing.
fn postgres_bin() -> PathBuf {
    let find = || -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .collect();
        // The newest major version.
        found.sort_by_key(|bin| bin.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()));
        found.pop()
    };
    if let Some(bin) = find() {
        return bin;
    }
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/postgres/setup.sh");
    let status = Command::new("bash").arg(&setup).status().expect("run tests/postgres/setup.sh");
    assert!(status.success(), "tests/postgres/setup.sh could not install PostgreSQL");
    find().expect("PostgreSQL is still not installed after tests/postgres/setup.sh")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// A command as the user that owns the cluster (`postgres` when we are root:
/// PostgreSQL refuses to run as root).
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn start_cluster(bin: &Path, psql: PathBuf) -> Cluster {
    let dir = tempfile::Builder::new().prefix("hero_logic-pg-").tempdir().expect("make the cluster's directory");
    let dir = dir.keep();
    if is_root() {
        let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().expect("chown");
        assert!(chown.success());
    }
    let data = dir.join("data");
    let initdb = as_owner(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        .stdout(Stdio::null())
        .output()
        .expect("run initdb");
    assert!(initdb.status.success(), "initdb failed: {}", String::from_utf8_lossy(&initdb.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // Durability is not what these tests are about: no fsync, so a test's
    // many small commits cost what they cost in memory.
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=400 -c shared_buffers=64MB",
        dir.display()
    );
    let started = as_owner(&bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .args(["-o", &options, "-l"])
        .arg(dir.join("log"))
        .args(["-w", "-t", "60", "start"])
        .stdout(Stdio::null())
        .output()
        .expect("run pg_ctl start");
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    assert!(started.status.success(), "pg_ctl start failed: {}\n{log}", String::from_utf8_lossy(&started.stderr));
    stop_when_we_exit(bin, &dir, &data);
    Cluster { server: format!("postgres://postgres@127.0.0.1:{port}"), psql }
}

/// A watchdog, in its own session so it outlives us: once this process is
/// gone, stop the cluster and remove its directory.
fn stop_when_we_exit(bin: &Path, dir: &Path, data: &Path) {
    let pg_ctl = bin.join("pg_ctl");
    let stop = if is_root() {
        format!("runuser -u postgres -- '{}' -D '{}' -m immediate stop", pg_ctl.display(), data.display())
    } else {
        format!("'{}' -D '{}' -m immediate stop", pg_ctl.display(), data.display())
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    Command::new("setsid")
        .args(["-f", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the cluster's watchdog")
        .wait()
        .expect("start the cluster's watchdog");
}
