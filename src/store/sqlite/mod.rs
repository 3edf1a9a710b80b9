//! The SQLite backend (the embedded default): one file under the data dir.
//!
//! Concurrency: one writer connection behind a [`Mutex`], so writes in one process are
//! serialised; every write runs in a `BEGIN IMMEDIATE` transaction, so several processes sharing
//! the file (e.g. the daemon and an admin command) are serialised by SQLite too, waiting up to
//! the busy timeout. Reads use separate connections (WAL readers never wait for the writer),
//! concurrent issuances share commits (`store/group_commit.rs`), and a server moves WAL checkpoints
//! off the request path ([`SqliteStore::defer_checkpoints`], [`SqliteStore::checkpoint`]).
//! Verbs block (disk I/O, and up to [`BUSY_TIMEOUT`] under contention).
//!
//! Schema: numbered SQL files in `migrations/`, applied in order inside one transaction and
//! tracked with `PRAGMA user_version`. A database newer than this build is refused.

mod admin;
mod authorities;
mod backend;
mod certificates;
mod devices;
mod dynamic_challenges;
mod encryption_certificates;
mod issuance;
mod platforms;
mod published_crls;
mod readers;
mod readiness;
mod revocation;
mod rotation;
#[cfg(test)]
pub(crate) mod testutil;
mod trust_nonces;

// The shared domain types, under the names the backend's modules use (`super::X`).
use super::error::{self, StoreError};
use super::serial;
use super::types::*;

use error::Context;
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Migrations in order; migration `n` (1-based) is `MIGRATIONS[n - 1]`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_devices_revocation.sql"),
    include_str!("migrations/0003_admin.sql"),
    include_str!("migrations/0004_challenge_modes.sql"),
    include_str!("migrations/0005_rotation.sql"),
    include_str!("migrations/0006_lean_certificate_indexes.sql"),
    include_str!("migrations/0007_delivery_and_signer.sql"),
    include_str!("migrations/0008_trust_nonces.sql"),
    include_str!("migrations/0009_published_crls.sql"),
    include_str!("migrations/0010_request_fingerprint.sql"),
    include_str!("migrations/0011_ra_encryption_certificates.sql"),
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: u32 = 11;

const _: () = assert!(MIGRATIONS.len() == SCHEMA_VERSION as usize);

/// How long a write waits for another process holding the database lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes of WAL kept on disk after a checkpoint restarts it (`journal_size_limit`).
const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// WAL pages (4 KiB) at which the writer checkpoints by itself although checkpoints are
/// deferred: ~80 MB, several seconds of issuance at full speed, far beyond what the one-second
/// checkpoint timer leaves behind.
pub const CHECKPOINT_BACKSTOP_PAGES: i64 = 20_000;

