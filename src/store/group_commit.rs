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

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::StoreError;

/// A queue of pending writes of type `W`, each answered with an `R`.
pub(super) struct GroupCommit<W, R> {
    state: Mutex<State<W, R>>,
    changed: Condvar,
}

struct State<W, R> {
    queue: Vec<(u64, W)>,
    leading: bool,
    next_ticket: u64,
    done: HashMap<u64, Result<R, StoreError>>,
}

impl<W, R> Default for GroupCommit<W, R> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                queue: Vec::new(),
                leading: false,
                next_ticket: 0,
                done: HashMap::new(),
            }),
            changed: Condvar::new(),
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
        let mut state = self.lock()?;
        let ticket = state.next_ticket;
        state.next_ticket = state.next_ticket.wrapping_add(1);
        state.queue.push((ticket, write));
        loop {
            if let Some(result) = state.done.remove(&ticket) {
                return result;
            }
            if !state.leading {
                state.leading = true;
                let (tickets, writes): (Vec<u64>, Vec<W>) =
                    std::mem::take(&mut state.queue).into_iter().unzip();
                drop(state);
                let mut leader = Leader {
                    group: self,
                    tickets,
                    results: None,
                };
                leader.results = Some(commit(&writes));
                drop(leader); // publishes the results and hands leadership on
                state = self.lock()?;
                continue;
            }
            state = self.changed.wait(state).map_err(|_| StoreError::Poisoned)?;
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State<W, R>>, StoreError> {
        self.state.lock().map_err(|_| StoreError::Poisoned)
    }
}

/// The leader's duty, done on drop so that a panic inside `commit` still wakes the followers
/// (with an error) instead of leaving them waiting forever.
struct Leader<'a, W, R> {
    group: &'a GroupCommit<W, R>,
    tickets: Vec<u64>,
    results: Option<Vec<Result<R, StoreError>>>,
}

impl<W, R> Drop for Leader<'_, W, R> {
    fn drop(&mut self) {
        // The state lock is never held across user code, so it cannot be poisoned by a panic
        // in `commit`; if it somehow is, followers see Poisoned on their next wait.
        let Ok(mut state) = self.group.state.lock() else {
            return;
        };
        let mut results = self.results.take().unwrap_or_default().into_iter();
        for ticket in self.tickets.drain(..) {
            let result = results.next().unwrap_or_else(|| {
                Err(StoreError::GroupCommit(
                    "the group commit ended without a result for this write".into(),
                ))
            });
            state.done.insert(ticket, result);
        }
        state.leading = false;
        self.group.changed.notify_all();
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
