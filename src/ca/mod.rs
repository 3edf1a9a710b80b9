//! The CA material the server runs with: the active root → intermediate → RA chain, a staged
//! (`next`) intermediate and RA during a rotation, and retired intermediates and RAs that stay
//! trusted (their CRLs are published, OCSP answers for them, late requests still decrypt).
//! Loaded from the store and keystore; swapped atomically when a rotation is activated.

pub mod bootstrap;
pub mod encryption_ra;
pub mod keystore;
pub mod rotation;

use std::sync::{Arc, RwLock};

use scepd_pki::keys::SoftwareKey;
use scepd_pki::scep::{Recipient, ca_certs};
use scepd_pki::x509::{Certificate, ParsedCertificate};

use crate::ca::keystore::{Keystore, KeystoreError};
use crate::store::{CaRecord, CaRole, CaState, EncryptionCertificate, Store, StoreError};

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

/// One loaded authority that signs or decrypts: its certificate, parsed once, and its key.
pub struct LoadedAuthority {
    /// Store id.
    pub id: String,
    /// The certificate.
    pub cert: ParsedCertificate,
    /// The private key.
    pub key: SoftwareKey,
    /// The store id of its issuer.
    pub issuer_id: Option<String>,
    /// For an RA: its encryption-only certificate and key (`[pki] encryption_ra`), whose
    /// `id` is its key reference and `issuer_id` the RA's issuer.
    pub encryption: Option<Box<LoadedAuthority>>,
}

/// The root: its certificate only. Its key signs intermediates alone and is loaded for that
/// (`rotation.rs`), or stays offline.
pub struct LoadedRoot {
    /// Store id.
    pub id: String,
    /// The certificate.
    pub cert: ParsedCertificate,
}

/// What GetCACert and GetNextCACert publish besides the RA and the intermediate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// The root too (`[pki] include_root`).
    pub include_root: bool,
    /// Each RA's encryption certificate, right after the RA (`[pki] encryption_ra`). Requests
    /// encrypted to one are decrypted whether or not it is published.
    pub encryption_ra: bool,
}

impl Publish {
    /// As configured.
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            include_root: config.include_root,
            encryption_ra: config.encryption_ra,
        }
    }
}

/// Everything the server signs and decrypts with, at one moment.
pub struct CaSet {
    /// Root certificate.
    pub root: LoadedRoot,
    /// Active issuing intermediate.
    pub intermediate: LoadedAuthority,
    /// Active RA (decrypts requests, signs CertReps).
    pub ra: LoadedAuthority,
    /// Staged intermediate (GetNextCACert), if a rotation is pending.
    pub next_intermediate: Option<LoadedAuthority>,
    /// Staged RA issued by the staged intermediate.
    pub next_ra: Option<LoadedAuthority>,
    /// Retired intermediates: still trusted until their certificates expire.
    pub retired_intermediates: Vec<LoadedAuthority>,
    /// Retired RAs: still decrypt requests addressed to them.
    pub retired_ras: Vec<LoadedAuthority>,
    /// GetCACert body: RA, intermediate, (root). `Bytes`: each response shares it, no copy.
    pub ca_cert_body: bytes::Bytes,
    /// GetNextCACert body, signed by the current RA (RFC 8894 §4.7), when a rotation is staged.
    pub next_ca_cert_body: Option<bytes::Bytes>,
    /// GetCACaps body (it names GetNextCACert only while a rotation is staged).
    pub ca_caps_body: bytes::Bytes,
    /// What the store held when this set was loaded, to notice changes by other processes.
    pub version: StoreVersion,
}

/// What [`CaSet::recipients`] offers a request's envelope, and which RA answers each.
pub struct Recipients<'c> {
    offered: Vec<Recipient<'c>>,
    answering: Vec<&'c LoadedAuthority>,
}

impl<'c> Recipients<'c> {
    /// The recipients, in the order to try.
    pub fn offered(&self) -> &[Recipient<'c>] {
        &self.offered
    }

    /// The RA that signs the reply to a request encrypted to recipient `index`: the RA itself,
    /// or the RA whose encryption certificate it is. Apple insists the CertRep signer is
    /// exactly the RA it picked (docs/scep-protocol.md §1.6).
    pub fn answering(&self, index: usize) -> Option<&'c LoadedAuthority> {
        self.answering.get(index).copied()
    }
}

