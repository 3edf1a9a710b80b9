//! `[store]`: which database holds the CA's records. SQLite under the data dir is the embedded
//! default; PostgreSQL lets several scepd nodes share one database.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// `[store]` as written in the TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `sqlite` (default) or `postgres`.
    pub backend: Option<String>,
    /// SQLite: `full` (default: fsync every commit; nothing a client received is lost on power
    /// failure) or `normal` (survives crashes of the process, not of the machine; faster).
    /// PostgreSQL: `full` waits for the database's WAL flush on COMMIT, `normal` sets
    /// `synchronous_commit = off` for issuance.
    pub synchronous: Option<String>,
    /// PostgreSQL: `postgres://user@host:port/db`. Never logged.
    pub url: Option<String>,
    /// PostgreSQL: file whose first line is the password (else `SCEPD_STORE_PASSWORD`).
    pub password_file: Option<PathBuf>,
    /// PostgreSQL: most connections one node opens (default 16).
    pub pool_size: Option<u32>,
    /// PostgreSQL: `disable`, `require` or `verify-full` (default `disable` for a loopback
    /// host, otherwise `verify-full`).
    pub sslmode: Option<String>,
    /// PostgreSQL, `verify-full`: PEM file of the CA certificates the server must chain to.
    pub ca_file: Option<PathBuf>,
    /// PostgreSQL: seconds to wait for a connection (default 5).
    pub connect_timeout_secs: Option<u64>,
}

/// TLS to PostgreSQL, as libpq's `sslmode` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// Encrypted, the server's certificate not checked.
    Require,
    /// Encrypted, the certificate chains to `ca_file` and names the URL's host.
    VerifyFull,
}

/// Validated PostgreSQL settings (the password is read when the store opens, not here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// The connection URL; never logged (it may hold a password).
    pub url: String,
    /// Password file, if any.
    pub password_file: Option<PathBuf>,
    /// Pool size per node.
    pub pool_size: u32,
    /// TLS mode; `None`: chosen from the URL's host when the store opens.
    pub sslmode: Option<SslMode>,
    /// CA certificates for `verify-full`.
    pub ca_file: Option<PathBuf>,
    /// Connection wait.
    pub connect_timeout_secs: u64,
}

/// Which backend, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// `<data_dir>/scepd.sqlite3`.
    Sqlite,
    /// A PostgreSQL database shared by every node.
    Postgres(PostgresConfig),
}

