//! Fixtures shared by the store's unit tests.
#![allow(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use super::*;

pub fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("scepd.db")).unwrap();
    (dir, store)
}

pub fn platform(id: &str, name: &str, created_at: i64) -> Platform {
    Platform {
        id: id.into(),
        name: name.into(),
        challenge: ChallengeConfig::Static {
            secret_hash: vec![7; 32],
        },
        allow_des: false,
        created_at,
        device_id_pattern: None,
    }
}

pub fn ca(id: &str, role: CaRole, state: CaState, issuer: Option<&str>) -> CaRecord {
    CaRecord {
        id: id.into(),
        role,
        state,
        subject: format!("CN={id}"),
        cert_der: vec![0x30, 0x03, 1, 2, 3],
        key_ref: format!("{id}.p8"),
        issuer_id: issuer.map(Into::into),
        not_before: 1_000,
        not_after: 2_000_000_000,
        created_at: 1_000,
    }
}

/// A store with root, intermediate "int", RA and platform "p1".
pub fn seeded_store() -> (tempfile::TempDir, SqliteStore) {
    let (dir, store) = temp_store();
    store
        .insert_authorities(&[
            ca("root", CaRole::Root, CaState::Active, None),
            ca("int", CaRole::Intermediate, CaState::Active, Some("root")),
            ca("ra", CaRole::Ra, CaState::Active, Some("int")),
        ])
        .unwrap();
    store.insert_platform(&platform("p1", "Fleet", 10)).unwrap();
    (dir, store)
}

pub fn new_cert(serial: &[u8], transaction_id: &str, key: u8) -> NewCertificate {
    NewCertificate {
        facts: CertificateFacts {
            serial: serial.to_vec(),
            issuer_id: "int".into(),
            platform_id: "p1".into(),
            transaction_id: transaction_id.into(),
            public_key_sha256: vec![key; 32],
            subject: "CN=device".into(),
            sans: vec!["DNS:device.example".into(), "URI:urn:x".into()],
            device_id: Some("dev-1".into()),
            not_before: 100,
            not_after: 200,
            der: vec![0x30, 0x00, key],
            requested_at: 100,
        },
        user: None,
        signer_key_sha256: vec![key; 32],
        request_sha256: vec![key; 32],
        held: false,
    }
}
