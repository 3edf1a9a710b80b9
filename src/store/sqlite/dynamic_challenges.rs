//! One-time challenges of dynamic platforms: handing out (bounded per platform), looking up,
//! burning. Consuming one with the certificate it authorised is part of recording the
//! issuance (`issuance.rs`), in the same transaction.

use rusqlite::{Connection, OptionalExtension, params};

use super::error::Context;
use super::{ChallengeIssue, OneTimeState, RETENTION_SECS, SHA256_LEN, SqliteStore, StoreError};

fn check_hash(sha256: &[u8]) -> Result<(), StoreError> {
    if sha256.len() == SHA256_LEN {
        return Ok(());
    }
    Err(StoreError::Invalid {
        field: "challenge_sha256",
        reason: format!("expected {SHA256_LEN} bytes, got {}", sha256.len()),
    })
}

/// Marks an outstanding challenge consumed at `now`, naming the certificate if there is one.
/// Returns whether a row changed: `false` means it was used, expired or unknown. Runs on the
/// caller's transaction, so it commits or rolls back with whatever else the caller does.
pub(super) fn consume(
    conn: &Connection,
    platform_id: &str,
    sha256: &[u8],
    now: i64,
    certificate: Option<(&str, &str)>,
) -> Result<bool, StoreError> {
    let (issuer, serial) = certificate.unzip();
    let changed = conn
        .prepare_cached(
            "UPDATE dynamic_challenges SET consumed_at = ?3, issuer_id = ?4, \
             certificate_serial = ?5 WHERE platform_id = ?1 AND challenge_sha256 = ?2 \
             AND consumed_at IS NULL AND expires_at > ?3",
        )
        .and_then(|mut s| s.execute(params![platform_id, sha256, now, issuer, serial]))
        .context("consuming a challenge")?;
    Ok(changed == 1)
}

/// Gives back the one-time challenge consumed by the certificate `(issuer_id, serial_hex)`,
/// which was withdrawn before delivery: from the device's side that enrollment failed, and a
/// failed enrollment does not use up its challenge (the burn rule, challenge/mod.rs). Its
/// expiry still applies.
pub(super) fn give_back(
    conn: &Connection,
    issuer_id: &str,
    serial_hex: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE dynamic_challenges SET consumed_at = NULL, issuer_id = NULL, \
         certificate_serial = NULL WHERE issuer_id = ?1 AND certificate_serial = ?2",
    )
    .and_then(|mut s| s.execute(params![issuer_id, serial_hex]))
    .context("giving back a challenge")?;
    Ok(())
}

