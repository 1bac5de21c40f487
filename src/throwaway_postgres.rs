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
    // Durability is not what these tests are about: no synchronous commit,
    // so a test's many small commits cost what they cost in memory.
    let started = init_and_start(bin, "-c synchronous_commit=off");
    stop_when_we_exit(bin, &started.dir, &started.data);
    Cluster { server: started.server, psql }
}

/// A cluster made with `initdb` and started on a free loopback port.
struct Started {
    dir: PathBuf,
    data: PathBuf,
    /// What `pg_ctl start -o` was given, to start it again the same way.
    options: String,
    server: String,
}

fn init_and_start(bin: &Path, extra_options: &str) -> Started {
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
    // No fsync: the machine does not crash under these tests, only
    // PostgreSQL's processes stop, and the page cache keeps what they wrote.
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
         -c max_connections=400 -c shared_buffers=64MB {extra_options}",
        dir.display()
    );
    pg_ctl_start(bin, &dir, &data, &options);
    Started { dir, data, options, server: format!("postgres://postgres@127.0.0.1:{port}") }
}

fn pg_ctl_start(bin: &Path, dir: &Path, data: &Path, options: &str) {
    let started = as_owner(&bin.join("pg_ctl"))
        .arg("-D")
        .arg(data)
        .args(["-o", options, "-l"])
        .arg(dir.join("log"))
        .args(["-w", "-t", "60", "start"])
        .stdout(Stdio::null())
        .output()
        .expect("run pg_ctl start");
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    assert!(started.status.success(), "pg_ctl start failed: {}\n{log}", String::from_utf8_lossy(&started.stderr));
}

/// A PostgreSQL server of a test's own, which the test stops, starts and
/// restarts as an operator (or a crash) would: the tests' shared cluster
/// cannot be, other tests use it. Commits are synchronous, as in a real
/// deployment, so an answered commit survives a restart. Stopped and
/// removed when dropped (or, if the process dies first, by a watchdog).
pub struct OwnServer {
    bin: PathBuf,
    started: Started,
    /// `postgres://postgres@127.0.0.1:PORT`, without a database.
    pub server: String,
}

impl OwnServer {
    pub fn start() -> OwnServer {
        let bin = postgres_bin();
        let started = init_and_start(&bin, "");
        stop_when_we_exit(&bin, &started.dir, &started.data);
        OwnServer { server: started.server.clone(), bin, started }
    }

    /// A new, empty database on it: its URL.
    pub fn fresh_database(&self) -> String {
        create_database(&self.server, &self.bin.join("psql"))
    }

    /// `pg_ctl restart -m fast`: every connection is ended, the server
    /// stops and starts again on the same port.
    pub fn restart(&self) {
        self.pg_ctl(&["restart", "-m", "fast", "-w", "-t", "60", "-o", &self.started.options]);
    }

    /// `pg_ctl stop -m fast`: connections are ended, and new ones refused
    /// until `start_again`.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"]);
    }

    pub fn start_again(&self) {
        pg_ctl_start(&self.bin, &self.started.dir, &self.started.data, &self.started.options);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let ran = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.started.data)
            .args(["-l"])
            .arg(self.started.dir.join("log"))
            .args(args)
            .stdout(Stdio::null())
            .output()
            .expect("run pg_ctl");
        assert!(ran.status.success(), "pg_ctl {args:?} failed: {}", String::from_utf8_lossy(&ran.stderr));
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.started.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.started.dir);
    }
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

/// A primary and a synchronous streaming standby, both on loopback, for a
/// failover: the primary is killed and the standby promoted, while nodes
/// connect through a URL naming both (`target_session_attrs=read-write`).
/// With synchronous replication, a commit is answered only once the
/// standby holds it, so a failover loses nothing that was answered.
pub struct StandbyPair {
    pub primary: OwnServer,
    pub standby: OwnServer,
}

impl StandbyPair {
    pub fn start() -> StandbyPair {
        let primary = OwnServer::start();
        let bin = primary.bin.clone();
        let dir = tempfile::Builder::new().prefix("hero_logic-pg-").tempdir().expect("make the standby's directory");
        let dir = dir.keep();
        if is_root() {
            let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().expect("chown");
            assert!(chown.success());
        }
        let data = dir.join("data");
        let port = primary.server.rsplit(':').next().expect("the primary's URL has a port").to_string();
        let copied = as_owner(&bin.join("pg_basebackup"))
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-R", "-X", "stream"])
            .output()
            .expect("run pg_basebackup");
        assert!(copied.status.success(), "pg_basebackup failed: {}", String::from_utf8_lossy(&copied.stderr));
        let standby_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let options = format!(
            "-p {standby_port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
             -c max_connections=400 -c shared_buffers=64MB -c hot_standby=on",
            dir.display()
        );
        pg_ctl_start(&bin, &dir, &data, &options);
        stop_when_we_exit(&bin, &dir, &data);
        let standby = OwnServer {
            bin: bin.clone(),
            started: Started { dir, data, options, server: format!("postgres://postgres@127.0.0.1:{standby_port}") },
            server: format!("postgres://postgres@127.0.0.1:{standby_port}"),
        };
        // Synchronous from now on: the primary answers a commit once the
        // standby has it.
        primary.psql(&["-c", "ALTER SYSTEM SET synchronous_standby_names = '*'", "-c", "SELECT pg_reload_conf()"]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while primary.psql(&["-Atc", "SELECT sync_state FROM pg_stat_replication"]).trim() != "sync" {
            assert!(std::time::Instant::now() < deadline, "the standby did not become synchronous");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        StandbyPair { primary, standby }
    }

    /// A new, empty database (made on the primary, streamed to the
    /// standby): a URL naming both servers, which connects to whichever
    /// takes writes.
    pub fn fresh_database(&self) -> String {
        let on_primary = self.primary.fresh_database();
        let name = on_primary.rsplit('/').next().expect("a database name").to_string();
        let host = |server: &str| server.trim_start_matches("postgres://postgres@").to_string();
        format!(
            "postgres://postgres@{},{}/{name}?target_session_attrs=read-write",
            host(&self.primary.server),
            host(&self.standby.server)
        )
    }

    /// The primary dies (`pg_ctl stop -m immediate`, as a crash) and the
    /// standby is promoted to take writes.
    pub fn fail_over(&self) {
        self.primary.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "60"]);
        self.standby.pg_ctl(&["promote", "-w", "-t", "60"]);
    }
}

impl OwnServer {
    /// Run `psql` on its `postgres` database; what it printed.
    fn psql(&self, args: &[&str]) -> String {
        let ran = Command::new(self.bin.join("psql"))
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", &format!("{}/postgres", self.server)])
            .args(args)
            .output()
            .expect("run psql");
        assert!(ran.status.success(), "psql {args:?} failed: {}", String::from_utf8_lossy(&ran.stderr));
        String::from_utf8_lossy(&ran.stdout).into_owned()
    }
}
