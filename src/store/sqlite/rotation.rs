//! CA and RA rotation verbs: stage a `next` authority, activate it atomically.

use rusqlite::{OptionalExtension, params};

use super::error::Context;
use super::{CaRecord, CaRole, SqliteStore, StoreError};

impl SqliteStore {
    /// Stages `records` (state `next`) in one transaction, with an optional automatic
    /// activation time. Refuses when a `next` authority of the same role is already staged.
    pub fn stage_authorities(
        &self,
        records: &[CaRecord],
        activate_at: Option<i64>,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write("staging a CA rotation", |tx| {
            for r in records {
                let staged: Option<String> = tx
                    .query_row("SELECT id FROM authorities WHERE role = ?1 AND state = 'next'", params![r.role.as_str()], |row| row.get(0))
                    .optional()
                    .context("staging a CA rotation")?;
                if let Some(id) = staged {
                    return Err(StoreError::Conflict(format!("{} {id} is already staged; activate it first", r.role.as_str())));
                }
                tx.execute(
                    "INSERT INTO authorities (id, role, state, subject, cert_der, key_ref, issuer_id, not_before, not_after, created_at, activate_at) \
                     VALUES (?1, ?2, 'next', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![r.id, r.role.as_str(), r.subject, r.cert_der, r.key_ref, r.issuer_id, r.not_before, r.not_after, r.created_at, activate_at],
                )
                .context("staging a CA rotation")?;
                let detail = serde_json::json!({"role": r.role.as_str(), "activate_at": activate_at}).to_string();
                super::devices::audit(tx, now, actor, "ca.staged", &r.id, &detail)?;
            }
            Ok(())
        })
    }

    /// Activates staged authorities: in one transaction each one's role's active authority
    /// becomes `retired` and it becomes `active`. Unknown or not-staged ids are refused.
    pub fn activate_authorities(
        &self,
        ids: &[&str],
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write("activating a CA", |tx| {
            for id in ids {
                let role: Option<String> = tx
                    .query_row(
                        "SELECT role FROM authorities WHERE id = ?1 AND state = 'next'",
                        params![id],
                        |r| r.get(0),
                    )
                    .optional()
                    .context("activating a CA")?;
                let role = role.ok_or_else(|| StoreError::NotFound {
                    what: "staged authority",
                    id: (*id).to_owned(),
                })?;
                tx.execute(
                    "UPDATE authorities SET state = 'retired' WHERE role = ?1 AND state = 'active'",
                    params![role],
                )
                .context("activating a CA")?;
                tx.execute(
                    "UPDATE authorities SET state = 'active', activate_at = NULL WHERE id = ?1",
                    params![id],
                )
                .context("activating a CA")?;
                super::devices::audit(
                    tx,
                    now,
                    actor,
                    "ca.activated",
                    id,
                    &serde_json::json!({"role": role}).to_string(),
                )?;
            }
            Ok(())
        })
    }

    /// Staged authorities whose automatic activation time has come.
    pub fn due_activations(&self, now: i64) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id FROM authorities WHERE state = 'next' AND activate_at IS NOT NULL AND activate_at <= ?1 ORDER BY role")
                .context("reading due activations")?;
            let rows = stmt
                .query_map(params![now], |r| r.get(0))
                .context("reading due activations")?;
            rows.collect::<Result<Vec<String>, _>>()
                .context("reading due activations")
        })
    }

    /// Staged authorities of a role.
    pub fn staged_authority(&self, role: CaRole) -> Result<Option<CaRecord>, StoreError> {
        Ok(self
            .authorities()?
            .into_iter()
            .find(|a| a.role == role && a.state == super::CaState::Next))
    }
}
