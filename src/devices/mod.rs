//! The device registry's lifecycle state machine (policy); the store applies transitions.
//!
//! ```text
//!   Active ──suspend──▶ Suspended ──unsuspend──▶ Active
//!   Active|Suspended ──deactivate──▶ Deactivated ──reactivate──▶ Active   (certificates revoked)
//!   any but Deleted ──delete──▶ Deleted                                   (certificates revoked)
//! ```

pub mod identity;

use scepd_pki::revocation::RevocationReason;

use crate::store::{Device, DeviceState, DeviceTransition, Store, StoreError};

/// An operator action on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Temporarily bar enrollment; certificates stay good.
    Suspend,
    /// Lift a suspension.
    Unsuspend,
    /// Lost or compromised: revoke certificates, bar enrollment.
    Deactivate,
    /// Allow enrollment again after deactivation (old certificates stay revoked).
    Reactivate,
    /// Remove for good: revoke certificates.
    Delete,
}

impl Action {
    /// States the action applies to, and the resulting state.
    pub fn transition(self) -> (&'static [DeviceState], DeviceState) {
        use DeviceState::*;
        match self {
            Self::Suspend => (&[Active], Suspended),
            Self::Unsuspend => (&[Suspended], Active),
            Self::Deactivate => (&[Active, Suspended], Deactivated),
            Self::Reactivate => (&[Deactivated], Active),
            Self::Delete => (&[Active, Suspended, Deactivated], Deleted),
        }
    }

    /// Whether the action revokes the device's certificates.
    pub fn revokes(self) -> bool {
        matches!(self, Self::Deactivate | Self::Delete)
    }

    /// CLI / API name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Suspend => "suspend",
            Self::Unsuspend => "unsuspend",
            Self::Deactivate => "deactivate",
            Self::Reactivate => "reactivate",
            Self::Delete => "delete",
        }
    }
}

/// Result of an action.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The device after the change.
    pub device: Device,
    /// Certificates revoked by it.
    pub revoked: usize,
}

/// Applies `action` to a device. Deactivate revokes with cessationOfOperation unless the
/// operator says keyCompromise (or another reason); delete likewise.
pub fn apply(
    store: &Store,
    platform_id: &str,
    device_id: &str,
    action: Action,
    reason: Option<RevocationReason>,
    actor: &str,
    now: i64,
) -> Result<Applied, StoreError> {
    let (from, to) = action.transition();
    let reason = action
        .revokes()
        .then(|| reason.unwrap_or(RevocationReason::CessationOfOperation));
    let (device, revoked) = store.transition_device(&DeviceTransition {
        platform_id,
        device_id,
        from,
        to,
        revoke_reason: reason.map(RevocationReason::as_str),
        actor,
        now,
    })?;
    tracing::info!(
        platform = platform_id,
        device = device_id,
        action = action.name(),
        revoked,
        "device state changed"
    );
    Ok(Applied { device, revoked })
}
