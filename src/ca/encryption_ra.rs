//! Encryption-only RA certificates (`[pki] encryption_ra`).
//!
//! Some SCEP clients (PyScep, scepreq and tools on the same code) encrypt to the first
//! GetCACert certificate whose keyUsage is keyEncipherment *without* digitalSignature, and
//! never to a dual-use RA, so they cannot enroll against one. With the option on, each RA that
//! still decrypts new requests (the active one and a staged one) gets a certificate of its own
//! for a key of its own, keyUsage keyEncipherment only, issued by the RA's issuer and expiring
//! with the RA; GetCACert lists it right after the RA. The RA keeps signing every CertRep, so
//! clients that verify replies by digitalSignature are unaffected, and Apple, which uses a
//! dual-use RA whenever there is one, sees no difference.
//!
//! Why a separate key rather than a second certificate for the RA's key: requests encrypted
//! to it are PKCS#1 v1.5 decryptions, the classic oracle; kept off the signing key, a
//! decryption weakness can never become a signature forgery with it.
//!
//! Several nodes may create one for the same RA at once: the store keeps the first, the others
//! remove their key files. Key files get a random suffix so that two nodes never write the
//! same name in a shared `keys/`.

use scepd_pki::algorithms::PublicKeyInfo;
use scepd_pki::ca::profiles;
use scepd_pki::der::oid;
use scepd_pki::keys::KeyAlgorithm;
use scepd_pki::x509::{Certificate, name};

use crate::ca::rotation::{RotationError, certified_key};
use crate::ca::{CaHandle, LoadedAuthority};
use crate::store::{EncryptionCertificate, Store};

/// Creates the missing encryption certificates of the active and the staged RA. Returns how
/// many this call stored (0 when every RA has one, or another node was first). Cheap when
/// nothing is missing: it looks at the loaded CA set only.
pub fn ensure(
    store: &Store,
    handle: &CaHandle,
    organization: &str,
    now: i64,
) -> Result<usize, RotationError> {
    let ca = handle.get();
    let mut stored = 0;
    for ra in std::iter::once(&ca.ra).chain(ca.next_ra.as_ref()) {
        if ra.encryption.is_some() {
            continue;
        }
        let issuer = ra
            .issuer_id
            .as_deref()
            .and_then(|id| {
                std::iter::once(&ca.intermediate)
                    .chain(ca.next_intermediate.as_ref())
                    .chain(ca.retired_intermediates.iter())
                    .find(|i| i.id == id)
            })
            .ok_or_else(|| {
                RotationError::Invalid(format!("the issuer of RA {} is not loaded", ra.id))
            })?;
        if create(store, handle, organization, ra, issuer, now)? {
            stored += 1;
        }
    }
    if stored > 0 {
        handle.reload_if_changed(store, now)?;
    }
    Ok(stored)
}

/// One encryption certificate for `ra`, issued by `issuer`. False: another node's was first.
fn create(
    store: &Store,
    handle: &CaHandle,
    organization: &str,
    ra: &LoadedAuthority,
    issuer: &LoadedAuthority,
    now: i64,
) -> Result<bool, RotationError> {
    let pki = |e: String| RotationError::Pki(e);
    let ra_cert = ra.cert.get();
    // The same RSA size as the RA: what its clients already cope with.
    let alg = match PublicKeyInfo::parse(ra_cert.spki)
        .ok()
        .and_then(|k| k.rsa_bits())
    {
        Some(b) if b >= 4096 => KeyAlgorithm::Rsa4096,
        Some(b) if b >= 3072 => KeyAlgorithm::Rsa3072,
        _ => KeyAlgorithm::Rsa2048,
    };
    let random = crate::challenge::secret::generate().map_err(|_| pki("random".into()))?;
    let key_ref = format!("{}-encryption-{}", ra.id, random[..8].to_ascii_lowercase());
    let subject = name::build(&[
        (oid::AT_ORGANIZATION, organization),
        (
            oid::AT_COMMON_NAME,
            &format!("{organization} SCEP RA encryption {}", ra.id),
        ),
    ]);
    let exts = profiles::ra_encryption();
    let der = certified_key(
        handle,
        &key_ref,
        &subject,
        alg,
        (issuer.cert.der(), &issuer.key),
        ra_cert.not_after,
        exts,
        now,
    )?;
    let cert = Certificate::parse(&der).map_err(|e| pki(e.to_string()))?;
    let record = EncryptionCertificate {
        ra_id: ra.id.clone(),
        subject: name::to_text(cert.subject),
        cert_der: der.clone(),
        key_ref: key_ref.clone(),
        not_before: cert.not_before,
        not_after: cert.not_after,
        created_at: now,
    };
    match store.add_encryption_certificate(&record) {
        Ok(true) => {
            tracing::info!(ra = %ra.id, key = %key_ref, "created the RA's encryption certificate");
            Ok(true)
        }
        Ok(false) => {
            handle.keystore().discard(&key_ref);
            Ok(false)
        }
        Err(e) => {
            handle.keystore().discard(&key_ref);
            Err(e.into())
        }
    }
}
