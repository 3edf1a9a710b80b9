//! The device-trust check for relying parties: a one-time nonce, signed by the device's key,
//! proves possession; the certificate must chain to our issuing CA, be within validity, not
//! revoked, allow digitalSignature, and belong to an active device.
//!
//! Nonces are stateless: `hex(expiry ‖ random ‖ HMAC-SHA256(key, expiry ‖ random))` under a
//! key all nodes share through the store. Handing one out stores nothing, so no flood can
//! exhaust them for others (the audit held 100,000 stored nonces from 18 addresses and made
//! every caller wait 5 minutes). A nonce is accepted once: presenting it records its random
//! part in the store until it expires, and the store's unique key decides on every node.

use std::sync::Arc;

use aws_lc_rs::hmac;

use scepd_pki::algorithms::{SignatureAlg, verify_signature};
use scepd_pki::der::{Reader, oid, tag};
use scepd_pki::x509::Certificate;
use serde::{Deserialize, Serialize};

use crate::ca::CaHandle;
use crate::store::{CertStatus, DeviceState, Store, StoreError};

/// How long a nonce stays usable.
pub const NONCE_TTL_SECS: i64 = 300;
/// Octets of a nonce: expiry (8), random (16), HMAC-SHA256 tag (32).
const NONCE_LEN: usize = 8 + 16 + 32;

/// `POST /trust/v1/verify` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Base64 DER certificate.
    pub certificate: String,
    /// The nonce from `/trust/v1/challenge`.
    pub nonce: String,
    /// Base64 signature over the nonce's UTF-8 bytes.
    pub signature: String,
    /// `rsa-pkcs1-sha256`, `rsa-pkcs1-sha384`, `rsa-pkcs1-sha512`, `ecdsa-p256-sha256`, `ecdsa-p384-sha384`.
    pub algorithm: String,
}

/// `POST /trust/v1/verify` answer.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Verdict {
    /// The device is managed.
    pub managed: bool,
    /// Device id, when the certificate is ours.
    pub device_id: Option<String>,
    /// User, when known.
    pub user: Option<String>,
    /// Platform, when the certificate is ours.
    pub platform_id: Option<String>,
    /// Why not managed (or "ok").
    pub reason: String,
}

/// Errors that are ours, not the caller's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The system random generator failed.
    #[error("random generator failed")]
    Random,
}

/// Nonces and verification.
pub struct TrustCheck {
    store: Arc<Store>,
    ca: Arc<CaHandle>,
    nonce_key: hmac::Key,
}

fn not_managed(reason: &str) -> Verdict {
    Verdict {
        managed: false,
        device_id: None,
        user: None,
        platform_id: None,
        reason: reason.to_owned(),
    }
}

impl TrustCheck {
    /// A checker for the active issuing CA, with the cluster's nonce key (created in the store
    /// on first use). Blocking (store).
    pub fn new(store: Arc<Store>, ca: Arc<CaHandle>, now: i64) -> Result<Self, TrustError> {
        let mut fresh = zeroize::Zeroizing::new([0u8; crate::store::NONCE_KEY_LEN]);
        aws_lc_rs::rand::fill(fresh.as_mut_slice()).map_err(|_| TrustError::Random)?;
        let secret = store.trust_nonce_key(&fresh, now)?;
        Ok(Self {
            nonce_key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            store,
            ca,
        })
    }

    /// Issues a single-use nonce valid until the returned time. Stores nothing.
    pub fn challenge(&self, now: i64) -> Result<(String, i64), TrustError> {
        let expires = now + NONCE_TTL_SECS;
        let mut body = [0u8; 24];
        body[..8].copy_from_slice(&expires.to_be_bytes());
        aws_lc_rs::rand::fill(&mut body[8..]).map_err(|_| TrustError::Random)?;
        let tag = hmac::sign(&self.nonce_key, &body);
        let mut nonce = body.to_vec();
        nonce.extend_from_slice(tag.as_ref());
        Ok((scepd_pki::hex(&nonce), expires))
    }

