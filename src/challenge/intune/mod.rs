//! Intune delegated mode: Microsoft Intune generates the challenge; scepd asks Intune to
//! validate each request and reports the outcome (docs/scep-protocol.md §4.5).
//!
//! 1. `validateRequest` with the base64 DER CSR before anything is signed; anything but
//!    `Success`, or no answer, refuses (fail closed).
//! 2. `successNotification` (SHA-1 thumbprint, serial, expiry, issuer, CA configuration) after
//!    the certificate is recorded and **before** the CertRep is returned. If it fails the
//!    authority revokes the certificate and answers FAILURE: "If this method throws an
//!    exception, the SCEP server must not issue a certificate."
//! 3. `failureNotification` (HRESULT, description of at most 255 characters) on every failure
//!    after a successful validation, including a failed success notification.

pub mod client;

use std::sync::Arc;

use aws_lc_rs::digest;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::outbound::secret_json;

use super::{
    Authorization, ChallengeError, ChallengeRequest, ChallengeVerifier, IssuedFacts, NotifyError,
};
use client::IntuneClient;

/// HRESULT reported with every failure notification: E_FAIL. The description says why.
pub const FAILURE_HRESULT: i64 = 0x8000_4005;
/// Intune's limit on `errorDescription`.
pub const MAX_DESCRIPTION_CHARS: usize = 255;

/// Verifies requests by asking Intune.
pub struct IntuneVerifier {
    platform_id: String,
    client: Arc<IntuneClient>,
}

impl IntuneVerifier {
    /// A verifier for `platform_id` using `client`.
    pub fn new(platform_id: &str, client: IntuneClient) -> Self {
        Self {
            platform_id: platform_id.to_owned(),
            client: Arc::new(client),
        }
    }

    /// The CSR in base64: it carries the challenge, so it is kept in wiped memory.
    fn csr_b64(req: &ChallengeRequest<'_>) -> Zeroizing<String> {
        Zeroizing::new(scepd_pki::encoding::encode_base64(req.csr_der))
    }
}

/// The bodies of Intune's ScepActions, serialized from borrowed fields
/// ([`crate::outbound::secret_json`]) so no owned copy of the CSR outlives the request.
#[derive(Serialize)]
enum Envelope<T> {
    #[serde(rename = "request")]
    Request(T),
    #[serde(rename = "notification")]
    Notification(T),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Validate<'a> {
    transaction_id: &'a str,
    certificate_request: &'a str,
    caller_info: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Success<'a> {
    transaction_id: &'a str,
    certificate_request: &'a str,
    certificate_thumbprint: String,
    certificate_serial_number: String,
    certificate_expiration_date_utc: String,
    issuing_certificate_authority: &'a str,
    ca_configuration: String,
    certificate_authority: &'a str,
    caller_info: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure<'a> {
    transaction_id: &'a str,
    certificate_request: &'a str,
    h_result: i64,
    error_description: String,
    caller_info: &'a str,
}

/// Upper-case hex SHA-1 of the certificate (Windows' thumbprint form).
pub fn thumbprint(der: &[u8]) -> String {
    let d = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    scepd_pki::hex(d.as_ref()).to_ascii_uppercase()
}

/// At most [`MAX_DESCRIPTION_CHARS`] printable characters.
fn description(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_DESCRIPTION_CHARS)
        .collect()
}

impl ChallengeVerifier for IntuneVerifier {
    fn verify(&self, req: &ChallengeRequest<'_>) -> Result<Authorization, ChallengeError> {
        // Intune would answer ChallengePasswordMissing; spare the round trip.
        req.challenge.ok_or(ChallengeError::Missing)?;
        let csr = Self::csr_b64(req);
        let body = secret_json(&Envelope::Request(Validate {
            transaction_id: req.transaction_id,
            certificate_request: &csr,
            caller_info: self.client.caller_info(),
        }))
        .map_err(|e| ChallengeError::Unavailable(e.to_string()))?;
        let answer = self
            .client
            .scep_action("validateRequest", &body)
            .map_err(|e| ChallengeError::Unavailable(e.to_string()))?;
        if !answer.is_success() {
            let why = answer.error_description.as_deref().unwrap_or("");
            return Err(ChallengeError::Denied(description(&format!(
                "Intune: {} {why}",
                answer.code
            ))));
        }
        Ok(Authorization {
            platform_id: self.platform_id.clone(),
            method: "intune",
            one_time: None,
        })
    }

    fn issued(
        &self,
        req: &ChallengeRequest<'_>,
        cert: &IssuedFacts<'_>,
    ) -> Result<(), NotifyError> {
        let csr = Self::csr_b64(req);
        let body = secret_json(&Envelope::Notification(Success {
            transaction_id: req.transaction_id,
            certificate_request: &csr,
            certificate_thumbprint: thumbprint(cert.der),
            certificate_serial_number: scepd_pki::hex(cert.serial),
            certificate_expiration_date_utc: scepd_pki::encoding::rfc3339(cert.not_after),
            issuing_certificate_authority: cert.issuer,
            ca_configuration: format!("scepd/{}", self.platform_id),
            certificate_authority: cert.issuer,
            caller_info: self.client.caller_info(),
        }))
        .map_err(|e| NotifyError(e.to_string()))?;
        match self.client.scep_action("successNotification", &body) {
            Ok(a) if a.is_success() => Ok(()),
            Ok(a) => Err(NotifyError(description(&format!(
                "Intune successNotification answered {}",
                a.code
            )))),
            Err(e) => Err(NotifyError(e.to_string())),
        }
    }

    /// Sent in the background: it cannot change the device's answer, so the device does not
    /// wait for it (each exchange is still bounded by the outbound timeout).
    fn failed(&self, req: &ChallengeRequest<'_>, reason: &str) {
        let csr = Self::csr_b64(req);
        let body = match secret_json(&Envelope::Notification(Failure {
            transaction_id: req.transaction_id,
            certificate_request: &csr,
            h_result: FAILURE_HRESULT,
            error_description: description(reason),
            caller_info: self.client.caller_info(),
        })) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(platform = %self.platform_id, error = %e, "Intune failure notification not built");
                return;
            }
        };
        let (client, platform) = (self.client.clone(), self.platform_id.clone());
        let send = move || match client.scep_action("failureNotification", &body) {
            Ok(a) if a.is_success() => {}
            Ok(a) => {
                tracing::warn!(%platform, code = %a.code, "Intune refused a failure notification")
            }
            Err(e) => tracing::warn!(%platform, error = %e, "Intune failure notification not sent"),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(send)),
            Err(_) => send(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_bounded_and_printable() {
        let long = "x\n".repeat(400);
        let d = description(&long);
        assert_eq!(d.chars().count(), MAX_DESCRIPTION_CHARS);
        assert!(!d.contains('\n'));
        assert_eq!(thumbprint(b"").len(), 40);
    }
}
