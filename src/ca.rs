//! The CA material the server runs with: loaded once from the store and keystore.

use std::sync::Arc;

use scepd_pki::keys::SoftwareKey;

use crate::keystore::{Keystore, KeystoreError};
use crate::store::{CaRole, Store, StoreError};

/// Errors loading CA material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaLoadError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key could not be loaded.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// Something is missing or inconsistent.
    #[error("CA material: {0}")]
    Inconsistent(String),
}

/// One loaded authority.
pub struct LoadedAuthority {
    /// Store id.
    pub id: String,
    /// Certificate DER.
    pub cert_der: Vec<u8>,
    /// Private key (None for the root, which is only needed to sign intermediates).
    pub key: Option<SoftwareKey>,
}

/// Root, active intermediate and active RA.
pub struct CaSet {
    /// Root certificate.
    pub root: LoadedAuthority,
    /// Issuing intermediate.
    pub intermediate: LoadedAuthority,
    /// RA (decrypts requests, signs CertReps).
    pub ra: LoadedAuthority,
}

impl CaSet {
    /// Loads the active hierarchy; fails when the data dir is not initialized.
    pub fn load(store: &Store, keystore: &Keystore) -> Result<Arc<Self>, CaLoadError> {
        let get = |role: CaRole, with_key: bool| -> Result<LoadedAuthority, CaLoadError> {
            let rec = store.active_authority(role)?.ok_or_else(|| {
                CaLoadError::Inconsistent(format!("no active {} authority", role.as_str()))
            })?;
            let key = if with_key {
                Some(keystore.load(&rec.key_ref)?)
            } else {
                None
            };
            Ok(LoadedAuthority {
                id: rec.id,
                cert_der: rec.cert_der,
                key,
            })
        };
        let set = Self {
            root: get(CaRole::Root, false)?,
            intermediate: get(CaRole::Intermediate, true)?,
            ra: get(CaRole::Ra, true)?,
        };
        set.check()?;
        Ok(Arc::new(set))
    }

    /// Start-up self-check: each certificate chains to the next by signature and name bytes,
    /// and each key matches its certificate (design.md gotcha 7).
    fn check(&self) -> Result<(), CaLoadError> {
        use scepd_pki::keys::Signer;
        use scepd_pki::x509::Certificate;
        let bad = |s: &str| CaLoadError::Inconsistent(s.to_owned());
        let root = Certificate::parse(&self.root.cert_der)
            .map_err(|_| bad("root certificate unparsable"))?;
        let int = Certificate::parse(&self.intermediate.cert_der)
            .map_err(|_| bad("intermediate unparsable"))?;
        let ra =
            Certificate::parse(&self.ra.cert_der).map_err(|_| bad("RA certificate unparsable"))?;
        if int.issuer != root.subject || int.verify_signed_by(root.spki).is_err() {
            return Err(bad("intermediate is not signed by the root"));
        }
        if ra.issuer != int.subject || ra.verify_signed_by(int.spki).is_err() {
            return Err(bad("RA certificate is not signed by the intermediate"));
        }
        for (a, c, what) in [
            (&self.intermediate, &int, "intermediate"),
            (&self.ra, &ra, "RA"),
        ] {
            if a.key.as_ref().map(|k| k.public_key_der()) != Some(c.spki) {
                return Err(CaLoadError::Inconsistent(format!(
                    "{what} key does not match its certificate"
                )));
            }
        }
        if self.ra.key.as_ref().is_some_and(|k| !k.is_rsa()) {
            return Err(bad("RA key must be RSA"));
        }
        Ok(())
    }
}
