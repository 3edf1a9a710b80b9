//! The only module that touches key files. Keys are PKCS#8 DER files of mode 0600 under
//! `<data_dir>/keys/`, encrypted with PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC) under the
//! operator's passphrase, read once at start-up into memory; buffers are zeroized.
//!
//! Passphrase sources, in order: `--key-passphrase-file` / `SCEPD_KEY_PASSPHRASE_FILE`,
//! `SCEPD_KEY_PASSPHRASE`, `[keys] passphrase_file`, and for development a random passphrase
//! generated once into `<data_dir>/key-passphrase` (0600) — which protects copies of `keys/`
//! alone but not a copy of the whole data dir; production deployments use a file outside the
//! data dir. The environment variable works but is warned about: the kernel keeps a process's
//! initial environment readable in `/proc/<pid>/environ` (to its user and root) for its whole
//! life, and removing the variable from the environment does not erase those bytes (nor can
//! it be done without `unsafe` in Rust 2024), so a file is the only source that does not stay
//! exposed. `[keys] plaintext = true` stores keys unencrypted.
//!
//! The key directory must be mode 0700 and every file in it 0600 (no group or other bits):
//! [`Keystore::check_permissions`] refuses otherwise at start-up, and [`Keystore::load`]
//! checks the directory and the file it reads.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use scepd_pki::keys::SoftwareKey;
use scepd_pki::keys::encrypted_pkcs8;
use scepd_pki::random::SystemRandom;
use zeroize::Zeroizing;

use crate::config::Config;
use crate::private_file;

/// Key file errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// I/O on a key file.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is readable by others.
    #[error("key file {0} is accessible by group or others (chmod 600 it)")]
    Permissions(PathBuf),
    /// The key directory is accessible by others.
    #[error("key directory {0} is accessible by group or others (chmod 700 it)")]
    DirPermissions(PathBuf),
    /// Two passphrase sources were given at once.
    #[error(
        "both {PASSPHRASE_ENV} and a key passphrase file (--key-passphrase-file or SCEPD_KEY_PASSPHRASE_FILE) are set: give one"
    )]
    TwoPassphrases,
    /// The content is not a usable key.
    #[error("key file {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A key reference that could escape the key directory.
    #[error("invalid key reference {0:?}")]
    BadRef(String),
}

/// Env var holding the key passphrase.
pub const PASSPHRASE_ENV: &str = "SCEPD_KEY_PASSPHRASE";

/// How keys are protected at rest.
#[derive(Clone)]
pub enum Protection {
    /// PBES2 under this passphrase.
    Passphrase(Zeroizing<Vec<u8>>),
    /// Unencrypted (explicit operator opt-in).
    Plaintext,
}

impl std::fmt::Debug for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Passphrase(_) => "Passphrase(..)",
            Self::Plaintext => "Plaintext",
        })
    }
}

/// Key files in one directory.
#[derive(Debug, Clone)]
pub struct Keystore {
    dir: PathBuf,
    protection: Protection,
}

impl Keystore {
    /// A keystore of a data directory with explicit protection.
    pub fn new(data_dir: &Path, protection: Protection) -> Self {
        Self {
            dir: data_dir.join("keys"),
            protection,
        }
    }

    /// The keystore as configured (see the module docs for the passphrase sources).
    pub fn from_config(config: &Config) -> Result<Self, KeystoreError> {
        if config.plaintext_keys {
            return Ok(Self::new(&config.data_dir, Protection::Plaintext));
        }
        let from_env = std::env::var_os(PASSPHRASE_ENV);
        if from_env.is_some() && config.key_passphrase_file_override.is_some() {
            return Err(KeystoreError::TwoPassphrases);
        }
        if let Some(p) = from_env {
            let bytes = Zeroizing::new(p.into_encoded_bytes());
            if bytes.is_empty() {
                return Err(KeystoreError::BadRef(format!("{PASSPHRASE_ENV} is empty")));
            }
            tracing::warn!(
                "the key passphrase comes from {PASSPHRASE_ENV}, which stays readable in /proc/<pid>/environ while scepd runs; prefer --key-passphrase-file or SCEPD_KEY_PASSPHRASE_FILE"
            );
            return Ok(Self::new(&config.data_dir, Protection::Passphrase(bytes)));
        }
        let (path, generate) = match (
            &config.key_passphrase_file_override,
            &config.key_passphrase_file,
        ) {
            (Some(p), _) | (None, Some(p)) => (p.clone(), false),
            (None, None) => (config.data_dir.join("key-passphrase"), true),
        };
        let io = |source| KeystoreError::Io {
            path: path.clone(),
            source,
        };
        if generate && !path.exists() {
            let secret = crate::challenge::secret::generate()
                .map_err(|_| KeystoreError::BadRef("random".into()))?;
            fs::create_dir_all(&config.data_dir).map_err(io)?;
            private_file::write_new(&path, secret.as_bytes()).map_err(io)?;
        }
        let first = private_file::read_secret_line(&path).map_err(|e| match e {
            private_file::SecretLineError::Io(source) => KeystoreError::Io {
                path: path.clone(),
                source,
            },
            private_file::SecretLineError::Permissions => KeystoreError::Permissions(path.clone()),
            private_file::SecretLineError::Empty => KeystoreError::Invalid {
                path: path.clone(),
                reason: "passphrase file is empty".into(),
            },
        })?;
        if generate {
            tracing::warn!(file = %path.display(), "keys are encrypted with a passphrase kept in the data dir (development default); set [keys] passphrase_file or SCEPD_KEY_PASSPHRASE for production");
        }
        Ok(Self::new(&config.data_dir, Protection::Passphrase(first)))
    }