/// The (id, state) of every authority and the key reference of every RA encryption
/// certificate: what [`CaHandle::reload_if_changed`] compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreVersion {
    /// (id, state) of every authority, oldest first.
    pub authorities: Vec<(String, CaState)>,
    /// Key reference of every RA encryption certificate, oldest first.
    pub encryption: Vec<String>,
}

fn parsed(id: &str, der: &[u8]) -> Result<ParsedCertificate, CaLoadError> {
    ParsedCertificate::parse(der.to_vec())
        .map_err(|e| CaLoadError::Inconsistent(format!("{id} certificate unparsable: {e}")))
}

fn load_one(rec: &CaRecord, keystore: &Keystore) -> Result<LoadedAuthority, CaLoadError> {
    Ok(LoadedAuthority {
        id: rec.id.clone(),
        cert: parsed(&rec.id, &rec.cert_der)?,
        key: keystore.load(&rec.key_ref)?,
        issuer_id: rec.issuer_id.clone(),
        encryption: None,
    })
}

/// What the store holds now (see [`StoreVersion`]).
pub fn store_version(store: &Store) -> Result<StoreVersion, StoreError> {
    Ok(version_of(
        &store.authorities()?,
        &store.encryption_certificates()?,
    ))
}

fn version_of(records: &[CaRecord], encryption: &[EncryptionCertificate]) -> StoreVersion {
    StoreVersion {
        authorities: records.iter().map(|a| (a.id.clone(), a.state)).collect(),
        encryption: encryption.iter().map(|e| e.key_ref.clone()).collect(),
    }
}

/// Attaches its encryption certificate (with its key) to `ra`, if it has one.
fn attach_encryption(
    mut ra: LoadedAuthority,
    encryption: &[EncryptionCertificate],
    keystore: &Keystore,
) -> Result<LoadedAuthority, CaLoadError> {
    if let Some(e) = encryption.iter().find(|e| e.ra_id == ra.id) {
        ra.encryption = Some(Box::new(LoadedAuthority {
            id: e.key_ref.clone(),
            cert: parsed(&e.key_ref, &e.cert_der)?,
            key: keystore.load(&e.key_ref)?,
            issuer_id: ra.issuer_id.clone(),
            encryption: None,
        }));
    }
    Ok(ra)
}

impl CaSet {
    /// Loads all authorities; fails when the data dir is not initialized or keys are unusable.
    pub fn load(
        store: &Store,
        keystore: &Keystore,
        publish: Publish,
        now: i64,
    ) -> Result<Arc<Self>, CaLoadError> {
        let records = store.authorities()?;
        let encryption = store.encryption_certificates()?;
        let with_encryption = |ra: LoadedAuthority| attach_encryption(ra, &encryption, keystore);
        let find = |role: CaRole, state: CaState| {
            records
                .iter()
                .filter(move |r| r.role == role && r.state == state)
        };
        let active = |role: CaRole| {
            find(role, CaState::Active).next().ok_or_else(|| {
                CaLoadError::Inconsistent(format!("no active {} authority", role.as_str()))
            })
        };
        let staged = |role: CaRole| {
            find(role, CaState::Next)
                .next()
                .map(|r| load_one(r, keystore))
                .transpose()
        };
        let retired = |role: CaRole| {
            find(role, CaState::Retired)
                .map(|r| load_one(r, keystore))
                .collect::<Result<Vec<_>, _>>()
        };
        let root = active(CaRole::Root)?;
        let root = LoadedRoot {
            id: root.id.clone(),
            cert: parsed(&root.id, &root.cert_der)?,
        };
        let intermediate = load_one(active(CaRole::Intermediate)?, keystore)?;
        let ra = with_encryption(load_one(active(CaRole::Ra)?, keystore)?)?;
        // RA first (clients that take the first RA-like certificate), then its encryption
        // certificate, then the CAs.
        let mut chain: Vec<&[u8]> = vec![ra.cert.der()];
        if let (true, Some(e)) = (publish.encryption_ra, &ra.encryption) {
            chain.push(e.cert.der());
        }
        chain.push(intermediate.cert.der());
        if publish.include_root {
            chain.push(root.cert.der());
        }
        let ca_cert_body = bytes::Bytes::from(ca_certs::ca_certs(&chain));
        let next_intermediate = staged(CaRole::Intermediate)?;
        let next_ra = staged(CaRole::Ra)?.map(with_encryption).transpose()?;
        let next_ca_cert_body = match &next_intermediate {
            Some(n) => Some(bytes::Bytes::from(next_body(
                &ra,
                n,
                next_ra.as_ref(),
                publish,
                &root,
                now,
            )?)),
            None => None,
        };
        let ca_caps_body = bytes::Bytes::from(
            scepd_pki::scep::caps::Capabilities {
                renewal: true,
                get_next_ca_cert: next_ca_cert_body.is_some(),
            }
            .body(),
        );
        let set = Self {
            root,
            intermediate,
            ra,
            next_intermediate,
            next_ra,
            retired_intermediates: retired(CaRole::Intermediate)?,
            retired_ras: retired(CaRole::Ra)?
                .into_iter()
                .map(with_encryption)
                .collect::<Result<_, _>>()?,
            ca_cert_body,
            next_ca_cert_body,
            ca_caps_body,
            version: version_of(&records, &encryption),
        };
        set.check()?;
        Ok(Arc::new(set))
    }

