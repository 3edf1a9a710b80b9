//! Small helpers every PostgreSQL verb uses: one transaction per write, unique violations.

use postgres::error::SqlState;

use super::PgStore;
use crate::store::StoreError;
use crate::store::error::Context;

impl PgStore {
    /// Runs `f` on a pooled connection outside an explicit transaction (a read).
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_client(f)
    }

    /// Runs `f` in one transaction, committed only if `f` succeeds (an error rolls back when
    /// the transaction is dropped).
    pub(super) fn write<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_client(|c| {
            let mut tx = c.transaction().context(context)?;
            if !self
                .full_durability
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                tx.batch_execute("SET LOCAL synchronous_commit = off")
                    .context(context)?;
            }
            let value = f(&mut tx)?;
            tx.commit().context(context)?;
            Ok(value)
        })
    }
}

/// The constraint a statement broke when it failed on a unique key (another node may have
/// inserted the same row between our check and our insert).
pub(super) fn unique_violation(e: &postgres::Error) -> Option<&str> {
    let db = e.as_db_error()?;
    (db.code() == &SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or(""))
}

/// Whether a row matched: `SELECT 1 … LIMIT 1` as a bool.
pub(super) fn exists(
    tx: &mut impl postgres::GenericClient,
    sql: &str,
    param: &(dyn postgres::types::ToSql + Sync),
    context: &'static str,
) -> Result<bool, StoreError> {
    Ok(tx.query_opt(sql, &[param]).context(context)?.is_some())
}
