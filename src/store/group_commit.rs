//! Group commit: concurrent issuances share one commit and one fsync, on either backend.
//!
//! With a durable commit every transaction waits for the disk (2–3 ms on a VM's virtual
//! disk), and each costs the database its own statement and commit work. Issuances are queued
//! for one committer thread; whenever it is free it commits the whole queue at once. How a
//! group is written is the backend's: SQLite puts each entry behind its own savepoint, so every
//! entry is checked and applied exactly as if it were alone (replays, conflicts, duplicate
//! serials, one-time challenges, device state) and one refusal never affects the others;
//! PostgreSQL writes the common case, a first enrollment, as one statement for the group and
//! hands anything else back to its caller (`store/postgres/issuance.rs`). Nobody is answered
//! before the commit that holds their row is durable.
//!
//! A committer thread rather than leader/follower among the callers: a caller can queue its
//! row, do its remaining CPU work (the CertRep signature) while the disk flushes, and only then
//! wait for the answer. The thread starts with the first write and ends, after draining the
//! queue, when the queue is dropped.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::StoreError;

/// Commits a group of writes, returning one result per entry, in order.
pub(super) type CommitFn<W, R> = dyn Fn(&[W]) -> Vec<Result<R, StoreError>> + Send + Sync;

/// A queue of pending writes of type `W`, each answered with an `R`.
pub(super) struct GroupCommit<W, R> {
    shared: Arc<Shared<W, R>>,
    commit: Arc<CommitFn<W, R>>,
    committer: Mutex<Option<JoinHandle<()>>>,
}

struct Shared<W, R> {
    state: Mutex<State<W, R>>,
    /// Signalled when the committer has something to do (only while it is idle).
    work: Condvar,
    /// Groups committed (or attempted) and the entries in them, refused ones included: their
    /// ratio is the mean group size, exported as metrics (how far the disk's flush latency
    /// is amortised).
    groups: AtomicU64,
    entries: AtomicU64,
}

struct State<W, R> {
    queue: Vec<Entry<W, R>>,
    /// The committer is waiting for work (and needs a signal).
    idle: bool,
    /// The queue's owner is gone: drain and stop.
    closing: bool,
}

struct Entry<W, R> {
    write: W,
    /// Each waiter is woken exactly once: no thundering herd on a shared condvar.
    reply: SyncSender<Result<R, StoreError>>,
}

/// A queued write; [`Ticket::wait`] returns its result once its group has committed.
/// Dropping it does not cancel the write.
pub(super) struct Ticket<R>(Receiver<Result<R, StoreError>>);

impl<R> Ticket<R> {
    /// Blocks until the group holding this write has committed (or failed).
    pub(super) fn wait(self) -> Result<R, StoreError> {
        self.0.recv().unwrap_or_else(|_| {
            Err(StoreError::GroupCommit(
                "the group commit queue went away".into(),
            ))
        })
    }
}

impl<W, R> std::fmt::Debug for GroupCommit<W, R> {
    // Entries are not printed: they may carry challenge hashes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let queued = self.shared.state.lock().map(|s| s.queue.len()).ok();
        f.debug_struct("GroupCommit")
            .field("queued", &queued)
            .finish()
    }
}

impl<W: Send + 'static, R: Send + 'static> GroupCommit<W, R> {
    /// A queue whose groups are committed by `commit`.
    pub(super) fn new(commit: Arc<CommitFn<W, R>>) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: Vec::new(),
                    idle: false,
                    closing: false,
                }),
                work: Condvar::new(),
                groups: AtomicU64::new(0),
                entries: AtomicU64::new(0),
            }),
            commit,
            committer: Mutex::new(None),
        }
    }

    /// Queues `write` for the next group commit.
    pub(super) fn submit(&self, write: W) -> Result<Ticket<R>, StoreError> {
        self.ensure_committer()?;
        // Capacity 1: exactly one answer per entry, and the committer never blocks on it.
        let (reply, answer) = sync_channel(1);
        let wake = {
            let mut state = self.shared.lock()?;
            state.queue.push(Entry { write, reply });
            std::mem::replace(&mut state.idle, false)
        };
        if wake {
            self.shared.work.notify_one();
        }
        Ok(Ticket(answer))
    }

    /// Queues `write` and waits for its result.
    #[cfg(test)]
    pub(super) fn submit_and_wait(&self, write: W) -> Result<R, StoreError> {
        self.submit(write)?.wait()
    }

    /// (groups, entries) committed so far.
    pub(super) fn stats(&self) -> (u64, u64) {
        (
            self.shared.groups.load(Ordering::Relaxed),
            self.shared.entries.load(Ordering::Relaxed),
        )
    }

    fn ensure_committer(&self) -> Result<(), StoreError> {
        let mut committer = self.committer.lock().map_err(|_| StoreError::Poisoned)?;
        // The loop survives panicking commits, so a finished thread is not expected; start
        // another rather than queue writes nobody would commit.
        if committer.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        let (shared, commit) = (self.shared.clone(), self.commit.clone());
        let handle = std::thread::Builder::new()
            .name("scepd-commit".into())
            .spawn(move || shared.run(&*commit))
            .map_err(|e| {
                StoreError::GroupCommit(format!("cannot start the committer thread: {e}"))
            })?;
        *committer = Some(handle);
        Ok(())
    }
}

