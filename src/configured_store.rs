//! The store a configuration names: SQLite in the data dir, or PostgreSQL with its password
//! and TLS resolved from `[store]`; opened for every command that needs it.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use zeroize::Zeroizing;

use crate::config::{Config, PostgresConfig, SslMode, StoreConfig};
use crate::private_file;
use crate::store::postgres::{PgSettings, PgTls};
use crate::store::{Store, StoreError};

/// Why the configured store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Filesystem problem (the data dir, a CA file).
    #[error("data dir {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Store failure (including invalid `[store]` settings).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No database where the configuration points (a mistyped `--data-dir`, a command run
    /// from another directory): nothing is created there.
    #[error(
        "no scepd data at {0}: check --data-dir, SCEPD_DATA_DIR or data_dir in the config file (`scepd init` would create a new CA there)"
    )]
    Missing(String),
}

/// Path of the database inside a data dir.
pub fn database_path(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("scepd.sqlite3")
}

/// Environment variable holding the PostgreSQL password when `[store] password_file` is unset.
pub const STORE_PASSWORD_ENV: &str = "SCEPD_STORE_PASSWORD";

/// Where the records live, for messages: the data dir (SQLite) or the database's
/// `postgres://user@host:port/db` (never its password).
pub fn location(config: &Config) -> String {
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
pub fn open(config: &Config) -> Result<Store, OpenError> {
    let dir = &config.data_dir;
    let io = |source| OpenError::Io {
        path: dir.display().to_string(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
    connect(config)
}

/// Opens the configured store for a command that only uses what exists (every command but
/// `init` and `serve`): refuses, creating nothing, when the data dir or its database is not
/// there. (A PostgreSQL database may well exist while the data dir holding the keys does not.)
pub fn open_existing(config: &Config) -> Result<Store, OpenError> {
    let missing = match &config.store {
        StoreConfig::Sqlite => (!database_path(config).is_file()).then(|| location(config)),
        StoreConfig::Postgres(_) => {
            (!config.data_dir.is_dir()).then(|| format!("data dir {}", config.data_dir.display()))
        }
    };
    match missing {
        Some(what) => Err(OpenError::Missing(what)),
        None => connect(config),
    }
}

/// The store of `config`, its data dir already there.
fn connect(config: &Config) -> Result<Store, OpenError> {
    let store = match &config.store {
        StoreConfig::Sqlite => Store::open(database_path(config))?,
        StoreConfig::Postgres(p) => Store::connect_postgres(&pg_settings(p)?)?,
    };
    store.set_full_durability(config.full_durability)?;
    Ok(store)
}

/// Resolves the password and TLS of the `[store]` section into connection settings.
fn pg_settings(p: &PostgresConfig) -> Result<PgSettings, OpenError> {
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
            let ca_pem = fs::read(path).map_err(|source| OpenError::Io {
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
