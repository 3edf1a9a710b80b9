//! Readiness and durability on PostgreSQL.

use std::sync::atomic::Ordering;

use super::PgStore;
use crate::store::StoreError;
use crate::store::error::Context;

impl PgStore {
    /// See [`crate::store::Backend::ready`]: a real write (the probe row) in a committed
    /// transaction, so an unreachable, read-only or full database is not ready.
    pub fn ready(&self) -> Result<(), StoreError> {
        let now = crate::clock::unix_now();
        self.write("probing the database", |tx| {
            tx.execute(
                "INSERT INTO readiness_probe (id, probed_at, payload) VALUES (1, $1, '') \
                 ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
                &[&now],
            )
            .context("probing the database")?;
            Ok(())
        })
    }

    /// See [`crate::store::Backend::set_full_durability`]: `false` turns
    /// `synchronous_commit` off for this node's transactions (a crash of the database server
    /// may then lose the last commits; PostgreSQL itself stays consistent).
    pub fn set_full_durability(&self, full: bool) -> Result<(), StoreError> {
        self.full_durability.store(full, Ordering::Relaxed);
        Ok(())
    }

    /// See [`crate::store::Backend::defer_checkpoints`]: PostgreSQL's checkpointer already
    /// runs off the request path; there is nothing to defer.
    pub fn defer_checkpoints(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// See [`crate::store::Backend::checkpoint`]: no WAL of ours to checkpoint; reported as
    /// an empty one, like an in-memory SQLite database.
    pub fn checkpoint(&self) -> Result<Option<(u32, u32)>, StoreError> {
        Ok(Some((0, 0)))
    }
}
