//! Recording issued certificates, with replay detection.

use super::certificates::{COLUMNS, by_serial, match_transaction, supersede};
use super::dynamic_challenges::consume;
use super::error::Context;
use super::{Issuance, NewCertificate, PendingIssuance, SqliteStore, StoreError};
pub(super) use crate::store::checked_issuance::CheckedIssuance as Pending;
use crate::store::types::Recording;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// Fails with [`StoreError::NotFound`] unless `table` has a row with this id.
fn require(conn: &Connection, table: &str, what: &'static str, id: &str) -> Result<(), StoreError> {
    conn.prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?1"))
        .and_then(|mut stmt| stmt.query_row([id], |_| Ok(())))
        .optional()
        .context("checking references")?
        .ok_or_else(|| StoreError::NotFound {
            what,
            id: id.to_owned(),
        })
}

impl SqliteStore {
    /// Records an issued certificate, or recognises a replay, in one immediate transaction.
    ///
    /// If (platform, transaction) already has a certificate for the same public key, returns
    /// [`Issuance::Replayed`] with it and stores nothing: the caller must send that one and
    /// discard the certificate it just signed. A different key under the same transaction is
    /// [`StoreError::TransactionConflict`]; a serial the issuer already used is
    /// [`StoreError::DuplicateSerial`]; an unknown platform or issuer is
    /// [`StoreError::NotFound`]; a zero or over-long serial or a public key hash that is not
    /// 32 bytes is [`StoreError::Invalid`]. The serial is stored without leading zero octets.
    pub fn record_issuance(&self, cert: &NewCertificate) -> Result<Issuance, StoreError> {
        self.begin_issuance(cert, None)?.wait()
    }

    /// Like [`SqliteStore::record_issuance`], and in the same transaction consumes the one-time
    /// challenge of `cert.platform_id` whose SHA-256 is `challenge_sha256`, naming the
    /// certificate. If the challenge is not outstanding at `cert.requested_at` (used by a
    /// concurrent request, expired, unknown) nothing is stored and the result is
    /// [`StoreError::ChallengeSpent`]; so N concurrent enrollments with one challenge record
    /// exactly one certificate. A replay of an already answered transaction returns
    /// [`Issuance::Replayed`] and consumes nothing.
    pub fn record_issuance_consuming(
        &self,
        cert: &NewCertificate,
        challenge_sha256: &[u8],
    ) -> Result<Issuance, StoreError> {
        self.begin_issuance(cert, Some(challenge_sha256))?.wait()
    }

    /// Queues the recording of `cert` (consuming the one-time challenge `challenge_sha256`
    /// if given) for the next group commit and returns at once, so the caller can finish its
    /// reply while the disk flushes; [`PendingIssuance::wait`] gives the result described at
    /// [`SqliteStore::record_issuance`] and [`SqliteStore::record_issuance_consuming`]. Invalid input fails
    /// here, before anything is queued.
    pub fn begin_issuance(
        &self,
        cert: &NewCertificate,
        challenge_sha256: Option<&[u8]>,
    ) -> Result<PendingIssuance, StoreError> {
        let pending = Pending::new(cert, challenge_sha256)?;
        let ticket = self.issuances.submit(pending)?;
        Ok(PendingIssuance::new(move || ticket.wait()))
    }

    /// (commits, issuances) recorded through group commit since the store was opened; their
    /// ratio is the mean number of issuances per fsync.
    pub fn issuance_commit_stats(&self) -> (u64, u64) {
        self.issuances.stats()
    }
}

