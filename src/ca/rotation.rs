//! CA and RA rotation: stage a new intermediate (signed by the root) with a new RA under it,
//! advertise it through GetNextCACert, activate it atomically; the old intermediate stays
//! retired but trusted (CRL and OCSP keep answering for its certificates).
//!
//! New keys are written to the keystore before the store records that reference them, so a
//! crash mid-rotation leaves the old CA serving and, at worst, orphan key files.

use scepd_pki::ca::profiles;
use scepd_pki::der::oid;
use scepd_pki::keys::{KeyAlgorithm, SoftwareKey};
use scepd_pki::random::SystemRandom;
use scepd_pki::x509::{Certificate, name};

use crate::ca::keystore::KeystoreError;
use crate::ca::{CaHandle, CaLoadError};
use crate::store::{CaRecord, CaRole, CaState, Store, StoreError};

/// Rotation failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// Store failure (including "already staged").
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key files.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// Reloading the CA set.
    #[error(transparent)]
    Load(#[from] CaLoadError),
    /// Invalid request.
    #[error("{0}")]
    Invalid(String),
    /// Key generation or signing.
    #[error("signing failed: {0}")]
    Pki(String),
}

const INTERMEDIATE_VALIDITY: i64 = 10 * 365 * 86_400;
const RA_VALIDITY: i64 = 5 * 365 * 86_400;

fn suffix() -> Result<String, RotationError> {
    let s =
        crate::challenge::secret::generate().map_err(|_| RotationError::Pki("random".into()))?;
    Ok(s[..8].to_ascii_lowercase())
}

/// A created authority: its record, certificate and key.
struct Created {
    record: CaRecord,
}

/// Creates a key and certificate signed by `issuer`, writes the key, returns the record.
#[allow(clippy::too_many_arguments)]
fn create(
    handle: &CaHandle,
    role: CaRole,
    id: String,
    subject: &[u8],
    alg: KeyAlgorithm,
    issuer: (&CaRecord, &SoftwareKey),
    validity: i64,
    now: i64,
) -> Result<Created, RotationError> {
    let exts = match role {
        CaRole::Ra => profiles::ra(),
        _ => profiles::intermediate(),
    };
    let der = certified_key(
        handle,
        &id,
        subject,
        alg,
        (&issuer.0.cert_der, issuer.1),
        now + validity,
        exts,
        now,
    )?;
    let cert = Certificate::parse(&der).map_err(|e| RotationError::Pki(e.to_string()))?;
    Ok(Created {
        record: CaRecord {
            id: id.clone(),
            role,
            state: CaState::Next,
            subject: name::to_text(cert.subject),
            cert_der: der.clone(),
            key_ref: id,
            issuer_id: Some(issuer.0.id.clone()),
            not_before: cert.not_before,
            not_after: cert.not_after,
            created_at: now,
        },
    })
}

/// Generates a key of `alg`, certifies it under `issuer` (certificate DER and key) with
/// `exts` until `not_after` (never past the issuer's), and writes the key as `key_ref`.
/// Returns the certificate DER. The key is on disk before anything can reference it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn certified_key(
    handle: &CaHandle,
    key_ref: &str,
    subject: &[u8],
    alg: KeyAlgorithm,
    issuer: (&[u8], &SoftwareKey),
    not_after: i64,
    exts: Vec<Vec<u8>>,
    now: i64,
) -> Result<Vec<u8>, RotationError> {
    let (key, pkcs8) = SoftwareKey::generate(alg).map_err(|e| RotationError::Pki(e.to_string()))?;
    let issuer_cert =
        Certificate::parse(issuer.0).map_err(|e| RotationError::Pki(e.to_string()))?;
    let der = scepd_pki::ca::hierarchy::certify(
        subject,
        &key,
        Some((
            issuer_cert.subject,
            issuer_cert.spki,
            issuer.1,
            issuer.1.algorithm(),
        )),
        alg,
        now - 300,
        not_after.min(issuer_cert.not_after),
        exts,
        &SystemRandom,
    )
    .map_err(|e| RotationError::Pki(e.to_string()))?;
    handle.keystore().store(key_ref, &pkcs8)?;
    Ok(der)
}

