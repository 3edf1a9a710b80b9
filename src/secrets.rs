//! Secrets that must be usable in clear — an Azure AD client secret, a webhook HMAC key — kept
//! outside the database in `<data_dir>/secrets/` (directory 0700, files 0600), read into
//! zeroized memory, never logged. The only module that touches these files.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Largest secret file accepted.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Secret file errors (never containing the secret).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// I/O on a secret file.
    #[error("secret file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Stored secret readable by group or others.
    #[error("secret file {0} is accessible by group or others (chmod 600 it)")]
    Permissions(PathBuf),
    /// Empty, too large or not UTF-8.
    #[error("secret file {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A name that could escape the secrets directory.
    #[error("invalid secret name {0:?}")]
    BadName(String),
}

/// The secrets directory of a data directory.
#[derive(Debug, Clone)]
pub struct SecretFiles {
    dir: PathBuf,
}

/// File name of a platform's Azure AD client secret.
pub fn aad_client_secret(platform_id: &str) -> String {
    format!("{platform_id}.aad-client-secret")
}

/// File name of a platform's webhook HMAC key.
pub fn webhook_secret(platform_id: &str) -> String {
    format!("{platform_id}.webhook-secret")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretError + '_ {
    move |source| SecretError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads a secret from `file` (an operator-supplied file, or one of ours): at most
/// [`MAX_SECRET_BYTES`], UTF-8, surrounding whitespace (a trailing newline) removed, not empty.
fn read_secret(path: &Path) -> Result<Zeroizing<String>, SecretError> {
    let f = fs::File::open(path).map_err(io(path))?;
    let mut bytes = Zeroizing::new(Vec::new());
    f.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    let invalid = |reason| SecretError::Invalid {
        path: path.to_owned(),
        reason,
    };
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(invalid("larger than 64 KiB"));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid("not UTF-8"))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    Ok(Zeroizing::new(trimmed.to_owned()))
}

/// Reads an operator-supplied secret file (`--aad-client-secret-file`, `--webhook-secret-file`).
pub fn read_operator_file(path: &Path) -> Result<Zeroizing<String>, SecretError> {
    read_secret(path)
}

impl SecretFiles {
    /// The secrets of `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("secrets"),
        }
    }

    fn path(&self, name: &str) -> Result<PathBuf, SecretError> {
        let ok = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(SecretError::BadName(name.to_owned()));
        }
        Ok(self.dir.join(name))
    }

    /// Writes a new secret file (refuses to overwrite), mode 0600, fsynced.
    pub fn store(&self, name: &str, secret: &str) -> Result<(), SecretError> {
        crate::private_file::ensure_dir(&self.dir).map_err(io(&self.dir))?;
        let path = self.path(name)?;
        crate::private_file::write_new(&path, secret.as_bytes()).map_err(io(&path))
    }

    /// Loads a secret, refusing files that group or others can access.
    pub fn load(&self, name: &str) -> Result<Zeroizing<String>, SecretError> {
        let path = self.path(name)?;
        let meta = fs::metadata(&path).map_err(io(&path))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(SecretError::Permissions(path));
        }
        read_secret(&path)
    }

    /// Removes a secret file (cleanup after a failed platform creation); missing is fine.
    pub fn remove(&self, name: &str) {
        if let Ok(path) = self.path(name) {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn stored_secrets_are_private_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = SecretFiles::new(dir.path());
        s.store(&webhook_secret("p1"), "k3y").unwrap();
        assert_eq!(s.load("p1.webhook-secret").unwrap().as_str(), "k3y");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("secrets")), 0o700);
        assert_eq!(mode(&dir.path().join("secrets/p1.webhook-secret")), 0o600);
        assert!(
            s.store("p1.webhook-secret", "again").is_err(),
            "no overwrite"
        );
        fs::set_permissions(
            dir.path().join("secrets/p1.webhook-secret"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(matches!(
            s.load("p1.webhook-secret"),
            Err(SecretError::Permissions(_))
        ));
        assert!(matches!(s.load("../x"), Err(SecretError::BadName(_))));
    }

    #[test]
    fn operator_files_are_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, "  s3cr3t\n").unwrap();
        assert_eq!(read_operator_file(&p).unwrap().as_str(), "s3cr3t");
        fs::write(&p, "\n").unwrap();
        assert!(matches!(
            read_operator_file(&p),
            Err(SecretError::Invalid { .. })
        ));
        fs::write(&p, vec![b'a'; 70_000]).unwrap();
        assert!(read_operator_file(&p).is_err());
        let err = read_operator_file(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("missing"));
    }
}
