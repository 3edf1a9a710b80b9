//! CA and RA rotation verbs. Every node runs the activation timer; the row locks make the
//! first node activate and the others find nothing staged any more.

use super::PgStore;
use super::admin::audit;
use super::sql::unique_violation;
use crate::store::error::Context;
use crate::store::{CaRecord, CaRole, CaState, StoreError};

fn already_staged(role: CaRole, id: &str) -> StoreError {
    StoreError::Conflict(format!(
        "{} {id} is already staged; activate it first",
        role.as_str()
    ))
}

impl PgStore {
    /// See [`crate::store::Backend::stage_authorities`].
    pub fn stage_authorities(
        &self,
        records: &[CaRecord],
        activate_at: Option<i64>,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        const CTX: &str = "staging a CA rotation";
        self.write(CTX, |tx| {
            for r in records {
                let staged: Option<String> = tx
                    .query_opt(
                        "SELECT id FROM authorities WHERE role = $1 AND state = 'next'",
                        &[&r.role.as_str()],
                    )
                    .context(CTX)?
                    .map(|row| row.get(0));
                if let Some(id) = staged {
                    return Err(already_staged(r.role, &id));
                }
                tx.execute(
                    "INSERT INTO authorities (id, role, state, subject, cert_der, key_ref, issuer_id, \
                     not_before, not_after, created_at, activate_at) \
                     VALUES ($1, $2, 'next', $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[
                        &r.id,
                        &r.role.as_str(),
                        &r.subject,
                        &r.cert_der,
                        &r.key_ref,
                        &r.issuer_id,
                        &r.not_before,
                        &r.not_after,
                        &r.created_at,
                        &activate_at,
                    ],
                )
                .map_err(|e| match unique_violation(&e) {
                    Some("authorities_one_next_per_role") => already_staged(r.role, "another"),
                    Some(_) => StoreError::Conflict(format!(
                        "an authority with id '{}' already exists",
                        r.id
                    )),
                    None => StoreError::postgres(CTX, e),
                })?;
                let detail =
                    serde_json::json!({"role": r.role.as_str(), "activate_at": activate_at})
                        .to_string();
                audit(tx, now, actor, "ca.staged", &r.id, &detail)?;
            }
            Ok(())
        })
    }

    /// See [`crate::store::Backend::activate_authorities`].
    pub fn activate_authorities(
        &self,
        ids: &[&str],
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        const CTX: &str = "activating a CA";
        self.write(CTX, |tx| {
            for id in ids {
                // FOR UPDATE: a second node activating the same id waits, then sees it active.
                let role: String = tx
                    .query_opt(
                        "SELECT role FROM authorities WHERE id = $1 AND state = 'next' FOR UPDATE",
                        &[id],
                    )
                    .context(CTX)?
                    .map(|r| r.get(0))
                    .ok_or_else(|| StoreError::NotFound {
                        what: "staged authority",
                        id: (*id).to_owned(),
                    })?;
                tx.execute(
                    "UPDATE authorities SET state = 'retired' WHERE role = $1 AND state = 'active'",
                    &[&role],
                )
                .context(CTX)?;
                tx.execute(
                    "UPDATE authorities SET state = 'active', activate_at = NULL WHERE id = $1",
                    &[id],
                )
                .context(CTX)?;
                let detail = serde_json::json!({"role": role}).to_string();
                audit(tx, now, actor, "ca.activated", id, &detail)?;
            }
            Ok(())
        })
    }

    /// See [`crate::store::Backend::due_activations`].
    pub fn due_activations(&self, now: i64) -> Result<Vec<String>, StoreError> {
        self.read(|c| {
            Ok(c.query(
                "SELECT id FROM authorities WHERE state = 'next' AND activate_at IS NOT NULL \
                     AND activate_at <= $1 ORDER BY role",
                &[&now],
            )
            .context("reading due activations")?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    /// See [`crate::store::Backend::staged_authority`].
    pub fn staged_authority(&self, role: CaRole) -> Result<Option<CaRecord>, StoreError> {
        Ok(self
            .authorities()?
            .into_iter()
            .find(|a| a.role == role && a.state == CaState::Next))
    }
}