/// A new RA (RSA-2048, named after `organization` and `sfx`) issued by `issuer`.
fn new_ra(
    handle: &CaHandle,
    organization: &str,
    sfx: &str,
    issuer: (&CaRecord, &SoftwareKey),
    now: i64,
) -> Result<Created, RotationError> {
    let ra_name = name::build(&[
        (oid::AT_ORGANIZATION, organization),
        (
            oid::AT_COMMON_NAME,
            &format!("{organization} SCEP RA {sfx}"),
        ),
    ]);
    create(
        handle,
        CaRole::Ra,
        format!("ra-{sfx}"),
        &ra_name,
        KeyAlgorithm::Rsa2048,
        issuer,
        RA_VALIDITY,
        now,
    )
}

/// Stages a new intermediate (signed by the root, whose key must be online) and a new RA
/// under it. Returns the staged intermediate and RA records.
pub fn rotate_ca(
    store: &Store,
    handle: &CaHandle,
    organization: &str,
    alg: KeyAlgorithm,
    activate_at: Option<i64>,
    actor: &str,
    now: i64,
) -> Result<(CaRecord, CaRecord), RotationError> {
    if activate_at.is_some_and(|t| t < now - 60) {
        return Err(RotationError::Invalid("activate_at is in the past".into()));
    }
    let root = store
        .active_authority(CaRole::Root)?
        .ok_or_else(|| RotationError::Invalid("no active root".into()))?;
    let root_key = handle.keystore().load(&root.key_ref).map_err(|e| match e {
        KeystoreError::Io { .. } => RotationError::Invalid(
            "the root key is not in the keystore (offline root): use `scepd ca rotate --csr-out` and `--import-cert`".into(),
        ),
        other => RotationError::Keystore(other),
    })?;
    let sfx = suffix()?;
    let int_name = name::build(&[
        (oid::AT_ORGANIZATION, organization),
        (
            oid::AT_COMMON_NAME,
            &format!("{organization} Device CA {sfx}"),
        ),
    ]);
    let int = create(
        handle,
        CaRole::Intermediate,
        format!("intermediate-{sfx}"),
        &int_name,
        alg,
        (&root, &root_key),
        INTERMEDIATE_VALIDITY,
        now,
    )?;
    let int_key = handle.keystore().load(&int.record.key_ref)?;
    let ra = new_ra(handle, organization, &sfx, (&int.record, &int_key), now)?;
    store.stage_authorities(
        &[int.record.clone(), ra.record.clone()],
        activate_at,
        actor,
        now,
    )?;
    handle.reload_if_changed(store, now)?;
    Ok((int.record, ra.record))
}

/// Activates a staged intermediate (and the staged RA it issued) atomically.
pub fn activate(
    store: &Store,
    handle: &CaHandle,
    id: &str,
    actor: &str,
    now: i64,
) -> Result<(), RotationError> {
    let all = store.authorities()?;
    let target = all
        .iter()
        .find(|a| a.id == id && a.state == CaState::Next)
        .ok_or_else(|| {
            RotationError::Store(StoreError::NotFound {
                what: "staged authority",
                id: id.to_owned(),
            })
        })?;
    let mut ids = vec![target.id.as_str()];
    if target.role == CaRole::Intermediate {
        ids.extend(
            all.iter()
                .filter(|a| {
                    a.role == CaRole::Ra
                        && a.state == CaState::Next
                        && a.issuer_id.as_deref() == Some(id)
                })
                .map(|a| a.id.as_str()),
        );
    }
    store.activate_authorities(&ids, actor, now)?;
    handle.reload_if_changed(store, now)?;
    Ok(())
}

/// Replaces the RA under the active intermediate at once; the old RA is retired but still
/// decrypts requests addressed to it.
pub fn rotate_ra(
    store: &Store,
    handle: &CaHandle,
    organization: &str,
    actor: &str,
    now: i64,
) -> Result<CaRecord, RotationError> {
    let int = store
        .active_authority(CaRole::Intermediate)?
        .ok_or_else(|| RotationError::Invalid("no active intermediate".into()))?;
    let int_key = handle.keystore().load(&int.key_ref)?;
    let sfx = suffix()?;
    let ra = new_ra(handle, organization, &sfx, (&int, &int_key), now)?;
    store.stage_authorities(std::slice::from_ref(&ra.record), None, actor, now)?;
    store.activate_authorities(&[ra.record.id.as_str()], actor, now)?;
    handle.reload_if_changed(store, now)?;
    let mut rec = ra.record;
    rec.state = CaState::Active;
    Ok(rec)
}

