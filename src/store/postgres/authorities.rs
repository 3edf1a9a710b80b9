//! CA, intermediate and RA certificate verbs.

use postgres::Row;

use super::PgStore;
use super::sql::{exists, unique_violation};
use crate::store::error::Context;
use crate::store::{CaRecord, CaRole, CaState, StoreError};

const COLUMNS: &str =
    "id, role, state, subject, cert_der, key_ref, issuer_id, not_before, not_after, created_at";

fn from_row(row: &Row) -> Result<CaRecord, StoreError> {
    let corrupt = |what: &str, v: &str| StoreError::Corrupt {
        table: "authorities",
        reason: format!("unknown {what} '{v}'"),
    };
    let role: String = row.get(1);
    let state: String = row.get(2);
    Ok(CaRecord {
        id: row.get(0),
        role: CaRole::parse(&role).ok_or_else(|| corrupt("CA role", &role))?,
        state: CaState::parse(&state).ok_or_else(|| corrupt("CA state", &state))?,
        subject: row.get(3),
        cert_der: row.get(4),
        key_ref: row.get(5),
        issuer_id: row.get(6),
        not_before: row.get(7),
        not_after: row.get(8),
        created_at: row.get(9),
    })
}

/// Checks `batch[index]` against the database and the records before it (for clear
/// messages; the unique indexes decide races between nodes).
fn check_insertable(
    tx: &mut super::sql::Tx<'_, '_>,
    batch: &[CaRecord],
    index: usize,
) -> Result<(), StoreError> {
    const CTX: &str = "checking authorities";
    let (earlier, rest) = batch.split_at(index);
    let Some(record) = rest.first() else {
        return Ok(());
    };
    if earlier.iter().any(|r| r.id == record.id)
        || exists(
            tx,
            "SELECT 1 FROM authorities WHERE id = $1",
            &record.id,
            CTX,
        )?
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
            || exists(
                tx,
                "SELECT 1 FROM authorities WHERE role = $1 AND state = 'active'",
                &record.role.as_str(),
                CTX,
            )?)
    {
        return Err(active_conflict(record.role));
    }
    if let Some(issuer) = &record.issuer_id {
        let known = batch.iter().any(|r| &r.id == issuer)
            || exists(tx, "SELECT 1 FROM authorities WHERE id = $1", issuer, CTX)?;
        if !known {
            return Err(StoreError::NotFound {
                what: "issuing authority",
                id: issuer.clone(),
            });
        }
    }
    Ok(())
}

fn active_conflict(role: CaRole) -> StoreError {
    StoreError::Conflict(format!(
        "an active {} authority already exists",
        role.as_str()
    ))
}

impl PgStore {
    /// See [`crate::store::Backend::insert_authorities`].
    pub fn insert_authorities(&self, records: &[CaRecord]) -> Result<(), StoreError> {
        self.write("adding authorities", |tx| {
            for (i, r) in records.iter().enumerate() {
                check_insertable(tx, records, i)?;
                tx.execute(
                    &format!(
                        "INSERT INTO authorities ({COLUMNS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                    ),
                    &[
                        &r.id,
                        &r.role.as_str(),
                        &r.state.as_str(),
                        &r.subject,
                        &r.cert_der,
                        &r.key_ref,
                        &r.issuer_id,
                        &r.not_before,
                        &r.not_after,
                        &r.created_at,
                    ],
                )
                .map_err(|e| match unique_violation(&e) {
                    Some("authorities_one_active_per_role") => active_conflict(r.role),
                    Some(_) => StoreError::Conflict(format!(
                        "an authority with id '{}' already exists",
                        r.id
                    )),
                    None => StoreError::postgres("adding authorities", e),
                })?;
            }
            Ok(())
        })
    }

    /// See [`crate::store::Backend::authorities`].
    pub fn authorities(&self) -> Result<Vec<CaRecord>, StoreError> {
        self.read(|c| {
            c.query(
                &format!("SELECT {COLUMNS} FROM authorities ORDER BY created_at, seq"),
                &[],
            )
            .context("listing authorities")?
            .iter()
            .map(from_row)
            .collect()
        })
    }

    /// See [`crate::store::Backend::active_authority`].
    pub fn active_authority(&self, role: CaRole) -> Result<Option<CaRecord>, StoreError> {
        self.read(|c| {
            c.query_opt(
                &format!("SELECT {COLUMNS} FROM authorities WHERE role = $1 AND state = 'active'"),
                &[&role.as_str()],
            )
            .context("reading the active authority")?
            .as_ref()
            .map(from_row)
            .transpose()
        })
    }

    /// See [`crate::store::Backend::is_initialized`].
    pub fn is_initialized(&self) -> Result<bool, StoreError> {
        Ok(self.active_authority(CaRole::Intermediate)?.is_some())
    }
}