/// The SQLite store. Every verb takes `&self`.
#[derive(Debug)]
pub struct SqliteStore {
    /// The writer (and, for in-memory databases, the only connection).
    /// Shared with the group committer's thread.
    conn: Arc<Mutex<Connection>>,
    /// Read-only connections to the same file; `None` in memory (a second in-memory
    /// connection would be another, empty database).
    readers: Option<readers::Readers>,
    issuances: super::group_commit::GroupCommit<issuance::Pending, Issuance>,
    /// Outcomes of recent commits, for [`SqliteStore::ready`].
    health: Arc<readiness::WriteHealth>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, sets WAL journaling, a 5 s busy
    /// timeout, `foreign_keys=ON` and `synchronous=FULL`, and applies pending migrations.
    ///
    /// Fails with [`StoreError::SchemaTooNew`] if the file was written by a newer scepd.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let open_err = |reason: &str, source| StoreError::Open {
            path: path.display().to_string(),
            reason: reason.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(|e| open_err("cannot open file", Some(e)))?;
        configure(&conn).map_err(|(reason, e)| open_err(reason, Some(e)))?;
        let mode =
            enable_wal(&conn).map_err(|e| open_err("cannot enable WAL journaling", Some(e)))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(open_err(
                "file system does not support WAL journaling",
                None,
            ));
        }
        let mut store = Self::migrated(conn)?;
        store.readers = Some(readers::Readers::new(path.to_path_buf()));
        Ok(store)
    }

    /// Opens a private in-memory database (no WAL), for tests and tools.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let open_err = |reason: &str, e| StoreError::Open {
            path: ":memory:".to_owned(),
            reason: reason.to_owned(),
            source: Some(e),
        };
        let conn = Connection::open_in_memory().map_err(|e| open_err("cannot open", e))?;
        configure(&conn).map_err(|(reason, e)| open_err(reason, e))?;
        Self::migrated(conn)
    }

    fn migrated(mut conn: Connection) -> Result<Self, StoreError> {
        migrate(&mut conn)?;
        // Each issuance of a group commit runs behind a savepoint whose undo log (the
        // statement journal, ~12 pages per issuance) SQLite would spill to a file in /var/tmp
        // past 64 KiB: an open, an unlink, ~70 KB of writes and a close per commit. Set after
        // the migrations, whose index builds may sort more than belongs in memory; the
        // writer's own transactions touch a few pages each (no bulk updates).
        conn.pragma_update(None, "temp_store", "MEMORY")
            .context("keeping temporary data in memory")?;
        let conn = Arc::new(Mutex::new(conn));
        let writer = conn.clone();
        let health = Arc::new(readiness::WriteHealth::default());
        let committed = health.clone();
        Ok(Self {
            conn,
            readers: None,
            issuances: super::group_commit::GroupCommit::new(Arc::new(move |group| {
                let results = issuance::commit_issuances(&writer, group);
                // A whole group failing is the database's failure (disk full, I/O); single
                // refusals (replays, spent challenges) are the requests'.
                match results.iter().find_map(|r| match r {
                    Err(StoreError::GroupCommit(why)) => Some(why.as_str()),
                    _ => None,
                }) {
                    Some(why) => committed.record(Err(why)),
                    None if !results.is_empty() => committed.record(Ok(())),
                    None => {}
                }
                results
            })),
            health,
        })
    }

    /// The schema version of the open database (equals [`SCHEMA_VERSION`] after open).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(read_user_version)
    }

    /// Chooses the commit durability: `true` (the default at open) fsyncs the WAL at every
    /// commit (`synchronous=FULL`: nothing a client received is lost on power failure);
    /// `false` (`synchronous=NORMAL`) survives process crashes but may lose the last commits
    /// on power loss, for a several-fold higher issuance rate on slow disks.
    pub fn set_full_durability(&self, full: bool) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.pragma_update(None, "synchronous", if full { "FULL" } else { "NORMAL" })
            .context("setting the synchronous mode")
    }

    /// Keeps the writer from checkpointing the WAL inside its commits: the caller promises to
    /// call [`SqliteStore::checkpoint`] regularly (the server does, on a timer), so that no request
    /// waits for a checkpoint. The writer still checkpoints if the WAL reaches
    /// [`CHECKPOINT_BACKSTOP_PAGES`] (the timer's passive checkpoints kept failing or could not
    /// catch up), so the WAL cannot grow without bound. Other processes on the file keep
    /// SQLite's automatic checkpoints.
    pub fn defer_checkpoints(&self) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_BACKSTOP_PAGES)
            .context("deferring checkpoints")?;
        // After a checkpoint the WAL restarts from its beginning; this caps what it keeps on
        // disk after a burst.
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .context("deferring checkpoints")
    }

    /// Copies committed WAL pages into the database file without blocking writers or readers
    /// (a passive checkpoint, on its own connection). Returns the WAL's size in pages and how
    /// many of them are now checkpointed, or `None` when another connection (e.g. a CLI
    /// command) was checkpointing at that moment; `(0, 0)` for in-memory databases.
    pub fn checkpoint(&self) -> Result<Option<(u32, u32)>, StoreError> {
        let Some(readers) = &self.readers else {
            return Ok(Some((0, 0)));
        };
        readers.with_checkpointer(|conn| {
            let (busy, wal, done): (i64, i64, i64) = conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .context("checkpointing the WAL")?;
            // SQLite reports "busy" as (1, -1, -1).
            if busy != 0 || wal < 0 || done < 0 {
                return Ok(None);
            }
            let pages = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
            Ok(Some((pages(wal), pages(done))))
        })
    }

    /// Runs `f` on a read-only connection (the writer for in-memory databases).
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.readers {
            Some(readers) => readers.with(f),
            None => f(&*self.lock()?),
        }
    }

    /// Locks the writer connection (see [`lock_writer`]).
    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        lock_writer(&self.conn)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, committing only if `f` succeeds.
    fn write<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context(context)?;
        let value = f(&tx)?;
        tx.commit().context(context)?;
        Ok(value)
    }
}

