//! `scepd init`: create the data dir, the database, a root → intermediate → RA hierarchy and the
//! `default` platform. Keys are written before the database records that reference them, so a
//! crash leaves an uninitialized data dir (plus orphan key files), never a half-initialized one.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use scepd_pki::ca::hierarchy::{HierarchySpec, bootstrap};
use scepd_pki::random::SystemRandom;
use scepd_pki::x509::{Certificate, name};

use crate::config::Config;
use crate::keystore::{Keystore, KeystoreError};
use crate::platforms::{self, CreatedPlatform, PlatformError};
use crate::store::{CaRecord, CaRole, CaState, Store, StoreError};

/// Errors during initialization.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// Already initialized.
    #[error("data dir {0} is already initialized; refusing to overwrite its CA")]
    AlreadyInitialized(String),
    /// Filesystem problem.
    #[error("data dir {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
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

/// Path of the database inside a data dir.
pub fn database_path(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("scepd.sqlite3")
}

/// Opens (creating) the data dir's database with a private directory.
pub fn open_store(config: &Config) -> Result<Store, InitError> {
    let dir = &config.data_dir;
    let io = |source| InitError::Io {
        path: dir.display().to_string(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
    let store = Store::open(database_path(config))?;
    store.set_full_durability(config.full_durability)?;
    Ok(store)
}

/// Initializes the data dir. Returns the `default` platform's one-time output.
pub fn initialize(config: &Config, store: &Store, now: i64) -> Result<CreatedPlatform, InitError> {
    if store.is_initialized()? {
        return Err(InitError::AlreadyInitialized(
            config.data_dir.display().to_string(),
        ));
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
    let keystore = Keystore::from_config(config)?;
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
    store.insert_authorities(&records)?;
    Ok(platforms::create_static(store, "default", false, now)?)
}
