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

/// The cluster of this test process.
pub struct Cluster {
    dir: tempfile::TempDir,
    /// Its loopback port.
    pub port: u16,
    /// The password of its superuser `scepd`.
    pub password: String,
}

/// Starts the cluster on first use.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster");
        let mut last = String::new();
        // The port is free when chosen and taken by postgres a moment later; retry a clash.
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let out = std::process::Command::new(script)
                .arg(dir.path())
                .arg(port.to_string())
                .arg(std::process::id().to_string())
                .output()
                .expect("scripts/pg-cluster runs");
            if out.status.success() {
                let password = std::fs::read_to_string(dir.path().join("password")).unwrap();
                return Cluster {
                    dir,
                    port,
                    password,
                };
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        panic!("no PostgreSQL test cluster: {last}");
    })
}

impl Cluster {
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
        let mut admin = postgres::Config::new();
        admin
            .host("127.0.0.1")
            .port(self.port)
            .user("scepd")
            .password(self.password.as_bytes())
            .dbname("postgres");
        admin.connect(postgres::NoTls).unwrap()
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

/// A name no other database of this process has.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