/// Connection settings that apply to file and memory databases alike.
fn configure(conn: &Connection) -> Result<(), (&'static str, rusqlite::Error)> {
    // Every statement of the PKIOperation path is prepared once and cached; the default 16
    // slots are fewer than the statements of one issuance plus the CRL refresh loop.
    conn.set_prepared_statement_cache_capacity(64);
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| ("cannot set busy timeout", e))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| ("cannot enable foreign keys", e))?;
    // FULL, not NORMAL: in WAL mode NORMAL survives a process kill but may lose the last
    // commits on power loss — a certificate the client already holds would be missing from the
    // store (no revocation, OCSP "unknown"). FULL fsyncs the WAL at each commit; the cost is
    // measured in docs/operations.md (tests/it/crash_safety.rs checks the kill -9 side).
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| ("cannot set synchronous mode", e))
}

/// Switches to WAL. Changing the journal mode needs an exclusive lock and SQLite reports
/// "busy" at once instead of waiting, so retry for up to [`BUSY_TIMEOUT`] (this only happens
/// when several processes open a fresh file at the same moment; WAL then persists in the file).
fn enable_wal(conn: &Connection) -> rusqlite::Result<String> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn read_user_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .context("reading the schema version")?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt {
        table: "schema",
        reason: format!("negative schema version {v}: not a scepd database"),
    })
}

/// Applies pending migrations in one immediate transaction, so concurrent openers of a fresh
/// file do not race: the second waits, then sees the new version and has nothing to do.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .context("starting migrations")?;
    let found = read_user_version(&tx)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in (1..=SCHEMA_VERSION).zip(MIGRATIONS).skip(found as usize) {
        let failed = |source| StoreError::Migration { version, source };
        tx.execute_batch(sql).map_err(failed)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(failed)?;
    }
    tx.commit().context("committing migrations")
}

