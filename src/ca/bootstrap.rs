//! `scepd init` and the first `serve`: a root → intermediate → RA hierarchy and the `default`
//! platform. Keys are written before the database records that reference them, so a crash
//! leaves an uninitialized store (plus orphan key files), never a half-initialized one.

use scepd_pki::ca::hierarchy::{HierarchySpec, bootstrap};
use scepd_pki::random::SystemRandom;
use scepd_pki::x509::{Certificate, name};

use crate::ca::keystore::{Keystore, KeystoreError};
use crate::config::Config;
use crate::configured_store;
use crate::platforms::{self, CreatedPlatform, PlatformError};
use crate::store::{CaRecord, CaRole, CaState, Store, StoreError};

/// Errors during initialization.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// Already initialized (the data dir, or the database of a cluster).
    #[error("{0} is already initialized; refusing to overwrite its CA")]
    AlreadyInitialized(String),
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key file failure.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// Key generation or signing failed.
    #[error("creating the CA hierarchy failed: {0}")]
    Pki(String),
    /// Platform creation failed.
    #[error(transparent)]
    Platform(#[from] PlatformError),
}

/// Initializes the data dir, its keys going to `keystore` (the one the caller then serves
/// with). Returns the `default` platform's one-time output.
pub fn initialize(
    config: &Config,
    store: &Store,
    keystore: &Keystore,
    now: i64,
) -> Result<CreatedPlatform, InitError> {
    if store.is_initialized()? {
        return Err(InitError::AlreadyInitialized(configured_store::location(
            config,
        )));
    }
    let spec = HierarchySpec {
        organization: config.organization.clone(),
        root_key: config.root_key,
        intermediate_key: config.intermediate_key,
        ra_key: config.ra_key,
        root_validity_secs: 20 * 365 * 86_400,
        intermediate_validity_secs: 10 * 365 * 86_400,
        ra_validity_secs: 5 * 365 * 86_400,
        now,
    };
    let h = bootstrap(&spec, &SystemRandom).map_err(|e| InitError::Pki(e.to_string()))?;
    let suffix =
        &crate::challenge::secret::generate().map_err(|_| InitError::Pki("random".into()))?[..8];
    let suffix = suffix.to_ascii_lowercase();
    let mut records = Vec::new();
    let mut issuer: Option<String> = None;
    for (role, auth) in [
        (CaRole::Root, &h.root),
        (CaRole::Intermediate, &h.intermediate),
        (CaRole::Ra, &h.ra),
    ] {
        let id = format!("{}-{suffix}", role.as_str());
        keystore.store(&id, &auth.pkcs8)?;
        let cert = Certificate::parse(&auth.cert_der).map_err(|e| InitError::Pki(e.to_string()))?;
        records.push(CaRecord {
            id: id.clone(),
            role,
            state: CaState::Active,
            subject: name::to_text(cert.subject),
            cert_der: auth.cert_der.clone(),
            key_ref: id.clone(),
            issuer_id: issuer.clone(),
            not_before: cert.not_before,
            not_after: cert.not_after,
            created_at: now,
        });
        issuer = Some(id);
    }
    if let Err(e) = store.insert_authorities(&records) {
        // Nothing references these keys: leave no orphan behind in a shared keys/.
        for r in &records {
            keystore.discard(&r.key_ref);
        }
        return Err(e.into());
    }
    Ok(platforms::create_static(store, "default", false, now)?)
}
