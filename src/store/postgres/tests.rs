//! The PostgreSQL verbs ported so far, each against a real cluster and, where nodes could
//! race, with several `PgStore`s (nodes) on one database.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]

use super::test_cluster::fresh_database;
use super::*;
use crate::store::sqlite::testutil::{ca, platform};
use crate::store::{
    AdminToken, CaRole, CaState, ChallengeConfig, DynamicSettings, NONCE_KEY_LEN, StoreError,
};

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