    /// Active and retired intermediates, active first: everything whose certificates we answer for.
    pub fn issuers(&self) -> impl Iterator<Item = &LoadedAuthority> {
        std::iter::once(&self.intermediate).chain(self.retired_intermediates.iter())
    }

    /// The issuer with this store id (active or retired).
    pub fn issuer(&self, id: &str) -> Option<&LoadedAuthority> {
        self.issuers().find(|a| a.id == id)
    }

    /// The issuer (active or retired) whose subject is `issuer_name` (DER) and which signed
    /// `cert`, when given: names alone are not proof, a retired intermediate may share the
    /// active one's name.
    pub fn issuer_named(
        &self,
        issuer_name: &[u8],
        cert: Option<&Certificate<'_>>,
    ) -> Option<&LoadedAuthority> {
        self.issuers().find(|a| {
            a.cert.subject() == issuer_name
                && cert.is_none_or(|x| x.verify_signed_by(a.cert.spki()).is_ok())
        })
    }

    /// RAs that may decrypt a request, in the order to try: active, staged, retired.
    pub fn decrypting_ras(&self) -> impl Iterator<Item = &LoadedAuthority> {
        std::iter::once(&self.ra)
            .chain(self.next_ra.iter())
            .chain(self.retired_ras.iter())
    }

    /// Every certificate a request may be encrypted to, in the order to try: the active RA,
    /// then the staged and retired ones (clients that fetched GetNextCACert or GetCACert
    /// around a rotation); each RA's encryption certificate right after it (clients that pick
    /// their recipient by key usage use that one).
    pub fn recipients(&self) -> Recipients<'_> {
        let mut offered = Vec::new();
        let mut answering = Vec::new();
        for ra in self.decrypting_ras() {
            for r in std::iter::once(ra).chain(ra.encryption.as_deref()) {
                offered.push(Recipient {
                    cert: r.cert.get(),
                    key: &r.key,
                });
                answering.push(ra);
            }
        }
        Recipients { offered, answering }
    }

    /// Start-up self-check: each certificate chains to its issuer by signature and name bytes,
    /// and each key matches its certificate (docs/architecture.md gotcha 7).
    fn check(&self) -> Result<(), CaLoadError> {
        use scepd_pki::keys::Signer;
        let bad = |s: String| CaLoadError::Inconsistent(s);
        let keyed: Vec<&LoadedAuthority> = [&self.intermediate, &self.ra]
            .into_iter()
            .chain(self.next_intermediate.iter())
            .chain(self.next_ra.iter())
            .chain(self.retired_intermediates.iter())
            .chain(self.retired_ras.iter())
            .chain(
                self.decrypting_ras()
                    .filter_map(|ra| ra.encryption.as_deref()),
            )
            .collect();
        let root = (self.root.id.as_str(), self.root.cert.get());
        let certs: Vec<(&str, Certificate<'_>)> = std::iter::once(root)
            .chain(keyed.iter().map(|a| (a.id.as_str(), a.cert.get())))
            .collect();
        let issuer_ids = std::iter::once(None).chain(keyed.iter().map(|a| a.issuer_id.as_deref()));
        for ((id, cert), issuer_id) in certs.iter().zip(issuer_ids) {
            // The root is its own issuer.
            let issuer = certs.iter().find(|(i, _)| *i == issuer_id.unwrap_or(id));
            if let Some((issuer_id, ic)) = issuer {
                if cert.issuer != ic.subject || cert.verify_signed_by(ic.spki).is_err() {
                    return Err(bad(format!("{id} is not signed by {issuer_id}")));
                }
            }
        }
        for a in &keyed {
            if a.key.public_key_der() != a.cert.spki() {
                return Err(bad(format!("{} key does not match its certificate", a.id)));
            }
        }
        for ra in self.decrypting_ras() {
            if std::iter::once(ra)
                .chain(ra.encryption.as_deref())
                .any(|a| !a.key.is_rsa())
            {
                return Err(bad(format!("RA {} key must be RSA", ra.id)));
            }
        }
        Ok(())
    }
}

