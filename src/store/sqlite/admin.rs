//! Admin API tokens and the audit trail as the admin API and CLI read it.

use rusqlite::{OptionalExtension, params};

use super::error::Context;
use super::{AdminToken, AuditEvent, SqliteStore, StoreError};

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdminToken> {
    Ok(AdminToken {
        name: r.get(0)?,
        scope: r.get(1)?,
        created_at: r.get(2)?,
        expires_at: r.get(3)?,
        revoked_at: r.get(4)?,
    })
}

impl SqliteStore {
    /// Stores a new token (name unique → [`StoreError::Conflict`]).
    pub fn insert_admin_token(&self, t: &AdminToken, token_hash: &[u8]) -> Result<(), StoreError> {
        self.write("creating an admin token", |tx| {
            let exists: Option<String> =
                tx.query_row("SELECT name FROM admin_tokens WHERE name = ?1", params![t.name], |r| r.get(0)).optional().context("creating an admin token")?;
            if exists.is_some() {
                return Err(StoreError::Conflict(format!("a token named {:?} already exists", t.name)));
            }
            tx.execute(
                "INSERT INTO admin_tokens (name, scope, token_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![t.name, t.scope, token_hash, t.created_at, t.expires_at],
            )
            .context("creating an admin token")?;
            super::devices::audit(tx, t.created_at, "cli", "token.created", &t.name, &serde_json::json!({"scope": t.scope}).to_string())
        })
    }

    /// The token with this hash, if any (revoked and expired ones included: the caller decides).
    pub fn admin_token_by_hash(&self, token_hash: &[u8]) -> Result<Option<AdminToken>, StoreError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT name, scope, created_at, expires_at, revoked_at FROM admin_tokens WHERE token_hash = ?1",
                params![token_hash],
                token_row,
            )
            .optional()
            .context("reading an admin token")
        })
    }

    /// All tokens.
    pub fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT name, scope, created_at, expires_at, revoked_at FROM admin_tokens ORDER BY created_at, name")
                .context("listing admin tokens")?;
            let rows = stmt
                .query_map([], token_row)
                .context("listing admin tokens")?;
            rows.collect::<Result<Vec<_>, _>>()
                .context("listing admin tokens")
        })
    }

    /// Revokes a token by name.
    pub fn revoke_admin_token(&self, name: &str, now: i64) -> Result<(), StoreError> {
        self.write("revoking an admin token", |tx| {
            let n = tx
                .execute("UPDATE admin_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL", params![name, now])
                .context("revoking an admin token")?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "active admin token", id: name.to_owned() });
            }
            super::devices::audit(tx, now, "cli", "token.revoked", name, "{}")
        })
    }

    /// Appends an audit event (admin actions not covered by another verb).
    pub fn append_audit(
        &self,
        at: i64,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.write("writing the audit trail", |tx| {
            super::devices::audit(tx, at, actor, action, subject, detail)
        })
    }

    /// Audit events at or after `since`, oldest first, at most `limit`.
    pub fn audit_events(&self, since: i64, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id, at, actor, action, subject, detail FROM audit_events WHERE at >= ?1 ORDER BY id LIMIT ?2")
                .context("listing audit events")?;
            let rows = stmt
                .query_map(params![since, limit], |r| {
                    Ok(AuditEvent {
                        id: r.get(0)?,
                        at: r.get(1)?,
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        subject: r.get(4)?,
                        detail: r.get(5)?,
                    })
                })
                .context("listing audit events")?;
            rows.collect::<Result<Vec<_>, _>>()
                .context("listing audit events")
        })
    }
}
