//! Which verifier serves a platform. Stateless modes are built per request; modes with
//! secrets or caches (webhook keys; Intune tokens and service discovery) are built once per
//! platform, on first use, and kept. Platforms cannot be edited, so nothing goes stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::dynamic::DynamicVerifier;
use super::intune::IntuneVerifier;
use super::intune::client::IntuneClient;
use super::static_secret::StaticSecret;
use super::webhook::WebhookVerifier;
use super::{ChallengeError, ChallengeVerifier};
use crate::config::Config;
use crate::outbound::Outbound;
use crate::secrets::{self, SecretFiles};
use crate::store::{ChallengeConfig, Platform, Store};

/// The verifiers of all platforms.
pub struct Verifiers {
    store: Arc<Store>,
    secrets: SecretFiles,
    http: Outbound,
    kept: Mutex<HashMap<String, Arc<dyn ChallengeVerifier>>>,
}

impl Verifiers {
    /// Verifiers over `store`, configured by `config`.
    pub fn new(store: Arc<Store>, config: &Config) -> Self {
        Self {
            store,
            secrets: SecretFiles::new(&config.data_dir),
            http: Outbound::new(Duration::from_secs(config.outbound_timeout_secs)),
            kept: Mutex::new(HashMap::new()),
        }
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
            _ => self.kept(platform),
        }
    }

    /// The kept verifier of a delegated platform, built on first use.
    fn kept(&self, platform: &Platform) -> Result<Arc<dyn ChallengeVerifier>, ChallengeError> {
        let internal = |e: String| ChallengeError::Internal(e);
        let mut kept = self
            .kept
            .lock()
            .map_err(|_| internal("verifier cache poisoned".into()))?;
        if let Some(v) = kept.get(&platform.id) {
            return Ok(v.clone());
        }
        let built: Arc<dyn ChallengeVerifier> = match &platform.challenge {
            ChallengeConfig::Webhook(w) => {
                let secret = self
                    .secrets
                    .load(&secrets::webhook_secret(&platform.id))
                    .map_err(|e| internal(e.to_string()))?;
                Arc::new(WebhookVerifier::new(
                    &platform.id,
                    &w.url,
                    &secret,
                    self.http.clone(),
                ))
            }
            ChallengeConfig::Intune(settings) => {
                let secret = self
                    .secrets
                    .load(&secrets::aad_client_secret(&platform.id))
                    .map_err(|e| internal(e.to_string()))?;
                let client = IntuneClient::new(settings.clone(), secret, self.http.clone());
                Arc::new(IntuneVerifier::new(&platform.id, client))
            }
            other => {
                return Err(internal(format!(
                    "challenge mode {} has no kept verifier",
                    other.kind()
                )));
            }
        };
        kept.insert(platform.id.clone(), built.clone());
        Ok(built)
    }
}
