//! Device registry verbs. Which transitions are allowed is policy (`src/devices.rs`); the store
//! applies one atomically (compare-and-set on the current state) with its revocations and audit.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::error::Context;
use super::{Device, DeviceState, DeviceTransition, SqliteStore, StoreError};

const COLUMNS: &str = "platform_id, device_id, user, state, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Device> {
    let state: String = row.get(3)?;
    Ok(Device {
        platform_id: row.get(0)?,
        device_id: row.get(1)?,
        user: row.get(2)?,
        state: DeviceState::parse(&state).unwrap_or(DeviceState::Deleted),
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

fn get(
    tx: &rusqlite::Connection,
    platform_id: &str,
    device_id: &str,
) -> Result<Option<Device>, StoreError> {
    tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM devices WHERE platform_id = ?1 AND device_id = ?2"
    ))
    .and_then(|mut stmt| stmt.query_row(params![platform_id, device_id], from_row))
    .optional()
    .context("reading a device")
}

/// Inside an issuance transaction: creates the device at its first enrollment, or checks that
/// it is active. Fills in the user when it was not known yet.
pub(super) fn enroll_device(
    tx: &Connection,
    platform_id: &str,
    device_id: &str,
    user: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    match get(tx, platform_id, device_id)? {
        Some(d) if d.state != DeviceState::Active => Err(StoreError::DeviceNotActive {
            state: d.state.as_str(),
        }),
        Some(d) => {
            if d.user.is_none() && user.is_some() {
                tx.prepare_cached(
                    "UPDATE devices SET user = ?3, updated_at = ?4 WHERE platform_id = ?1 AND device_id = ?2",
                )
                .and_then(|mut stmt| stmt.execute(params![platform_id, device_id, user, now]))
                .context("updating a device")?;
            }
            Ok(())
        }
        None => {
            // Cached like every statement of the issuance path: most enrollments of a fleet
            // roll-out are first enrollments, each running this and the audit insert.
            tx.prepare_cached(&format!(
                "INSERT INTO devices ({COLUMNS}) VALUES (?1, ?2, ?3, 'active', ?4, ?4)"
            ))
            .and_then(|mut stmt| stmt.execute(params![platform_id, device_id, user, now]))
            .context("registering a device")?;
            audit(
                tx,
                now,
                "scep",
                "device.registered",
                &format!("{platform_id}/{device_id}"),
                "{}",
            )?;
            Ok(())
        }
    }
}

/// Appends an audit event.
pub(super) fn audit(
    tx: &rusqlite::Connection,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO audit_events (at, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut stmt| stmt.execute(params![at, actor, action, subject, detail]))
    .context("writing the audit trail")?;
    Ok(())
}

/// Bumps the revocation generation (other processes poll it).
pub(super) fn bump_generation(tx: &rusqlite::Connection) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE revocation_generation SET value = value + 1 WHERE id = 1",
        [],
    )
    .context("bumping the revocation generation")?;
    Ok(())
}

impl SqliteStore {
    /// One device.
    pub fn device(&self, platform_id: &str, device_id: &str) -> Result<Option<Device>, StoreError> {
        self.read(|conn| get(conn, platform_id, device_id))
    }

    /// Devices, optionally of one platform, with one device id, or in one state.
    pub fn list_devices(
        &self,
        platform_id: Option<&str>,
        device_id: Option<&str>,
        state: Option<DeviceState>,
    ) -> Result<Vec<Device>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM devices WHERE (?1 IS NULL OR platform_id = ?1) \
                     AND (?2 IS NULL OR device_id = ?2) AND (?3 IS NULL OR state = ?3) \
                     ORDER BY platform_id, device_id"
                ))
                .context("listing devices")?;
            let rows = stmt
                .query_map(
                    params![platform_id, device_id, state.map(DeviceState::as_str)],
                    from_row,
                )
                .context("listing devices")?;
            rows.collect::<Result<Vec<_>, _>>()
                .context("listing devices")
        })
    }

    /// Applies a state change atomically: checks the current state is in `t.from`, updates it,
    /// revokes the device's unexpired valid certificates when asked, writes the audit event.
    /// Returns the device after the change and how many certificates were revoked.
    pub fn transition_device(
        &self,
        t: &DeviceTransition<'_>,
    ) -> Result<(Device, usize), StoreError> {
        self.write("changing a device's state", |tx| {
            let d = get(tx, t.platform_id, t.device_id)?.ok_or_else(|| StoreError::NotFound {
                what: "device",
                id: format!("{}/{}", t.platform_id, t.device_id),
            })?;
            if !t.from.contains(&d.state) {
                return Err(StoreError::WrongDeviceState { state: d.state.as_str() });
            }
            tx.execute(
                "UPDATE devices SET state = ?3, updated_at = ?4 WHERE platform_id = ?1 AND device_id = ?2",
                params![t.platform_id, t.device_id, t.to.as_str(), t.now],
            )
            .context("changing a device's state")?;
            let mut revoked = 0;
            if let Some(reason) = t.revoke_reason {
                revoked = tx
                    .execute(
                        "UPDATE certificates SET status = 'revoked', revoked_at = ?3, revocation_reason = ?4 \
                         WHERE platform_id = ?1 AND device_id = ?2 AND status = 'valid' AND not_after >= ?3",
                        params![t.platform_id, t.device_id, t.now, reason],
                    )
                    .context("revoking a device's certificates")?;
            }
            bump_generation(tx)?;
            let detail = serde_json::json!({"from": d.state.as_str(), "to": t.to.as_str(), "revoked": revoked, "reason": t.revoke_reason}).to_string();
            audit(tx, t.now, t.actor, &format!("device.{}", t.to.as_str()), &format!("{}/{}", t.platform_id, t.device_id), &detail)?;
            let after = get(tx, t.platform_id, t.device_id)?.ok_or(StoreError::NotFound { what: "device", id: t.device_id.to_owned() })?;
            Ok((after, revoked))
        })
    }
}
