//! Static mode: one shared secret per platform, stored only as a hash.

use super::{Authorization, ChallengeError, ChallengeRequest, ChallengeVerifier, secret};

/// Verifies a platform's static shared secret.
pub struct StaticSecret {
    /// The platform.
    pub platform_id: String,
    /// SHA-256 of the secret.
    pub secret_hash: Vec<u8>,
}

impl ChallengeVerifier for StaticSecret {
    fn verify(&self, req: &ChallengeRequest<'_>) -> Result<Authorization, ChallengeError> {
        let candidate = req.challenge.ok_or(ChallengeError::Missing)?;
        if !secret::matches(candidate, &self.secret_hash) {
            return Err(ChallengeError::Rejected);
        }
        Ok(Authorization {
            platform_id: self.platform_id.clone(),
            method: "static",
            one_time: None,
        })
    }
}