impl<W, R> Shared<W, R> {
    fn lock(&self) -> Result<MutexGuard<'_, State<W, R>>, StoreError> {
        self.state.lock().map_err(|_| StoreError::Poisoned)
    }

    /// The committer: commits whatever queued during the previous commit, until closed and
    /// drained.
    fn run(&self, commit: &CommitFn<W, R>) {
        loop {
            let group = {
                // Never held across user code, so the state is consistent even if a lock was
                // poisoned; refusing it here would leave the queued waiters unanswered.
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                while state.queue.is_empty() && !state.closing {
                    state.idle = true;
                    state = self
                        .work
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                state.idle = false;
                if state.queue.is_empty() {
                    return;
                }
                std::mem::take(&mut state.queue)
            };
            let (writes, replies): (Vec<W>, Vec<_>) =
                group.into_iter().map(|e| (e.write, e.reply)).unzip();
            self.groups.fetch_add(1, Ordering::Relaxed);
            self.entries
                .fetch_add(writes.len() as u64, Ordering::Relaxed);
            // A panic inside `commit` fails its group instead of leaving it waiting forever;
            // the SQLite store takes its writer back for later writes (`lock_writer`).
            let (results, missing) = match catch_unwind(AssertUnwindSafe(|| commit(&writes))) {
                Ok(results) => (
                    results,
                    "the group commit returned no result for this write",
                ),
                Err(_) => (Vec::new(), "the group commit panicked"),
            };
            let mut results = results.into_iter();
            for reply in replies {
                let result = results
                    .next()
                    .unwrap_or_else(|| Err(StoreError::GroupCommit(missing.into())));
                // A waiter that went away (dropped its ticket) needs no answer.
                let _ = reply.send(result);
            }
        }
    }
}

impl<W, R> Drop for GroupCommit<W, R> {
    /// Lets the committer drain the queue and waits for it: nothing queued is lost.
    fn drop(&mut self) {
        {
            let mut state = self
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            state.closing = true;
        }
        self.shared.work.notify_all();
        let handle = self
            .committer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    fn group(
        commit: impl Fn(&[u32]) -> Vec<Result<u32, StoreError>> + Send + Sync + 'static,
    ) -> Arc<GroupCommit<u32, u32>> {
        Arc::new(GroupCommit::new(Arc::new(commit)))
    }

    #[test]
    fn a_lone_write_commits_and_gets_its_result() {
        let group = group(|ws| ws.iter().map(|w| Ok(w * 2)).collect());
        assert_eq!(group.submit_and_wait(7).unwrap(), 14);
        assert_eq!(group.stats(), (1, 1));
    }

    #[test]
    fn concurrent_writes_share_commits_and_each_gets_its_own_result() {
        let commits = Arc::new(AtomicUsize::new(0));
        let c = commits.clone();
        let group = group(move |ws| {
            c.fetch_add(1, Ordering::SeqCst);
            // A slow "fsync": the others queue up meanwhile.
            std::thread::sleep(Duration::from_millis(20));
            ws.iter()
                .map(|w| {
                    if w % 5 == 0 {
                        Err(StoreError::ChallengeSpent)
                    } else {
                        Ok(w + 100)
                    }
                })
                .collect()
        });
        let barrier = Arc::new(Barrier::new(16));
        let handles: Vec<_> = (0..16u32)
            .map(|i| {
                let (group, barrier) = (group.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    group.submit_and_wait(i)
                })
            })
            .collect();
        for (i, h) in (0..16u32).zip(handles) {
            match h.join().unwrap() {
                Ok(v) => assert_eq!(v, i + 100),
                Err(StoreError::ChallengeSpent) => assert_eq!(i % 5, 0),
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        let n = commits.load(Ordering::SeqCst);
        assert!(n < 16, "16 writers took {n} commits: no grouping");
        assert_eq!(group.stats(), (n as u64, 16));
    }

    #[test]
    fn a_write_commits_while_its_caller_works_on() {
        let committed = Arc::new(AtomicUsize::new(0));
        let c = committed.clone();
        let group = group(move |ws| {
            c.fetch_add(ws.len(), Ordering::SeqCst);
            ws.iter().map(|w| Ok(*w)).collect()
        });
        let ticket = group.submit(3).unwrap();
        // The caller does not wait, yet the committer gets on with it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while committed.load(Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < deadline, "never committed");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(ticket.wait().unwrap(), 3);
    }

    #[test]
    fn dropping_the_queue_commits_everything_already_queued() {
        let committed = Arc::new(Mutex::new(Vec::new()));
        let c = committed.clone();
        let group = GroupCommit::<u32, u32>::new(Arc::new(move |ws: &[u32]| {
            std::thread::sleep(Duration::from_millis(10));
            c.lock().unwrap().extend_from_slice(ws);
            ws.iter().map(|w| Ok(*w)).collect()
        }));
        let tickets: Vec<_> = (0..5).map(|i| group.submit(i).unwrap()).collect();
        drop(group);
        let mut got = committed.lock().unwrap().clone();
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
        for (i, t) in (0..5).zip(tickets) {
            assert_eq!(t.wait().unwrap(), i);
        }
    }

    #[test]
    fn a_panicking_commit_fails_its_group_and_the_next_group_still_commits() {
        let group = group(|ws| {
            if ws.contains(&1) {
                panic!("disk on fire");
            }
            ws.iter().map(|w| Ok(*w)).collect()
        });
        let r = group.submit_and_wait(1);
        assert!(matches!(r, Err(StoreError::GroupCommit(_))), "{r:?}");
        assert_eq!(group.submit_and_wait(2).unwrap(), 2);
    }

    #[test]
    fn a_short_result_list_is_an_error_for_the_missing_entries_not_a_hang() {
        let group = group(|_| Vec::new());
        let r = group.submit_and_wait(1);
        assert!(matches!(r, Err(StoreError::GroupCommit(_))), "{r:?}");
    }
}
