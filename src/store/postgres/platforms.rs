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
}
