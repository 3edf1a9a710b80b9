//! CA, intermediate and RA certificate verbs.

use super::error::Context;
use super::{CaRecord, CaRole, CaState, SqliteStore, StoreError};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str =
    "id, role, state, subject, cert_der, key_ref, issuer_id, not_before, not_after, created_at";

fn unknown(what: &str, value: &str) -> FromSqlError {
    FromSqlError::Other(format!("unknown {what} '{value}'").into())
}

impl ToSql for CaRole {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for CaRole {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        Self::parse(s).ok_or_else(|| unknown("CA role", s))
    }
}

impl ToSql for CaState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for CaState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        Self::parse(s).ok_or_else(|| unknown("CA state", s))
    }
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<CaRecord> {
    Ok(CaRecord {
        id: row.get(0)?,
        role: row.get(1)?,
        state: row.get(2)?,
        subject: row.get(3)?,
        cert_der: row.get(4)?,
        key_ref: row.get(5)?,
        issuer_id: row.get(6)?,
        not_before: row.get(7)?,
        not_after: row.get(8)?,
        created_at: row.get(9)?,
    })
}

/// Checks `batch[index]` against the database and, for uniqueness, the records before it.
/// An issuer anywhere in the batch counts as known.
fn check_insertable(conn: &Connection, batch: &[CaRecord], index: usize) -> Result<(), StoreError> {
    let (earlier, rest) = batch.split_at(index);
    let Some(record) = rest.first() else {
        return Ok(());
    };
    let in_db = |sql: &str, p: &dyn ToSql| -> Result<bool, StoreError> {
        conn.query_row(sql, [p], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .context("checking authorities")
    };
    if earlier.iter().any(|r| r.id == record.id)
        || in_db("SELECT 1 FROM authorities WHERE id = ?1", &record.id)?
    {
        return Err(StoreError::Conflict(format!(
            "an authority with id '{}' already exists",
            record.id
        )));
    }
    if record.state == CaState::Active
        && (earlier
            .iter()
            .any(|r| r.state == CaState::Active && r.role == record.role)
            || in_db(
                "SELECT 1 FROM authorities WHERE role = ?1 AND state = 'active'",
                &record.role,
            )?)
    {
        return Err(StoreError::Conflict(format!(
            "an active {} authority already exists",
            record.role.as_str()
        )));
    }
    if let Some(issuer) = &record.issuer_id {
        let known = batch.iter().any(|r| &r.id == issuer)
            || in_db("SELECT 1 FROM authorities WHERE id = ?1", issuer)?;
        if !known {
            return Err(StoreError::NotFound {
                what: "issuing authority",
                id: issuer.clone(),
            });
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Adds CA records atomically: all or none (used by PKI bootstrap and rollover). Records
    /// may name issuers earlier or later in the same batch. Fails with
    /// [`StoreError::Conflict`] on a taken id or a second active authority of one role, and
    /// [`StoreError::NotFound`] when an issuer is neither stored nor in the batch.
    pub fn insert_authorities(&self, records: &[CaRecord]) -> Result<(), StoreError> {
        self.write("adding authorities", |tx| {
            for (i, record) in records.iter().enumerate() {
                check_insertable(tx, records, i)?;
                tx.execute(
                    &format!(
                        "INSERT INTO authorities ({COLUMNS}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    ),
                    params![
                        record.id,
                        record.role,
                        record.state,
                        record.subject,
                        record.cert_der,
                        record.key_ref,
                        record.issuer_id,
                        record.not_before,
                        record.not_after,
                        record.created_at
                    ],
                )
                .context("adding authorities")?;
            }
            Ok(())
        })
    }

    /// All CA records, oldest first (ties in insertion order).
    pub fn authorities(&self) -> Result<Vec<CaRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM authorities ORDER BY created_at, rowid"
                ))
                .context("listing authorities")?;
            stmt.query_map([], from_row)
                .and_then(Iterator::collect)
                .context("listing authorities")
        })
    }

    /// The active authority of `role`, if any (there is at most one).
    pub fn active_authority(&self, role: CaRole) -> Result<Option<CaRecord>, StoreError> {
        self.read(|conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM authorities WHERE role = ?1 AND state = 'active'"),
                [role],
                from_row,
            )
            .optional()
            .context("reading the active authority")
        })
    }

    /// True once PKI bootstrap has stored an active intermediate.
    pub fn is_initialized(&self) -> Result<bool, StoreError> {
        Ok(self.active_authority(CaRole::Intermediate)?.is_some())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::super::testutil::{ca, temp_store};
    use super::*;

    fn hierarchy() -> Vec<CaRecord> {
        vec![
            ca("root", CaRole::Root, CaState::Active, None),
            ca("int", CaRole::Intermediate, CaState::Active, Some("root")),
            ca("ra", CaRole::Ra, CaState::Active, Some("int")),
        ]
    }

    #[test]
    fn bootstrap_makes_the_store_initialized() {
        let (_dir, store) = temp_store();
        assert!(!store.is_initialized().unwrap());
        store.insert_authorities(&hierarchy()).unwrap();
        assert!(store.is_initialized().unwrap());
        assert_eq!(store.authorities().unwrap(), hierarchy());
        let int = store
            .active_authority(CaRole::Intermediate)
            .unwrap()
            .unwrap();
        assert_eq!(int, hierarchy()[1]);
    }

    #[test]
    fn batch_order_does_not_matter_for_issuers() {
        let (_dir, store) = temp_store();
        let mut batch = hierarchy();
        batch.reverse();
        store.insert_authorities(&batch).unwrap();
        assert_eq!(store.authorities().unwrap().len(), 3);
    }

    #[test]
    fn a_failing_batch_stores_nothing() {
        let (_dir, store) = temp_store();
        let mut batch = hierarchy();
        batch.push(ca(
            "int2",
            CaRole::Intermediate,
            CaState::Active,
            Some("root"),
        ));
        let err = store.insert_authorities(&batch).unwrap_err();
        assert!(err.to_string().contains("active intermediate"), "{err}");
        assert!(store.authorities().unwrap().is_empty());
        assert!(!store.is_initialized().unwrap());
    }

    #[test]
    fn second_active_of_a_role_conflicts_but_next_and_retired_do_not() {
        let (_dir, store) = temp_store();
        store.insert_authorities(&hierarchy()).unwrap();
        let again = [ca(
            "int2",
            CaRole::Intermediate,
            CaState::Active,
            Some("root"),
        )];
        assert!(matches!(
            store.insert_authorities(&again),
            Err(StoreError::Conflict(_))
        ));
        store
            .insert_authorities(&[
                ca("int2", CaRole::Intermediate, CaState::Next, Some("root")),
                ca("int0", CaRole::Intermediate, CaState::Retired, Some("root")),
            ])
            .unwrap();
        let active = store
            .active_authority(CaRole::Intermediate)
            .unwrap()
            .unwrap();
        assert_eq!(active.id, "int");
    }

    #[test]
    fn duplicate_id_and_unknown_issuer_are_refused() {
        let (_dir, store) = temp_store();
        store.insert_authorities(&hierarchy()).unwrap();
        let dup = [ca("ra", CaRole::Ra, CaState::Next, Some("int"))];
        assert!(matches!(
            store.insert_authorities(&dup),
            Err(StoreError::Conflict(_))
        ));
        let orphan = [ca("ra2", CaRole::Ra, CaState::Next, Some("ghost"))];
        let err = store.insert_authorities(&orphan).unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    }

    #[test]
    fn no_active_authority_is_none() {
        let (_dir, store) = temp_store();
        assert_eq!(store.active_authority(CaRole::Root).unwrap(), None);
        store.insert_authorities(&[]).unwrap();
        assert!(store.authorities().unwrap().is_empty());
    }
}
