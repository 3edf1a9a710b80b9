//! Runtime configuration: an optional TOML file (unknown keys refused) over built-in defaults,
//! then command-line overrides. Validated once at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use scepd_pki::keys::KeyAlgorithm;
use serde::Deserialize;

mod store;

pub use store::{PostgresConfig, SslMode, StoreConfig, StoreSection, is_postgres_url};

/// Errors loading or validating configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for our schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The TOML file (every key optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Schema version of the file (1).
    pub version: Option<u32>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Public SCEP listener address.
    pub listen: Option<SocketAddr>,
    /// Externally visible base URL (e.g. `https://ca.example.com`) used for CDP/AIA URLs.
    pub public_url: Option<String>,
    /// PKI settings.
    #[serde(default)]
    pub pki: PkiSection,
    /// Limits.
    #[serde(default)]
    pub limits: LimitsSection,
    /// CRL and OCSP timing.
    #[serde(default)]
    pub revocation: RevocationSection,
    /// Key protection.
    #[serde(default)]
    pub keys: KeysSection,
    /// Database durability.
    #[serde(default)]
    pub store: StoreSection,
    /// Outbound calls of delegated challenge modes (Intune, webhooks).
    #[serde(default)]
    pub outbound: OutboundSection,
    /// SCEP paths.
    #[serde(default)]
    pub scep: ScepSection,
}

/// `[scep]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScepSection {
    /// Platform id served at NDES's `/certsrv/mscep/mscep.dll` (unset: that path is 404).
    pub ndes_platform: Option<String>,
}

/// `[revocation]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationSection {
    /// CRL nextUpdate − thisUpdate, hours (re-signed after half of it, or on any revocation).
    pub crl_validity_hours: Option<u32>,
    /// OCSP response validity (nextUpdate − thisUpdate), seconds.
    pub ocsp_validity_secs: Option<u32>,
}

/// `[pki]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkiSection {
    /// Organisation name in CA subjects created by `init`.
    pub organization: Option<String>,
    /// Root key algorithm for `init`.
    pub root_key: Option<String>,
    /// Intermediate key algorithm for `init`.
    pub intermediate_key: Option<String>,
    /// RA key algorithm for `init` (RSA only).
    pub ra_key: Option<String>,
    /// Device certificate validity in days.
    pub validity_days: Option<u32>,
    /// Smallest RSA key accepted in requests.
    pub min_rsa_bits: Option<u32>,
    /// Include the root in GetCACert.
    pub include_root: Option<bool>,
    /// Give each RA an encryption-only certificate and list it in GetCACert.
    pub encryption_ra: Option<bool>,
    /// Tolerated difference between a request's signingTime and our clock, seconds.
    pub max_clock_skew_secs: Option<u32>,
}

/// `[keys]`: how private keys are protected at rest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// File holding the key-encryption passphrase (first line). `--key-passphrase-file` and
    /// `SCEPD_KEY_PASSPHRASE` win.
    pub passphrase_file: Option<PathBuf>,
    /// Store keys unencrypted (explicit opt-in; never the default).
    pub plaintext: Option<bool>,
}

/// `[limits]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest request body in bytes.
    pub max_body_bytes: Option<usize>,
    /// Seconds a client may take to send its request headers.
    pub header_timeout_secs: Option<u64>,
    /// Most concurrent connections on the public listener (more get 503).
    pub max_connections: Option<usize>,
    /// Seconds without any I/O after which a connection is closed.
    pub idle_timeout_secs: Option<u64>,
    /// Most concurrent connections from one client address (IPv6: one /64); more get 503
    /// unless one of that address's idle connections makes room.
    pub max_connections_per_address: Option<usize>,
    /// Seconds a client may take to send a whole request body, however fast it trickles.
    pub request_body_timeout_secs: Option<u64>,
    /// Bytes per second a request body must average after a 5-second grace period (0: no
    /// minimum; the deadline still applies).
    pub min_body_rate_bytes_per_sec: Option<u32>,
    /// PKIOperation requests per minute per client address (0: unlimited).
    pub pki_operation_per_minute: Option<u32>,
    /// `/trust/v1/*` requests per minute per client address (0: unlimited).
    pub trust_per_minute: Option<u32>,
    /// OCSP responses signed per minute per client address; reused ones do not count, beyond
    /// it the answer is tryLater (0: unlimited).
    pub ocsp_signed_per_minute: Option<u32>,
    /// CPU-bound tasks (PKIOperation, signed OCSP, trust checks) run at once; default two per
    /// core.
    pub cpu_slots: Option<usize>,
}

