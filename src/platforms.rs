//! Platform (enrollment profile) creation: ids, names and one-time secrets.

use serde::Serialize;
use zeroize::Zeroizing;

use crate::challenge::secret;
use crate::store::{ChallengeConfig, Platform, Store, StoreError};

/// What `platform add` prints once (`--json` shape is a public contract).
#[derive(Debug, Serialize)]
pub struct CreatedPlatform {
    /// Platform id.
    pub platform_id: String,
    /// SCEP path, `/scep/<platform_id>`.
    pub scep_path: String,
    /// The challenge secret, shown only now.
    pub challenge: String,
}

impl Drop for CreatedPlatform {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.challenge.zeroize();
    }
}

/// Errors creating a platform.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// Invalid name.
    #[error("invalid platform name: use 1-64 letters, digits, '.', '-', '_' or spaces")]
    BadName,
    /// Store failure (including duplicate name).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The random source failed.
    #[error("random source failed")]
    Random,
}

/// The SCEP path of a platform.
pub fn scep_path(platform_id: &str) -> String {
    format!("/scep/{platform_id}")
}

fn valid_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' '))
}

/// A new platform id: 20 lowercase base32 characters (100 bits; URL-safe, unguessable).
fn new_id() -> Result<String, PlatformError> {
    let s = secret::generate().map_err(|_| PlatformError::Random)?;
    Ok(s[..20].to_ascii_lowercase())
}

/// Creates a static-challenge platform; the secret is returned once and stored as a hash.
pub fn create_static(
    store: &Store,
    name: &str,
    allow_des: bool,
    now: i64,
) -> Result<CreatedPlatform, PlatformError> {
    if !valid_name(name) {
        return Err(PlatformError::BadName);
    }
    let challenge: Zeroizing<String> = secret::generate().map_err(|_| PlatformError::Random)?;
    let id = new_id()?;
    store.insert_platform(&Platform {
        id: id.clone(),
        name: name.to_owned(),
        challenge: ChallengeConfig::Static {
            secret_hash: secret::hash(&challenge),
        },
        allow_des,
        created_at: now,
    })?;
    Ok(CreatedPlatform {
        scep_path: scep_path(&id),
        platform_id: id,
        challenge: challenge.to_string(),
    })
}

/// Replaces a static platform's secret; returns the new one (shown once).
pub fn rotate_static_secret(
    store: &Store,
    platform_id: &str,
) -> Result<Zeroizing<String>, PlatformError> {
    let challenge = secret::generate().map_err(|_| PlatformError::Random)?;
    store.update_static_secret(platform_id, &secret::hash(&challenge))?;
    Ok(challenge)
}
