//! CPU-bound work (PKIOperation: RSA decrypt, certificate and CertRep signatures; OCSP and
//! trust-check signatures) runs on tokio's blocking threads, but at most one task per core
//! holds the CPU at a time. tokio's blocking pool grows to 512 threads: with 32 concurrent
//! enrollments on 2 cores, 32 threads would time-slice the CPU, every request would finish late
//! and the reactor threads would compete with them. Waiting for a slot instead is FIFO (tokio's
//! semaphore is fair), cheap, and cancelled when the client goes away before its turn.
//!
//! A task that has to wait for something other than the CPU (the group commit's fsync, a
//! delegated validator's HTTP answer) gives its slot back for the wait with [`off_cpu`], so
//! the cores keep working on other requests meanwhile; that is what lets concurrent issuances
//! pile up into one group commit.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::HttpFailure;

static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();

thread_local! {
    /// The slot held by the pool task running on this thread, if any.
    static HELD: RefCell<Option<OwnedSemaphorePermit>> = const { RefCell::new(None) };
}

/// Number of CPU-bound tasks allowed at once: the available cores.
pub fn size() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

fn slots() -> Arc<Semaphore> {
    SLOTS
        .get_or_init(|| Arc::new(Semaphore::new(size())))
        .clone()
}

/// Runs `f` on a blocking thread once a CPU slot is free.
pub async fn run<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HttpFailure> + Send + 'static,
) -> Result<T, HttpFailure> {
    let permit = slots()
        .acquire_owned()
        .await
        .map_err(|e| HttpFailure::Internal(format!("CPU pool closed: {e}")))?;
    // The slot moves into the task: a client that disconnects mid-way frees nothing early.
    tokio::task::spawn_blocking(move || {
        let _slot = Holding::new(permit);
        f()
    })
    .await
    .map_err(|e| HttpFailure::Internal(format!("worker failed: {e}")))?
}

/// Runs `wait` (blocking I/O: a disk commit, an outbound HTTP exchange) without holding this
/// thread's CPU slot, and takes a slot again before returning. Outside a pool task (CLI,
/// benchmarks, tests) it just runs `wait`.
pub fn off_cpu<T>(wait: impl FnOnce() -> T) -> T {
    let Some(permit) = HELD.with(|h| h.borrow_mut().take()) else {
        return wait();
    };
    drop(permit);
    let result = wait();
    // Back in the FIFO queue behind requests that arrived meanwhile. A blocking-pool thread is
    // not inside the runtime's async context, so block_on is allowed here.
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        if let Ok(permit) = handle.block_on(slots().acquire_owned()) {
            HELD.with(|h| *h.borrow_mut() = Some(permit));
        }
    }
    result
}

/// Puts the task's slot where [`off_cpu`] finds it, and releases it when the task ends (even
/// by panic: blocking threads are reused).
struct Holding;

impl Holding {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        HELD.with(|h| *h.borrow_mut() = Some(permit));
        Self
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        HELD.with(|h| drop(h.borrow_mut().take()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use std::time::Duration;

    fn free() -> usize {
        slots().available_permits()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_gives_its_slot_back_while_it_waits_and_holds_one_otherwise() {
        let all = size();
        let observed = run(move || {
            let busy = free();
            let during = off_cpu(|| {
                std::thread::sleep(Duration::from_millis(10));
                free()
            });
            Ok((busy, during, free()))
        })
        .await
        .unwrap();
        // Other tests in this binary may hold slots too: compare relative to this task.
        assert!(observed.0 < all, "no slot held while running: {observed:?}");
        assert_eq!(observed.1, observed.0 + 1, "{observed:?}");
        assert_eq!(observed.2, observed.0, "{observed:?}");
    }

    #[test]
    fn outside_a_pool_task_off_cpu_just_runs() {
        assert_eq!(off_cpu(|| 41 + 1), 42);
    }
}
