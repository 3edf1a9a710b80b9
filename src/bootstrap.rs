//! `scepd init`: create the data dir, the database, a root → intermediate → RA hierarchy and the
//! `default` platform. Keys are written before the database records that reference them, so a
//! crash leaves an uninitialized data dir (plus orphan key files), never a half-initialized one.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use scepd_pki::ca::hierarchy::{HierarchySpec, bootstrap};
use scepd_pki::random::SystemRandom;
use scepd_pki::x509::{Certificate, name};

use zeroize::Zeroizing;

use crate::ca::keystore::{Keystore, KeystoreError};
use crate::config::{Config, PostgresConfig, SslMode, StoreConfig};
use crate::platforms::{self, CreatedPlatform, PlatformError};
use crate::private_file;
use crate::store::postgres::{PgSettings, PgTls};
use crate::store::{CaRecord, CaRole, CaState, Store, StoreError};

/// Errors during initialization.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// Already initialized (the data dir, or the database of a cluster).
    #[error("{0} is already initialized; refusing to overwrite its CA")]
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

/// Environment variable holding the PostgreSQL password when `[store] password_file` is unset.
pub const STORE_PASSWORD_ENV: &str = "SCEPD_STORE_PASSWORD";

/// Where the records live, for messages: the data dir (SQLite) or the database's
/// `postgres://user@host:port/db` (never its password).
pub fn store_location(config: &Config) -> String {
    match &config.store {
        StoreConfig::Sqlite => format!("data dir {}", config.data_dir.display()),
        StoreConfig::Postgres(p) => format!(
            "database {}",
            PgSettings::location(&p.url).unwrap_or_else(|| "<unparsable URL>".into())
        ),
    }
}

/// Opens the configured store: SQLite in the data dir (created with a private directory), or
/// PostgreSQL (connected and migrated). The data dir is created either way: it holds the keys.
pub fn open_store(config: &Config) -> Result<Store, InitError> {
    let dir = &config.data_dir;
    let io = |source| InitError::Io {
        path: dir.display().to_string(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
    let store = match &config.store {
        StoreConfig::Sqlite => Store::open(database_path(config))?,
        StoreConfig::Postgres(p) => Store::connect_postgres(&pg_settings(p)?)?,
    };
    store.set_full_durability(config.full_durability)?;
    Ok(store)
}

/// Resolves the password and TLS of the `[store]` section into connection settings.
fn pg_settings(p: &PostgresConfig) -> Result<PgSettings, InitError> {
    let invalid = |field: &'static str, reason: String| StoreError::Invalid { field, reason };
    let password = match (&p.password_file, std::env::var_os(STORE_PASSWORD_ENV)) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "store password",
                format!("both [store] password_file and {STORE_PASSWORD_ENV} are set; keep one"),
            )
            .into());
        }
        (Some(path), None) => {
            let line = private_file::read_secret_line(path)
                .map_err(|e| invalid("store password_file", format!("{}: {e}", path.display())))?;
            let text = String::from_utf8(line.to_vec()).map_err(|_| {
                invalid(
                    "store password_file",
                    format!("{}: not UTF-8", path.display()),
                )
            })?;
            Some(Zeroizing::new(text))
        }
        (None, Some(v)) => Some(Zeroizing::new(v.into_string().map_err(|_| {
            invalid(
                "store password",
                format!("{STORE_PASSWORD_ENV} is not UTF-8"),
            )
        })?)),
        (None, None) => None,
    };
    if PgSettings::url_has_password(&p.url) {
        tracing::warn!(
            "the store URL carries a password, which shows in `ps` and shell history; prefer [store] password_file or {STORE_PASSWORD_ENV}"
        );
    }
    let tls = match p.sslmode {
        Some(SslMode::Disable) => PgTls::Disable,
        Some(SslMode::Require) => PgTls::Require,
        Some(SslMode::VerifyFull) => {
            let path = p
                .ca_file
                .as_ref()
                .ok_or_else(|| invalid("store ca_file", "verify-full needs a CA file".into()))?;
            let ca_pem = fs::read(path).map_err(|source| InitError::Io {
                path: path.display().to_string(),
                source,
            })?;
            PgTls::VerifyFull { ca_pem }
        }
        // Plain TCP only where it never leaves the machine; elsewhere the operator says how.
        None if PgSettings::is_local(&p.url) => PgTls::Disable,
        None => {
            return Err(invalid(
                "store sslmode",
                "the database is not on this machine: set [store] sslmode (verify-full with ca_file, or require, or disable on a trusted network)".into(),
            )
            .into());
        }
    };
    Ok(PgSettings {
        url: p.url.clone(),
        password,
        pool_size: p.pool_size,
        tls,
        connect_timeout: std::time::Duration::from_secs(p.connect_timeout_secs),
    })
}

/// Initializes the data dir. Returns the `default` platform's one-time output.
pub fn initialize(config: &Config, store: &Store, now: i64) -> Result<CreatedPlatform, InitError> {
    if store.is_initialized()? {
        return Err(InitError::AlreadyInitialized(store_location(config)));
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
    if let Err(e) = store.insert_authorities(&records) {
        // Nothing references these keys: leave no orphan behind in a shared keys/.
        for r in &records {
            keystore.discard(&r.key_ref);
        }
        return Err(e.into());
    }
    Ok(platforms::create_static(store, "default", false, now)?)
}
