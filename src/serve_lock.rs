//! One `scepd serve` per SQLite data dir. Two servers on one database file would each run
//! the group committer, the CRL publisher and the checkpointer as if alone; the second one is
//! refused at start with the first one's pid. The lock is the kernel's (flock on
//! `serve.lock`): it goes with the process however it ends, so a crash leaves none behind.
//! CLI commands do not take it: they share the database with a running server by design.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file's name inside the data dir.
pub const LOCK_FILE: &str = "serve.lock";

/// Why the data dir could not be locked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeLockError {
    /// Another live process holds it.
    #[error(
        "another scepd serve is running on the data dir {dir} (pid {pid}); stop it first, or give this server its own --data-dir"
    )]
    Held {
        /// The data dir.
        dir: String,
        /// What the holder wrote into the lock file (its pid), or `unknown`.
        pid: String,
    },
    /// The lock file could not be opened or written.
    #[error("lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Held for as long as the server runs.
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
}

impl ServeLock {
    /// Takes the lock of `data_dir` (which must exist) and records this process's pid in it.
    pub fn acquire(data_dir: &Path) -> Result<Self, ServeLockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| ServeLockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut text = String::new();
                let pid = match file.read_to_string(&mut text) {
                    Ok(_) if !text.trim().is_empty() => text.trim().chars().take(20).collect(),
                    _ => "unknown".to_owned(),
                };
                return Err(ServeLockError::Held {
                    dir: data_dir.display().to_string(),
                    pid,
                });
            }
            Err(e) => return Err(io(e.into())),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = ServeLock::acquire(dir.path()).unwrap();
        match ServeLock::acquire(dir.path()) {
            Err(ServeLockError::Held { pid, .. }) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        ServeLock::acquire(dir.path()).unwrap();
    }
}
