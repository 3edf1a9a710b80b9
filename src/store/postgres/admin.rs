//! Admin API tokens, the audit trail, and the platform verbs the admin API uses.

use postgres::Row;

use super::PgStore;
use super::sql::{exists, unique_violation};
use crate::store::error::Context;
use crate::store::{AdminToken, AuditEvent, StoreError};

const TOKEN_COLUMNS: &str = "name, scope, created_at, expires_at, revoked_at";

fn token_row(r: &Row) -> AdminToken {
    AdminToken {
        name: r.get(0),
        scope: r.get(1),
        created_at: r.get(2),
        expires_at: r.get(3),
        revoked_at: r.get(4),
    }
}

/// Appends one audit event inside the caller's transaction.
pub(super) fn audit(
    tx: &mut super::sql::Tx<'_, '_>,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO audit_events (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
        &[&at, &actor, &action, &subject, &detail],
    )
    .context("writing the audit trail")?;
    Ok(())
}

fn token_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!("a token named {name:?} already exists"))
}

impl PgStore {
    /// See [`crate::store::Backend::insert_admin_token`].
    pub fn insert_admin_token(&self, t: &AdminToken, token_hash: &[u8]) -> Result<(), StoreError> {
        const CTX: &str = "creating an admin token";
        self.write(CTX, |tx| {
            if exists(
                tx,
                "SELECT 1 FROM admin_tokens WHERE name = $1",
                &t.name,
                CTX,
            )? {
                return Err(token_taken(&t.name));
            }
            tx.execute(
                "INSERT INTO admin_tokens (name, scope, token_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[&t.name, &t.scope, &token_hash, &t.created_at, &t.expires_at],
            )
            .map_err(|e| match unique_violation(&e) {
                Some(_) => token_taken(&t.name),
                None => StoreError::postgres(CTX, e),
            })?;
            let detail = serde_json::json!({"scope": t.scope}).to_string();
            audit(tx, t.created_at, "cli", "token.created", &t.name, &detail)
        })
    }

    /// See [`crate::store::Backend::admin_token_by_hash`].
    pub fn admin_token_by_hash(&self, token_hash: &[u8]) -> Result<Option<AdminToken>, StoreError> {
        self.read(|c| {
            Ok(c.query_opt(
                &format!("SELECT {TOKEN_COLUMNS} FROM admin_tokens WHERE token_hash = $1"),
                &[&token_hash],
            )
            .context("reading an admin token")?
            .as_ref()
            .map(token_row))
        })
    }

    /// See [`crate::store::Backend::list_admin_tokens`].
    pub fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        self.read(|c| {
            Ok(c.query(
                &format!("SELECT {TOKEN_COLUMNS} FROM admin_tokens ORDER BY created_at, name"),
                &[],
            )
            .context("listing admin tokens")?
            .iter()
            .map(token_row)
            .collect())
        })
    }

    /// See [`crate::store::Backend::revoke_admin_token`].
    pub fn revoke_admin_token(&self, name: &str, now: i64) -> Result<(), StoreError> {
        self.write("revoking an admin token", |tx| {
            let n = tx
                .execute(
                    "UPDATE admin_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
                    &[&name, &now],
                )
                .context("revoking an admin token")?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "active admin token",
                    id: name.to_owned(),
                });
            }
            audit(tx, now, "cli", "token.revoked", name, "{}")
        })
    }

    /// See [`crate::store::Backend::append_audit`].
    pub fn append_audit(
        &self,
        at: i64,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.write("writing the audit trail", |tx| {
            audit(tx, at, actor, action, subject, detail)
        })
    }

    /// See [`crate::store::Backend::audit_events`].
    pub fn audit_events(&self, since: i64, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        self.read(|c| {
            Ok(c.query(
                "SELECT id, at, actor, action, subject, detail FROM audit_events \
                     WHERE at >= $1 ORDER BY id LIMIT $2",
                &[&since, &i64::from(limit)],
            )
            .context("listing audit events")?
            .iter()
            .map(|r| AuditEvent {
                id: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                action: r.get(3),
                subject: r.get(4),
                detail: r.get(5),
            })
            .collect())
        })
    }
}