/// `[outbound]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSection {
    /// Bound on one outbound HTTP exchange (connect, send, receive), seconds.
    pub timeout_secs: Option<u64>,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory (SQLite database, keys).
    pub data_dir: PathBuf,
    /// Public listener.
    pub listen: SocketAddr,
    /// Base URL for CDP/AIA; when unset, `http://<bound listen address>`.
    pub public_url: Option<String>,
    /// Organisation for `init`.
    pub organization: String,
    /// Root key algorithm for `init`.
    pub root_key: KeyAlgorithm,
    /// Intermediate key algorithm for `init`.
    pub intermediate_key: KeyAlgorithm,
    /// RA key algorithm for `init`.
    pub ra_key: KeyAlgorithm,
    /// Device certificate validity in days.
    pub validity_days: u32,
    /// Minimum RSA bits in requests.
    pub min_rsa_bits: u32,
    /// Include the root in GetCACert.
    pub include_root: bool,
    /// Each RA gets an encryption-only certificate (keyEncipherment), listed in GetCACert
    /// after it, for clients that pick their recipient by key usage (`[pki] encryption_ra`).
    pub encryption_ra: bool,
    /// Tolerated signingTime skew.
    pub max_clock_skew_secs: u32,
    /// Request body cap.
    pub max_body_bytes: usize,
    /// Header read timeout.
    pub header_timeout_secs: u64,
    /// Concurrent connection cap.
    pub max_connections: usize,
    /// Idle connection timeout.
    pub idle_timeout_secs: u64,
    /// Concurrent connection cap per client address (≤ `max_connections`).
    pub max_connections_per_address: usize,
    /// Deadline for a whole request body, seconds.
    pub request_body_timeout_secs: u64,
    /// Minimum average request body rate after the grace period (0: none).
    pub min_body_rate_bytes_per_sec: u32,
    /// PKIOperation per minute per client address (0: off).
    pub pki_operation_per_minute: u32,
    /// Trust API requests per minute per client address (0: off).
    pub trust_per_minute: u32,
    /// Signed OCSP responses per minute per client address (0: off).
    pub ocsp_signed_per_minute: u32,
    /// CPU-bound tasks run at once (`cpu_pool`).
    pub cpu_slots: usize,
    /// CRL validity.
    pub crl_validity_secs: i64,
    /// OCSP response validity.
    pub ocsp_validity_secs: i64,
    /// Key passphrase file, if configured (`[keys] passphrase_file`).
    pub key_passphrase_file: Option<PathBuf>,
    /// Key passphrase file from `--key-passphrase-file` / `SCEPD_KEY_PASSPHRASE_FILE`: wins
    /// over the config file; giving it together with `SCEPD_KEY_PASSPHRASE` is an error.
    pub key_passphrase_file_override: Option<PathBuf>,
    /// Keys stored unencrypted (explicit opt-in).
    pub plaintext_keys: bool,
    /// Durable commits (`[store] synchronous = "full"`).
    pub full_durability: bool,
    /// Which database holds the records (`[store]`, `--store-url`).
    pub store: StoreConfig,
    /// Bound on one outbound HTTP exchange (Intune, webhooks), seconds.
    pub outbound_timeout_secs: u64,
    /// The platform NDES-style tools reach at `/certsrv/mscep/mscep.dll` (`[scep]
    /// ndes_platform`); `None`: the path is not served.
    pub ndes_platform: Option<String>,
}

/// Command-line values that override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `serve --listen`.
    pub listen: Option<SocketAddr>,
    /// `--store-url` (selects PostgreSQL).
    pub store_url: Option<String>,
}

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./scepd-data";
/// Default public listener.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default per-address connection cap: an eighth of `max_connections` (128 of the default
/// 1,024), so one flooding address gets an eighth of the slots while a NAT of enrolling
/// devices keeps room that grows with the cap; at least 16 (or `max_connections`, if smaller).
pub fn default_max_connections_per_address(max_connections: usize) -> usize {
    (max_connections / 8).max(16.min(max_connections))
}

