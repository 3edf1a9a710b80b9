//! From a verified CSR to a signed device certificate: check the key, sanitise the subject,
//! apply the profile (never the extensions the CSR asks for, except filtered SANs), sign.

use super::certificate::TbsCertificate;
use super::extensions::{self, KeyUsage};
use super::profile::DeviceProfile;
use super::serial::random_serial;
use crate::algorithms::{DigestAlg, PublicKeyInfo};
use crate::der::{DerError, oid, strict};
use crate::keys::Signer;
use crate::pkcs10::Csr;
use crate::random::Random;
use crate::x509::general_names::AltName;
use crate::x509::{Certificate, name};

/// Why a request cannot be certified (all map to SCEP badRequest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The requested key is too small or of a refused type.
    #[error("requested key refused: {0}")]
    Key(String),
    /// The requested subject is malformed.
    #[error("requested subject refused: {0}")]
    Subject(String),
    /// A structure we would copy into the certificate (subject, public key, subjectAltName)
    /// is not strict DER, or holds characters its type or our policy does not allow.
    #[error("requested {field} is not strict DER: {reason}")]
    NotDer {
        /// Which structure: "subject", "public key" or "subjectAltName".
        field: &'static str,
        /// What was wrong with it.
        reason: DerError,
    },
    /// The issuer cannot issue now (expired).
    #[error("issuing CA is not valid now")]
    IssuerExpired,
    /// Our signing key failed.
    #[error("signing failed")]
    Signing,
}

/// A signed certificate and what was recorded about it.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// Certificate DER.
    pub der: Vec<u8>,
    /// Serial magnitude.
    pub serial: Vec<u8>,
    /// Subject text.
    pub subject: String,
    /// Copied subjectAltNames.
    pub sans: Vec<AltName>,
    /// notBefore.
    pub not_before: i64,
    /// notAfter.
    pub not_after: i64,
}

/// Issues a device certificate for `csr` under `issuer`.
pub fn issue_device_certificate(
    requested: &Csr<'_>,
    profile: &DeviceProfile,
    issuer: &Certificate<'_>,
    issuer_key: &dyn Signer,
    now: i64,
    rng: &dyn Random,
) -> Result<IssuedCertificate, IssueError> {
    let csr = &requested.request;
    // Subject, key and SANs are copied as received: only strict DER goes under our signature.
    let not_der = |field| move |reason| IssueError::NotDer { field, reason };
    strict::check(csr.spki).map_err(not_der("public key"))?;
    let key = PublicKeyInfo::parse(csr.spki).map_err(|e| IssueError::Key(e.to_string()))?;
    if key.algorithm == oid::RSA_ENCRYPTION {
        // The RSAPublicKey inside the BIT STRING is not reached by the outer check.
        strict::check(key.key).map_err(not_der("public key"))?;
    }
    match key.rsa_bits() {
        Some(bits) if bits < profile.min_rsa_bits => {
            return Err(IssueError::Key(format!(
                "RSA-{bits} is below the minimum of {}",
                profile.min_rsa_bits
            )));
        }
        Some(bits) if bits > crate::algorithms::MAX_RSA_BITS => {
            return Err(IssueError::Key(format!("RSA-{bits} is too large")));
        }
        Some(_) => {}
        None if profile.allow_ec_keys
            && (key.describe() == "EC P-256" || key.describe() == "EC P-384") => {}
        None => {
            return Err(IssueError::Key(format!(
                "{} keys are not accepted",
                key.describe()
            )));
        }
    }
    name::validate_subject(csr.subject).map_err(not_der("subject"))?;
    if !issuer.is_valid_at(now) {
        return Err(IssueError::IssuerExpired);
    }
    let not_before = (now - profile.backdate_secs).max(issuer.not_before);
    let not_after = (now + profile.validity_secs).min(issuer.not_after);
    let serial = random_serial(rng).map_err(|_| IssueError::Signing)?;
    let issuer_kid = crate::x509::certificate::subject_key_id(issuer)
        .map(<[u8]>::to_vec)
        .map_or_else(|| extensions::key_identifier(issuer.spki), Ok)
        .map_err(|_| IssueError::Signing)?;
    let kid = extensions::key_identifier(csr.spki).map_err(|e| IssueError::Key(e.to_string()))?;
    let empty_subject = name::attributes(csr.subject)
        .map(|a| a.is_empty())
        .unwrap_or(true);
    let mut exts = vec![
        KeyUsage(KeyUsage::DIGITAL_SIGNATURE).extension(),
        extensions::extended_key_usage(&[oid::KP_CLIENT_AUTH]),
        extensions::basic_constraints(false, None),
        extensions::subject_key_identifier(&kid),
        extensions::authority_key_identifier(&issuer_kid),
    ];
    let mut sans = Vec::new();
    if profile.copy_san {
        let requested = requested
            .sans
            .as_ref()
            .map_err(|e| not_der("subjectAltName")(e.clone()))?;
        if let Some(gn) = &requested.general_names {
            exts.push(extensions::subject_alt_name(gn, empty_subject));
            sans = requested.names.clone();
        }
    }
    if empty_subject && sans.is_empty() {
        return Err(IssueError::Subject(
            "empty subject and no subjectAltName".into(),
        ));
    }
    if let Some(url) = &profile.crl_url {
        exts.push(extensions::crl_distribution_point(url));
    }
    if let Some(aia) = extensions::authority_info_access(
        profile.ocsp_url.as_deref(),
        profile.ca_issuers_url.as_deref(),
    ) {
        exts.push(aia);
    }
    let tbs = TbsCertificate {
        serial: &serial,
        issuer: issuer.subject,
        subject: csr.subject,
        not_before,
        not_after,
        spki: csr.spki,
        extensions: exts,
    };
    let digest = if issuer_key.signature_alg(DigestAlg::Sha256).is_ok() {
        DigestAlg::Sha256
    } else {
        DigestAlg::Sha384
    };
    let der = tbs
        .sign(issuer_key, digest)
        .map_err(|_| IssueError::Signing)?;
    Ok(IssuedCertificate {
        der,
        serial: serial.to_vec(),
        subject: requested.subject.clone(),
        sans,
        not_before,
        not_after,
    })
}
