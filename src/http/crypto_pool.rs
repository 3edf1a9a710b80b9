//! CPU-bound work (PKIOperation: RSA decrypt, certificate and CertRep signatures, SQLite) runs
//! on tokio's blocking threads, but at most one task per core at a time. tokio's blocking pool
//! grows to 512 threads: with 32 concurrent enrollments on 2 cores, 32 threads time-slice the
//! CPU, every request finishes late and the reactor threads compete with them. Waiting for a
//! permit instead is FIFO (tokio's semaphore is fair), cheap, and cancelled when the client
//! goes away before its turn.

use std::sync::OnceLock;

use tokio::sync::Semaphore;

use crate::error::HttpFailure;

static PERMITS: OnceLock<Semaphore> = OnceLock::new();

/// Number of CPU-bound tasks allowed at once: the available cores.
pub fn size() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Runs `f` on a blocking thread once a per-core permit is free.
pub async fn run<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HttpFailure> + Send + 'static,
) -> Result<T, HttpFailure> {
    let permits = PERMITS.get_or_init(|| Semaphore::new(size()));
    let permit = permits
        .acquire()
        .await
        .map_err(|e| HttpFailure::Internal(format!("crypto pool closed: {e}")))?;
    // The permit moves into the task: a client that disconnects mid-way frees nothing early.
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .map_err(|e| HttpFailure::Internal(format!("worker failed: {e}")))?
}
