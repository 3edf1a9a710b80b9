//! Challenge verification, one module per mode. A verifier decides whether a request may be
//! issued and returns an [`Authorization`]; it never issues. Issuance never checks challenges.
//!
//! The authority drives every mode the same way:
//!
//! 1. [`ChallengeVerifier::verify`] before anything is signed. Refusal → CertRep FAILURE
//!    (badRequest).
//! 2. Issuance. The certificate is recorded in the store; if the authorization names a
//!    one-time challenge ([`Authorization::one_time`]), that challenge is consumed **in the
//!    same store transaction** ([`crate::store::Store::record_issuance_consuming`]), so of N
//!    concurrent enrollments presenting one challenge exactly one gets a certificate.
//! 3. [`ChallengeVerifier::issued`] after the certificate is recorded and **before** the CertRep
//!    is returned. An error there fails closed: the authority revokes the stored certificate and
//!    answers FAILURE (Intune's successNotification must succeed for a certificate to exist).
//! 4. [`ChallengeVerifier::failed`] whenever a request that passed step 1 fails afterwards
//!    (policy refusal, store or signing failure, step 3). Best effort: it cannot change the
//!    answer.
//!
//! **Burn rule** for one-time challenges: a failed enrollment does not use up its challenge,
//! so a device can retry after a transient failure (store busy, signing error, a concurrent
//! duplicate) or after a request that could not be authenticated (bad signature, wrong
//! recipient, undecryptable: none of those even reach the challenge). The one exception is a
//! request that was authentic — it decrypted, its CSR verified and its challenge was valid —
//! and was then refused by issuance policy (key too small, bad subject): that burns the
//! challenge, because retrying the same request can never succeed and a challenge must not
//! become a reusable oracle for probing policy.

pub mod dynamic;
pub mod intune;
pub mod registry;
pub mod secret;
pub mod static_secret;
pub mod webhook;

pub use registry::Verifiers;

use zeroize::Zeroizing;

use crate::store::Platform;

/// Who or what a verified challenge authorises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The platform the enrollment belongs to.
    pub platform_id: String,
    /// How the request was authorised (for audit).
    pub method: &'static str,
    /// SHA-256 of a one-time challenge that must be consumed together with the certificate.
    pub one_time: Option<Vec<u8>>,
}

/// Why a challenge was not accepted. Clients see only a generic reason; this goes to the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// No challengePassword in the CSR.
    #[error("challenge password missing")]
    Missing,
    /// Wrong challenge.
    #[error("challenge password rejected")]
    Rejected,
    /// A one-time challenge that was already used.
    #[error("one-time challenge already used")]
    Used,
    /// A one-time challenge past its expiry.
    #[error("one-time challenge expired")]
    Expired,
    /// The delegated validator said no (its reason, sanitised and shortened).
    #[error("denied by the validator: {0}")]
    Denied(String),
    /// The delegated validator could not be asked or gave no usable answer: fail closed.
    #[error("validator unavailable: {0}")]
    Unavailable(String),
    /// Our own failure (store, configuration): not the client's fault.
    #[error("internal: {0}")]
    Internal(String),
}

/// A failure after verification, reported to [`ChallengeVerifier::issued`]'s caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotifyError(pub String);

/// The request facts a verifier may look at.
pub struct ChallengeRequest<'a> {
    /// The platform the request came through.
    pub platform: &'a Platform,
    /// The challengePassword from the CSR.
    pub challenge: Option<&'a Zeroizing<String>>,
    /// The SCEP transactionID.
    pub transaction_id: &'a str,
    /// The CSR (PKCS#10, DER) as the device sent it.
    pub csr_der: &'a [u8],
    /// The requested subject, as text.
    pub subject: &'a str,
    /// The requested subjectAltNames we understood, as text (`DNS:…`, `URI:…`).
    pub sans: &'a [String],
    /// When the request arrived, unix seconds.
    pub now: i64,
}

/// What was issued, for success notifications.
pub struct IssuedFacts<'a> {
    /// The certificate, DER.
    pub der: &'a [u8],
    /// Serial, big-endian magnitude.
    pub serial: &'a [u8],
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// Issuer DN as text.
    pub issuer: &'a str,
    /// Subject DN as text.
    pub subject: &'a str,
}

/// One challenge mode.
pub trait ChallengeVerifier: Send + Sync {
    /// Verifies the request's challenge.
    fn verify(&self, req: &ChallengeRequest<'_>) -> Result<Authorization, ChallengeError>;

    /// Called after the certificate is recorded, before it is returned. An error means the
    /// certificate must not be delivered (the authority revokes it and answers FAILURE).
    fn issued(
        &self,
        _req: &ChallengeRequest<'_>,
        _cert: &IssuedFacts<'_>,
    ) -> Result<(), NotifyError> {
        Ok(())
    }

    /// Called when a request this verifier authorised fails afterwards. Best effort.
    fn failed(&self, _req: &ChallengeRequest<'_>, _reason: &str) {}
}
