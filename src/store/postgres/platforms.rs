//! Platform verbs.

use postgres::Row;

use super::PgStore;
use super::sql::{exists, unique_violation};
use crate::store::error::Context;
use crate::store::{ChallengeConfig, Platform, StoreError};

pub(super) const COLUMNS: &str = "id, name, challenge_kind, challenge_settings, challenge_secret_hash, allow_des, created_at, \
     device_id_pattern";

/// Dynamic platforms are found by the user name in their JSON settings (indexed, unique).
const BY_USERNAME: &str =
    "challenge_kind = 'dynamic' AND (challenge_settings::json) ->> 'username' = $1";

fn decode(row: &Row) -> Result<Platform, StoreError> {
    decode_at(row, 0)
}

/// The platform in [`COLUMNS`] from column `at` on.
pub(super) fn decode_at(row: &Row, at: usize) -> Result<Platform, StoreError> {
    let get = |e: postgres::Error| StoreError::postgres("reading a platform", e);
    let id: String = row.try_get(at).map_err(get)?;
    let kind: String = row.try_get(at + 2).map_err(get)?;
    let settings: String = row.try_get(at + 3).map_err(get)?;
    let challenge = ChallengeConfig::decode(&kind, &settings, row.try_get(at + 4).map_err(get)?)
        .map_err(|reason| StoreError::Corrupt {
            table: "platforms",
            reason: format!("platform {id}: {reason}"),
        })?;
    Ok(Platform {
        id,
        name: row.try_get(at + 1).map_err(get)?,
        challenge,
        allow_des: row.try_get(at + 5).map_err(get)?,
        created_at: row.try_get(at + 6).map_err(get)?,
        device_id_pattern: row.try_get(at + 7).map_err(get)?,
    })
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!("a platform named '{name}' already exists"))
}

fn username_taken(username: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a dynamic platform with user name '{username}' already exists"
    ))
}

fn id_taken(id: &str) -> StoreError {
    StoreError::Conflict(format!("a platform with id '{id}' already exists"))
}

