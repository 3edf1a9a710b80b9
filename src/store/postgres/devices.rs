//! Device registry verbs. Which transitions are allowed is policy (`src/devices.rs`); the store
//! applies one atomically with its revocations and audit.
//!
//! Between nodes the device row is the lock: a state change takes it `FOR UPDATE`, an issuance
//! `FOR SHARE` (devices.rs `enroll_device`). So a certificate recorded while its device is
//! being deactivated either waits and is refused, or commits first and is revoked by the
//! change's own UPDATE (which, at READ COMMITTED, sees it).

use postgres::Row;

use super::PgStore;
use super::admin::audit;
use crate::store::error::Context;
use crate::store::{Device, DeviceState, DeviceTransition, StoreError};

const COLUMNS: &str = "platform_id, device_id, \"user\", state, created_at, updated_at";

fn from_row(row: &Row) -> Device {
    let state: String = row.get(3);
    Device {
        platform_id: row.get(0),
        device_id: row.get(1),
        user: row.get(2),
        // An unknown state can only come from a newer scepd: treat it as the most closed.
        state: DeviceState::parse(&state).unwrap_or(DeviceState::Deleted),
        created_at: row.get(4),
        updated_at: row.get(5),
    }
}

fn get(
    c: &mut super::sql::Sql<'_, impl postgres::GenericClient>,
    platform_id: &str,
    device_id: &str,
    lock: &str,
) -> Result<Option<Device>, StoreError> {
    Ok(c.query_opt(
        &format!("SELECT {COLUMNS} FROM devices WHERE platform_id = $1 AND device_id = $2 {lock}"),
        &[&platform_id, &device_id],
    )
    .context("reading a device")?
    .as_ref()
    .map(from_row))
}

/// Inside an issuance transaction: registers the device at its first enrollment (whichever
/// node gets there first), or checks that it is active, holding its row against a concurrent
/// state change until the issuance commits. Fills in the user when it was not known yet.
pub(super) fn enroll_device(
    tx: &mut super::sql::Tx<'_, '_>,
    platform_id: &str,
    device_id: &str,
    user: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let created = tx
        .execute(
            &format!(
                "INSERT INTO devices ({COLUMNS}) VALUES ($1, $2, $3, 'active', $4, $4) \
                 ON CONFLICT (platform_id, device_id) DO NOTHING"
            ),
            &[&platform_id, &device_id, &user, &now],
        )
        .map_err(|e| match super::sql::foreign_key_violation(&e) {
            Some(_) => StoreError::NotFound {
                what: "platform",
                id: platform_id.to_owned(),
            },
            None => StoreError::postgres("registering a device", e),
        })?;
    if created == 1 {
        return audit(
            tx,
            now,
            "scep",
            "device.registered",
            &format!("{platform_id}/{device_id}"),
            "{}",
        );
    }
    let d = get(tx, platform_id, device_id, "FOR SHARE")?.ok_or_else(|| StoreError::NotFound {
        what: "device",
        id: format!("{platform_id}/{device_id}"),
    })?;
    if d.state != DeviceState::Active {
        return Err(StoreError::DeviceNotActive {
            state: d.state.as_str(),
        });
    }
    if d.user.is_none() && user.is_some() {
        tx.execute(
            "UPDATE devices SET \"user\" = $3, updated_at = $4 \
             WHERE platform_id = $1 AND device_id = $2 AND \"user\" IS NULL",
            &[&platform_id, &device_id, &user, &now],
        )
        .context("updating a device")?;
    }
    Ok(())
}

/// Bumps the revocation generation (every node polls it to refresh CRLs and caches).
pub(super) fn bump_generation(tx: &mut super::sql::Tx<'_, '_>) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE revocation_generation SET value = value + 1 WHERE id = 1",
        &[],
    )
    .context("bumping the revocation generation")?;
    Ok(())
}

impl PgStore {
    /// See [`crate::store::Backend::device`].
    pub fn device(&self, platform_id: &str, device_id: &str) -> Result<Option<Device>, StoreError> {
        self.read(|c| get(c, platform_id, device_id, ""))
    }

    /// See [`crate::store::Backend::list_devices`].
    pub fn list_devices(
        &self,
        platform_id: Option<&str>,
        device_id: Option<&str>,
        state: Option<DeviceState>,
    ) -> Result<Vec<Device>, StoreError> {
        let state = state.map(DeviceState::as_str);
        self.read(|c| {
            Ok(c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM devices WHERE ($1::text IS NULL OR platform_id = $1) \
                         AND ($2::text IS NULL OR device_id = $2) AND ($3::text IS NULL OR state = $3) \
                         ORDER BY platform_id, device_id"
                    ),
                    &[&platform_id, &device_id, &state],
                )
                .context("listing devices")?
                .iter()
                .map(from_row)
                .collect())
        })
    }

    /// See [`crate::store::Backend::transition_device`].
    pub fn transition_device(
        &self,
        t: &DeviceTransition<'_>,
    ) -> Result<(Device, usize), StoreError> {
        const CTX: &str = "changing a device's state";
        self.write(CTX, |tx| {
            let not_found = || StoreError::NotFound {
                what: "device",
                id: format!("{}/{}", t.platform_id, t.device_id),
            };
            let d = get(tx, t.platform_id, t.device_id, "FOR UPDATE")?.ok_or_else(not_found)?;
            if !t.from.contains(&d.state) {
                return Err(StoreError::WrongDeviceState {
                    state: d.state.as_str(),
                });
            }
            tx.execute(
                "UPDATE devices SET state = $3, updated_at = $4 WHERE platform_id = $1 AND device_id = $2",
                &[&t.platform_id, &t.device_id, &t.to.as_str(), &t.now],
            )
            .context(CTX)?;
            let mut revoked = 0;
            if let Some(reason) = t.revoke_reason {
                revoked = tx
                    .execute(
                        "UPDATE certificates SET status = 'revoked', revoked_at = $3, revocation_reason = $4 \
                         WHERE platform_id = $1 AND device_id = $2 AND status = 'valid' AND not_after >= $3",
                        &[&t.platform_id, &t.device_id, &t.now, &reason],
                    )
                    .context("revoking a device's certificates")?;
            }
            bump_generation(tx)?;
            let detail = serde_json::json!({"from": d.state.as_str(), "to": t.to.as_str(), "revoked": revoked, "reason": t.revoke_reason}).to_string();
            audit(
                tx,
                t.now,
                t.actor,
                &format!("device.{}", t.to.as_str()),
                &format!("{}/{}", t.platform_id, t.device_id),
                &detail,
            )?;
            let after = get(tx, t.platform_id, t.device_id, "")?.ok_or_else(not_found)?;
            Ok((after, usize::try_from(revoked).unwrap_or(usize::MAX)))
        })
    }
}
