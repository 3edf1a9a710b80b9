//! Platform verbs: create, read, list, rotate the static secret, delete, and the device-id
//! pattern enrollments read.

use super::error::Context;
use super::{ChallengeConfig, Platform, SqliteStore, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str = "id, name, challenge_kind, challenge_settings, challenge_secret_hash, allow_des, created_at, \
     device_id_pattern";

/// Dynamic platforms are found by the user name in their JSON settings.
const BY_USERNAME: &str =
    "challenge_kind = 'dynamic' AND json_extract(challenge_settings, '$.username') = ?1";
const USERNAME_TAKEN: &str = "SELECT 1 FROM platforms WHERE challenge_kind = 'dynamic' \
    AND json_extract(challenge_settings, '$.username') = ?1";

/// A platform row before its challenge is decoded.
struct RawPlatform {
    id: String,
    name: String,
    kind: String,
    settings: String,
    secret_hash: Option<Vec<u8>>,
    allow_des: bool,
    created_at: i64,
    device_id_pattern: Option<String>,
}

impl RawPlatform {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            name: row.get(1)?,
            kind: row.get(2)?,
            settings: row.get(3)?,
            secret_hash: row.get(4)?,
            allow_des: row.get(5)?,
            created_at: row.get(6)?,
            device_id_pattern: row.get(7)?,
        })
    }

    fn decode(self) -> Result<Platform, StoreError> {
        let challenge = ChallengeConfig::decode(&self.kind, &self.settings, self.secret_hash)
            .map_err(|reason| StoreError::Corrupt {
                table: "platforms",
                reason: format!("platform {}: {reason}", self.id),
            })?;
        Ok(Platform {
            id: self.id,
            name: self.name,
            challenge,
            allow_des: self.allow_des,
            created_at: self.created_at,
            device_id_pattern: self.device_id_pattern,
        })
    }
}

