//! CRL publishing and the OCSP responder. The CRL is rebuilt when the store's revocation
//! generation moves (any process: server or CLI) and well before nextUpdate; OCSP reads the
//! store on every request, so a revocation is visible there at once (responses reused for
//! nonce-less requests are checked against the generation first: `ocsp_cache.rs`).
//!
//! Several nodes on one database publish one CRL sequence: a node that finds the CRL stale
//! claims the store's `crl-publisher` lease, signs, and stores the CRL only while it holds
//! the lease; every node serves the stored CRL, adopting a newer one on each refresh (twice a
//! second), so CRL numbers never go backwards whichever node is asked. A holder that dies
//! loses the lease after [`CRL_LEASE_SECS`] and another node takes over.

pub mod ocsp_cache;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use scepd_pki::issue::extensions::key_identifier;
use scepd_pki::revocation::RevocationReason;
use scepd_pki::revocation::crl::{self, CrlParams, RevokedEntry};
use scepd_pki::revocation::ocsp::{
    self, CertStatus, ErrorStatus, IssuerHashes, Responder, SingleResponse,
};

use crate::ca::{CaHandle, CaSet, LoadedAuthority};
use crate::revocation::ocsp_cache::{OcspCache, Stamp};
use crate::store::{CertStatus as StoredStatus, Store, StoreError, StoredCrl};

/// Errors building revocation data (ours, never the client's).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing or parsing our own material failed.
    #[error("revocation signing: {0}")]
    Pki(String),
    /// No CRL of this issuer has been published yet (the publisher is another node).
    #[error("no CRL of {0} published yet")]
    NotPublished(String),
}

/// The store lease whose holder publishes CRLs.
pub const CRL_LEASE: &str = "crl-publisher";
/// How long a publisher holds the lease without renewing it: the longest a revocation waits
/// for its CRL after the publishing node died.
pub const CRL_LEASE_SECS: i64 = 3;

/// A published CRL.
#[derive(Debug, Clone)]
pub struct PublishedCrl {
    /// DER.
    pub der: Arc<Vec<u8>>,
    /// CRL number.
    pub number: u64,
    /// thisUpdate.
    pub this_update: i64,
    /// nextUpdate.
    pub next_update: i64,
    /// Store generation it reflects.
    pub generation: i64,
}

/// Timing of revocation data.
#[derive(Debug, Clone, Copy)]
pub struct RevocationTiming {
    /// nextUpdate − thisUpdate of CRLs.
    pub crl_validity_secs: i64,
    /// OCSP nextUpdate − thisUpdate.
    pub ocsp_validity_secs: i64,
}

/// CRLs and OCSP for every issuing CA we answer for (active and retired intermediates).
pub struct Revocation {
    store: Arc<Store>,
    ca: Arc<CaHandle>,
    timing: RevocationTiming,
    crls: RwLock<HashMap<String, PublishedCrl>>,
    ocsp_cache: OcspCache,
    /// Who this process is when it holds the CRL lease.
    node_id: String,
}

impl From<StoredCrl> for PublishedCrl {
    fn from(c: StoredCrl) -> Self {
        Self {
            der: Arc::new(c.der),
            number: c.number,
            this_update: c.this_update,
            next_update: c.next_update,
            generation: c.generation,
        }
    }
}

/// A name for this process in the lease table: host, PID and a random part (a restarted
/// process is a new holder).
fn node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let random = crate::challenge::secret::generate()
        .map(|s| s[..8].to_ascii_lowercase())
        .unwrap_or_default();
    format!("{}:{}:{random}", host.trim(), std::process::id())
}

/// An OCSP response and whether it was reused (for metrics).
#[derive(Debug)]
pub struct OcspAnswer {
    /// DER OCSPResponse.
    pub der: Vec<u8>,
    /// Served from the cache of earlier responses (`ocsp_cache.rs`), not signed now.
    pub reused: bool,
}

/// OCSP hashes and key id of one issuer, derived from its certificate.
struct IssuerInfo {
    hashes: IssuerHashes,
    key_id: Vec<u8>,
}

fn issuer_info(a: &LoadedAuthority) -> Result<IssuerInfo, RevocationError> {
    let cert = a.cert.get();
    let hashes = IssuerHashes::new(&cert).map_err(|e| RevocationError::Pki(e.to_string()))?;
    let key_id = scepd_pki::x509::certificate::subject_key_id(&cert)
        .map(<[u8]>::to_vec)
        .map_or_else(|| key_identifier(cert.spki), Ok)
        .map_err(|e| RevocationError::Pki(e.to_string()))?;
    Ok(IssuerInfo { hashes, key_id })
}