/// Records a group of issuances in one transaction (one fsync), each behind its own
/// savepoint so that it is checked and applied exactly as if alone. If the transaction
/// cannot start or commit, every entry fails and nothing of the group is stored.
pub(super) fn commit_issuances(
    writer: &Mutex<Connection>,
    group: &[Pending],
) -> Vec<Result<Issuance, StoreError>> {
    const CONTEXT: &str = "recording certificates";
    let committed = (|| {
        let mut conn = super::lock_writer(writer)?;
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context(CONTEXT)?;
        let mut results = Vec::with_capacity(group.len());
        for pending in group {
            // Savepoint errors end the whole group (`?`); an entry's own refusal does not.
            let mut sp = tx.savepoint().context(CONTEXT)?;
            match record_in(&sp, pending) {
                Ok(issuance) => {
                    sp.commit().context(CONTEXT)?;
                    results.push(Ok(issuance));
                }
                Err(refused) => {
                    // Undo this entry's partial writes (device row, consumed challenge)
                    // explicitly: a failed ROLLBACK TO must not let them ride along.
                    sp.rollback().context(CONTEXT)?;
                    drop(sp);
                    results.push(Err(refused));
                }
            }
            // On some errors (disk full, I/O, out of memory) SQLite rolls the whole
            // transaction back by itself; the next SAVEPOINT would then start a fresh
            // autocommit transaction and commit entries one by one behind our back.
            if tx.is_autocommit() {
                return Err(StoreError::GroupCommit(
                    "the transaction was rolled back by the database".into(),
                ));
            }
        }
        tx.commit().context(CONTEXT)?;
        Ok(results)
    })();
    committed.unwrap_or_else(|e: StoreError| {
        let detail = crate::logging::with_sources(&e);
        group
            .iter()
            .map(|_| Err(StoreError::GroupCommit(detail.clone())))
            .collect()
    })
}