/// Offline root, step 1: a new intermediate key (kept in the keystore) and its PKCS#10 request
/// for the offline root to sign. Returns the key id (to import the certificate with) and the
/// CSR DER.
pub fn intermediate_csr(
    handle: &CaHandle,
    organization: &str,
    alg: KeyAlgorithm,
) -> Result<(String, Vec<u8>), RotationError> {
    let sfx = suffix()?;
    let id = format!("intermediate-{sfx}");
    let (key, pkcs8) = SoftwareKey::generate(alg).map_err(|e| RotationError::Pki(e.to_string()))?;
    let subject = name::build(&[
        (oid::AT_ORGANIZATION, organization),
        (
            oid::AT_COMMON_NAME,
            &format!("{organization} Device CA {sfx}"),
        ),
    ]);
    let digest = if alg == KeyAlgorithm::EcP384 {
        scepd_pki::algorithms::DigestAlg::Sha384
    } else {
        scepd_pki::algorithms::DigestAlg::Sha256
    };
    let csr = scepd_pki::pkcs10::build(&subject, &key, digest, None, &[])
        .map_err(|e| RotationError::Pki(e.to_string()))?;
    handle.keystore().store(&id, &pkcs8)?;
    Ok((id, csr))
}

/// Offline root, step 2: imports the intermediate certificate the root signed for key `id`,
/// checks it (issued by the active root, our key, a CA certificate), creates the RA under it
/// and stages both.
#[allow(clippy::too_many_arguments)] // one call site (the CLI); a struct would only rename them
pub fn import_intermediate(
    store: &Store,
    handle: &CaHandle,
    organization: &str,
    id: &str,
    cert_der: &[u8],
    activate_at: Option<i64>,
    actor: &str,
    now: i64,
) -> Result<(CaRecord, CaRecord), RotationError> {
    use scepd_pki::keys::Signer;
    let root = store
        .active_authority(CaRole::Root)?
        .ok_or_else(|| RotationError::Invalid("no active root".into()))?;
    let root_cert =
        Certificate::parse(&root.cert_der).map_err(|e| RotationError::Pki(e.to_string()))?;
    let cert = Certificate::parse(cert_der)
        .map_err(|e| RotationError::Invalid(format!("not a certificate: {e}")))?;
    if cert.issuer != root_cert.subject || cert.verify_signed_by(root_cert.spki).is_err() {
        return Err(RotationError::Invalid(
            "the certificate is not signed by the active root".into(),
        ));
    }
    let key = handle.keystore().load(id)?;
    if key.public_key_der() != cert.spki {
        return Err(RotationError::Invalid(format!(
            "the certificate is not for key {id}"
        )));
    }
    let is_ca = cert
        .extension(oid::BASIC_CONSTRAINTS)
        .is_some_and(|e| e.value.windows(3).any(|w| w == [0x01, 0x01, 0xff]));
    if !is_ca {
        return Err(RotationError::Invalid(
            "the certificate is not a CA certificate (basicConstraints CA:TRUE)".into(),
        ));
    }
    if !cert.is_valid_at(now) {
        return Err(RotationError::Invalid(
            "the certificate is not valid now".into(),
        ));
    }
    let record = CaRecord {
        id: id.to_owned(),
        role: CaRole::Intermediate,
        state: CaState::Next,
        subject: name::to_text(cert.subject),
        cert_der: cert_der.to_vec(),
        key_ref: id.to_owned(),
        issuer_id: Some(root.id.clone()),
        not_before: cert.not_before,
        not_after: cert.not_after,
        created_at: now,
    };
    let sfx = id.trim_start_matches("intermediate-");
    let ra = new_ra(handle, organization, sfx, (&record, &key), now)?;
    store.stage_authorities(
        &[record.clone(), ra.record.clone()],
        activate_at,
        actor,
        now,
    )?;
    handle.reload_if_changed(store, now)?;
    Ok((record, ra.record))
}
