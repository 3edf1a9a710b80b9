//! Which verifier serves a platform. Stateless modes are built per request; modes with
//! caches or secrets (Intune tokens and service discovery, webhook keys) are built once per
//! platform and kept.

use std::sync::Arc;

use super::dynamic::DynamicVerifier;
use super::static_secret::StaticSecret;
use super::{ChallengeError, ChallengeVerifier};
use crate::config::Config;
use crate::store::{ChallengeConfig, Platform, Store};

/// The verifiers of all platforms.
pub struct Verifiers {
    store: Arc<Store>,
}

impl Verifiers {
    /// Verifiers over `store`, configured by `config`.
    pub fn new(store: Arc<Store>, _config: &Config) -> Self {
        Self { store }
    }

    /// The verifier for `platform`'s challenge mode.
    pub fn for_platform(
        &self,
        platform: &Platform,
    ) -> Result<Arc<dyn ChallengeVerifier>, ChallengeError> {
        match &platform.challenge {
            ChallengeConfig::Static { secret_hash } => Ok(Arc::new(StaticSecret {
                platform_id: platform.id.clone(),
                secret_hash: secret_hash.clone(),
            })),
            ChallengeConfig::Dynamic(_) => Ok(Arc::new(DynamicVerifier {
                store: self.store.clone(),
                platform_id: platform.id.clone(),
            })),
            other => Err(ChallengeError::Internal(format!(
                "challenge mode {} is not available in this build",
                other.kind()
            ))),
        }
    }
}
