//! Files only the service user may read (keys, passphrases, delegated-mode secrets): a 0700
//! directory, files created exclusively (never overwritten) with mode 0600 and fsynced.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and parents) if needed and restricts it to the owner.
pub fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Writes `bytes` to a new file at `path` (fails if it exists), mode 0600, fsynced.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Why a one-line secret file (passphrase, database password) could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretLineError {
    /// Unreadable.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Readable by group or others.
    #[error("is readable by group or others (chmod 600 it)")]
    Permissions,
    /// The first line is empty.
    #[error("is empty")]
    Empty,
}

/// The first line of a secret file (CR and LF dropped), refused when group or others may
/// read the file. Zeroized when dropped.
pub fn read_secret_line(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, SecretLineError> {
    if fs::metadata(path)?.permissions().mode() & 0o077 != 0 {
        return Err(SecretLineError::Permissions);
    }
    let text = zeroize::Zeroizing::new(fs::read(path)?);
    let first: Vec<u8> = text
        .split(|b| *b == b'\n')
        .next()
        .unwrap_or(&[])
        .iter()
        .copied()
        .filter(|b| *b != b'\r')
        .collect();
    if first.is_empty() {
        return Err(SecretLineError::Empty);
    }
    Ok(zeroize::Zeroizing::new(first))
}