impl Revocation {
    /// A revocation service over the CA handle; call [`Revocation::refresh`] to publish CRLs.
    pub fn new(store: Arc<Store>, ca: Arc<CaHandle>, timing: RevocationTiming) -> Self {
        Self {
            store,
            ca,
            timing,
            crls: RwLock::new(HashMap::new()),
            ocsp_cache: OcspCache::new(timing.ocsp_validity_secs),
            node_id: node_id(),
        }
    }

    /// Brings each issuer's CRL up to date: adopts a newer one another node published, and
    /// if it is still stale (revocations changed, or half its validity has passed) publishes
    /// one while holding the CRL lease. Blocking. Returns how many CRLs this process
    /// published.
    pub fn refresh(&self, now: i64) -> Result<usize, RevocationError> {
        let generation = self.store.revocation_generation()?;
        let ca = self.ca.get();
        let mut published = 0;
        let mut holds_lease = None;
        for issuer in ca.issuers() {
            let known = self.current(&issuer.id)?;
            let newer = self
                .store
                .published_crl(&issuer.id, known.as_ref().map_or(0, |c| c.number))?;
            let current = match newer {
                Some(stored) => {
                    let crl = PublishedCrl::from(stored);
                    self.install(&issuer.id, crl.clone())?;
                    Some(crl)
                }
                None => known,
            };
            let stale = current.is_none_or(|c| {
                c.generation != generation
                    || now >= c.this_update + (c.next_update - c.this_update) / 2
            });
            if !stale {
                continue;
            }
            // Claimed once per refresh, and only when something needs publishing.
            let leader = match holds_lease {
                Some(l) => l,
                None => {
                    let l =
                        self.store
                            .claim_lease(CRL_LEASE, &self.node_id, now, CRL_LEASE_SECS)?;
                    holds_lease = Some(l);
                    l
                }
            };
            if !leader {
                tracing::debug!(ca = %issuer.id, "CRL stale; another node holds the publisher lease");
                continue;
            }
            let crl = self.build_crl(issuer, now, generation)?;
            let stored = StoredCrl {
                issuer_id: issuer.id.clone(),
                number: crl.number,
                this_update: crl.this_update,
                next_update: crl.next_update,
                generation: crl.generation,
                der: crl.der.as_ref().clone(),
            };
            if self
                .store
                .store_crl(&stored, CRL_LEASE, &self.node_id, now)?
            {
                tracing::info!(ca = %issuer.id, number = crl.number, generation, "published CRL");
                self.install(&issuer.id, crl)?;
                published += 1;
            } else {
                tracing::info!(ca = %issuer.id, number = crl.number, "CRL not stored: a newer one is already published, or the publisher lease moved to another node");
            }
        }
        Ok(published)
    }

    /// Gives the CRL publisher lease up if this process holds it (on a clean shutdown).
    /// Blocking.
    pub fn release_publisher(&self) -> Result<(), RevocationError> {
        Ok(self.store.release_lease(CRL_LEASE, &self.node_id)?)
    }

    fn current(&self, ca_id: &str) -> Result<Option<PublishedCrl>, RevocationError> {
        Ok(self
            .crls
            .read()
            .map_err(|_| RevocationError::Pki("lock".into()))?
            .get(ca_id)
            .cloned())
    }

    fn install(&self, ca_id: &str, crl: PublishedCrl) -> Result<(), RevocationError> {
        self.crls
            .write()
            .map_err(|_| RevocationError::Pki("lock".into()))?
            .insert(ca_id.to_owned(), crl);
        Ok(())
    }

    fn build_crl(
        &self,
        issuer: &LoadedAuthority,
        now: i64,
        generation: i64,
    ) -> Result<PublishedCrl, RevocationError> {
        let revoked = self.store.revoked_certificates(&issuer.id, now)?;
        let entries: Vec<RevokedEntry> = revoked
            .into_iter()
            .map(|r| RevokedEntry {
                serial: r.serial,
                revoked_at: r.revoked_at,
                reason: r
                    .reason
                    .as_deref()
                    .and_then(RevocationReason::parse)
                    .unwrap_or(RevocationReason::Unspecified),
            })
            .collect();
        let cert = issuer.cert.get();
        let key = &issuer.key;
        let info = issuer_info(issuer)?;
        let number = self.store.next_crl_number(&issuer.id)?;
        let next_update = now + self.timing.crl_validity_secs;
        let der = crl::build(
            &CrlParams {
                issuer: cert.subject,
                issuer_key_id: &info.key_id,
                number,
                this_update: now,
                next_update,
                entries: &entries,
            },
            key,
        )
        .map_err(|e| RevocationError::Pki(e.to_string()))?;
        Ok(PublishedCrl {
            der: Arc::new(der),
            number,
            this_update: now,
            next_update,
            generation,
        })
    }