/// GetNextCACert: the next RA (and its encryption certificate), the next intermediate and the
/// root, announced under the current RA's signature.
fn next_body(
    ra: &LoadedAuthority,
    next: &LoadedAuthority,
    next_ra: Option<&LoadedAuthority>,
    publish: Publish,
    root: &LoadedRoot,
    now: i64,
) -> Result<Vec<u8>, CaLoadError> {
    let mut certs: Vec<&[u8]> = Vec::new();
    if let Some(r) = next_ra {
        certs.push(r.cert.der());
        if let (true, Some(e)) = (publish.encryption_ra, &r.encryption) {
            certs.push(e.cert.der());
        }
    }
    certs.push(next.cert.der());
    certs.push(root.cert.der());
    ca_certs::next_ca_certs(&certs, &ra.cert.get(), &ra.key, now)
        .map_err(|e| CaLoadError::Inconsistent(format!("signing GetNextCACert: {e}")))
}

/// The current [`CaSet`], replaceable at run time (rotation activation).
pub struct CaHandle {
    current: RwLock<Arc<CaSet>>,
    keystore: Keystore,
    publish: Publish,
    /// Why the store's authorities could not be loaded (e.g. a node of a cluster lacks the
    /// key another node staged and activated): `/readyz` fails until a reload succeeds.
    behind: RwLock<Option<String>>,
}

impl CaHandle {
    /// Loads the initial set.
    pub fn load(
        store: &Store,
        keystore: Keystore,
        publish: Publish,
        now: i64,
    ) -> Result<Arc<Self>, CaLoadError> {
        let set = CaSet::load(store, &keystore, publish, now)?;
        Ok(Arc::new(Self {
            current: RwLock::new(set),
            keystore,
            publish,
            behind: RwLock::new(None),
        }))
    }

    /// The set in force now (cheap: one Arc clone).
    pub fn get(&self) -> Arc<CaSet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads when the store's authorities differ from the loaded ones. Returns true when a
    /// new set is in force. A failed load keeps the old set serving.
    pub fn reload_if_changed(&self, store: &Store, now: i64) -> Result<bool, CaLoadError> {
        if store_version(store)? == self.get().version {
            self.set_behind(None);
            return Ok(false);
        }
        let set = match CaSet::load(store, &self.keystore, self.publish, now) {
            Ok(set) => set,
            Err(e) => {
                self.set_behind(Some(e.to_string()));
                return Err(e);
            }
        };
        self.set_behind(None);
        match self.current.write() {
            Ok(mut g) => *g = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        tracing::info!("CA set reloaded");
        Ok(true)
    }

    /// Why the loaded set is behind the store's authorities, if it is (not ready).
    pub fn behind(&self) -> Option<String> {
        match self.behind.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_behind(&self, why: Option<String>) {
        match self.behind.write() {
            Ok(mut g) => *g = why,
            Err(poisoned) => *poisoned.into_inner() = why,
        }
    }

    /// What GetCACert publishes.
    pub fn publish(&self) -> Publish {
        self.publish
    }

    /// The keystore (rotation writes new keys through it).
    pub fn keystore(&self) -> &Keystore {
        &self.keystore
    }
}