impl SqliteStore {
    /// Stores the SHA-256 of a new one-time challenge of `platform_id`, valid until
    /// `expires_at`, unless the platform already has `max_outstanding` outstanding ones
    /// ([`ChallengeIssue::CacheFull`]). Counting and inserting are one transaction, so
    /// concurrent callers cannot overshoot. Also deletes rows expired for longer than
    /// [`RETENTION_SECS`]. A hash seen before is [`StoreError::Conflict`].
    pub fn add_dynamic_challenge(
        &self,
        platform_id: &str,
        sha256: &[u8],
        now: i64,
        expires_at: i64,
        max_outstanding: u32,
    ) -> Result<ChallengeIssue, StoreError> {
        check_hash(sha256)?;
        self.write("adding a challenge", |tx| {
            tx.execute(
                "DELETE FROM dynamic_challenges WHERE expires_at < ?1",
                [now - RETENTION_SECS],
            )
            .context("pruning challenges")?;
            let outstanding: i64 = tx
                .query_row(
                    "SELECT count(*) FROM dynamic_challenges WHERE platform_id = ?1 \
                     AND consumed_at IS NULL AND expires_at > ?2",
                    params![platform_id, now],
                    |r| r.get(0),
                )
                .context("counting challenges")?;
            if outstanding >= i64::from(max_outstanding) {
                return Ok(ChallengeIssue::CacheFull);
            }
            let seen = tx
                .query_row(
                    "SELECT 1 FROM dynamic_challenges WHERE challenge_sha256 = ?1",
                    [sha256],
                    |_| Ok(()),
                )
                .optional()
                .context("adding a challenge")?;
            if seen.is_some() {
                return Err(StoreError::Conflict("challenge already exists".into()));
            }
            tx.execute(
                "INSERT INTO dynamic_challenges (platform_id, challenge_sha256, created_at, \
                 expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![platform_id, sha256, now, expires_at],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    StoreError::NotFound {
                        what: "platform",
                        id: platform_id.to_owned(),
                    }
                }
                other => StoreError::Database {
                    context: "adding a challenge",
                    source: other,
                },
            })?;
            Ok(ChallengeIssue::Added)
        })
    }

    /// The state of the challenge with this SHA-256 on `platform_id` at `now`. Read only:
    /// whether it is still unused when the certificate is recorded is decided there.
    pub fn dynamic_challenge_state(
        &self,
        platform_id: &str,
        sha256: &[u8],
        now: i64,
    ) -> Result<OneTimeState, StoreError> {
        self.read(|conn| {
            let row: Option<(i64, Option<i64>)> = conn
                .prepare_cached(
                    "SELECT expires_at, consumed_at FROM dynamic_challenges \
                     WHERE platform_id = ?1 AND challenge_sha256 = ?2",
                )
                .and_then(|mut s| {
                    s.query_row(params![platform_id, sha256], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .context("reading a challenge")?;
            Ok(match row {
                None => OneTimeState::Unknown,
                Some((_, Some(_))) => OneTimeState::Consumed,
                Some((expires_at, None)) if expires_at > now => {
                    OneTimeState::Outstanding { expires_at }
                }
                Some(_) => OneTimeState::Expired,
            })
        })
    }

    /// Uses up an outstanding challenge without a certificate (an authentic request that
    /// policy refused). Returns whether it was outstanding.
    pub fn burn_dynamic_challenge(
        &self,
        platform_id: &str,
        sha256: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        check_hash(sha256)?;
        self.write("burning a challenge", |tx| {
            consume(tx, platform_id, sha256, now, None)
        })
    }

    /// How many challenges of `platform_id` are outstanding at `now`.
    pub fn outstanding_dynamic_challenges(
        &self,
        platform_id: &str,
        now: i64,
    ) -> Result<u32, StoreError> {
        self.read(|conn| {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM dynamic_challenges WHERE platform_id = ?1 \
                     AND consumed_at IS NULL AND expires_at > ?2",
                    params![platform_id, now],
                    |r| r.get(0),
                )
                .context("counting challenges")?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::super::testutil::{new_cert, seeded_store};
    use super::super::{CertificateFilter, Issuance};
    use super::*;
    use std::sync::{Arc, Barrier};

    fn h(n: u8) -> Vec<u8> {
        vec![n; 32]
    }

    #[test]
    fn challenges_are_outstanding_until_consumed_or_expired() {
        let (_dir, store) = seeded_store();
        let add = |n, now, exp| store.add_dynamic_challenge("p1", &h(n), now, exp, 10);
        assert_eq!(add(1, 100, 200).unwrap(), ChallengeIssue::Added);
        assert_eq!(
            store.dynamic_challenge_state("p1", &h(1), 150).unwrap(),
            OneTimeState::Outstanding { expires_at: 200 }
        );
        assert_eq!(
            store.dynamic_challenge_state("p1", &h(1), 200).unwrap(),
            OneTimeState::Expired
        );
        assert_eq!(
            store.dynamic_challenge_state("other", &h(1), 150).unwrap(),
            OneTimeState::Unknown
        );
        assert!(matches!(add(1, 100, 200), Err(StoreError::Conflict(_))));
        assert!(store.burn_dynamic_challenge("p1", &h(1), 150).unwrap());
        assert!(!store.burn_dynamic_challenge("p1", &h(1), 150).unwrap());
        assert_eq!(
            store.dynamic_challenge_state("p1", &h(1), 150).unwrap(),
            OneTimeState::Consumed
        );
        assert!(matches!(
            store.add_dynamic_challenge("ghost", &h(3), 100, 200, 10),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn the_cache_is_bounded_by_outstanding_challenges_only() {
        let (_dir, store) = seeded_store();
        for n in 0..3 {
            let r = store
                .add_dynamic_challenge("p1", &h(n), 100, 200, 3)
                .unwrap();
            assert_eq!(r, ChallengeIssue::Added);
        }
        let full = store
            .add_dynamic_challenge("p1", &h(9), 100, 200, 3)
            .unwrap();
        assert_eq!(full, ChallengeIssue::CacheFull);
        assert_eq!(store.outstanding_dynamic_challenges("p1", 100).unwrap(), 3);
        // A used one frees a place; so does expiry.
        store.burn_dynamic_challenge("p1", &h(0), 110).unwrap();
        let r = store
            .add_dynamic_challenge("p1", &h(9), 110, 200, 3)
            .unwrap();
        assert_eq!(r, ChallengeIssue::Added);
        let r = store
            .add_dynamic_challenge("p1", &h(10), 200, 300, 3)
            .unwrap();
        assert_eq!(r, ChallengeIssue::Added);
        // Old rows are pruned.
        let later = 300 + RETENTION_SECS + 1;
        store
            .add_dynamic_challenge("p1", &h(11), later, later + 60, 3)
            .unwrap();
        assert_eq!(
            store.dynamic_challenge_state("p1", &h(1), later).unwrap(),
            OneTimeState::Unknown
        );
    }

    /// Twenty racers, each with its own transaction and key, record a certificate with the
    /// same challenge: exactly one certificate is stored, the others are ChallengeSpent.
    #[test]
    fn concurrent_issuances_with_one_challenge_record_one_certificate() {
        let (dir, store) = seeded_store();
        store
            .add_dynamic_challenge("p1", &h(7), 100, 10_000, 10)
            .unwrap();
        let barrier = Arc::new(Barrier::new(20));
        let handles: Vec<_> = (1..=20u8)
            .map(|i| {
                let store = SqliteStore::open(dir.path().join("scepd.db")).unwrap();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let cert = new_cert(&[i], &format!("tx{i}"), i);
                    store.record_issuance_consuming(&cert, &h(7))
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let ok = results
            .iter()
            .filter(|r| matches!(r, Ok(Issuance::Recorded)))
            .count();
        let spent = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::ChallengeSpent)))
            .count();
        assert_eq!((ok, spent), (1, 19), "{results:?}");
        let all = store
            .list_certificates(&CertificateFilter::default())
            .unwrap();
        assert_eq!(all.len(), 1);
        let conn = store.lock().unwrap();
        let (issuer, serial): (String, String) = conn
            .query_row(
                "SELECT issuer_id, certificate_serial FROM dynamic_challenges",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((issuer.as_str(), serial), ("int", all[0].serial_hex()));
    }

    #[test]
    fn a_failed_insert_does_not_consume_and_a_replay_does_not_need_the_challenge() {
        let (_dir, store) = seeded_store();
        store
            .add_dynamic_challenge("p1", &h(1), 100, 10_000, 10)
            .unwrap();
        store
            .add_dynamic_challenge("p1", &h(2), 100, 10_000, 10)
            .unwrap();
        store.record_issuance(&new_cert(&[5], "tx0", 9)).unwrap();
        // Duplicate serial: the transaction rolls back, the challenge stays usable.
        let err = store
            .record_issuance_consuming(&new_cert(&[5], "tx1", 1), &h(1))
            .unwrap_err();
        assert!(matches!(err, StoreError::DuplicateSerial { .. }), "{err:?}");
        assert_eq!(
            store.dynamic_challenge_state("p1", &h(1), 100).unwrap(),
            OneTimeState::Outstanding { expires_at: 10_000 }
        );
        let first = store
            .record_issuance_consuming(&new_cert(&[6], "tx1", 1), &h(1))
            .unwrap();
        assert_eq!(first, Issuance::Recorded);
        // The same transaction and key again is a replay, answered without consuming h(2).
        let again = store
            .record_issuance_consuming(&new_cert(&[7], "tx1", 1), &h(2))
            .unwrap();
        assert!(matches!(again, Issuance::Replayed(_)), "{again:?}");
        assert!(matches!(
            store.dynamic_challenge_state("p1", &h(2), 100).unwrap(),
            OneTimeState::Outstanding { .. }
        ));
        // Expired challenges cannot be consumed (requested_at is the request time: 100).
        store
            .add_dynamic_challenge("p1", &h(3), 50, 100, 10)
            .unwrap();
        let err = store
            .record_issuance_consuming(&new_cert(&[8], "tx8", 8), &h(3))
            .unwrap_err();
        assert!(matches!(err, StoreError::ChallengeSpent), "{err:?}");
    }
}