fn key_alg(
    v: Option<&str>,
    default: KeyAlgorithm,
    what: &str,
) -> Result<KeyAlgorithm, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|e| ConfigError::Invalid(format!("{what}: {e}"))),
    }
}

impl Config {
    /// The base URL put in certificates, given the address actually bound.
    pub fn public_base(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }

    /// Reads the optional file and applies overrides.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let fc = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: p.to_owned(),
                    message: e.to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        Self::from_file(fc, overrides)
    }

    /// Validates a parsed file plus overrides.
    pub fn from_file(fc: FileConfig, overrides: Overrides) -> Result<Self, ConfigError> {
        let Overrides {
            data_dir,
            listen,
            store_url,
        } = overrides;
        if let Some(v) = fc.version {
            if v != 1 {
                return Err(ConfigError::Invalid(format!(
                    "unsupported config version {v} (this build reads 1)"
                )));
            }
        }
        let default_listen: SocketAddr = DEFAULT_LISTEN
            .parse()
            .map_err(|_| ConfigError::Invalid("listen".into()))?;
        let listen = listen.or(fc.listen).unwrap_or(default_listen);
        let p = fc.pki;
        let ra_key = key_alg(p.ra_key.as_deref(), KeyAlgorithm::Rsa2048, "pki.ra_key")?;
        if !ra_key.is_rsa() {
            return Err(ConfigError::Invalid(
                "pki.ra_key must be RSA (Apple devices refuse other SCEP recipients)".into(),
            ));
        }
        let validity_days = p.validity_days.unwrap_or(365);
        if !(1..=3650).contains(&validity_days) {
            return Err(ConfigError::Invalid(
                "pki.validity_days must be 1..=3650".into(),
            ));
        }
        let min_rsa_bits = p.min_rsa_bits.unwrap_or(2048);
        if ![1024, 2048, 3072, 4096].contains(&min_rsa_bits) {
            return Err(ConfigError::Invalid(
                "pki.min_rsa_bits must be 1024, 2048, 3072 or 4096".into(),
            ));
        }
        let outbound_timeout_secs = fc.outbound.timeout_secs.unwrap_or(10);
        if !(1..=120).contains(&outbound_timeout_secs) {
            return Err(ConfigError::Invalid(
                "outbound.timeout_secs must be 1..=120".into(),
            ));
        }
        if let Some(u) = &fc.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(ConfigError::Invalid(
                    "public_url must start with http:// or https://".into(),
                ));
            }
        }
        let ndes_platform = fc.scep.ndes_platform;
        if let Some(id) = &ndes_platform {
            if crate::http::scep::platform_from_path(&format!("/scep/{id}")) != Some(id.as_str()) {
                return Err(ConfigError::Invalid(
                    "scep.ndes_platform must be a platform id (as `scepd platform list` shows)"
                        .into(),
                ));
            }
        }
        let (store, full_durability) = fc.store.validate(store_url.as_deref())?;
        let crl_hours = fc.revocation.crl_validity_hours.unwrap_or(24);
        if !(1..=24 * 31).contains(&crl_hours) {
            return Err(ConfigError::Invalid(
                "revocation.crl_validity_hours must be 1..=744".into(),
            ));
        }
        let l = &fc.limits;
        let max_connections = l.max_connections.unwrap_or(1024);
        if !(1..=1_000_000).contains(&max_connections) {
            return Err(ConfigError::Invalid(
                "limits.max_connections must be 1..=1000000".into(),
            ));
        }
        let idle_timeout_secs = l.idle_timeout_secs.unwrap_or(60);
        let header_timeout_secs = l.header_timeout_secs.unwrap_or(10);
        if idle_timeout_secs == 0 || header_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "limits.idle_timeout_secs and header_timeout_secs must be at least 1".into(),
            ));
        }
        let max_connections_per_address = l
            .max_connections_per_address
            .unwrap_or_else(|| default_max_connections_per_address(max_connections));
        if !(1..=max_connections).contains(&max_connections_per_address) {
            return Err(ConfigError::Invalid(
                "limits.max_connections_per_address must be 1..=max_connections".into(),
            ));
        }
        let request_body_timeout_secs = l.request_body_timeout_secs.unwrap_or(30);
        if !(1..=3600).contains(&request_body_timeout_secs) {
            return Err(ConfigError::Invalid(
                "limits.request_body_timeout_secs must be 1..=3600".into(),
            ));
        }
        let min_body_rate_bytes_per_sec = l.min_body_rate_bytes_per_sec.unwrap_or(256);
        let cpu_slots = l.cpu_slots.unwrap_or_else(crate::cpu_pool::default_size);
        if !(1..=4096).contains(&cpu_slots) {
            return Err(ConfigError::Invalid(
                "limits.cpu_slots must be 1..=4096".into(),
            ));
        }
        Ok(Self {
            max_connections,
            idle_timeout_secs,
            max_connections_per_address,
            request_body_timeout_secs,
            min_body_rate_bytes_per_sec,
            cpu_slots,
            pki_operation_per_minute: l.pki_operation_per_minute.unwrap_or(6000),
            trust_per_minute: l.trust_per_minute.unwrap_or(6000),
            ocsp_signed_per_minute: l.ocsp_signed_per_minute.unwrap_or(6000),
            data_dir: data_dir
                .or(fc.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            listen,
            public_url: fc.public_url.map(|u| u.trim_end_matches('/').to_owned()),
            organization: p.organization.unwrap_or_else(|| "scepd".into()),
            root_key: key_alg(p.root_key.as_deref(), KeyAlgorithm::Rsa4096, "pki.root_key")?,
            intermediate_key: key_alg(
                p.intermediate_key.as_deref(),
                KeyAlgorithm::Rsa2048,
                "pki.intermediate_key",
            )?,
            ra_key,
            validity_days,
            min_rsa_bits,
            include_root: p.include_root.unwrap_or(true),
            encryption_ra: p.encryption_ra.unwrap_or(false),
            max_clock_skew_secs: p.max_clock_skew_secs.unwrap_or(86_400),
            max_body_bytes: fc.limits.max_body_bytes.unwrap_or(256 * 1024),
            header_timeout_secs,
            crl_validity_secs: i64::from(crl_hours) * 3600,
            ocsp_validity_secs: i64::from(fc.revocation.ocsp_validity_secs.unwrap_or(3600)),
            key_passphrase_file: fc.keys.passphrase_file,
            key_passphrase_file_override: None,
            plaintext_keys: fc.keys.plaintext.unwrap_or(false),
            full_durability,
            store,
            outbound_timeout_secs,
            ndes_platform,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn limits(toml_text: &str) -> Result<Config, ConfigError> {
        let fc: FileConfig = toml::from_str(&format!("[limits]\n{toml_text}")).unwrap();
        Config::from_file(fc, Overrides::default())
    }

    #[test]
    fn ndes_platform_must_look_like_a_platform_id() {
        let parse = |t: &str| Config::from_file(toml::from_str(t).unwrap(), Overrides::default());
        assert_eq!(parse("").unwrap().ndes_platform, None);
        assert_eq!(
            parse("[scep]\nndes_platform = \"abc123\"")
                .unwrap()
                .ndes_platform
                .as_deref(),
            Some("abc123")
        );
        for bad in ["", "a/b", "../x", "a b", &"x".repeat(65)] {
            let t = format!("[scep]\nndes_platform = \"{bad}\"");
            assert!(
                matches!(parse(&t), Err(ConfigError::Invalid(m)) if m.contains("ndes_platform")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn connection_and_body_limits_default_and_validate() {
        let c = limits("").unwrap();
        assert_eq!(
            (c.max_connections, c.max_connections_per_address),
            (1024, 128)
        );
        assert_eq!(c.request_body_timeout_secs, 30);
        assert_eq!(c.min_body_rate_bytes_per_sec, 256);
        // The per-address default never exceeds the global cap.
        let per_address = |max: usize| {
            limits(&format!("max_connections = {max}"))
                .unwrap()
                .max_connections_per_address
        };
        assert_eq!(per_address(10), 10);
        assert_eq!(per_address(100), 16);
        assert_eq!(per_address(200), 25);
        assert!(limits("max_connections = 10\nmax_connections_per_address = 11").is_err());
        assert!(limits("max_connections_per_address = 0").is_err());
        assert!(limits("request_body_timeout_secs = 0").is_err());
        assert!(limits("request_body_timeout_secs = 3601").is_err());
        assert_eq!(
            limits("min_body_rate_bytes_per_sec = 0")
                .unwrap()
                .min_body_rate_bytes_per_sec,
            0
        );
    }
}