    /// The current CRL of an issuer (active or retired), refreshing first. Blocking. `None`
    /// for an unknown issuer; an error while no CRL was ever published for it (another node
    /// holds the lease and has not published yet).
    pub fn crl(&self, ca_id: &str, now: i64) -> Result<Option<PublishedCrl>, RevocationError> {
        if self.ca.get().issuer(ca_id).is_none() {
            return Ok(None);
        }
        self.refresh(now)?;
        match self.current(ca_id)? {
            Some(c) => Ok(Some(c)),
            None => Err(RevocationError::NotPublished(ca_id.to_owned())),
        }
    }

    /// Answers a DER OCSP request. Blocking (store reads, one signature unless a response
    /// to the same nonce-less request can be reused). `may_sign` is asked before anything
    /// is signed; when it says no, the answer is tryLater.
    pub fn ocsp(&self, request: &[u8], now: i64, may_sign: &dyn Fn() -> bool) -> OcspAnswer {
        let fresh = |der| OcspAnswer { der, reused: false };
        let req = match ocsp::parse_request(request) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "malformed OCSP request");
                return fresh(ocsp::error_response(ErrorStatus::MalformedRequest));
            }
        };
        // Read before any certificate state (see ocsp_cache.rs): a revocation committed
        // after this point makes the stamp differ for every later request.
        let ca = self.ca.get();
        let stamp = match req.nonce {
            Some(_) => None,
            None => match self.store.revocation_generation() {
                Ok(generation) => Some(Stamp {
                    generation,
                    ca_version: ca.version.clone(),
                }),
                Err(e) => {
                    tracing::error!(error = %e, "OCSP responder failure");
                    return fresh(ocsp::error_response(ErrorStatus::InternalError));
                }
            },
        };
        if let Some(der) = stamp
            .as_ref()
            .and_then(|s| self.ocsp_cache.get(request, s, now))
        {
            return OcspAnswer { der, reused: true };
        }
        if !may_sign() {
            tracing::debug!("OCSP signing rate limit: tryLater");
            return fresh(ocsp::error_response(ErrorStatus::TryLater));
        }
        match self.answer(&ca, &req, now) {
            Ok(Some((der, all_known))) => {
                if let (Some(stamp), true) = (stamp, all_known) {
                    self.ocsp_cache.put(request, stamp, now, &der);
                }
                fresh(der)
            }
            Ok(None) => fresh(ocsp::error_response(ErrorStatus::Unauthorized)),
            Err(e) => {
                tracing::error!(error = %e, "OCSP responder failure");
                fresh(ocsp::error_response(ErrorStatus::InternalError))
            }
        }
    }

    /// Answers for the first issuer any CertID names (one signature per response; CertIDs of
    /// other issuers in the same request are left out, as RFC 6960 allows). Also says whether
    /// every certificate asked about was known (good or revoked).
    fn answer(
        &self,
        ca: &CaSet,
        req: &ocsp::OcspRequest,
        now: i64,
    ) -> Result<Option<(Vec<u8>, bool)>, RevocationError> {
        for issuer in ca.issuers() {
            let info = issuer_info(issuer)?;
            let mut answers = Vec::with_capacity(req.cert_ids.len());
            for id in req.cert_ids.iter().filter(|id| info.hashes.matches(id)) {
                let status = match self.store.certificate_state(&issuer.id, &id.serial)? {
                    None => CertStatus::Unknown,
                    Some(s) if s.status == StoredStatus::Revoked => CertStatus::Revoked {
                        at: s.revoked_at.unwrap_or(0),
                        reason: s
                            .reason
                            .as_deref()
                            .and_then(RevocationReason::parse)
                            .filter(|r| *r != RevocationReason::Unspecified),
                    },
                    Some(_) => CertStatus::Good,
                };
                answers.push(SingleResponse {
                    cert_id: id,
                    status,
                    this_update: now,
                    next_update: Some(now + self.timing.ocsp_validity_secs),
                });
            }
            if answers.is_empty() {
                continue;
            }
            let all_known = answers
                .iter()
                .all(|a| !matches!(a.status, CertStatus::Unknown));
            let key = &issuer.key;
            let responder = Responder {
                key_hash: &info.hashes.key_sha1,
                key,
                certs: &[],
            };
            return ocsp::build_response(&responder, &answers, now, req.nonce.as_deref())
                .map(|der| Some((der, all_known)))
                .map_err(|e| RevocationError::Pki(e.to_string()));
        }
        Ok(None)
    }
}
