//! Challenge verification. A verifier decides whether a request may be issued and returns an
//! [`Authorization`]; it never issues. Issuance never checks challenges.

pub mod secret;
pub mod static_secret;

use zeroize::Zeroizing;

/// Who or what a verified challenge authorises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The platform the enrollment belongs to.
    pub platform_id: String,
    /// How the request was authorised (for audit).
    pub method: &'static str,
}

/// Why a challenge was not accepted (the client sees only a generic reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// No challengePassword in the CSR.
    #[error("challenge password missing")]
    Missing,
    /// Wrong challenge.
    #[error("challenge password rejected")]
    Rejected,
}

/// The request facts a verifier may look at.
pub struct ChallengeRequest<'a> {
    /// The challengePassword from the CSR.
    pub challenge: Option<&'a Zeroizing<String>>,
    /// The transactionID.
    pub transaction_id: &'a str,
}

/// One challenge mode.
pub trait ChallengeVerifier: Send + Sync {
    /// Verifies the request's challenge.
    fn verify(&self, req: &ChallengeRequest<'_>) -> Result<Authorization, ChallengeError>;
}

/// The verifier for a platform's challenge mode.
pub fn verifier_for(platform: &crate::store::Platform) -> Box<dyn ChallengeVerifier> {
    match &platform.challenge {
        crate::store::ChallengeConfig::Static { secret_hash } => {
            Box::new(static_secret::StaticSecret {
                platform_id: platform.id.clone(),
                secret_hash: secret_hash.clone(),
            })
        }
    }
}
