//! Which store the suite's servers and CLI calls use. By default SQLite in each data dir; with
//! `SCEPD_TEST_STORE=postgres` every data dir gets a database of its own in one throw-away
//! PostgreSQL cluster per test process, reached the way an operator would reach it
//! (`SCEPD_STORE_URL`, `SCEPD_STORE_PASSWORD`), so the whole suite runs against both backends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

#[path = "../../src/store/postgres/test_cluster.rs"]
mod test_cluster;

pub use test_cluster::{Cluster, cluster};

/// True when the suite runs against PostgreSQL.
pub fn postgres() -> bool {
    match std::env::var("SCEPD_TEST_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("SCEPD_TEST_STORE must be sqlite or postgres, not {other:?}"),
    }
}

/// Database of each data dir seen so far (created on first use).
fn databases() -> &'static Mutex<HashMap<PathBuf, String>> {
    static DBS: std::sync::OnceLock<Mutex<HashMap<PathBuf, String>>> = std::sync::OnceLock::new();
    DBS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The map's key: symlinks resolved, so a cluster node whose data dir links to a shared one
/// reaches the shared database.
fn key(data_dir: &Path) -> PathBuf {
    std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf())
}

/// The database that stands for `data_dir`, created on first use.
pub fn database_of(data_dir: &Path) -> String {
    let mut dbs = databases().lock().unwrap();
    dbs.entry(key(data_dir))
        .or_insert_with(|| {
            let name = test_cluster::unique_name("it");
            cluster().create_database(&name);
            name
        })
        .clone()
}

/// Points `data_dir` at the database of `shared` (a node with a copy of another's data dir).
pub fn share_database(data_dir: &Path, shared: &Path) {
    let name = database_of(shared);
    databases().lock().unwrap().insert(key(data_dir), name);
}

/// Puts `data_dir` on PostgreSQL whatever `SCEPD_TEST_STORE` says (cluster tests).
pub fn use_postgres(data_dir: &Path) {
    database_of(data_dir);
}

/// Data dirs whose store the test configured itself (`[store]` in its config file).
fn self_configured() -> &'static Mutex<std::collections::HashSet<PathBuf>> {
    static SET: std::sync::OnceLock<Mutex<std::collections::HashSet<PathBuf>>> =
        std::sync::OnceLock::new();
    SET.get_or_init(Default::default)
}

/// Leaves the store of `data_dir` to the test's own `[store]` section.
pub fn configured_by_test(data_dir: &Path) {
    self_configured().lock().unwrap().insert(key(data_dir));
}

/// The store's environment for `scepd` working on `data_dir`: nothing for SQLite (or a
/// store the test configured itself), the database URL and password for PostgreSQL.
pub fn store_env(data_dir: &Path) -> Vec<(&'static str, String)> {
    if self_configured().lock().unwrap().contains(&key(data_dir)) {
        return Vec::new();
    }
    let registered = databases().lock().unwrap().get(&key(data_dir)).cloned();
    let name = match registered {
        Some(name) => name,
        None if postgres() => database_of(data_dir),
        None => return Vec::new(),
    };
    let c = cluster();
    vec![
        ("SCEPD_STORE_URL", c.url(&name)),
        ("SCEPD_STORE_PASSWORD", c.password.clone()),
    ]
}

/// Points a `scepd` command at the store of `data_dir`.
pub trait WithStore {
    /// See [`store_env`].
    fn store_of(&mut self, data_dir: &Path) -> &mut Self;
}

impl WithStore for Command {
    fn store_of(&mut self, data_dir: &Path) -> &mut Self {
        self.envs(store_env(data_dir))
    }
}

/// Drops the database of `data_dir`, if one was made (a server's data dir going away).
pub fn forget(data_dir: &Path) {
    if let Some(name) = databases().lock().unwrap().remove(&key(data_dir)) {
        cluster().drop_database(&name);
    }
}

/// True when `data_dir` is on PostgreSQL (by `SCEPD_TEST_STORE` or [`use_postgres`]).
pub fn on_postgres(data_dir: &Path) -> bool {
    databases().lock().unwrap().contains_key(&key(data_dir))
}

/// Opens the store of `data_dir` in this process, as a node would.
pub fn open(data_dir: &Path) -> scepd::store::Store {
    if !on_postgres(data_dir) {
        return scepd::store::Store::open(data_dir.join("scepd.sqlite3")).unwrap();
    }
    let c = cluster();
    scepd::store::Store::connect_postgres(&scepd::store::postgres::PgSettings {
        url: c.url(&database_of(data_dir)),
        password: Some(zeroize::Zeroizing::new(c.password.clone())),
        pool_size: 2,
        tls: scepd::store::postgres::PgTls::Disable,
        connect_timeout: std::time::Duration::from_secs(5),
    })
    .unwrap()
}

/// Every byte the store holds for `data_dir`, to search for secrets that must not be there:
/// the SQLite files (database and WAL), or a plain-SQL `pg_dump` of the database.
pub fn contents(data_dir: &Path) -> Vec<u8> {
    if !on_postgres(data_dir) {
        let mut all = Vec::new();
        for f in ["scepd.sqlite3", "scepd.sqlite3-wal"] {
            all.extend(std::fs::read(data_dir.join(f)).unwrap_or_default());
        }
        assert!(!all.is_empty(), "no database in {}", data_dir.display());
        return all;
    }
    let c = cluster();
    let bin = pg_bin("pg_dump");
    let out = Command::new(bin)
        .args(["-h", "127.0.0.1", "-p", &c.port.to_string(), "-U", "scepd"])
        .args(["--data-only", "--inserts", &database_of(data_dir)])
        .env("PGPASSWORD", &c.password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // bytea columns dump as '\\x…' hex: decode them so raw secret bytes are found too.
    let mut all = out.stdout.clone();
    let text = String::from_utf8_lossy(&out.stdout);
    for piece in text.split("'\\x").skip(1) {
        let hex: String = piece.chars().take_while(char::is_ascii_hexdigit).collect();
        all.extend(
            (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()),
        );
    }
    all
}

/// Writes `password` into a new file `dir/db-password`, mode 0600, as `[store]
/// password_file` wants it; its path.
pub fn password_file(dir: &Path, password: &str) -> PathBuf {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("db-password");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{password}\n").as_bytes()).unwrap();
    path
}

/// A PostgreSQL client binary from Debian's versioned directory.
pub fn pg_bin(name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path().join("bin").join(name)))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("{name} not found under /usr/lib/postgresql"))
}

/// `(serial, transaction_id)` of every certificate row, read straight from the database as a
/// crash left it (SQLite after `PRAGMA integrity_check` says ok).
pub fn certificate_rows(data_dir: &Path) -> Vec<(String, String)> {
    const QUERY: &str = "SELECT serial, transaction_id FROM certificates";
    if !on_postgres(data_dir) {
        let conn = rusqlite::Connection::open(data_dir.join("scepd.sqlite3")).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let mut stmt = conn.prepare(QUERY).unwrap();
        return stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    }
    cluster()
        .connect(&database_of(data_dir))
        .query(QUERY, &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}
