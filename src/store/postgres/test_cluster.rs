//! A throw-away PostgreSQL cluster for tests: started once per test process by
//! `scripts/pg-cluster` on a free loopback port in a temp dir, stopped by its watchdog when
//! this process exits; each test gets a database of its own. No PostgreSQL binaries is a
//! failure, not a skip (scripts/test installs them).
//!
//! Shared verbatim by the store's unit tests and the integration suite
//! (`SCEPD_TEST_STORE=postgres`, `tests/it/test_store.rs` includes this file), so it names
//! no type of the library.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    reason = "test harness: fail loudly; each includer uses part of it"
)]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A test cluster: the one of this test process ([`cluster`]) or a test's own
/// ([`Cluster::start_new`]), which that test may stop and start again.
pub struct Cluster {
    dir: tempfile::TempDir,
    /// Its loopback port.
    pub port: u16,
    /// The password of its superuser `scepd`.
    pub password: String,
    /// The postgres server's PID while it runs.
    pid: Option<u32>,
    /// Where its TLS certificate and key come from, for a TLS-only cluster.
    tls: Option<std::path::PathBuf>,
}

/// Starts the cluster of this process on first use.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start_new)
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster");

/// Runs scripts/pg-cluster on `dir` and `port` (serving TLS only with the `server.crt` and
/// `server.key` of `tls`); the server's PID once it accepts connections.
fn run_script(
    dir: &std::path::Path,
    port: u16,
    tls: Option<&std::path::Path>,
) -> Result<u32, String> {
    let mut command = std::process::Command::new(SCRIPT);
    command
        .arg(dir)
        .arg(port.to_string())
        .arg(std::process::id().to_string());
    if let Some(tls) = tls {
        command.env("SCEPD_PG_TLS_DIR", tls);
    }
    let out = command.output().expect("scripts/pg-cluster runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| "scripts/pg-cluster printed no PID".to_owned())
}

impl Cluster {
    /// A new cluster in a temp dir on a free loopback port.
    pub fn start_new() -> Self {
        Self::start_with(None)
    }

    /// A new cluster that accepts TLS connections only, with the `server.crt` and
    /// `server.key` in `tls`.
    pub fn start_tls(tls: &std::path::Path) -> Self {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<&std::path::Path>) -> Self {
        let mut last = String::new();
        // The port is free when chosen and taken by postgres a moment later; retry a clash.
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            match run_script(dir.path(), port, tls) {
                Ok(pid) => {
                    let password = std::fs::read_to_string(dir.path().join("password")).unwrap();
                    return Cluster {
                        dir,
                        port,
                        password,
                        pid: Some(pid),
                        tls: tls.map(std::path::Path::to_path_buf),
                    };
                }
                Err(e) => last = e,
            }
        }
        panic!("no PostgreSQL test cluster: {last}");
    }

    /// Stops the server as a restart does (fast shutdown: sessions are cut) and waits until
    /// it has exited.
    pub fn stop(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
        let proc_dir = format!("/proc/{pid}");
        for _ in 0..300 {
            if !std::path::Path::new(&proc_dir).exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("postgres {pid} did not stop within 30 s");
    }

    /// Starts the stopped server again on the same directory and port.
    pub fn start_again(&mut self) {
        assert!(self.pid.is_none(), "running");
        self.pid = Some(run_script(self.dir.path(), self.port, self.tls.as_deref()).unwrap());
    }

    /// A superuser connection to database `name`.
    pub fn connect(&self, name: &str) -> postgres::Client {
        let mut config = postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user("scepd")
            .password(self.password.as_bytes())
            .dbname(name);
        config.connect(postgres::NoTls).unwrap()
    }

    /// The URL of database `name`, without the password (given separately, as in production).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://scepd@127.0.0.1:{}/{name}", self.port)
    }

    /// The cluster's directory (its `postgres.log`, the binaries' socket directory).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A superuser connection to the maintenance database.
    pub fn admin(&self) -> postgres::Client {
        self.connect("postgres")
    }

    /// Creates database `name` (an identifier the caller made up: letters, digits, `_`).
    pub fn create_database(&self, name: &str) {
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        self.admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
    }

    /// Drops database `name`, closing the connections still open to it.
    pub fn drop_database(&self, name: &str) {
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        let _ = self
            .admin()
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}

impl Drop for Cluster {
    /// A test's own cluster stops with it (the watchdog would, but only when the test
    /// process exits).
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
            for _ in 0..100 {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}

/// A name no other database of this process has.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
