//! The PostgreSQL verbs ported so far, each against a real cluster and, where nodes could
//! race, with several `PgStore`s (nodes) on one database.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]

use super::test_cluster::{cluster, unique_name};
use super::*;
use crate::store::sqlite::testutil::{ca, platform};
use crate::store::{
    AdminToken, CaRole, CaState, ChallengeConfig, DynamicSettings, NONCE_KEY_LEN, StoreError,
};

/// A database of its own for one test.
pub(super) struct TestDatabase {
    name: String,
}

/// Creates an empty database in the shared test cluster.
pub(super) fn fresh_database() -> TestDatabase {
    let name = unique_name("t");
    cluster().create_database(&name);
    TestDatabase { name }
}

impl TestDatabase {
    /// Settings that reach this database (password given separately, as in production).
    pub(super) fn settings(&self) -> PgSettings {
        let c = cluster();
        PgSettings {
            url: c.url(&self.name),
            password: Some(zeroize::Zeroizing::new(c.password.clone())),
            pool_size: 4,
            tls: PgTls::Disable,
            connect_timeout: std::time::Duration::from_secs(5),
        }
    }
}

fn nodes(n: usize) -> Vec<std::sync::Arc<PgStore>> {
    let db = fresh_database();
    (0..n)
        .map(|_| std::sync::Arc::new(PgStore::connect(&db.settings()).unwrap()))
        .collect()
}

