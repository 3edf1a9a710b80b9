//! Authenticated renewal (RenewalReq): who may renew, and into what.
//!
//! A renewal is authorised by the certificate being renewed instead of a challenge, so it
//! must never widen that certificate's identity (the security audit's first item: a
//! suspended device renewed with a new Intune SID SAN into a fresh, active device record,
//! which deactivating the original did not revoke). The rules:
//!
//! - the signer certificate is one we issued on this platform, under the active or a retired
//!   intermediate, valid now, unrevoked and released for delivery;
//! - the new subject equals the old one byte for byte, and the new subjectAltNames are a
//!   subset of the old certificate's (a device may drop a name, never add one);
//! - the new certificate belongs to the same device and user as the old one (the device id
//!   and user extracted from the new request must equal the old record's), so it is linked to
//!   that device and revoked with it;
//! - that device must be active (checked here and again, atomically, when recording);
//! - on platforms with a delegated validator (Intune, webhook) the validator is consulted as
//!   for a first enrollment (`enroll` in mod.rs): renewal adds no way around it.

use scepd_pki::der::oid;
use scepd_pki::pkcs10::Csr;
use scepd_pki::x509::Certificate;
use scepd_pki::x509::general_names::{AltName, filter_requested};

use super::ScepFailure;
use super::{Authority, Outcome, store_err};
use crate::devices::identity::Identity;
use crate::store::{CertStatus, Delivery, Platform};

/// The certificate a renewal is authorised by: the identity the new one must keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Renewed {
    /// Serial of the renewed certificate, hex (for the log).
    pub serial_hex: String,
    /// The device and user the renewed certificate is bound to.
    pub identity: Identity,
}

/// The subjectAltNames of a GeneralNames extension value we understand (what issuance copies).
fn alt_names(extension_value: Option<&[u8]>) -> Vec<AltName> {
    extension_value
        .and_then(|v| filter_requested(v).ok())
        .map(|(_, names)| names)
        .unwrap_or_default()
}

impl Authority {
    /// Checks a RenewalReq against the certificate that signed it; returns that certificate's
    /// binding, which [`Authority::issue_and_record`] enforces on the new certificate.
    pub(super) fn authorize_renewal(
        &self,
        platform: &Platform,
        signer: &Certificate<'_>,
        csr: &Csr<'_>,
        now: i64,
    ) -> Result<Renewed, Outcome> {
        let fail = |s: &str| Outcome::Fail(ScepFailure::Renewal(s.to_owned()));
        let ca = self.ca.get();
        let issuer = ca
            .issuer_named(signer.issuer, Some(signer))
            .ok_or_else(|| fail("signer certificate was not issued by this CA"))?;
        if !signer.is_valid_at(now) {
            return Err(fail("signer certificate is expired or not yet valid"));
        }
        let rec = self
            .store
            .certificate_by_serial(&issuer.id, signer.serial_magnitude())
            .map_err(store_err)?
            .ok_or_else(|| fail("signer certificate is not on record"))?;
        if rec.status != CertStatus::Valid {
            return Err(fail("signer certificate is revoked"));
        }
        if rec.delivery != Delivery::Released {
            return Err(fail("signer certificate was never delivered"));
        }
        if rec.platform_id != platform.id {
            return Err(fail("signer certificate belongs to another platform"));
        }
        if csr.request.subject != signer.subject {
            return Err(fail("subject differs from the certificate being renewed"));
        }
        let old_sans = alt_names(signer.extension(oid::SUBJECT_ALT_NAME).map(|e| e.value));
        if let Some(added) = csr.requested_names().iter().find(|n| !old_sans.contains(n)) {
            tracing::info!(platform = %platform.id, serial = %rec.serial_hex(), added = %added,
                "renewal asks for a subjectAltName the renewed certificate does not have");
            return Err(fail(
                "subjectAltNames must be those of the certificate being renewed",
            ));
        }
        // The user comes from the old certificate itself (the record keeps only the device).
        let old = self.identity_of(platform, signer.subject, &old_sans)?;
        Ok(Renewed {
            serial_hex: rec.serial_hex(),
            identity: Identity {
                device_id: rec.facts.device_id,
                user: old.user,
            },
        })
    }
}

/// Refuses a renewal whose request maps to another device or user than the renewed
/// certificate (e.g. a device-id pattern that reads a SAN the renewal dropped).
pub(super) fn check_binding(renewed: &Renewed, new: &Identity) -> Result<(), Outcome> {
    if *new == renewed.identity {
        return Ok(());
    }
    tracing::info!(serial = %renewed.serial_hex, old_device = ?renewed.identity.device_id,
        new_device = ?new.device_id, "renewal would change the device or user");
    Err(Outcome::Fail(ScepFailure::Renewal(
        "renewal would change the certificate's device or user".into(),
    )))
}