impl PgStore {
    /// See [`crate::store::Backend::insert_platform`].
    pub fn insert_platform(&self, platform: &Platform) -> Result<(), StoreError> {
        const CTX: &str = "adding a platform";
        let (kind, settings, secret_hash) = platform.challenge.encode()?;
        let username = match &platform.challenge {
            ChallengeConfig::Dynamic(d) => Some(d.username.as_str()),
            _ => None,
        };
        self.write(CTX, |tx| {
            if exists(
                tx,
                "SELECT 1 FROM platforms WHERE name = $1",
                &platform.name,
                CTX,
            )? {
                return Err(name_taken(&platform.name));
            }
            if let Some(u) = username {
                let sql = format!("SELECT 1 FROM platforms WHERE {BY_USERNAME}");
                if exists(tx, &sql, &u, CTX)? {
                    return Err(username_taken(u));
                }
            }
            if exists(
                tx,
                "SELECT 1 FROM platforms WHERE id = $1",
                &platform.id,
                CTX,
            )? {
                return Err(id_taken(&platform.id));
            }
            tx.execute(
                &format!(
                    "INSERT INTO platforms ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ),
                &[
                    &platform.id,
                    &platform.name,
                    &kind,
                    &settings,
                    &secret_hash,
                    &platform.allow_des,
                    &platform.created_at,
                    &platform.device_id_pattern,
                ],
            )
            .map_err(|e| match unique_violation(&e) {
                Some("platforms_name_key") => name_taken(&platform.name),
                Some("platforms_dynamic_username") => username_taken(username.unwrap_or("")),
                Some(_) => id_taken(&platform.id),
                None => StoreError::postgres(CTX, e),
            })?;
            Ok(())
        })
    }

    /// See [`crate::store::Backend::platform`].
    pub fn platform(&self, id: &str) -> Result<Option<Platform>, StoreError> {
        self.platform_where("id = $1", id)
    }

    /// See [`crate::store::Backend::platform_by_name`].
    pub fn platform_by_name(&self, name: &str) -> Result<Option<Platform>, StoreError> {
        self.platform_where("name = $1", name)
    }

    /// See [`crate::store::Backend::dynamic_platform_by_username`].
    pub fn dynamic_platform_by_username(
        &self,
        username: &str,
    ) -> Result<Option<Platform>, StoreError> {
        self.platform_where(BY_USERNAME, username)
    }

    /// See [`crate::store::Backend::list_platforms`].
    pub fn list_platforms(&self) -> Result<Vec<Platform>, StoreError> {
        self.read(|c| {
            c.query(
                &format!("SELECT {COLUMNS} FROM platforms ORDER BY created_at, name"),
                &[],
            )
            .context("listing platforms")?
            .iter()
            .map(decode)
            .collect()
        })
    }

    /// `condition` is one of the fixed conditions above, never caller input.
    fn platform_where(&self, condition: &str, value: &str) -> Result<Option<Platform>, StoreError> {
        self.read(|c| {
            c.query_opt(
                &format!("SELECT {COLUMNS} FROM platforms WHERE {condition}"),
                &[&value],
            )
            .context("reading a platform")?
            .as_ref()
            .map(decode)
            .transpose()
        })
    }

    /// See [`crate::store::Backend::update_static_secret`].
    pub fn update_static_secret(
        &self,
        platform_id: &str,
        secret_hash: &[u8],
    ) -> Result<(), StoreError> {
        self.write("rotating a platform secret", |tx| {
            let n = tx
                .execute(
                    "UPDATE platforms SET challenge_secret_hash = $2 \
                     WHERE id = $1 AND challenge_kind = 'static'",
                    &[&platform_id, &secret_hash],
                )
                .context("rotating a platform secret")?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "static platform",
                    id: platform_id.to_owned(),
                });
            }
            Ok(())
        })
    }

    /// See [`crate::store::Backend::delete_platform`].
    pub fn delete_platform(&self, platform_id: &str) -> Result<(), StoreError> {
        const CTX: &str = "deleting a platform";
        self.write(CTX, |tx| {
            // Locks the platform row first: a certificate recorded by another node meanwhile
            // (it references the row) waits for, or fails after, this delete.
            if tx
                .query_opt("SELECT 1 FROM platforms WHERE id = $1 FOR UPDATE", &[&platform_id])
                .context(CTX)?
                .is_none()
            {
                return Err(StoreError::NotFound {
                    what: "platform",
                    id: platform_id.to_owned(),
                });
            }
            let certs: i64 = tx
                .query_one(
                    "SELECT count(*) FROM certificates WHERE platform_id = $1",
                    &[&platform_id],
                )
                .context(CTX)?
                .get(0);
            if certs > 0 {
                return Err(StoreError::Conflict(format!(
                    "platform {platform_id} has issued {certs} certificate(s); deactivate or delete its devices instead"
                )));
            }
            tx.execute("DELETE FROM devices WHERE platform_id = $1", &[&platform_id])
                .context(CTX)?;
            tx.execute("DELETE FROM platforms WHERE id = $1", &[&platform_id])
                .context(CTX)?;
            Ok(())
        })
    }

    /// See [`crate::store::Backend::device_id_pattern`].
    pub fn device_id_pattern(&self, platform_id: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT device_id_pattern FROM platforms WHERE id = $1",
                &[&platform_id],
            )
            .context("reading a platform")?
            .and_then(|r| r.get(0)))
        })
    }

    /// See [`crate::store::Backend::set_device_id_pattern`].
    pub fn set_device_id_pattern(
        &self,
        platform_id: &str,
        pattern: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write("updating a platform", |tx| {
            let n = tx
                .execute(
                    "UPDATE platforms SET device_id_pattern = $2 WHERE id = $1",
                    &[&platform_id, &pattern],
                )
                .context("updating a platform")?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "platform",
                    id: platform_id.to_owned(),
                });
            }
            Ok(())
        })
    }
}
