//! Whether the store can commit: what `/readyz` reports.
//!
//! A read (the schema version) keeps answering on a full or read-only disk while every
//! enrollment fails to commit (the security audit's finding), so readiness follows the writes:
//! the outcome of the latest group commit, and, when nothing has committed recently or the
//! latest commit failed, a probe transaction that writes about as many pages as an
//! enrollment's (a 32 KiB random blob rewritten in place), so a disk with room for the probe
//! has room for enrollments. Probes run at most once per [`PROBE_INTERVAL`] (each costs an
//! fsync), and not at all while enrollments are committing.

use crate::clock::unix_now;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::params;

use super::error::Context;
use super::{SqliteStore, StoreError};

/// How recent a successful commit must be to vouch for the store without a probe.
const FRESH: Duration = Duration::from_secs(5);
/// Shortest time between two probes; a probe's result stands meanwhile.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes the probe writes (about eight 4 KiB pages plus the b-tree's: more than one
/// issuance's certificate row and index entries).
const PROBE_BYTES: i64 = 32 * 1024;

/// The latest commit outcomes, shared by the group committer and `/readyz`.
#[derive(Debug, Default)]
pub(super) struct WriteHealth(Mutex<Outcomes>);

#[derive(Debug, Default)]
struct Outcomes {
    last_success: Option<Instant>,
    /// When and why the latest failed commit failed, if it is newer than the latest success.
    failing: Option<(Instant, String)>,
    last_probe: Option<Instant>,
}

impl WriteHealth {
    /// Records a commit's outcome.
    pub(super) fn record(&self, outcome: Result<(), &str>) {
        if let Ok(mut o) = self.0.lock() {
            let now = Instant::now();
            match outcome {
                Ok(()) => {
                    o.last_success = Some(now);
                    o.failing = None;
                }
                Err(why) => o.failing = Some((now, why.to_owned())),
            }
        }
    }

    /// `Some(verdict)` when the recorded outcomes decide readiness without a probe.
    fn decided(&self, now: Instant) -> Option<Result<(), String>> {
        let mut o = self.0.lock().ok()?;
        let recent_probe = o
            .last_probe
            .is_some_and(|p| now.saturating_duration_since(p) < PROBE_INTERVAL);
        if let Some((_, why)) = &o.failing {
            if recent_probe {
                return Some(Err(why.clone()));
            }
            o.last_probe = Some(now);
            return None;
        }
        if o.last_success
            .is_some_and(|s| now.saturating_duration_since(s) < FRESH)
        {
            return Some(Ok(()));
        }
        if recent_probe {
            return Some(Ok(()));
        }
        // Claimed before probing, so concurrent questions do not all probe.
        o.last_probe = Some(now);
        None
    }
}

impl SqliteStore {
    /// Whether the store can commit now: `Err` with the reason when the latest commit failed
    /// and a probe write still fails, or when an idle store's probe fails. Blocking (it may
    /// write and fsync).
    pub fn ready(&self) -> Result<(), StoreError> {
        let now = Instant::now();
        match self.health.decided(now) {
            Some(Ok(())) => return Ok(()),
            Some(Err(why)) => return Err(StoreError::GroupCommit(why)),
            None => {}
        }
        let probe = self.write("probing the store's ability to commit", |tx| {
            tx.execute(
                "INSERT INTO readiness_probe (id, probed_at, payload) VALUES (1, ?1, randomblob(?2)) \
                 ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at, payload = excluded.payload",
                params![unix_now(), PROBE_BYTES],
            )
            .context("probing the store's ability to commit")?;
            Ok(())
        });
        match &probe {
            Ok(()) => self.health.record(Ok(())),
            Err(e) => self.health.record(Err(&e.to_string())),
        }
        probe
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn a_failed_commit_makes_the_store_unready_until_a_probe_succeeds() {
        let store = SqliteStore::open_in_memory().unwrap();
        // Idle: the first question probes, and the probe commits.
        store.ready().unwrap();
        let (probed_at, len): (i64, i64) = store
            .lock()
            .unwrap()
            .query_row(
                "SELECT probed_at, length(payload) FROM readiness_probe",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(probed_at > 0);
        assert_eq!(len, PROBE_BYTES);
        // A failed group commit: unready at once, with the reason.
        store.health.record(Err("disk full"));
        let err = store.ready().unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        // Once the probe interval passed, a probe that commits makes it ready again.
        store.health.0.lock().unwrap().last_probe = None;
        store.ready().unwrap();
        store.ready().unwrap();
    }

    #[test]
    fn a_recent_commit_vouches_without_probing() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.health.record(Ok(()));
        store.ready().unwrap();
        let probes: i64 = store
            .lock()
            .unwrap()
            .query_row("SELECT count(*) FROM readiness_probe", [], |r| r.get(0))
            .unwrap();
        assert_eq!(probes, 0);
    }
}