/// Locks the writer connection. A panic while it was held (a bug, never a client's input)
/// poisons the lock; rather than refuse every later write until a restart, the connection is
/// taken back: rusqlite rolls a transaction back when a panic unwinds through it, and one still
/// open is rolled back here, so nothing half-done is ever committed. Only if that rollback
/// fails does the store stay unusable ([`StoreError::Poisoned`]).
fn lock_writer(writer: &Mutex<Connection>) -> Result<MutexGuard<'_, Connection>, StoreError> {
    let poisoned = match writer.lock() {
        Ok(conn) => return Ok(conn),
        Err(poisoned) => poisoned,
    };
    let conn = poisoned.into_inner();
    if !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "database writer unusable: a thread panicked inside a transaction that cannot be rolled back");
            return Err(StoreError::Poisoned);
        }
    }
    writer.clear_poison();
    tracing::error!(
        "database writer recovered after a panic in another thread; that thread's open transaction, if any, was rolled back"
    );
    Ok(conn)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn open_applies_pragmas_and_latest_schema() {
        let (_dir, store) = temp_store();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let conn = store.lock().unwrap();
        let q = |name: &str| -> String {
            conn.pragma_query_value(None, name, |r| r.get::<_, rusqlite::types::Value>(0))
                .map(|v| format!("{v:?}"))
                .unwrap()
        };
        assert_eq!(q("journal_mode"), r#"Text("wal")"#);
        assert_eq!(q("foreign_keys"), "Integer(1)");
        assert_eq!(q("synchronous"), "Integer(2)"); // FULL
        assert_eq!(q("busy_timeout"), "Integer(5000)");
        assert_eq!(q("temp_store"), "Integer(2)"); // MEMORY
    }

    #[test]
    fn reopening_keeps_data_and_does_not_migrate_again() {
        let (dir, store) = temp_store();
        store.insert_platform(&platform("p1", "Fleet", 1)).unwrap();
        drop(store);
        let store = SqliteStore::open(dir.path().join("scepd.db")).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.list_platforms().unwrap().len(), 1);
    }

    #[test]
    fn schema_6_certificates_migrate_as_released_without_a_signer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scepd.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..6] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(
                "PRAGMA user_version = 6;
                 INSERT INTO platforms (id, name, challenge_kind, allow_des, created_at)
                     VALUES ('p1', 'Fleet', 'static', 0, 1);
                 INSERT INTO authorities (id, role, state, subject, cert_der, key_ref,
                     not_before, not_after, created_at)
                     VALUES ('int', 'intermediate', 'active', 'CN=i', x'30', 'k', 0, 9, 0);
                 INSERT INTO certificates (issuer_id, serial, platform_id, transaction_id,
                     public_key_sha256, subject, der, not_before, not_after, requested_at,
                     status, revoked_at, revocation_reason)
                     VALUES ('int', '0a', 'p1', 'tx', zeroblob(32), 'CN=d', x'30', 0, 9, 0,
                     'revoked', 5, 'privilegeWithdrawn');",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let c = store
            .certificate_by_transaction("p1", "tx")
            .unwrap()
            .unwrap();
        // An old undelivered certificate cannot be told from a revoked delivered one: it
        // stays live for its transaction (a replay is refused rather than issued afresh).
        assert_eq!(
            (c.delivery, c.signer_key_sha256, c.status),
            (Delivery::Released, None, CertStatus::Revoked)
        );
    }

    #[test]
    fn refuses_a_database_from_a_newer_version() {
        let (dir, store) = temp_store();
        let newer = SCHEMA_VERSION + 1;
        store
            .lock()
            .unwrap()
            .pragma_update(None, "user_version", newer)
            .unwrap();
        drop(store);
        let err = SqliteStore::open(dir.path().join("scepd.db")).unwrap_err();
        assert!(matches!(err, StoreError::SchemaTooNew { found, .. } if found == newer));
        assert!(
            err.to_string().contains("newer than this scepd supports"),
            "{err}"
        );
    }

    #[test]
    fn concurrent_opens_of_a_fresh_file_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteStore::open(path).and_then(|s| s.schema_version())
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), SCHEMA_VERSION);
        }
    }

    #[test]
    fn reads_see_committed_writes_and_cannot_write() {
        let (_dir, store) = temp_store();
        store.insert_platform(&platform("p1", "Fleet", 1)).unwrap();
        assert_eq!(store.list_platforms().unwrap().len(), 1);
        let err = store
            .read(|c| {
                c.execute("DELETE FROM platforms", [])
                    .context("writing through a reader")
            })
            .unwrap_err();
        assert!(
            format!("{:?}", err).contains("readonly"),
            "a reader wrote: {err:?}"
        );
        assert_eq!(store.list_platforms().unwrap().len(), 1);
    }

    #[test]
    fn deferred_checkpoints_leave_the_wal_to_checkpoint() {
        let (_dir, store) = temp_store();
        store.defer_checkpoints().unwrap();
        for i in 0..50 {
            store
                .insert_platform(&platform(&format!("p{i}"), &format!("Fleet {i}"), i))
                .unwrap();
        }
        let auto: i64 = store
            .lock()
            .unwrap()
            .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
            .unwrap();
        assert_eq!(
            auto, CHECKPOINT_BACKSTOP_PAGES,
            "the writer still checkpoints at SQLite's default"
        );
        let (wal_pages, done) = store.checkpoint().unwrap().unwrap();
        assert!(wal_pages > 0, "{wal_pages}");
        assert_eq!(done, wal_pages);
        assert_eq!(store.list_platforms().unwrap().len(), 50);
        assert_eq!(
            SqliteStore::open_in_memory().unwrap().checkpoint().unwrap(),
            Some((0, 0))
        );
    }

    /// The statements on the enrollment, revocation and CRL paths search an index; none
    /// scans the certificates table (it grows by one row per enrollment).
    #[test]
    fn hot_queries_use_indexes() {
        let (_dir, store) = temp_store();
        let conn = store.lock().unwrap();
        let plan = |sql: &str| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
        };
        for (sql, index) in [
            (
                "SELECT 1 FROM certificates WHERE platform_id = 'p' AND transaction_id = 't' \
                 AND delivery <> 'withdrawn' AND superseded_at IS NULL",
                "certificates_transaction",
            ),
            (
                "SELECT 1 FROM certificates WHERE platform_id = 'p' AND transaction_id = 't' \
                 AND superseded_at IS NOT NULL AND delivery <> 'withdrawn' \
                 AND request_sha256 = x'00'",
                "certificates_superseded",
            ),
            (
                "SELECT 1 FROM certificates WHERE issuer_id = 'i' AND serial = '01'",
                "certificates_serial",
            ),
            (
                "SELECT serial FROM certificates WHERE issuer_id = 'i' AND status = 'revoked' \
                 AND not_after >= 5 ORDER BY revoked_at, serial",
                "certificates_revoked",
            ),
            (
                "UPDATE certificates SET status = 'revoked' WHERE platform_id = 'p' \
                 AND device_id = 'd' AND status = 'valid' AND not_after >= 5",
                "certificates_by_device",
            ),
            (
                "SELECT 1 FROM certificates WHERE device_id = 'd' ORDER BY id DESC LIMIT 5",
                "certificates_by_device",
            ),
            (
                "SELECT 1 FROM certificates WHERE platform_id = 'p' ORDER BY id DESC LIMIT 5",
                "certificates_platform",
            ),
            (
                "SELECT count(*) FROM certificates WHERE platform_id = 'p'",
                "INDEX",
            ),
        ] {
            let p = plan(sql);
            assert!(p.contains("SEARCH") && p.contains(index), "{sql}: {p}");
            if sql.contains("platform_id = 'p' ORDER BY") {
                // Newest first straight from the index, not by sorting the platform's rows.
                assert!(!p.contains("TEMP B-TREE"), "{sql}: {p}");
            }
        }
    }

    #[test]
    fn in_memory_store_works() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(!store.is_initialized().unwrap());
    }

    #[test]
    fn a_panic_holding_the_writer_rolls_back_its_transaction_and_the_writer_is_usable_again() {
        let store = std::sync::Arc::new(SqliteStore::open_in_memory().unwrap());
        let s = store.clone();
        let _ = std::thread::spawn(move || {
            let conn = s.conn.lock().unwrap();
            // A raw BEGIN: no rusqlite Transaction whose drop would roll back on unwind.
            conn.execute_batch(
                "BEGIN IMMEDIATE; CREATE TABLE half_done(x); INSERT INTO half_done VALUES (1);",
            )
            .unwrap();
            std::panic::panic_any("boom while holding the connection");
        })
        .join();
        assert!(store.conn.is_poisoned());
        assert!(store.list_platforms().unwrap().is_empty());
        assert!(!store.conn.is_poisoned());
        let conn = store.lock().unwrap();
        assert!(conn.is_autocommit());
        let half_done: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'half_done'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            half_done, 0,
            "the panicking thread's transaction was rolled back"
        );
    }
}