#[test]
fn authorities_keep_one_active_per_role_across_nodes() {
    let n = nodes(2);
    n[0].insert_authorities(&[
        ca("root", CaRole::Root, CaState::Active, None),
        ca("int", CaRole::Intermediate, CaState::Active, Some("root")),
    ])
    .unwrap();
    assert!(n[1].is_initialized().unwrap());
    assert_eq!(
        n[1].active_authority(CaRole::Intermediate)
            .unwrap()
            .unwrap()
            .id,
        "int"
    );
    // All or nothing: the second record's conflict leaves the first out too.
    let err = n[1]
        .insert_authorities(&[
            ca("int2", CaRole::Intermediate, CaState::Next, Some("root")),
            ca("root2", CaRole::Root, CaState::Active, None),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(n[0].authorities().unwrap().len(), 2);
    assert!(matches!(
        n[0].insert_authorities(&[ca("x", CaRole::Ra, CaState::Active, Some("nowhere"))]),
        Err(StoreError::NotFound { .. })
    ));
    // Two nodes racing to add an active RA: the unique index lets exactly one win.
    let racers: Vec<_> = (0..2)
        .map(|i| {
            let s = n[i].clone();
            std::thread::spawn(move || {
                s.insert_authorities(&[ca(
                    &format!("ra{i}"),
                    CaRole::Ra,
                    CaState::Active,
                    Some("int"),
                )])
            })
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(StoreError::Conflict(_))))
    );
    let ids: Vec<String> = n[0]
        .authorities()
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(
        ids[..2],
        ["root".to_owned(), "int".to_owned()],
        "insertion order kept"
    );
}

#[test]
fn platforms_names_and_dynamic_user_names_are_unique_across_nodes() {
    let n = nodes(3);
    let dynamic = |id: &str, name: &str, user: &str| {
        let mut p = platform(id, name, 20);
        p.challenge = ChallengeConfig::Dynamic(DynamicSettings {
            username: user.into(),
            password_hash: vec![9; 32],
            ttl_secs: 60,
            max_outstanding: 5,
        });
        p
    };
    n[0].insert_platform(&platform("p1", "Fleet", 10)).unwrap();
    n[0].insert_platform(&dynamic("d1", "Dyn", "mdm")).unwrap();
    assert_eq!(
        n[1].platform("p1").unwrap().unwrap(),
        platform("p1", "Fleet", 10)
    );
    assert_eq!(n[2].platform_by_name("Dyn").unwrap().unwrap().id, "d1");
    assert_eq!(
        n[2].dynamic_platform_by_username("mdm")
            .unwrap()
            .unwrap()
            .id,
        "d1"
    );
    assert!(
        n[2].dynamic_platform_by_username("nobody")
            .unwrap()
            .is_none()
    );
    let listed: Vec<String> = n[1]
        .list_platforms()
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(listed, ["p1", "d1"]);
    for (p, what) in [
        (platform("p9", "Fleet", 30), "name"),
        (dynamic("d9", "Other", "mdm"), "user name"),
        (platform("p1", "Another", 30), "id"),
    ] {
        assert!(
            matches!(n[1].insert_platform(&p), Err(StoreError::Conflict(_))),
            "{what} reused"
        );
    }
    // Three nodes racing the same new name: one platform.
    let racers: Vec<_> = n
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let s = s.clone();
            std::thread::spawn(move || s.insert_platform(&platform(&format!("r{i}"), "Race", 40)))
        })
        .collect();
    let ok = racers
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(Result::is_ok)
        .count();
    assert_eq!(ok, 1);
    n[2].update_static_secret("p1", &[1; 32]).unwrap();
    assert!(matches!(
        n[2].update_static_secret("d1", &[1; 32]),
        Err(StoreError::NotFound { .. })
    ));
    n[0].delete_platform("p1").unwrap();
    assert!(n[1].platform("p1").unwrap().is_none());
    assert!(matches!(
        n[1].delete_platform("p1"),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn admin_tokens_and_the_audit_trail_are_shared() {
    let n = nodes(2);
    let t = AdminToken {
        name: "ops".into(),
        scope: "admin".into(),
        created_at: 100,
        expires_at: None,
        revoked_at: None,
    };
    n[0].insert_admin_token(&t, &[5; 32]).unwrap();
    assert!(matches!(
        n[1].insert_admin_token(&t, &[6; 32]),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(n[1].admin_token_by_hash(&[5; 32]).unwrap().unwrap(), t);
    n[1].revoke_admin_token("ops", 200).unwrap();
    assert_eq!(n[0].list_admin_tokens().unwrap()[0].revoked_at, Some(200));
    assert!(matches!(
        n[0].revoke_admin_token("ops", 300),
        Err(StoreError::NotFound { .. })
    ));
    n[0].append_audit(250, "tester", "thing.done", "x", "{}")
        .unwrap();
    let actions: Vec<String> = n[1]
        .audit_events(0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["token.created", "token.revoked", "thing.done"]);
    assert_eq!(n[1].audit_events(201, 10).unwrap().len(), 1);
    assert_eq!(n[1].audit_events(0, 1).unwrap().len(), 1);
}

#[test]
fn the_nonce_key_is_the_first_nodes_and_a_nonce_is_used_once_anywhere() {
    let n = nodes(3);
    let a = n[0].trust_nonce_key(&[1; NONCE_KEY_LEN], 10).unwrap();
    let b = n[1].trust_nonce_key(&[2; NONCE_KEY_LEN], 11).unwrap();
    assert_eq!(*a, vec![1; NONCE_KEY_LEN]);
    assert_eq!(a, b);
    // Ten threads on three nodes present the same nonce: exactly one is accepted.
    let racers: Vec<_> = (0..10)
        .map(|i| {
            let s = n[i % 3].clone();
            std::thread::spawn(move || s.use_trust_nonce(b"nonce-1", 100, 50).unwrap())
        })
        .collect();
    let accepted = racers
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(accepted, 1);
    assert!(n[2].use_trust_nonce(b"nonce-2", 100, 50).unwrap());
    // Expired records are pruned.
    assert!(n[0].use_trust_nonce(b"nonce-1", 400, 200).unwrap());
    assert!(n[0].use_trust_nonce(&[], 1, 0).is_err());
}

/// Three nodes as `Store`s (the one interface) on one database with root, "int", RA and
/// platform "p1" (a dynamic one, "dyn", too).
fn seeded_nodes() -> Vec<std::sync::Arc<crate::store::Store>> {
    let db = fresh_database();
    let n: Vec<_> = (0..3)
        .map(|_| {
            std::sync::Arc::new(crate::store::Store::connect_postgres(&db.settings()).unwrap())
        })
        .collect();
    n[0].insert_authorities(&[
        ca("root", CaRole::Root, CaState::Active, None),
        ca("int", CaRole::Intermediate, CaState::Active, Some("root")),
        ca("ra", CaRole::Ra, CaState::Active, Some("int")),
    ])
    .unwrap();
    n[0].insert_platform(&platform("p1", "Fleet", 10)).unwrap();
    n
}

fn cert(serial: u8, txid: &str, key: u8, device: &str) -> crate::store::NewCertificate {
    let mut c = crate::store::sqlite::testutil::new_cert(&[serial], txid, key);
    c.facts.device_id = Some(device.into());
    c
}

#[test]
fn a_transaction_is_recorded_once_and_replayed_from_any_node() {
    use crate::store::Issuance;
    let n = seeded_nodes();
    // The same request reaching three nodes at once (a client retrying through a load
    // balancer): one certificate; the others are told it is a replay.
    let racers: Vec<_> = (0..3u8)
        .map(|i| {
            let s = n[usize::from(i)].clone();
            std::thread::spawn(move || s.record_issuance(&cert(10 + i, "tx-1", 7, "dev-1")))
        })
        .collect();
    let outcomes: Vec<_> = racers
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    let recorded = outcomes
        .iter()
        .filter(|o| matches!(o, Issuance::Recorded))
        .count();
    assert_eq!(recorded, 1, "{outcomes:?}");
    let stored = n[1]
        .certificate_by_transaction("p1", "tx-1")
        .unwrap()
        .unwrap();
    for o in &outcomes {
        if let Issuance::Replayed(c) = o {
            assert_eq!(c.serial, stored.serial);
        }
    }
    // Another key under that transaction: refused on any node; a used serial: refused.
    assert!(matches!(
        n[2].record_issuance(&cert(20, "tx-1", 8, "dev-1")),
        Err(StoreError::TransactionConflict { .. })
    ));
    let used = stored.serial[0];
    assert!(matches!(
        n[2].record_issuance(&cert(used, "tx-2", 9, "dev-2")),
        Err(StoreError::DuplicateSerial { .. })
    ));
    assert_eq!(
        n[0].list_certificates(&Default::default()).unwrap().len(),
        1
    );
    assert_eq!(
        n[0].issuance_commit_stats().0
            + n[1].issuance_commit_stats().0
            + n[2].issuance_commit_stats().0,
        1
    );
}

/// Records `certs` on `store` from one thread each, all released at once.
fn race_issuances(
    store: &crate::store::Store,
    certs: Vec<crate::store::NewCertificate>,
) -> Vec<Result<crate::store::Issuance, StoreError>> {
    let barrier = std::sync::Barrier::new(certs.len());
    std::thread::scope(|s| {
        let racers: Vec<_> = certs
            .into_iter()
            .map(|c| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    store.record_issuance(&c)
                })
            })
            .collect();
        racers.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// How many `device.registered` entries name `device` of platform p1.
fn registrations(store: &crate::store::Store, device: &str) -> usize {
    let subject = format!("p1/{device}");
    store
        .audit_events(0, 1000)
        .unwrap()
        .iter()
        .filter(|e| e.action == "device.registered" && e.subject == subject)
        .count()
}

/// Concurrent first enrollments on one node share group commits and each is recorded once;
/// a device enrolling twice at once gets both certificates and is registered once.
#[test]
fn concurrent_first_enrollments_share_commits_and_each_is_recorded_once() {
    use crate::store::Issuance;
    let n = seeded_nodes();
    const RACERS: u8 = 24;
    let certs = (0..RACERS)
        .map(|i| match i {
            0 | 1 => cert(100 + i, &format!("tx-twice-{i}"), i, "dev-twice"),
            _ => cert(100 + i, &format!("tx-{i}"), i, &format!("dev-{i}")),
        })
        .collect();
    let outcomes = race_issuances(&n[0], certs);
    for (i, o) in outcomes.iter().enumerate() {
        assert!(matches!(o, Ok(Issuance::Recorded)), "{i}: {o:?}");
    }
    let (commits, issuances) = n[0].issuance_commit_stats();
    assert_eq!(issuances, u64::from(RACERS));
    // Released together, they find the committer busy with the first of them: a commit
    // holds several (the device's second enrollment is recorded alone, after its group).
    assert!(
        commits < issuances,
        "{commits} commits for {issuances} enrollments arriving at once"
    );
    // What another node reads: every certificate once, every device registered once.
    assert_eq!(
        n[1].list_certificates(&Default::default()).unwrap().len(),
        usize::from(RACERS)
    );
    for device in ["dev-twice", "dev-2", "dev-23"] {
        assert_eq!(registrations(&n[2], device), 1, "{device}");
        assert!(n[2].device("p1", device).unwrap().is_some(), "{device}");
    }
}

/// One enrollment of a group that the database refuses (its serial is taken) fails alone:
/// the others are recorded, and nothing of the refused one stays behind.
#[test]
fn a_refused_enrollment_in_a_group_spares_the_others() {
    use crate::store::Issuance;
    let n = seeded_nodes();
    n[0].record_issuance(&cert(200, "tx-taken", 0, "dev-taken"))
        .unwrap();
    const RACERS: u8 = 24;
    let certs = (0..RACERS)
        .map(|i| match i {
            0 => cert(200, "tx-dup-serial", 1, "dev-dup-serial"),
            _ => cert(100 + i, &format!("tx-{i}"), i, &format!("dev-{i}")),
        })
        .collect();
    let outcomes = race_issuances(&n[0], certs);
    assert!(
        matches!(outcomes[0], Err(StoreError::DuplicateSerial { .. })),
        "{:?}",
        outcomes[0]
    );
    for (i, o) in outcomes.iter().enumerate().skip(1) {
        assert!(matches!(o, Ok(Issuance::Recorded)), "{i}: {o:?}");
    }
    assert_eq!(n[0].issuance_commit_stats().1, u64::from(RACERS));
    assert_eq!(
        n[1].list_certificates(&Default::default()).unwrap().len(),
        usize::from(RACERS)
    );
    assert!(n[1].device("p1", "dev-dup-serial").unwrap().is_none());
    assert_eq!(registrations(&n[2], "dev-dup-serial"), 0);
    assert_eq!(registrations(&n[2], "dev-5"), 1);
}

/// Across nodes: same-key renewals of one transaction raced from three nodes each
/// get a certificate, exactly one stays current, and each request replays to its own.
#[test]
fn same_key_renewals_raced_across_nodes_each_get_a_certificate_one_current() {
    use crate::store::{Issuance, TransactionMatch};
    let n = seeded_nodes();
    let first = cert(1, "tx-r", 7, "dev-1");
    assert_eq!(n[0].record_issuance(&first).unwrap(), Issuance::Recorded);
    let renewal = |i: u8| crate::store::NewCertificate {
        facts: crate::store::CertificateFacts {
            serial: vec![10 + i],
            requested_at: 150 + i64::from(i),
            ..first.clone().facts
        },
        request_sha256: vec![0xa0 + i; 32],
        ..first.clone()
    };
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
    let racers: Vec<_> = (0..3u8)
        .map(|i| {
            let (s, b, c) = (n[usize::from(i)].clone(), barrier.clone(), renewal(i));
            std::thread::spawn(move || {
                b.wait();
                s.record_issuance(&c)
            })
        })
        .collect();
    for r in racers {
        assert_eq!(r.join().unwrap().unwrap(), Issuance::Recorded);
    }
    let all = n[1].list_certificates(&Default::default()).unwrap();
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(all.iter().filter(|c| c.superseded_at.is_none()).count(), 1);
    let current = n[2]
        .certificate_by_transaction("p1", "tx-r")
        .unwrap()
        .unwrap();
    assert!(current.superseded_at.is_none());
    for (request, serial) in [(first.clone(), 1u8), (renewal(0), 10), (renewal(2), 12)] {
        let resend = crate::store::NewCertificate {
            facts: crate::store::CertificateFacts {
                serial: vec![99],
                ..request.clone().facts
            },
            ..request.clone()
        };
        match n[2].record_issuance(&resend).unwrap() {
            Issuance::Replayed(c) => assert_eq!(c.serial, [serial]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            n[1].match_transaction("p1", "tx-r", &request.request_sha256, &[7; 32]).unwrap(),
            TransactionMatch::Replay(c) if c.serial == [serial]
        ));
    }
    assert!(matches!(
        n[0].record_issuance(&crate::store::NewCertificate {
            facts: crate::store::CertificateFacts {
                serial: vec![30],
                public_key_sha256: vec![8; 32],
                ..first.facts
            },
            request_sha256: vec![0xee; 32],
            ..first
        }),
        Err(StoreError::TransactionConflict { .. })
    ));
}

/// An RA's encryption certificate added by three nodes at once: the first one stays.
#[test]
fn one_encryption_certificate_per_ra_across_nodes() {
    let n = seeded_nodes();
    let enc = |key_ref: &str| crate::store::EncryptionCertificate {
        ra_id: "ra".into(),
        subject: "CN=enc".into(),
        cert_der: vec![0x30, 0x00],
        key_ref: key_ref.into(),
        not_before: 1,
        not_after: 2,
        created_at: 1,
    };
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
    let racers: Vec<_> = (0..3usize)
        .map(|i| {
            let (s, b, e) = (n[i].clone(), barrier.clone(), enc(&format!("enc-{i}")));
            std::thread::spawn(move || {
                b.wait();
                s.add_encryption_certificate(&e).unwrap()
            })
        })
        .collect();
    let won: Vec<bool> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let stored = n[1].encryption_certificates().unwrap();
    assert_eq!(stored.len(), 1);
    let winner = won.iter().position(|w| *w).unwrap();
    assert_eq!(stored[0], enc(&format!("enc-{winner}")));
    assert!(matches!(
        n[2].add_encryption_certificate(&crate::store::EncryptionCertificate {
            ra_id: "int".into(),
            ..enc("enc-x")
        }),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn one_dynamic_challenge_raced_across_nodes_yields_one_certificate() {
    use crate::store::{ChallengeIssue, Issuance};
    let n = seeded_nodes();
    let h = vec![3u8; 32];
    assert_eq!(
        n[0].add_dynamic_challenge("p1", &h, 100, 500, 10).unwrap(),
        ChallengeIssue::Added
    );
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(20));
    let racers: Vec<_> = (0..20u8)
        .map(|i| {
            let (s, h, b) = (n[usize::from(i % 3)].clone(), h.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                s.record_issuance_consuming(
                    &cert(30 + i, &format!("tx-{i}"), 40 + i, &format!("dev-{i}")),
                    &h,
                )
            })
        })
        .collect();
    let outcomes: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Issuance::Recorded)))
        .count();
    let spent = outcomes
        .iter()
        .filter(|o| matches!(o, Err(StoreError::ChallengeSpent)))
        .count();
    assert_eq!((ok, spent), (1, 19), "{outcomes:?}");
    assert_eq!(
        n[1].list_certificates(&Default::default()).unwrap().len(),
        1
    );
    assert_eq!(
        n[2].dynamic_challenge_state("p1", &h, 150).unwrap(),
        crate::store::OneTimeState::Consumed
    );
    // The cache limit holds across nodes too.
    let added = (0..6u8)
        .map(|i| {
            n[usize::from(i % 3)]
                .add_dynamic_challenge("p1", &[50 + i; 32], 100, 500, 4)
                .unwrap()
        })
        .filter(|r| *r == ChallengeIssue::Added)
        .count();
    assert_eq!(added, 4);
    assert_eq!(n[0].outstanding_dynamic_challenges("p1", 150).unwrap(), 4);
}

#[test]
fn deactivation_on_one_node_revokes_what_another_node_records() {
    use crate::store::{DeviceState, DeviceTransition};
    let n = seeded_nodes();
    n[0].record_issuance(&cert(1, "tx-a", 1, "dev-x")).unwrap();
    let gen0 = n[2].revocation_generation().unwrap();
    // Enrollments of dev-x on two nodes while a third deactivates it: afterwards no valid
    // certificate of dev-x remains, whatever the interleaving.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
    let enrollers: Vec<_> = (0..2u8)
        .map(|i| {
            let (s, b) = (n[usize::from(i)].clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                s.record_issuance(&cert(2 + i, &format!("tx-b{i}"), 2 + i, "dev-x"))
            })
        })
        .collect();
    let deactivator = {
        let (s, b) = (n[2].clone(), barrier.clone());
        std::thread::spawn(move || {
            b.wait();
            s.transition_device(&DeviceTransition {
                platform_id: "p1",
                device_id: "dev-x",
                from: &[DeviceState::Active],
                to: DeviceState::Deactivated,
                revoke_reason: Some("cessationOfOperation"),
                actor: "test",
                now: 150,
            })
        })
    };
    for e in enrollers {
        match e.join().unwrap() {
            Ok(_) | Err(StoreError::DeviceNotActive { .. }) => {}
            Err(other) => panic!("{other}"),
        }
    }
    deactivator.join().unwrap().unwrap();
    let filter = crate::store::CertificateFilter {
        device_id: Some("dev-x".into()),
        ..Default::default()
    };
    let certs = n[0].list_certificates(&filter).unwrap();
    assert!(!certs.is_empty());
    assert!(
        certs
            .iter()
            .all(|c| c.status == crate::store::CertStatus::Revoked),
        "{certs:?}"
    );
    assert!(n[1].revocation_generation().unwrap() > gen0);
    assert_eq!(
        n[1].device("p1", "dev-x").unwrap().unwrap().state,
        DeviceState::Deactivated
    );
    let revoked = n[2].revoked_certificates("int", 0).unwrap();
    assert_eq!(revoked.len(), certs.len());
}

#[test]
fn crl_numbers_increase_across_nodes_and_activation_happens_once() {
    let n = seeded_nodes();
    let racers: Vec<_> = (0..30)
        .map(|i| {
            let s = n[i % 3].clone();
            std::thread::spawn(move || s.next_crl_number("int").unwrap())
        })
        .collect();
    let mut numbers: Vec<u64> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=30).collect::<Vec<u64>>());

    let mut next = ca("int2", CaRole::Intermediate, CaState::Next, Some("root"));
    next.created_at = 2_000;
    n[0].stage_authorities(&[next.clone()], Some(500), "ops", 400)
        .unwrap();
    next.id = "int3".into();
    assert!(matches!(
        n[1].stage_authorities(&[next], Some(500), "ops", 400),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(n[2].due_activations(600).unwrap(), ["int2"]);
    // Every node's timer fires: one activation, the others find nothing staged.
    let racers: Vec<_> = (0..3)
        .map(|i| {
            let s = n[i].clone();
            std::thread::spawn(move || s.activate_authorities(&["int2"], "timer", 600))
        })
        .collect();
    let ok = racers
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(Result::is_ok)
        .count();
    assert_eq!(ok, 1);
    assert_eq!(
        n[0].active_authority(CaRole::Intermediate)
            .unwrap()
            .unwrap()
            .id,
        "int2"
    );
    assert!(
        n[1].staged_authority(CaRole::Intermediate)
            .unwrap()
            .is_none()
    );
    n[2].ready().unwrap();
}

#[test]
fn one_crl_publisher_across_nodes_and_numbers_only_grow() {
    let n = nodes(3);
    n[0].insert_authorities(&[
        ca("root", CaRole::Root, CaState::Active, None),
        ca("int", CaRole::Intermediate, CaState::Active, Some("root")),
    ])
    .unwrap();
    // Three nodes asking at the same moment: exactly one holds the lease.
    let winners: Vec<bool> = n
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let s = s.clone();
            std::thread::spawn(move || s.claim_lease("crl", &format!("node{i}"), 100, 5).unwrap())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert_eq!(winners.iter().filter(|w| **w).count(), 1, "{winners:?}");
    let holder = format!("node{}", winners.iter().position(|w| *w).unwrap());
    let other = if holder == "node0" { "node1" } else { "node0" };
    let crl = |number: u64| crate::store::StoredCrl {
        issuer_id: "int".into(),
        number,
        this_update: 100,
        next_update: 200,
        generation: 1,
        der: vec![number as u8; 8],
    };
    assert!(!n[0].store_crl(&crl(1), "crl", other, 101).unwrap());
    assert!(n[1].store_crl(&crl(2), "crl", &holder, 101).unwrap());
    assert!(
        !n[2].store_crl(&crl(1), "crl", &holder, 101).unwrap(),
        "older"
    );
    assert_eq!(n[2].published_crl("int", 0).unwrap().unwrap().number, 2);
    assert!(n[0].published_crl("int", 2).unwrap().is_none());
    // The holder stops renewing: another node takes over after expiry.
    assert!(!n[0].claim_lease("crl", other, 104, 5).unwrap());
    assert!(n[0].claim_lease("crl", other, 105, 5).unwrap());
    assert!(!n[1].store_crl(&crl(3), "crl", &holder, 105).unwrap());
    assert!(n[1].store_crl(&crl(3), "crl", other, 105).unwrap());
}

#[test]
fn an_issuance_for_an_unknown_platform_or_issuer_is_not_found_and_stores_nothing() {
    let n = seeded_nodes();
    let mut c = cert(30, "tx-unknown", 3, "dev-u");
    c.facts.platform_id = "gone".into();
    assert!(matches!(
        n[0].record_issuance(&c),
        Err(StoreError::NotFound {
            what: "platform",
            ..
        })
    ));
    let mut c = cert(31, "tx-unknown", 3, "");
    c.facts.device_id = None;
    c.facts.issuer_id = "no-such-ca".into();
    assert!(matches!(
        n[1].record_issuance(&c),
        Err(StoreError::NotFound {
            what: "issuing authority",
            ..
        })
    ));
    assert!(
        n[2].list_certificates(&Default::default())
            .unwrap()
            .is_empty()
    );
}

/// The one-statement first enrollment: the device, its audit entry and the certificate are
/// written together or not at all; a device that exists goes through its state check.
#[test]
fn a_first_enrollment_writes_device_audit_and_certificate_together() {
    use crate::store::{DeviceState, DeviceTransition, Issuance};
    let n = seeded_nodes();
    assert!(matches!(
        n[0].record_issuance(&cert(40, "tx-a", 1, "dev-a")).unwrap(),
        Issuance::Recorded
    ));
    let d = n[1].device("p1", "dev-a").unwrap().unwrap();
    assert_eq!(d.state, DeviceState::Active);
    assert_eq!(registrations(&n[2], "dev-a"), 1);
    // A refused certificate (serial taken) leaves neither the new device nor its entry.
    assert!(matches!(
        n[1].record_issuance(&cert(40, "tx-b", 2, "dev-b")),
        Err(StoreError::DuplicateSerial { .. })
    ));
    assert!(n[0].device("p1", "dev-b").unwrap().is_none());
    assert_eq!(registrations(&n[0], "dev-b"), 0);
    // No device named: the certificate alone.
    let mut anonymous = cert(41, "tx-c", 3, "");
    anonymous.facts.device_id = None;
    assert!(matches!(
        n[2].record_issuance(&anonymous).unwrap(),
        Issuance::Recorded
    ));
    // A second enrollment of a known device is checked against its state: suspended, refused.
    n[0].transition_device(&DeviceTransition {
        platform_id: "p1",
        device_id: "dev-a",
        from: &[DeviceState::Active],
        to: DeviceState::Suspended,
        revoke_reason: None,
        actor: "test",
        now: 1,
    })
    .unwrap();
    assert!(matches!(
        n[1].record_issuance(&cert(42, "tx-d", 4, "dev-a")),
        Err(StoreError::DeviceNotActive { .. })
    ));
    assert_eq!(registrations(&n[1], "dev-a"), 1);
    assert_eq!(
        n[0].list_certificates(&Default::default()).unwrap().len(),
        2
    );
    // The read before signing: the replay question and the device's state at once, with
    // and without certificates in the transaction, and for a device nobody registered.
    let first = cert(40, "tx-a", 1, "dev-a");
    let lookup = |store: &crate::store::Store, txid: &str, device: Option<&str>| {
        store
            .enrollment_lookup(
                "p1",
                txid,
                &first.request_sha256,
                &first.public_key_sha256,
                device,
            )
            .unwrap()
    };
    let seen = lookup(&n[2], "tx-a", Some("dev-a"));
    assert!(
        matches!(seen.transaction, crate::store::TransactionMatch::Replay(ref c) if c.serial == [40])
    );
    assert_eq!(seen.device_state, Some(DeviceState::Suspended));
    let seen = lookup(&n[0], "tx-new", Some("dev-a"));
    assert_eq!(seen.transaction, crate::store::TransactionMatch::New);
    assert_eq!(seen.device_state, Some(DeviceState::Suspended));
    let seen = lookup(&n[1], "tx-a", Some("nobody"));
    assert!(matches!(
        seen.transaction,
        crate::store::TransactionMatch::Replay(_)
    ));
    assert_eq!(seen.device_state, None);
    assert_eq!(lookup(&n[1], "tx-new", None).device_state, None);
}
