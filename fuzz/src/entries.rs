//! The fuzzing entry points: one function per parser that sees bytes from outside. The fuzz
//! targets (`fuzz/fuzz_targets/*.rs`) call these, and so does `cargo test`
//! (`tests/it/fuzz_regressions.rs` includes this very file), which replays every file under
//! `tests/data/fuzz-regressions/<target>/` — a crash found once stays fixed.
//!
//! None of these may panic, whatever the input.

use std::path::PathBuf;

use scepd_pki::algorithms::{ContentCipher, DigestAlg, KeyTransport};
use scepd_pki::algorithms::{SignatureAlg, verify_signature};
use scepd_pki::cms::enveloped_data::{self, EnvelopedData};
use scepd_pki::der::oid;
use scepd_pki::encoding::{decode_base64_lenient, percent_decode};
use scepd_pki::keys::SoftwareKey;
use scepd_pki::pkcs10::CertificationRequest;
use scepd_pki::random::{Random, RandomError};
use scepd_pki::revocation::ocsp;
use scepd_pki::scep::http::{Operation, decode_get_message, query_param};
use scepd_pki::scep::{Envelope, Recipient};
use scepd_pki::x509::Certificate;

/// A deterministic RSA-2048 recipient key and its self-signed certificate, committed in
/// `fuzz/keys/` (test material, not a secret): seeds encrypted to it stay decryptable, so the
/// fuzzer reaches past the RSA and CBC steps into the messageData parsers.
pub const FUZZ_RA_KEY_PKCS8: &[u8] = include_bytes!("../keys/ra.pk8");
/// The certificate for [`FUZZ_RA_KEY_PKCS8`].
pub const FUZZ_RA_CERT: &[u8] = include_bytes!("../keys/ra.der");

/// A fuzz entry point.
pub type Entry = fn(&[u8]);

/// Targets by name, as directories under the corpus and regression dirs.
pub const TARGETS: &[(&str, Entry)] = &[
    ("pki_message", pki_message),
    ("envelope", envelope),
    ("pkcs10", pkcs10),
    ("get_query", get_query),
    ("ocsp_request", ocsp_request),
    ("trust_json", trust_json),
    ("config_toml", config_toml),
    ("admin_json", admin_json),
];

/// The fuzz RA key and certificate, parsed once (key import validates the RSA key, which
/// would otherwise dominate every execution).
fn fuzz_ra() -> Option<&'static (SoftwareKey, Certificate<'static>)> {
    static RA: std::sync::OnceLock<Option<(SoftwareKey, Certificate<'static>)>> =
        std::sync::OnceLock::new();
    RA.get_or_init(|| {
        Some((
            SoftwareKey::from_pkcs8(FUZZ_RA_KEY_PKCS8).ok()?,
            Certificate::parse(FUZZ_RA_CERT).ok()?,
        ))
    })
    .as_ref()
}

/// Pinned randomness: the substituted CEK after an RSA failure must not make runs differ.
struct Pinned;

impl Random for Pinned {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        Ok(())
    }
}

/// The PKIOperation body (POST body or decoded GET message): outer SignedData, signed
/// attributes, signer certificate, signature over the raw attribute bytes.
pub fn pki_message(data: &[u8]) {
    if let Ok(msg) = Envelope::decode(data) {
        let _ = Certificate::parse(msg.signer_cert_der());
        // The envelope inside a well-signed message goes down the same path as `envelope`,
        // and its messageData is parsed as the server parses it.
        if let Some((key, cert)) = fuzz_ra() {
            let recipients = [Recipient {
                cert: cert.clone(),
                key,
            }];
            if let Ok(opened) = msg.open(&recipients, true, &Pinned) {
                let _ = opened.request();
                message_data(opened.message_data());
            }
        }
    }
    let _ = Certificate::parse(data);
}

/// The pkcsPKIEnvelope. First byte even: the rest is an EnvelopedData decrypted with the fuzz
/// RA key. First byte odd: the rest is plaintext messageData, enveloped to the fuzz RA key
/// (AES-128 or 3DES by the second byte, RSA v1.5 or OAEP by the third) and then opened, so the
/// whole decrypt → parse path runs on fuzzer-chosen plaintext.
pub fn envelope(data: &[u8]) {
    let (Some(&mode), Some((key, cert))) = (data.first(), fuzz_ra()) else {
        return;
    };
    let rest = &data[1..];
    if mode % 2 == 0 {
        if let Ok(ed) = EnvelopedData::parse(rest) {
            if let Ok((_, _, plain)) = ed.decrypt(cert, key, true, &Pinned) {
                message_data(&plain);
            }
        }
        return;
    }
    let cipher = if rest.first().is_some_and(|b| b % 2 == 1) {
        ContentCipher::DesEde3Cbc
    } else {
        ContentCipher::Aes128Cbc
    };
    let transport = if rest.get(1).is_some_and(|b| b % 2 == 1) {
        KeyTransport::RsaOaep(DigestAlg::Sha1)
    } else {
        KeyTransport::RsaPkcs1v15
    };
    let plain = rest.get(2..).unwrap_or(&[]);
    let Ok(built) = enveloped_data::build(plain, cert, transport, cipher, &Pinned) else {
        return;
    };
    if let Ok(ed) = EnvelopedData::parse(&built) {
        if let Ok((_, _, opened)) = ed.decrypt(cert, key, false, &Pinned) {
            message_data(&opened);
        }
    }
}

