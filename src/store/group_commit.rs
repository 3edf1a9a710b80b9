//! Group commit: concurrent issuances share one transaction and one fsync.
//!
//! With `synchronous=FULL` every commit waits for the disk (2–3 ms on a VM's virtual disk),
//! which alone would cap issuance near 350/s whatever the CPU can do. Threads that want to
//! record while a commit is in flight queue up; when it finishes, the first of them becomes
//! the leader and commits the whole queue at once, each entry behind its own savepoint, so
//! every entry is checked and applied exactly as if it were alone (replays, conflicts,
//! duplicate serials, one-time challenges, device state) and one refusal never affects the
//! others. Nobody is answered before the commit that holds their row is durable.
//!
//! Leader/follower instead of a writer thread: nothing to start or stop, and a lone caller
//! commits at once on its own thread, as before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::StoreError;

/// A queue of pending writes of type `W`, each answered with an `R`.
pub(super) struct GroupCommit<W, R> {
    state: Mutex<State<W, R>>,
    /// Groups committed (or attempted) and the entries in them, refused ones included: their
    /// ratio is the mean group size, exported as metrics (how far the disk's flush latency
    /// is amortised).
    groups: AtomicU64,
    entries: AtomicU64,
}

struct State<W, R> {
    queue: Vec<Entry<W, R>>,
    /// A leader is committing (or has been told to): new entries wait for it.
    leading: bool,
}

struct Entry<W, R> {
    write: W,
    /// Each waiter is woken exactly once per message: no thundering herd on a shared condvar.
    reply: SyncSender<Signal<R>>,
}

enum Signal<R> {
    /// The result of this entry's write, after its group committed.
    Done(Result<R, StoreError>),
    /// Become the leader: commit the queue (this entry included).
    Lead,
}

impl<W, R> Default for GroupCommit<W, R> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                queue: Vec::new(),
                leading: false,
            }),
            groups: AtomicU64::new(0),
            entries: AtomicU64::new(0),
        }
    }
}

impl<W, R> std::fmt::Debug for GroupCommit<W, R> {
    // Entries are not printed: they may carry challenge hashes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let queued = self.state.lock().map(|s| s.queue.len()).ok();
        f.debug_struct("GroupCommit")
            .field("queued", &queued)
            .finish()
    }
}

impl<W, R> GroupCommit<W, R> {
    /// Queues `write` and returns its result once the group holding it has committed.
    /// `commit` gets a whole group and must return one result per entry, in order.
    pub(super) fn submit(
        &self,
        write: W,
        commit: impl Fn(&[W]) -> Vec<Result<R, StoreError>>,
    ) -> Result<R, StoreError> {
        // Capacity 1: an entry is sent at most one message at a time (Lead is received
        // before its Done can be sent).
        let (reply, signals): (_, Receiver<Signal<R>>) = sync_channel(1);
        let lead_now = {
            let mut state = self.lock()?;
            state.queue.push(Entry { write, reply });
            !std::mem::replace(&mut state.leading, true)
        };
        if lead_now {
            self.lead(&commit);
        }
        loop {
            match signals.recv() {
                Ok(Signal::Done(result)) => return result,
                Ok(Signal::Lead) => self.lead(&commit),
                // Every entry is answered by a leader, even one that panics (see Leader):
                // unreachable unless the queue itself was dropped.
                Err(_) => {
                    return Err(StoreError::GroupCommit(
                        "the group commit queue went away".into(),
                    ));
                }
            }
        }
    }

    /// Commits everything queued, answers each entry, and passes leadership to the first
    /// entry that queued meanwhile (or steps down).
    fn lead(&self, commit: &impl Fn(&[W]) -> Vec<Result<R, StoreError>>) {
        // Never held across user code, so the state is consistent even if a lock was
        // poisoned; refusing it here would leave the queued waiters unanswered.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (writes, replies): (Vec<W>, Vec<SyncSender<Signal<R>>>) =
            std::mem::take(&mut state.queue)
                .into_iter()
                .map(|e| (e.write, e.reply))
                .unzip();
        drop(state);
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.entries
            .fetch_add(writes.len() as u64, Ordering::Relaxed);
        let mut leader = Leader {
            group: self,
            replies,
            results: None,
        };
        leader.results = Some(commit(&writes));
    }

    /// (groups, entries) committed so far.
    pub(super) fn stats(&self) -> (u64, u64) {
        (
            self.groups.load(Ordering::Relaxed),
            self.entries.load(Ordering::Relaxed),
        )
    }

    fn lock(&self) -> Result<MutexGuard<'_, State<W, R>>, StoreError> {
        self.state.lock().map_err(|_| StoreError::Poisoned)
    }
}

/// The leader's duty, done on drop so that a panic inside `commit` still answers the group
/// (with an error) and hands leadership on, instead of leaving everyone waiting forever.
struct Leader<'a, W, R> {
    group: &'a GroupCommit<W, R>,
    replies: Vec<SyncSender<Signal<R>>>,
    results: Option<Vec<Result<R, StoreError>>>,
}

impl<W, R> Drop for Leader<'_, W, R> {
    fn drop(&mut self) {
        let (results, missing) = match self.results.take() {
            Some(results) => (
                results,
                "the group commit returned no result for this write",
            ),
            None => (Vec::new(), "the group commit panicked"),
        };
        let mut results = results.into_iter();
        for reply in self.replies.drain(..) {
            let result = results
                .next()
                .unwrap_or_else(|| Err(StoreError::GroupCommit(missing.into())));
            // A waiter that is gone (its thread died) needs no answer.
            let _ = reply.send(Signal::Done(result));
        }
        let mut state = self
            .group
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while !state.queue.is_empty() {
            if state.queue[0].reply.send(Signal::Lead).is_ok() {
                return;
            }
            // Its waiter is gone: nobody would lead. Drop the entry, ask the next one.
            state.queue.remove(0);
        }
        state.leading = false;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    #[test]
    fn a_lone_write_commits_at_once_on_its_own_thread() {
        let group = GroupCommit::<u32, u32>::default();
        let r = group.submit(7, |ws| ws.iter().map(|w| Ok(w * 2)).collect());
        assert_eq!(r.unwrap(), 14);
    }

    #[test]
    fn concurrent_writes_share_commits_and_each_gets_its_own_result() {
        let group = Arc::new(GroupCommit::<u32, u32>::default());
        let commits = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(16));
        let handles: Vec<_> = (0..16u32)
            .map(|i| {
                let (group, commits, barrier) = (group.clone(), commits.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    group.submit(i, |ws| {
                        commits.fetch_add(1, Ordering::SeqCst);
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
                    })
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
    fn a_panicking_commit_fails_its_group_and_the_next_group_still_commits() {
        let group = Arc::new(GroupCommit::<u32, u32>::default());
        let g = group.clone();
        let crashed = std::thread::spawn(move || g.submit(1, |_| panic!("disk on fire"))).join();
        assert!(crashed.is_err());
        let r = group.submit(2, |ws| ws.iter().map(|w| Ok(*w)).collect());
        assert_eq!(r.unwrap(), 2);
    }

    #[test]
    fn a_short_result_list_is_an_error_for_the_missing_entries_not_a_hang() {
        let group = GroupCommit::<u32, u32>::default();
        let r = group.submit(1, |_| Vec::new());
        assert!(matches!(r, Err(StoreError::GroupCommit(_))), "{r:?}");
    }
}
