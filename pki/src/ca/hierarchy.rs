//! Bootstrap of a fresh hierarchy (`scepd init`): root → intermediate → RA.
//!
//! The RA is always RSA: Apple refuses non-RSA SCEP recipients (docs/scep-protocol.md §1.7), and it
//! carries digitalSignature + keyEncipherment because it both decrypts requests and signs CertReps.

use zeroize::Zeroizing;

use super::profiles;
use crate::algorithms::DigestAlg;
use crate::der::oid;
use crate::issue::TbsCertificate;
use crate::issue::extensions;
use crate::issue::serial::random_serial;
use crate::keys::{KeyAlgorithm, KeyError, Signer, SoftwareKey};
use crate::random::Random;
use crate::x509::name;

/// What to create.
#[derive(Debug, Clone)]
pub struct HierarchySpec {
    /// Organisation name placed in every CA subject.
    pub organization: String,
    /// Root key algorithm.
    pub root_key: KeyAlgorithm,
    /// Intermediate (issuing CA) key algorithm.
    pub intermediate_key: KeyAlgorithm,
    /// RA key algorithm (must be RSA).
    pub ra_key: KeyAlgorithm,
    /// Root validity in seconds.
    pub root_validity_secs: i64,
    /// Intermediate validity in seconds (clamped to the root).
    pub intermediate_validity_secs: i64,
    /// RA validity in seconds (clamped to the intermediate).
    pub ra_validity_secs: i64,
    /// Creation time.
    pub now: i64,
}

/// One created authority: certificate, key in memory, and PKCS#8 for the keystore.
pub struct Authority {
    /// Certificate DER.
    pub cert_der: Vec<u8>,
    /// The private key.
    pub key: SoftwareKey,
    /// PKCS#8 DER of the key (zeroized on drop).
    pub pkcs8: Zeroizing<Vec<u8>>,
}

/// A complete new hierarchy.
pub struct Hierarchy {
    /// Self-signed root.
    pub root: Authority,
    /// Issuing intermediate, signed by the root.
    pub intermediate: Authority,
    /// SCEP RA, signed by the intermediate.
    pub ra: Authority,
}

/// Errors creating a hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HierarchyError {
    /// The RA key algorithm is not RSA.
    #[error("the RA key must be RSA (Apple devices refuse other SCEP recipients)")]
    RaNotRsa,
    /// Key generation or signing failed.
    #[error("key operation failed: {0}")]
    Key(#[from] KeyError),
    /// The random source failed.
    #[error("random source failed")]
    Random,
}

fn digest_for(alg: KeyAlgorithm) -> DigestAlg {
    match alg {
        KeyAlgorithm::EcP384 => DigestAlg::Sha384,
        _ => DigestAlg::Sha256,
    }
}

/// Creates a certificate for `key` named `subject`, signed by `issuer` (or self-signed).
#[allow(clippy::too_many_arguments)]
pub fn certify(
    subject: &[u8],
    key: &SoftwareKey,
    issuer: Option<(&[u8], &[u8], &SoftwareKey, KeyAlgorithm)>,
    self_alg: KeyAlgorithm,
    not_before: i64,
    not_after: i64,
    exts: Vec<Vec<u8>>,
    rng: &dyn Random,
) -> Result<Vec<u8>, HierarchyError> {
    let serial = random_serial(rng).map_err(|_| HierarchyError::Random)?;
    let kid =
        extensions::key_identifier(key.public_key_der()).map_err(|_| KeyError::Rejected("spki"))?;
    let (issuer_name, issuer_spki, issuer_key, issuer_alg) = match issuer {
        Some((n, s, k, a)) => (n, s, k, a),
        None => (subject, key.public_key_der(), key, self_alg),
    };
    let akid = extensions::key_identifier(issuer_spki).map_err(|_| KeyError::Rejected("spki"))?;
    let mut extensions = exts;
    extensions.push(extensions::subject_key_identifier(&kid));
    extensions.push(extensions::authority_key_identifier(&akid));
    let tbs = TbsCertificate {
        serial: &serial,
        issuer: issuer_name,
        subject,
        not_before,
        not_after,
        spki: key.public_key_der(),
        extensions,
    };
    Ok(tbs.sign(issuer_key, digest_for(issuer_alg))?)
}

/// Generates root, intermediate and RA.
pub fn bootstrap(spec: &HierarchySpec, rng: &dyn Random) -> Result<Hierarchy, HierarchyError> {
    if !spec.ra_key.is_rsa() {
        return Err(HierarchyError::RaNotRsa);
    }
    let org = spec.organization.as_str();
    let nb = spec.now - 300;
    let root_name = name::build(&[
        (oid::AT_ORGANIZATION, org),
        (oid::AT_COMMON_NAME, &format!("{org} Root CA")),
    ]);
    let int_name = name::build(&[
        (oid::AT_ORGANIZATION, org),
        (oid::AT_COMMON_NAME, &format!("{org} Device CA")),
    ]);
    let ra_name = name::build(&[
        (oid::AT_ORGANIZATION, org),
        (oid::AT_COMMON_NAME, &format!("{org} SCEP RA")),
    ]);

    let (root_key, root_pkcs8) = SoftwareKey::generate(spec.root_key)?;
    let root_na = spec.now + spec.root_validity_secs;
    let root_der = certify(
        &root_name,
        &root_key,
        None,
        spec.root_key,
        nb,
        root_na,
        profiles::root(),
        rng,
    )?;

    let (int_key, int_pkcs8) = SoftwareKey::generate(spec.intermediate_key)?;
    let int_na = (spec.now + spec.intermediate_validity_secs).min(root_na);
    let int_der = certify(
        &int_name,
        &int_key,
        Some((
            &root_name,
            root_key.public_key_der(),
            &root_key,
            spec.root_key,
        )),
        spec.intermediate_key,
        nb,
        int_na,
        profiles::intermediate(),
        rng,
    )?;

    let (ra_key, ra_pkcs8) = SoftwareKey::generate(spec.ra_key)?;
    let ra_na = (spec.now + spec.ra_validity_secs).min(int_na);
    let ra_der = certify(
        &ra_name,
        &ra_key,
        Some((
            &int_name,
            int_key.public_key_der(),
            &int_key,
            spec.intermediate_key,
        )),
        spec.ra_key,
        nb,
        ra_na,
        profiles::ra(),
        rng,
    )?;

    Ok(Hierarchy {
        root: Authority {
            cert_der: root_der,
            key: root_key,
            pkcs8: root_pkcs8,
        },
        intermediate: Authority {
            cert_der: int_der,
            key: int_key,
            pkcs8: int_pkcs8,
        },
        ra: Authority {
            cert_der: ra_der,
            key: ra_key,
            pkcs8: ra_pkcs8,
        },
    })
}
