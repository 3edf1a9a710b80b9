//! Read-only connections beside the writer.
//!
//! In WAL mode readers never wait for the writer: a lookup on the enrollment path (replay
//! check, device state, platform) must not queue behind a group commit that is waiting for
//! its fsync. Each read takes an idle connection (or opens one), runs, and hands it back; a
//! read sees everything committed before it started.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::error::Context;

/// Idle connections kept for reuse beyond one per core; a burst beyond that opens and closes
/// extra ones (each open parses the schema).
const SPARE_IDLE: usize = 4;

#[derive(Debug)]
pub(super) struct Readers {
    path: PathBuf,
    max_idle: usize,
    idle: Mutex<Vec<Connection>>,
    /// Its own connection for WAL checkpoints (not query_only), opened on first use.
    checkpointer: Mutex<Option<Connection>>,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            path,
            max_idle: cores + SPARE_IDLE,
            idle: Mutex::new(Vec::new()),
            checkpointer: Mutex::new(None),
        }
    }

    /// Runs `f` on a read-only connection.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().map_err(|_| StoreError::Poisoned)?.pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open()?,
        };
        let result = f(&conn);
        // A connection left inside a transaction (an error mid-statement cannot do that with
        // rusqlite's statement handling, but be sure) would pin an old snapshot: drop it. A
        // poisoned pool only loses the connection, never the read's result.
        if conn.is_autocommit() {
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < self.max_idle {
                    idle.push(conn);
                }
            }
        }
        result
    }

    /// Runs `f` on the checkpoint connection.
    pub(super) fn with_checkpointer<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.checkpointer.lock().map_err(|_| StoreError::Poisoned)?;
        let conn = match slot.take() {
            Some(c) => c,
            None => self.connect()?,
        };
        let result = f(&conn);
        *slot = Some(conn);
        result
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn = self.connect()?;
        conn.pragma_update(None, "query_only", "ON")
            .context("opening a reader")?;
        Ok(conn)
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        // Read-write at the file level (a WAL reader may need to rebuild the -shm index after a
        // crash); readers are query_only at the SQL level: nothing can write through them.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).context("opening a reader")?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.busy_timeout(super::BUSY_TIMEOUT)
            .context("opening a reader")?;
        Ok(conn)
    }
}