fn exists(conn: &Connection, sql: &str, value: &str) -> Result<bool, StoreError> {
    conn.query_row(sql, [value], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
        .context("checking platforms")
}

impl SqliteStore {
    /// Adds a platform. Fails with [`StoreError::Conflict`] if the id or name is taken, and
    /// [`StoreError::Invalid`] if a static secret hash is not 32 bytes.
    pub fn insert_platform(&self, platform: &Platform) -> Result<(), StoreError> {
        let (kind, settings, secret_hash) = platform.challenge.encode()?;
        self.write("adding a platform", |tx| {
            if exists(
                tx,
                "SELECT 1 FROM platforms WHERE name = ?1",
                &platform.name,
            )? {
                return Err(StoreError::Conflict(format!(
                    "a platform named '{}' already exists",
                    platform.name
                )));
            }
            if let ChallengeConfig::Dynamic(d) = &platform.challenge {
                if exists(tx, USERNAME_TAKEN, &d.username)? {
                    return Err(StoreError::Conflict(format!(
                        "a dynamic platform with user name '{}' already exists",
                        d.username
                    )));
                }
            }
            if exists(tx, "SELECT 1 FROM platforms WHERE id = ?1", &platform.id)? {
                return Err(StoreError::Conflict(format!(
                    "a platform with id '{}' already exists",
                    platform.id
                )));
            }
            tx.execute(
                &format!(
                    "INSERT INTO platforms ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    platform.id,
                    platform.name,
                    kind,
                    settings,
                    secret_hash,
                    platform.allow_des,
                    platform.created_at,
                    platform.device_id_pattern
                ],
            )
            .context("adding a platform")?;
            Ok(())
        })
    }

    /// The platform with this id, if any.
    pub fn platform(&self, id: &str) -> Result<Option<Platform>, StoreError> {
        self.platform_where("id", id)
    }

    /// The platform with this name, if any.
    pub fn platform_by_name(&self, name: &str) -> Result<Option<Platform>, StoreError> {
        self.platform_where("name", name)
    }

    /// The dynamic platform whose challenge URL user name is `username`, if any.
    pub fn dynamic_platform_by_username(
        &self,
        username: &str,
    ) -> Result<Option<Platform>, StoreError> {
        self.read(|conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM platforms WHERE {BY_USERNAME}"),
                [username],
                RawPlatform::from_row,
            )
            .optional()
            .context("reading a platform")?
            .map(RawPlatform::decode)
            .transpose()
        })
    }

    /// All platforms, oldest first (ties by name).
    pub fn list_platforms(&self) -> Result<Vec<Platform>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM platforms ORDER BY created_at, name"
                ))
                .context("listing platforms")?;
            let raws = stmt
                .query_map([], RawPlatform::from_row)
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                .context("listing platforms")?;
            raws.into_iter().map(RawPlatform::decode).collect()
        })
    }

    /// `column` is one of the fixed names above, never caller input.
    fn platform_where(&self, column: &str, value: &str) -> Result<Option<Platform>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM platforms WHERE {column} = ?1"
            ))
            .and_then(|mut stmt| stmt.query_row([value], RawPlatform::from_row))
            .optional()
            .context("reading a platform")?
            .map(RawPlatform::decode)
            .transpose()
        })
    }

    /// Replaces a static platform's secret hash.
    pub fn update_static_secret(
        &self,
        platform_id: &str,
        secret_hash: &[u8],
    ) -> Result<(), StoreError> {
        self.write("rotating a platform secret", |tx| {
            let n = tx
                .execute(
                    "UPDATE platforms SET challenge_secret_hash = ?2 WHERE id = ?1 AND challenge_kind = 'static'",
                    params![platform_id, secret_hash],
                )
                .context("rotating a platform secret")?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "static platform", id: platform_id.to_owned() });
            }
            Ok(())
        })
    }

    /// Deletes a platform that has issued nothing (certificates keep their platform for audit:
    /// a platform with certificates is a [`StoreError::Conflict`]).
    pub fn delete_platform(&self, platform_id: &str) -> Result<(), StoreError> {
        self.write("deleting a platform", |tx| {
            let certs: i64 = tx
                .query_row("SELECT count(*) FROM certificates WHERE platform_id = ?1", params![platform_id], |r| r.get(0))
                .context("deleting a platform")?;
            if certs > 0 {
                return Err(StoreError::Conflict(format!(
                    "platform {platform_id} has issued {certs} certificate(s); deactivate or delete its devices instead"
                )));
            }
            tx.execute("DELETE FROM devices WHERE platform_id = ?1", params![platform_id]).context("deleting a platform")?;
            let n = tx.execute("DELETE FROM platforms WHERE id = ?1", params![platform_id]).context("deleting a platform")?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "platform", id: platform_id.to_owned() });
            }
            Ok(())
        })
    }

    /// The per-platform device id pattern, if set.
    pub fn device_id_pattern(&self, platform_id: &str) -> Result<Option<String>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT device_id_pattern FROM platforms WHERE id = ?1")
                .and_then(|mut stmt| stmt.query_row(params![platform_id], |r| r.get(0)))
                .optional()
                .context("reading a platform")
                .map(Option::flatten)
        })
    }

    /// Sets (or clears) the per-platform device id pattern.
    pub fn set_device_id_pattern(
        &self,
        platform_id: &str,
        pattern: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write("updating a platform", |tx| {
            let n = tx
                .execute(
                    "UPDATE platforms SET device_id_pattern = ?2 WHERE id = ?1",
                    params![platform_id, pattern],
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::super::testutil::{platform, temp_store};
    use super::*;

    #[test]
    fn inserted_platform_reads_back_by_id_and_name() {
        let (_dir, store) = temp_store();
        let mut p = platform("p1", "Fleet", 5);
        p.allow_des = true;
        store.insert_platform(&p).unwrap();
        assert_eq!(store.platform("p1").unwrap(), Some(p.clone()));
        assert_eq!(store.platform_by_name("Fleet").unwrap(), Some(p));
        assert_eq!(store.platform("nope").unwrap(), None);
        assert_eq!(store.platform_by_name("fleet").unwrap(), None);
    }

    #[test]
    fn duplicate_name_is_a_conflict_naming_the_name() {
        let (_dir, store) = temp_store();
        store.insert_platform(&platform("p1", "Fleet", 5)).unwrap();
        let err = store
            .insert_platform(&platform("p2", "Fleet", 6))
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert!(err.to_string().contains("'Fleet' already exists"), "{err}");
        let err = store
            .insert_platform(&platform("p1", "Other", 6))
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert_eq!(store.list_platforms().unwrap().len(), 1);
    }

    #[test]
    fn list_is_ordered_by_creation_then_name() {
        let (_dir, store) = temp_store();
        for (id, name, t) in [
            ("a", "Zeta", 2),
            ("b", "Beta", 2),
            ("c", "Late", 9),
            ("d", "Old", 1),
        ] {
            store.insert_platform(&platform(id, name, t)).unwrap();
        }
        let names: Vec<_> = store
            .list_platforms()
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["Old", "Beta", "Zeta", "Late"]);
    }

    #[test]
    fn static_hash_must_be_sha256_sized() {
        let (_dir, store) = temp_store();
        let mut p = platform("p1", "Fleet", 5);
        p.challenge = ChallengeConfig::Static {
            secret_hash: vec![1; 31],
        };
        let err = store.insert_platform(&p).unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    }

    #[test]
    fn challenge_is_stored_as_kind_settings_and_hash_columns() {
        let (_dir, store) = temp_store();
        store.insert_platform(&platform("p1", "Fleet", 5)).unwrap();
        let conn = store.lock().unwrap();
        let row: (String, String, Vec<u8>) = conn
            .query_row(
                "SELECT challenge_kind, challenge_settings, challenge_secret_hash FROM platforms",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(row, ("static".into(), "{}".into(), vec![7; 32]));
    }

    #[test]
    fn unknown_challenge_kind_reads_as_corrupt_not_panic() {
        let (_dir, store) = temp_store();
        store.insert_platform(&platform("p1", "Fleet", 5)).unwrap();
        store
            .lock()
            .unwrap()
            .execute("UPDATE platforms SET challenge_kind = 'quantum'", [])
            .unwrap();
        let err = store.platform("p1").unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("quantum"), "{err}");
    }
}