/// One issuance inside an open transaction: replay check, references, device state, the
/// one-time challenge, serial uniqueness, then the row.
fn record_in(tx: &Connection, pending: &Pending) -> Result<Issuance, StoreError> {
    let Pending {
        cert,
        challenge_sha256,
        serial_hex,
        sans,
    } = pending;
    let prior = match_transaction(
        tx,
        &cert.platform_id,
        &cert.transaction_id,
        &cert.request_sha256,
        &cert.public_key_sha256,
    )?;
    match prior.recording(cert)? {
        Recording::Replay(existing) => return Ok(Issuance::Replayed(existing)),
        Recording::Insert {
            supersede: Some(current),
        } => supersede(
            tx,
            &current.issuer_id,
            &current.serial_hex(),
            cert.requested_at,
        )?,
        Recording::Insert { supersede: None } => {}
    }
    require(tx, "platforms", "platform", &cert.platform_id)?;
    if let Some(device_id) = &cert.device_id {
        // The device must be active at the moment the certificate is recorded, in the same
        // transaction, so a concurrent deactivation cannot slip a certificate past.
        super::devices::enroll_device(
            tx,
            &cert.platform_id,
            device_id,
            cert.user.as_deref(),
            cert.requested_at,
        )?;
    }
    require(tx, "authorities", "issuing authority", &cert.issuer_id)?;
    if let Some(sha256) = challenge_sha256 {
        let named = Some((cert.issuer_id.as_str(), serial_hex.as_str()));
        if !consume(tx, &cert.platform_id, sha256, cert.requested_at, named)? {
            return Err(StoreError::ChallengeSpent);
        }
    }
    if by_serial(tx, &cert.issuer_id, serial_hex)?.is_some() {
        return Err(StoreError::DuplicateSerial {
            issuer_id: cert.issuer_id.clone(),
            serial: serial_hex.clone(),
        });
    }
    tx.prepare_cached(&format!(
        "INSERT INTO certificates ({COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'valid', NULL, NULL, ?13, ?14, \
          ?15, NULL)"
    ))
    .and_then(|mut stmt| {
        stmt.execute(params![
            serial_hex,
            cert.issuer_id,
            cert.platform_id,
            cert.transaction_id,
            cert.public_key_sha256,
            cert.subject,
            sans,
            cert.device_id,
            cert.not_before,
            cert.not_after,
            cert.der,
            cert.requested_at,
            if cert.held { "held" } else { "released" },
            cert.signer_key_sha256,
            cert.request_sha256
        ])
    })
    .context("recording a certificate")?;
    Ok(Issuance::Recorded)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::super::testutil::{ca, new_cert, seeded_store};
    use super::super::{CaRole, CaState, CertificateFilter, TransactionMatch};
    use super::*;
    use crate::store::CertificateFacts;
    use std::sync::{Arc, Barrier};

    fn count(store: &SqliteStore) -> usize {
        store
            .list_certificates(&CertificateFilter::default())
            .unwrap()
            .len()
    }

    #[test]
    fn replay_with_same_key_returns_the_first_certificate_and_stores_nothing() {
        let (_dir, store) = seeded_store();
        assert_eq!(
            store.record_issuance(&new_cert(&[1], "tx1", 1)).unwrap(),
            Issuance::Recorded
        );
        let replay = store.record_issuance(&new_cert(&[2], "tx1", 1)).unwrap();
        let Issuance::Replayed(first) = replay else {
            panic!("expected a replay: {replay:?}")
        };
        assert_eq!(first.serial, [1]);
        assert_eq!(count(&store), 1);
    }

    #[test]
    fn same_transaction_with_another_key_is_a_conflict() {
        let (_dir, store) = seeded_store();
        store.record_issuance(&new_cert(&[1], "tx1", 1)).unwrap();
        let err = store
            .record_issuance(&new_cert(&[2], "tx1", 2))
            .unwrap_err();
        assert!(
            matches!(err, StoreError::TransactionConflict { .. }),
            "{err:?}"
        );
        assert_eq!(count(&store), 1);
    }

    #[test]
    fn transaction_ids_are_scoped_to_their_platform() {
        let (_dir, store) = seeded_store();
        store
            .insert_platform(&super::super::testutil::platform("p2", "Other", 1))
            .unwrap();
        store.record_issuance(&new_cert(&[1], "tx1", 1)).unwrap();
        let mut other = new_cert(&[2], "tx1", 2);
        other.facts.platform_id = "p2".into();
        assert_eq!(store.record_issuance(&other).unwrap(), Issuance::Recorded);
    }

    #[test]
    fn serials_are_unique_per_issuer_only() {
        let (_dir, store) = seeded_store();
        store.record_issuance(&new_cert(&[1], "tx1", 1)).unwrap();
        let err = store
            .record_issuance(&new_cert(&[0, 1], "tx2", 2))
            .unwrap_err();
        assert!(matches!(&err, StoreError::DuplicateSerial { serial, .. } if serial == "01"));
        let next = ca("int2", CaRole::Intermediate, CaState::Next, Some("root"));
        store.insert_authorities(&[next]).unwrap();
        let mut other_issuer = new_cert(&[1], "tx2", 2);
        other_issuer.facts.issuer_id = "int2".into();
        assert_eq!(
            store.record_issuance(&other_issuer).unwrap(),
            Issuance::Recorded
        );
    }

    #[test]
    fn malformed_input_and_unknown_references_are_refused() {
        let (_dir, store) = seeded_store();
        for serial in [&[][..], &[0, 0], &[1; 21], &[0x80; 20]] {
            let err = store
                .record_issuance(&new_cert(serial, "tx", 1))
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::Invalid {
                        field: "serial",
                        ..
                    }
                ),
                "{err:?}"
            );
        }
        let mut bad = new_cert(&[9], "tx9", 1);
        bad.facts.public_key_sha256.pop();
        assert!(matches!(
            store.record_issuance(&bad),
            Err(StoreError::Invalid { .. })
        ));
        let mut orphan = new_cert(&[9], "tx9", 1);
        orphan.facts.platform_id = "ghost".into();
        let err = store.record_issuance(&orphan).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::NotFound {
                    what: "platform",
                    ..
                }
            ),
            "{err:?}"
        );
        let mut orphan = new_cert(&[9], "tx9", 1);
        orphan.facts.issuer_id = "ghost".into();
        let err = store.record_issuance(&orphan).unwrap_err();
        assert!(matches!(
            err,
            StoreError::NotFound {
                what: "issuing authority",
                ..
            }
        ));
        assert_eq!(count(&store), 0);
    }

    /// Eight racers record one transaction with different serials: one wins, seven get the
    /// winner's certificate back. `shared` uses one Store; otherwise one Store (connection)
    /// per thread, as separate processes on one file would.
    fn race(shared: bool) {
        let (dir, store) = seeded_store();
        let store = Arc::new(store);
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (1..=8u8)
            .map(|i| {
                let store = match shared {
                    true => store.clone(),
                    false => Arc::new(SqliteStore::open(dir.path().join("scepd.db")).unwrap()),
                };
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    store
                        .record_issuance(&new_cert(&[i], "same-tx", 42))
                        .unwrap()
                })
            })
            .collect();
        let outcomes: Vec<Issuance> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let recorded = outcomes
            .iter()
            .filter(|o| **o == Issuance::Recorded)
            .count();
        assert_eq!(recorded, 1, "{outcomes:?}");
        let winner = store
            .certificate_by_transaction("p1", "same-tx")
            .unwrap()
            .unwrap();
        let replayed = Issuance::Replayed(winner.clone());
        assert_eq!(
            outcomes.iter().filter(|o| **o == replayed).count(),
            7,
            "{outcomes:?}"
        );
        let all = store
            .list_certificates(&CertificateFilter::default())
            .unwrap();
        assert_eq!(all, [winner]);
    }

    /// A same-key request that reuses the transactionID (a renewal by strongSwan,
    /// scepclient, certmonger) is recorded and supersedes the current certificate; each
    /// request still replays to its own certificate; another key is still a conflict.
    #[test]
    fn a_same_key_new_request_supersedes_and_each_request_replays_its_own() {
        let (_dir, store) = seeded_store();
        let first = new_cert(&[1], "tx", 7);
        assert_eq!(store.record_issuance(&first).unwrap(), Issuance::Recorded);
        let renewal = NewCertificate {
            facts: CertificateFacts {
                serial: vec![2],
                requested_at: 150,
                ..first.clone().facts
            },
            request_sha256: vec![0xaa; 32],
            ..first.clone()
        };
        assert_eq!(store.record_issuance(&renewal).unwrap(), Issuance::Recorded);
        let current = store
            .certificate_by_transaction("p1", "tx")
            .unwrap()
            .unwrap();
        assert_eq!(
            (current.facts.serial, current.superseded_at),
            (vec![2], None)
        );
        let old = store.certificate_by_serial("int", &[1]).unwrap().unwrap();
        assert_eq!(old.superseded_at, Some(150));
        assert_eq!(old.status, crate::store::CertStatus::Valid);
        // Resends of either request get their own certificate, whatever serial was drawn.
        for (request, serial) in [(&first, 1u8), (&renewal, 2)] {
            let resend = NewCertificate {
                facts: CertificateFacts {
                    serial: vec![9],
                    ..request.clone().facts
                },
                ..request.clone()
            };
            match store.record_issuance(&resend).unwrap() {
                Issuance::Replayed(c) => assert_eq!(c.serial, [serial]),
                other => panic!("{other:?}"),
            }
            assert_eq!(
                store
                    .match_transaction("p1", "tx", &request.request_sha256, &[7; 32])
                    .unwrap(),
                TransactionMatch::Replay(
                    store
                        .certificate_by_serial("int", &[serial])
                        .unwrap()
                        .unwrap()
                )
            );
        }
        // A third request of the same key is new again; another key conflicts.
        assert!(matches!(
            store.match_transaction("p1", "tx", &[0xbb; 32], &[7; 32]).unwrap(),
            TransactionMatch::SameKey(c) if c.serial == [2]
        ));
        assert_eq!(
            store
                .match_transaction("p1", "tx", &[0xbb; 32], &[8; 32])
                .unwrap(),
            TransactionMatch::OtherKey
        );
        let other_key = NewCertificate {
            facts: CertificateFacts {
                serial: vec![3],
                public_key_sha256: vec![8; 32],
                ..first.facts
            },
            request_sha256: vec![0xcc; 32],
            ..first
        };
        assert!(matches!(
            store.record_issuance(&other_key),
            Err(StoreError::TransactionConflict { .. })
        ));
        assert_eq!(
            store
                .list_certificates(&CertificateFilter::default())
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn one_group_checks_each_entry_as_if_alone_and_a_refusal_spares_the_others() {
        let (_dir, store) = seeded_store();
        let group = [
            new_cert(&[1], "tx1", 1),
            new_cert(&[1], "tx2", 2), // serial of the first entry, same group
            new_cert(&[3], "tx1", 1), // replay of the first entry, same group
            new_cert(&[4], "tx1", 9), // its transaction with another key
            new_cert(&[5], "tx5", 5),
        ]
        .iter()
        .map(|c| Pending::new(c, None).unwrap())
        .collect::<Vec<_>>();
        let results = commit_issuances(&store.conn, &group);
        assert!(matches!(results[0], Ok(Issuance::Recorded)), "{results:?}");
        assert!(matches!(
            results[1],
            Err(StoreError::DuplicateSerial { .. })
        ));
        assert!(matches!(&results[2], Ok(Issuance::Replayed(c)) if c.serial == [1]));
        assert!(matches!(
            results[3],
            Err(StoreError::TransactionConflict { .. })
        ));
        assert!(matches!(results[4], Ok(Issuance::Recorded)));
        let serials: Vec<Vec<u8>> = store
            .list_certificates(&CertificateFilter::default())
            .unwrap()
            .into_iter()
            .map(|c| c.facts.serial)
            .collect();
        assert_eq!(serials, [vec![5], vec![1]]);
    }

    #[test]
    fn a_group_that_cannot_commit_stores_nothing_and_fails_every_entry() {
        let (dir, store) = seeded_store();
        // Another connection holds the write lock past the busy timeout's reach: the group's
        // BEGIN IMMEDIATE fails (shortened timeout to keep the test fast).
        store
            .lock()
            .unwrap()
            .busy_timeout(std::time::Duration::from_millis(50))
            .unwrap();
        let other = rusqlite::Connection::open(dir.path().join("scepd.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let group: Vec<Pending> = [new_cert(&[1], "tx1", 1), new_cert(&[2], "tx2", 2)]
            .iter()
            .map(|c| Pending::new(c, None).unwrap())
            .collect();
        let results = commit_issuances(&store.conn, &group);
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(StoreError::GroupCommit(d)) if d.contains("locked"))),
            "{results:?}"
        );
        other.execute_batch("ROLLBACK").unwrap();
        assert_eq!(count(&store), 0);
    }

    #[test]
    fn a_full_disk_stores_exactly_what_it_reports_as_recorded() {
        let (_dir, store) = seeded_store();
        let pages: i64 = store
            .lock()
            .unwrap()
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .unwrap();
        // The database may not grow: a few rows fit in free space, then SQLITE_FULL.
        store
            .lock()
            .unwrap()
            .pragma_update(None, "max_page_count", pages + 3)
            .unwrap();
        let group: Vec<Pending> = (1..=20u8)
            .map(|i| {
                let mut c = new_cert(&[i], &format!("tx{i}"), i);
                c.facts.der = vec![i; 3000];
                Pending::new(&c, None).unwrap()
            })
            .collect();
        let results = commit_issuances(&store.conn, &group);
        store
            .lock()
            .unwrap()
            .pragma_update(None, "max_page_count", 1 << 30)
            .unwrap();
        assert!(results.iter().any(Result::is_err), "the disk never filled");
        let recorded = results
            .iter()
            .filter(|r| matches!(r, Ok(Issuance::Recorded)))
            .count();
        assert_eq!(count(&store), recorded, "{results:?}");
    }

    #[test]
    fn many_concurrent_issuances_are_all_recorded_once() {
        let (_dir, store) = seeded_store();
        let store = Arc::new(store);
        let handles: Vec<_> = (1..=64u8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut cert = new_cert(&[i], &format!("tx{i}"), i);
                    cert.facts.device_id = Some(format!("dev-{i}"));
                    store.record_issuance(&cert).unwrap()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), Issuance::Recorded);
        }
        assert_eq!(count(&store), 64);
    }

    #[test]
    fn concurrent_replays_yield_one_certificate_with_a_shared_store() {
        race(true);
    }

    #[test]
    fn concurrent_replays_yield_one_certificate_across_connections() {
        race(false);
    }
}