    /// Accepts a nonce we issued, unexpired and never presented before (on any node).
    fn take_nonce(&self, nonce: &str, now: i64) -> Result<bool, TrustError> {
        if nonce.len() != 2 * NONCE_LEN {
            return Ok(false);
        }
        let Some(raw) = scepd_pki::unhex(nonce) else {
            return Ok(false);
        };
        let (body, tag) = raw.split_at(24);
        // Constant time: the tag is the secret-dependent part.
        if hmac::verify(&self.nonce_key, body, tag).is_err() {
            return Ok(false);
        }
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&body[..8]);
        let expires = i64::from_be_bytes(exp);
        if expires <= now || expires > now + NONCE_TTL_SECS {
            return Ok(false);
        }
        Ok(self.store.use_trust_nonce(&body[8..], expires, now)?)
    }

    /// Checks a signed nonce and certificate. Blocking (store reads).
    pub fn verify(&self, req: &VerifyRequest, now: i64) -> Result<Verdict, TrustError> {
        // The nonce is consumed first, whatever the outcome: one attempt per nonce.
        if !self.take_nonce(&req.nonce, now)? {
            return Ok(not_managed("unknown, used or expired nonce"));
        }
        let decode = |s: &str| scepd_pki::encoding::decode_base64_lenient(s.as_bytes());
        let (Some(der), Some(sig)) = (decode(&req.certificate), decode(&req.signature)) else {
            return Ok(not_managed("certificate or signature is not base64"));
        };
        let Ok(cert) = Certificate::parse(&der) else {
            return Ok(not_managed("certificate does not parse"));
        };
        // Any intermediate we answer for: the active one or a retired one still trusted.
        let ca = self.ca.get();
        let Some(issuer) = ca.issuer_named(cert.issuer, Some(&cert)) else {
            return Ok(not_managed("not issued by this CA"));
        };
        if !cert.is_valid_at(now) {
            return Ok(not_managed("certificate expired or not yet valid"));
        }
        if !allows_digital_signature(&cert) {
            return Ok(not_managed("certificate does not allow digitalSignature"));
        }
        let Some(alg) = parse_algorithm(&req.algorithm) else {
            return Ok(not_managed("unsupported algorithm"));
        };
        if verify_signature(cert.spki, alg, req.nonce.as_bytes(), &sig).is_err() {
            return Ok(not_managed("signature over the nonce does not verify"));
        }
        let Some(state) = self
            .store
            .certificate_state(&issuer.id, cert.serial_magnitude())?
        else {
            return Ok(not_managed("certificate is not on record"));
        };
        let mut v = Verdict {
            managed: false,
            device_id: state.device_id.clone(),
            user: None,
            platform_id: Some(state.platform_id.clone()),
            reason: String::new(),
        };
        if state.status == CertStatus::Revoked {
            v.reason = "certificate revoked".into();
            return Ok(v);
        }
        let Some(device_id) = &state.device_id else {
            v.reason = "certificate has no device".into();
            return Ok(v);
        };
        let Some(device) = self.store.device(&state.platform_id, device_id)? else {
            v.reason = "device not registered".into();
            return Ok(v);
        };
        v.user = device.user.clone();
        v.reason = device.state.as_str().to_owned();
        if device.state == DeviceState::Active {
            v.managed = true;
            v.reason = "ok".into();
        }
        Ok(v)
    }
}

fn parse_algorithm(s: &str) -> Option<SignatureAlg> {
    Some(match s {
        "rsa-pkcs1-sha256" => SignatureAlg::RsaSha256,
        "rsa-pkcs1-sha384" => SignatureAlg::RsaSha384,
        "rsa-pkcs1-sha512" => SignatureAlg::RsaSha512,
        "ecdsa-p256-sha256" => SignatureAlg::EcdsaSha256,
        "ecdsa-p384-sha384" => SignatureAlg::EcdsaSha384,
        _ => return None,
    })
}

/// keyUsage present with digitalSignature (bit 0) set.
fn allows_digital_signature(cert: &Certificate<'_>) -> bool {
    let Some(ext) = cert.extension(oid::KEY_USAGE) else {
        return false;
    };
    let Ok(bits) = Reader::new(ext.value).expect(tag::BIT_STRING) else {
        return false;
    };
    bits.value.get(1).is_some_and(|b| b & 0x80 != 0)
}