/// What a decrypted messageData goes through: a CSR (PKCSReq/RenewalReq) or a certificate
/// identifier (CertPoll/GetCert/GetCRL).
fn message_data(data: &[u8]) {
    pkcs10(data);
    let _ = Certificate::parse(data);
}

/// PKCS#10: structure, self-signature, challengePassword, extensionRequest.
pub fn pkcs10(data: &[u8]) {
    if let Ok(csr) = CertificationRequest::parse_and_verify(data) {
        for o in [
            oid::SUBJECT_ALT_NAME,
            oid::KEY_USAGE,
            oid::EXT_KEY_USAGE,
            oid::BASIC_CONSTRAINTS,
        ] {
            let _ = csr.extension(o);
        }
    }
}

/// The GET query string: operation, message (half-escaped base64), percent decoding.
pub fn get_query(data: &[u8]) {
    let _ = decode_base64_lenient(data);
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let _ = percent_decode(q);
    if let Some(op) = query_param(q, "operation") {
        let _ = Operation::parse(op);
    }
    if let Some(m) = query_param(q, "message") {
        if let Some(der) = decode_get_message(m) {
            pki_message(&der);
        }
    }
    let _ = decode_get_message(q);
}

/// An OCSP request (POST body or decoded GET path).
pub fn ocsp_request(data: &[u8]) {
    let _ = ocsp::parse_request(data);
}

/// `POST /trust/v1/verify`: the JSON body, then the base64 certificate and signature and the
/// certificate parser, as `TrustCheck::verify` runs them before touching the store.
pub fn trust_json(data: &[u8]) {
    let Ok(req) = serde_json::from_slice::<scepd::trust::VerifyRequest>(data) else {
        return;
    };
    let der = decode_base64_lenient(req.certificate.as_bytes());
    let sig = decode_base64_lenient(req.signature.as_bytes());
    if let (Some(der), Some(sig)) = (der, sig) {
        if let Ok(cert) = Certificate::parse(&der) {
            let _ = cert.extension(oid::KEY_USAGE);
            let _ = cert.is_valid_at(0);
            for alg in [SignatureAlg::RsaSha256, SignatureAlg::EcdsaSha256] {
                let _ = verify_signature(cert.spki, alg, req.nonce.as_bytes(), &sig);
            }
        }
    }
}

/// Admin API request bodies: JSON, then every field interpreter an admin request reaches
/// before the store (times, revocation reasons, operator regexes, key algorithms, TTLs).
pub fn admin_json(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Some(obj) = v.as_object() else {
        return;
    };
    for (k, val) in obj {
        let Some(s) = val.as_str() else {
            continue;
        };
        match k.as_str() {
            "activate_at" | "since" => {
                let _ = scepd_pki::encoding::parse_rfc3339(s);
            }
            "reason" => {
                let _ = scepd_pki::revocation::RevocationReason::parse(s);
            }
            "device_id_pattern" => {
                if let Ok(p) = scepd::devices::identity::DevicePattern::new(s) {
                    let subject = scepd_pki::x509::name::build(&[(oid::AT_COMMON_NAME, s)]);
                    let _ = scepd::devices::identity::extract(&subject, &[], Some(&p));
                }
            }
            "key_algorithm" => {
                let _ = s.parse::<scepd_pki::keys::KeyAlgorithm>();
            }
            "challenge_ttl" => {
                let _ = scepd::challenge::dynamic::parse_ttl(s);
            }
            _ => {}
        }
    }
}

/// The configuration file: TOML into `FileConfig`, then validation.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(fc) = toml::from_str::<scepd::config::FileConfig>(text) {
        let _ = scepd::config::Config::from_file(
            fc,
            scepd::config::Overrides {
                data_dir: Some(PathBuf::from("/nonexistent")),
                ..Default::default()
            },
        );
    }
}
