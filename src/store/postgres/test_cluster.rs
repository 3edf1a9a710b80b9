//! A throw-away PostgreSQL cluster for the backend's tests: started once per test process by
//! `scripts/pg-cluster` on a free loopback port in a temp dir, stopped by its watchdog when
//! this process exits; each test gets a database of its own. No PostgreSQL binaries is a
//! failure, not a skip (scripts/test installs them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness: fail loudly"
)]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use zeroize::Zeroizing;

use super::{PgSettings, PgTls};

struct Cluster {
    _dir: tempfile::TempDir,
    port: u16,
    password: String,
}

fn cluster() -> &'static Cluster {
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
                    _dir: dir,
                    port,
                    password,
                };
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        panic!("no PostgreSQL test cluster: {last}");
    })
}

/// A database of its own for one test.
pub struct TestDatabase {
    name: String,
}

/// Creates an empty database in the shared test cluster.
pub fn fresh_database() -> TestDatabase {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let c = cluster();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = postgres::Config::new();
    admin
        .host("127.0.0.1")
        .port(c.port)
        .user("scepd")
        .password(c.password.as_bytes())
        .dbname("postgres");
    let mut client = admin.connect(postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    TestDatabase { name }
}

impl TestDatabase {
    /// Settings that reach this database (password given separately, as in production).
    pub fn settings(&self) -> PgSettings {
        let c = cluster();
        PgSettings {
            url: format!("postgres://scepd@127.0.0.1:{}/{}", c.port, self.name),
            password: Some(Zeroizing::new(c.password.clone())),
            pool_size: 4,
            tls: PgTls::Disable,
            connect_timeout: Duration::from_secs(5),
        }
    }
}
