//! The device-trust check for relying parties: a one-time nonce, signed by the device's key,
//! proves possession; the certificate must chain to our issuing CA, be within validity, not
//! revoked, allow digitalSignature, and belong to an active device.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use scepd_pki::algorithms::{SignatureAlg, verify_signature};
use scepd_pki::der::{Reader, oid, tag};
use scepd_pki::x509::Certificate;
use serde::{Deserialize, Serialize};

use crate::ca::CaHandle;
use crate::store::{CertStatus, DeviceState, Store, StoreError};

/// How long a nonce stays usable.
pub const NONCE_TTL_SECS: i64 = 300;
/// Most outstanding nonces (oldest expire first; beyond this new ones are refused).
pub const MAX_NONCES: usize = 100_000;

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
#[error(transparent)]
pub struct TrustError(#[from] StoreError);

/// Nonces and verification.
pub struct TrustCheck {
    store: Arc<Store>,
    ca: Arc<CaHandle>,
    nonces: Mutex<HashMap<String, i64>>,
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
    /// A checker for the active issuing CA.
    pub fn new(store: Arc<Store>, ca: Arc<CaHandle>) -> Self {
        Self {
            store,
            ca,
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// Issues a single-use nonce; `None` when too many are outstanding.
    pub fn challenge(&self, now: i64) -> Option<(String, i64)> {
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::fill(&mut raw).ok()?;
        let nonce = scepd_pki::hex(&raw);
        let expires = now + NONCE_TTL_SECS;
        let mut map = self.nonces.lock().ok()?;
        if map.len() >= MAX_NONCES {
            map.retain(|_, exp| *exp > now);
            if map.len() >= MAX_NONCES {
                return None;
            }
        }
        map.insert(nonce.clone(), expires);
        Some((nonce, expires))
    }

    fn take_nonce(&self, nonce: &str, now: i64) -> bool {
        match self.nonces.lock() {
            Ok(mut map) => map.remove(nonce).is_some_and(|exp| exp > now),
            Err(_) => false,
        }
    }

    /// Checks a signed nonce and certificate. Blocking (store reads).
    pub fn verify(&self, req: &VerifyRequest, now: i64) -> Result<Verdict, TrustError> {
        // The nonce is consumed first, whatever the outcome: one attempt per nonce.
        if !self.take_nonce(&req.nonce, now) {
            return Ok(not_managed("unknown, used or expired nonce"));
        }
        let decode = |s: &str| scepd_pki::scep::http::decode_base64_lenient(s.as_bytes());
        let (Some(der), Some(sig)) = (decode(&req.certificate), decode(&req.signature)) else {
            return Ok(not_managed("certificate or signature is not base64"));
        };
        let Ok(cert) = Certificate::parse(&der) else {
            return Ok(not_managed("certificate does not parse"));
        };
        // Any intermediate we answer for: the active one or a retired one still trusted.
        let ca = self.ca.get();
        let issuer = ca.issuers().find(|a| {
            Certificate::parse(&a.cert_der)
                .is_ok_and(|ic| cert.issuer == ic.subject && cert.verify_signed_by(ic.spki).is_ok())
        });
        let Some(issuer) = issuer else {
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