    /// Refuses when the key directory, or any file in it (loaded or not, e.g. an
    /// offline-style root key), is accessible by group or others.
    pub fn check_permissions(&self) -> Result<(), KeystoreError> {
        if !self.check_dir()? {
            return Ok(());
        }
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(KeystoreError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        for entry in entries {
            let entry = entry.map_err(|source| KeystoreError::Io {
                path: self.dir.clone(),
                source,
            })?;
            let path = entry.path();
            let meta = entry.metadata().map_err(|source| KeystoreError::Io {
                path: path.clone(),
                source,
            })?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(KeystoreError::Permissions(path));
            }
        }
        Ok(())
    }

    /// Refuses a key directory with group or other bits; false when it does not exist yet.
    fn check_dir(&self) -> Result<bool, KeystoreError> {
        match fs::metadata(&self.dir) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                Err(KeystoreError::DirPermissions(self.dir.clone()))
            }
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(KeystoreError::Io {
                path: self.dir.clone(),
                source,
            }),
        }
    }

    fn path(&self, key_ref: &str) -> Result<PathBuf, KeystoreError> {
        if key_ref.is_empty()
            || !key_ref
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(KeystoreError::BadRef(key_ref.to_owned()));
        }
        Ok(self.dir.join(format!("{key_ref}.pk8")))
    }

    /// Writes a new key file (refuses to overwrite), mode 0600, fsynced.
    pub fn store(&self, key_ref: &str, pkcs8: &Zeroizing<Vec<u8>>) -> Result<(), KeystoreError> {
        let io = |path: &Path| {
            let p = path.to_owned();
            move |source| KeystoreError::Io { path: p, source }
        };
        private_file::ensure_dir(&self.dir).map_err(io(&self.dir))?;
        let path = self.path(key_ref)?;
        // Encrypt before creating the file, so a failure leaves no empty key file behind.
        let bytes = match &self.protection {
            Protection::Passphrase(p) => Zeroizing::new(
                encrypted_pkcs8::encrypt(
                    pkcs8,
                    p,
                    encrypted_pkcs8::DEFAULT_ITERATIONS,
                    &SystemRandom,
                )
                .map_err(|e| KeystoreError::Invalid {
                    path: path.clone(),
                    reason: e.to_string(),
                })?,
            ),
            Protection::Plaintext => pkcs8.clone(),
        };
        private_file::write_new(&path, &bytes).map_err(io(&path))
    }

    /// Removes a key file this process just wrote and no record references (an `init` whose
    /// CA records were not stored: another node of a cluster initialized first, or the store
    /// failed). Best effort: a key left behind is unused, never loaded.
    pub fn discard(&self, key_ref: &str) {
        if let Ok(path) = self.path(key_ref) {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(file = %path.display(), error = %e, "could not remove an unused key file");
            }
        }
    }

    /// Loads a key, refusing files that group or others can access.
    pub fn load(&self, key_ref: &str) -> Result<SoftwareKey, KeystoreError> {
        let path = self.path(key_ref)?;
        self.check_dir()?;
        let meta = fs::metadata(&path).map_err(|source| KeystoreError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(KeystoreError::Permissions(path));
        }
        let bytes = Zeroizing::new(fs::read(&path).map_err(|source| KeystoreError::Io {
            path: path.clone(),
            source,
        })?);
        let plain = match (&self.protection, encrypted_pkcs8::is_encrypted(&bytes)) {
            (Protection::Passphrase(p), true) => {
                encrypted_pkcs8::decrypt(&bytes, p).map_err(|e| KeystoreError::Invalid {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
            }
            (Protection::Plaintext, true) => {
                return Err(KeystoreError::Invalid {
                    path,
                    reason: "key is encrypted but [keys] plaintext = true".into(),
                });
            }
            (Protection::Passphrase(_), false) => {
                tracing::warn!(file = %path.display(), "key file is not encrypted");
                bytes
            }
            (Protection::Plaintext, false) => bytes,
        };
        SoftwareKey::from_pkcs8(&plain).map_err(|e| KeystoreError::Invalid {
            path,
            reason: e.to_string(),
        })
    }
}