/// True for a URL naming PostgreSQL (what `--store-url` accepts).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl StoreSection {
    /// Validates the section; `url_override` is `--store-url` / `SCEPD_STORE_URL`, which
    /// selects PostgreSQL by itself.
    pub fn validate(&self, url_override: Option<&str>) -> Result<(StoreConfig, bool), ConfigError> {
        let invalid = |m: &str| ConfigError::Invalid(m.to_owned());
        let full_durability = match self.synchronous.as_deref() {
            None | Some("full") => true,
            Some("normal") => false,
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "store.synchronous must be full or normal, not {other:?}"
                )));
            }
        };
        let url = url_override.map(str::to_owned).or_else(|| self.url.clone());
        let backend = match (self.backend.as_deref(), url_override) {
            (_, Some(_)) | (Some("postgres"), None) => "postgres",
            (None | Some("sqlite"), None) => "sqlite",
            (Some(other), None) => {
                return Err(ConfigError::Invalid(format!(
                    "store.backend must be sqlite or postgres, not {other:?}"
                )));
            }
        };
        if backend == "sqlite" {
            let pg_only = [
                ("url", self.url.is_some()),
                ("password_file", self.password_file.is_some()),
                ("pool_size", self.pool_size.is_some()),
                ("sslmode", self.sslmode.is_some()),
                ("ca_file", self.ca_file.is_some()),
                ("connect_timeout_secs", self.connect_timeout_secs.is_some()),
            ];
            if let Some((key, _)) = pg_only.iter().find(|(_, set)| *set) {
                return Err(ConfigError::Invalid(format!(
                    "store.{key} applies to backend = \"postgres\" only"
                )));
            }
            return Ok((StoreConfig::Sqlite, full_durability));
        }
        let url = url.ok_or_else(|| {
            invalid("store.backend = \"postgres\" needs store.url (or --store-url)")
        })?;
        if !is_postgres_url(&url) {
            // Not echoed: the value may carry a password.
            return Err(invalid(
                "store.url must be a postgres:// URL (postgres://user@host:port/db)",
            ));
        }
        let pool_size = self.pool_size.unwrap_or(16);
        if !(1..=1000).contains(&pool_size) {
            return Err(invalid("store.pool_size must be 1..=1000"));
        }
        let sslmode = match self.sslmode.as_deref() {
            None => None,
            Some("disable") => Some(SslMode::Disable),
            Some("require") => Some(SslMode::Require),
            Some("verify-full") => Some(SslMode::VerifyFull),
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "store.sslmode must be disable, require or verify-full, not {other:?}"
                )));
            }
        };
        if sslmode == Some(SslMode::VerifyFull) && self.ca_file.is_none() {
            return Err(invalid(
                "store.sslmode = \"verify-full\" needs store.ca_file",
            ));
        }
        if self.ca_file.is_some() && matches!(sslmode, Some(SslMode::Disable | SslMode::Require)) {
            return Err(invalid(
                "store.ca_file is only used with sslmode = \"verify-full\"",
            ));
        }
        let connect_timeout_secs = self.connect_timeout_secs.unwrap_or(5);
        if !(1..=300).contains(&connect_timeout_secs) {
            return Err(invalid("store.connect_timeout_secs must be 1..=300"));
        }
        Ok((
            StoreConfig::Postgres(PostgresConfig {
                url,
                password_file: self.password_file.clone(),
                pool_size,
                sslmode,
                ca_file: self.ca_file.clone(),
                connect_timeout_secs,
            }),
            full_durability,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn section(text: &str) -> StoreSection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn sqlite_is_the_default_and_refuses_postgres_keys() {
        let (c, full) = section("").validate(None).unwrap();
        assert_eq!((c, full), (StoreConfig::Sqlite, true));
        let e = section("pool_size = 4").validate(None).unwrap_err();
        assert!(e.to_string().contains("store.pool_size applies to"), "{e}");
        assert!(section("backend = \"mysql\"").validate(None).is_err());
    }

    #[test]
    fn postgres_needs_a_url_and_validates_tls() {
        assert!(section("backend = \"postgres\"").validate(None).is_err());
        let (c, _) = section("backend = \"postgres\"\nurl = \"postgres://scepd@db:5432/ca\"")
            .validate(None)
            .unwrap();
        let StoreConfig::Postgres(p) = c else {
            panic!("postgres")
        };
        assert_eq!(
            (p.pool_size, p.sslmode, p.connect_timeout_secs),
            (16, None, 5)
        );
        let e = section("backend = \"postgres\"\nurl = \"mysql://secret@db\"")
            .validate(None)
            .unwrap_err();
        assert!(
            !e.to_string().contains("secret"),
            "the URL is not echoed: {e}"
        );
        assert!(
            section(
                "url = \"postgres://db/ca\"\nbackend = \"postgres\"\nsslmode = \"verify-full\""
            )
            .validate(None)
            .is_err(),
            "verify-full needs a CA file"
        );
        assert!(
            section("backend = \"postgres\"\nurl = \"postgres://db/ca\"\nsslmode = \"prefer\"")
                .validate(None)
                .is_err()
        );
    }

    #[test]
    fn store_url_flag_selects_postgres() {
        let (c, _) = section("")
            .validate(Some("postgresql://scepd@127.0.0.1/ca"))
            .unwrap();
        assert!(
            matches!(c, StoreConfig::Postgres(p) if p.url == "postgresql://scepd@127.0.0.1/ca")
        );
        assert!(section("").validate(Some("http://x")).is_err());
    }
}
