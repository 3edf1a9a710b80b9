//! The only module that touches key files. Keys are PKCS#8 DER files of mode 0600 under
//! `<data_dir>/keys/`, read once at start-up into memory; buffers are zeroized.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use scepd_pki::keys::SoftwareKey;
use zeroize::Zeroizing;

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

/// Key files in one directory.
#[derive(Debug, Clone)]
pub struct Keystore {
    dir: PathBuf,
}

impl Keystore {
    /// The keystore of a data directory.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("keys"),
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
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(io(&self.dir))?;
        let path = self.path(key_ref)?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(pkcs8).map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
        Ok(())
    }

    /// Loads a key, refusing files that group or others can access.
    pub fn load(&self, key_ref: &str) -> Result<SoftwareKey, KeystoreError> {
        let path = self.path(key_ref)?;
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
        SoftwareKey::from_pkcs8(&bytes).map_err(|e| KeystoreError::Invalid {
            path,
            reason: e.to_string(),
        })
    }
}
