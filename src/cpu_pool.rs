//! CPU-bound work (PKIOperation: RSA decrypt, certificate and CertRep signatures; OCSP and
//! trust-check signatures) runs on tokio's blocking threads, but only a few tasks per core
//! hold the CPU at a time. tokio's blocking pool grows to 512 threads: with 32 concurrent
//! enrollments on 2 cores, 32 threads would time-slice the CPU, every request would finish late
//! and the reactor threads would compete with them. Waiting for a slot instead is FIFO (tokio's
//! semaphore is fair), cheap, and cancelled when the client goes away before its turn.
//!
//! There are two slots per core by default, not one: handing a freed slot to the next request
//! takes two thread wake-ups (the waiting task's reactor thread, then a blocking thread), and
//! with one slot per core the core sat idle meanwhile. Measured in BENCHMARKS.md: +5–10 %
//! enrollments/s at concurrency 32 with 4 slots on 2 cores against 2; 3 slots are in between,
//! 6 and 8 no better than 4; p99 a few ms higher, more where RSA is slow. `[limits] cpu_slots`
//! lets an operator choose (server start-up calls [`configure`]).
//!
//! A task that has to wait for something other than the CPU gives its slot away for the wait,
//! so the cores keep working on other requests meanwhile; that is also what lets concurrent
//! issuances pile up into one group commit:
//! - [`lend`] for a wait in the middle of the work (a delegated validator's HTTP answer): the
//!   task takes a slot again afterwards;
//! - [`release`] for the last stretch (after queueing the issuance for its commit): the
//!   CertRep signature and the wait for the commit run without a slot. Taking one again would
//!   queue a nearly finished request behind new ones and cost two more context switches;
//!   measured in BENCHMARKS.md (+15–20 % enrollments/s, −25 % context switches, same p99).
//!   Threads past their commit are bounded by the requests in flight (the connection limit)
//!   and each has one RA signature left (~0.3 ms with an RSA-2048 RA, several times that with
//!   RSA-4096).

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slots and their number, fixed at the first use.
static SLOTS: OnceLock<(Arc<Semaphore>, usize)> = OnceLock::new();

thread_local! {
    /// The slot held by the pool task running on this thread, if any.
    static HELD: RefCell<Option<OwnedSemaphorePermit>> = const { RefCell::new(None) };
}

/// The default number of CPU-bound tasks allowed at once: two per available core (see the
/// module doc).
pub fn default_size() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .saturating_mul(2)
}

/// Sets the number of slots before the pool's first use. Returns `false` if the pool is
/// already in use with a different number (it cannot be resized).
pub fn configure(slots: usize) -> bool {
    SLOTS.get_or_init(|| with_size(slots)).1 == slots
}

/// Number of CPU-bound tasks allowed at once.
pub fn size() -> usize {
    pool().1
}

fn pool() -> &'static (Arc<Semaphore>, usize) {
    SLOTS.get_or_init(|| with_size(default_size()))
}

fn with_size(n: usize) -> (Arc<Semaphore>, usize) {
    (Arc::new(Semaphore::new(n)), n)
}

fn slots() -> Arc<Semaphore> {
    pool().0.clone()
}

/// The pool could not run a task (the detail is ours, for the log).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The pool is shutting down.
    #[error("CPU pool closed")]
    Closed,
    /// The task panicked or was cancelled.
    #[error("worker failed: {0}")]
    Worker(String),
}

/// Runs `f` on a blocking thread once a CPU slot is free.
pub async fn run<T: Send + 'static, E: From<PoolError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    let permit = slots()
        .acquire_owned()
        .await
        .map_err(|_| PoolError::Closed)?;
    // The slot moves into the task: a client that disconnects mid-way frees nothing early.
    tokio::task::spawn_blocking(move || {
        let _slot = Holding::new(permit);
        f()
    })
    .await
    .map_err(|e| PoolError::Worker(e.to_string()))?
}

/// Runs `wait` (blocking I/O in the middle of the work, e.g. an outbound HTTP exchange)
/// without holding this thread's CPU slot, and takes a slot again before returning. Outside
/// a pool task (CLI, benchmarks, tests) it just runs `wait`.
///
/// Deadlock rule: a task must not hold a slot while it waits for a lock that a lending task
/// may hold (the lender needs a slot back to release it). Wait for such locks inside `lend`
/// too (the Intune token cache does).
pub fn lend<T>(wait: impl FnOnce() -> T) -> T {
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

/// Gives this thread's CPU slot up for the rest of the task and runs `rest` (the last stretch
/// of a request: a little CPU work and a wait for the disk).
pub fn release<T>(rest: impl FnOnce() -> T) -> T {
    HELD.with(|h| drop(h.borrow_mut().take()));
    rest()
}

/// Puts the task's slot where [`lend`] and [`release`] find it, and releases it when the task ends (even
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
    async fn a_task_lends_or_releases_its_slot_for_waits_and_holds_one_otherwise() {
        let all = size();
        let observed = run(move || {
            let busy = free();
            let lent = lend(|| {
                std::thread::sleep(Duration::from_millis(10));
                free()
            });
            let back = free();
            let released = release(free);
            Ok::<_, PoolError>([busy, lent, back, released, free()])
        })
        .await
        .unwrap();
        // Only this test uses the pool in this binary; compare relative to this task anyway.
        let [busy, lent, back, released, after] = observed;
        assert!(busy < all, "no slot held while running: {observed:?}");
        assert_eq!(lent, busy + 1, "{observed:?}");
        assert_eq!(back, busy, "{observed:?}");
        assert_eq!(released, busy + 1, "{observed:?}");
        assert_eq!(after, busy + 1, "{observed:?}");
        assert_eq!(
            free(),
            all,
            "the slot was not returned at the end of the task"
        );
    }

    #[test]
    fn the_size_is_fixed_at_first_use() {
        let n = size();
        assert!(configure(n), "the same size is accepted again");
        assert!(!configure(n + 1), "a different size is refused once in use");
        assert_eq!(size(), n);
    }

    #[test]
    fn outside_a_pool_task_lend_and_release_just_run() {
        assert_eq!(lend(|| 41 + 1), 42);
        assert_eq!(release(|| 43), 43);
    }
}
