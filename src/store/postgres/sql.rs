//! Small helpers every PostgreSQL verb uses: one transaction per write, statements prepared
//! once per connection, unique violations.

use std::collections::HashMap;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{GenericClient, Row, Statement};

use super::PgStore;
use crate::store::StoreError;
use crate::store::error::Context;

/// Most statements one connection keeps prepared; beyond it a text is prepared per use (the
/// store's SQL is a fixed set far below this, so it is only a bound).
const MAX_PREPARED: usize = 256;

/// A connection (or a transaction on one) whose queries use the connection's prepared
/// statements. The verbs call `query`/`execute` with SQL text as they would on the client.
pub(super) struct Sql<'a, C> {
    c: &'a mut C,
    statements: &'a mut HashMap<String, Statement>,
}

/// [`Sql`] inside a transaction.
pub(super) type Tx<'a, 'b> = Sql<'a, postgres::Transaction<'b>>;

impl<C: GenericClient> Sql<'_, C> {
    fn prepared(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.c.prepare(sql)?;
        if self.statements.len() < MAX_PREPARED {
            self.statements.insert(sql.to_owned(), s.clone());
        }
        Ok(s)
    }

    /// Rows of `sql`.
    pub(super) fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.prepared(sql)?;
        self.c.query(&s, params)
    }

    /// The one row of `sql`.
    pub(super) fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let s = self.prepared(sql)?;
        self.c.query_one(&s, params)
    }

    /// The row of `sql`, if any.
    pub(super) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.prepared(sql)?;
        self.c.query_opt(&s, params)
    }

    /// Rows changed by `sql`.
    pub(super) fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let s = self.prepared(sql)?;
        self.c.execute(&s, params)
    }
}

impl PgStore {
    /// Runs `f` on a pooled connection outside an explicit transaction (a read). A read whose
    /// connection broke (the database restarted since it was pooled) runs again on the next
    /// connection: reads are idempotent, and the pool discards the broken one. Writes are
    /// not retried: a COMMIT whose answer was lost may have happened.
    pub(super) fn read<T>(
        &self,
        f: impl Fn(&mut Sql<'_, postgres::Client>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut broken;
        let run = |conn: &mut super::connection::PgConn, broken: &mut bool| {
            let result = f(&mut Sql {
                c: &mut conn.client,
                statements: &mut conn.statements,
            });
            *broken = conn.client.is_closed();
            result
        };
        // Every pooled connection may have broken at once; each fails at once, not after a
        // timeout, so trying past all of them costs little.
        let mut tries = self.pool_size() + 1;
        loop {
            // Set only when a connection was had and broke under the read; a pool that
            // cannot connect at all (timeout) is not retried.
            broken = false;
            match self.with_client(|conn| run(conn, &mut broken)) {
                Err(StoreError::Unavailable(_)) if broken && tries > 1 => tries -= 1,
                other => return other,
            }
        }
    }

    /// Runs `f` in one transaction, committed only if `f` succeeds (an error rolls back when
    /// the transaction is dropped).
    pub(super) fn write<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&mut Tx<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_client(|conn| {
            let mut tx = conn.client.transaction().context(context)?;
            if !self
                .full_durability
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                tx.batch_execute("SET LOCAL synchronous_commit = off")
                    .context(context)?;
            }
            let value = f(&mut Sql {
                c: &mut tx,
                statements: &mut conn.statements,
            })?;
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

/// The foreign key a statement broke, when it referenced a row that does not exist.
pub(super) fn foreign_key_violation(e: &postgres::Error) -> Option<&str> {
    let db = e.as_db_error()?;
    (db.code() == &SqlState::FOREIGN_KEY_VIOLATION).then(|| db.constraint().unwrap_or(""))
}

/// Whether a row matched: `SELECT 1 … LIMIT 1` as a bool.
pub(super) fn exists(
    tx: &mut Sql<'_, impl GenericClient>,
    sql: &str,
    param: &(dyn postgres::types::ToSql + Sync),
    context: &'static str,
) -> Result<bool, StoreError> {
    Ok(tx.query_opt(sql, &[param]).context(context)?.is_some())
}

/// Runs `f` on a connection of `pool` outside an explicit transaction: each statement it
/// sends is a transaction of its own, all of it or nothing, committed in the statement's one
/// round trip instead of BEGIN, statement, COMMIT. Not retried, as [`PgStore::write`].
pub(super) fn autocommit<T>(
    pool: &super::connection::Pool,
    f: impl FnOnce(&mut Sql<'_, postgres::Client>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    pool.with_client(|conn| {
        f(&mut Sql {
            c: &mut conn.client,
            statements: &mut conn.statements,
        })
    })
}
