//! Orchestration of SCEP operations (docs/architecture.md §1). No crypto or SQL of its own: it
//! calls the pki crate for protocol and issuance, the challenge verifiers, and the store's verbs.

use std::sync::Arc;

mod failure;
mod lookups;
mod remembered_platforms;
mod renewal;

pub use failure::{AuthorityError, ScepFailure};
use renewal::Renewed;

use scepd_pki::algorithms::DigestAlg;
use scepd_pki::cms::CmsError;
use scepd_pki::issue::{DeviceProfile, issue_device_certificate};
use scepd_pki::pkcs10::Csr;
use scepd_pki::random::SystemRandom;
use scepd_pki::scep::request::Header;
use scepd_pki::scep::{CertRepSigner, Envelope, MessageData, MessageType, OpenError, Request};
use scepd_pki::x509::name;

use crate::ca::{CaHandle, CaSet};
use crate::challenge::{
    Authorization, ChallengeError, ChallengeRequest, ChallengeVerifier, IssuedFacts, Verifiers,
};
use crate::config::Config;
use crate::devices::identity::{self, DevicePattern};
use crate::revocation::Revocation;
use crate::store::{
    CertStatus, CertificateFacts, ChallengeConfig, Delivery, Issuance, IssuedCertificate,
    NewCertificate, Platform, Store, StoreError, TransactionMatch, WITHDRAWN_REASON,
};

/// A successful issuance or lookup to return: a certificate, or a CRL for GetCRL.
struct Granted {
    der: Vec<u8>,
    crl: Option<Arc<Vec<u8>>>,
    /// The CertRep for exactly this grant, when it was built early (while the issuance's
    /// commit was flushing).
    reply: Option<Vec<u8>>,
}

impl Granted {
    fn certs(&self) -> Vec<&[u8]> {
        if self.crl.is_some() {
            Vec::new()
        } else {
            vec![self.der.as_slice()]
        }
    }

    fn crls(&self) -> Vec<&[u8]> {
        self.crl.iter().map(|c| c.as_slice()).collect()
    }

    fn cert(der: Vec<u8>) -> Self {
        Self {
            der,
            crl: None,
            reply: None,
        }
    }
}

/// Builds a request's SUCCESS CertRep. An enrollment builds it while its certificate's
/// commit flushes (`issue_and_record`), so signing overlaps the disk; a replay or refusal
/// throws it away.
struct Reply<'r> {
    request: &'r Request<'r>,
    signer: &'r CertRepSigner<'r>,
}

impl Reply<'_> {
    /// SUCCESS carrying `certs` and `crls`.
    fn success(&self, certs: &[&[u8]], crls: &[&[u8]]) -> Result<Vec<u8>, Outcome> {
        self.request
            .success(self.signer, certs, crls)
            .map_err(|e| Outcome::Pki(e.into()))
    }

    /// SUCCESS carrying one issued certificate.
    fn certificate(&self, der: &[u8]) -> Result<Vec<u8>, Outcome> {
        self.success(&[der], &[])
    }
}

/// A CertRep and whether it reports a failure (for metrics).
#[derive(Debug)]
pub struct ScepReply {
    /// The CertRep DER.
    pub body: Vec<u8>,
    /// failInfo when the CertRep is a FAILURE.
    pub fail_info: Option<scepd_pki::scep::FailInfo>,
}

/// Runs SCEP operations for all platforms.
pub struct Authority {
    store: Arc<Store>,
    ca: Arc<CaHandle>,
    validity_secs: i64,
    min_rsa_bits: usize,
    max_clock_skew: i64,
    verifiers: Verifiers,
    rng: SystemRandom,
    revocation: Arc<Revocation>,
    public_base: String,
    patterns: std::sync::Mutex<std::collections::HashMap<String, DevicePattern>>,
    platforms: remembered_platforms::RememberedPlatforms,
}

/// A challenge verifier's decision together with the verifier (for its notifications).
struct Authorized {
    verifier: Arc<dyn ChallengeVerifier>,
    auth: Authorization,
}

/// The SHA-256 of a request's two public keys.
struct RequestKeys {
    /// The key to certify (the CSR's SubjectPublicKeyInfo).
    certified: Vec<u8>,
    /// The key that signed the SCEP message (its signer certificate's).
    signer: Vec<u8>,
    /// The request's fingerprint ([`Request::fingerprint`]): what a replay must match.
    request: Vec<u8>,
}

/// What an enrollment learnt about its request before authorising it: its keys, who the CSR
/// names (or why that is refused) and the state of that device when it is registered.
struct Known {
    keys: RequestKeys,
    who: Result<identity::Identity, Outcome>,
    device_state: Option<crate::store::DeviceState>,
}

/// The device and user of a request; refuses a device id that breaks the documented rule
/// (too long, control or bidi characters: never stored) and, early, a device that is not
/// active (the store checks again atomically when recording).
fn identify(
    who: Result<identity::Identity, Outcome>,
    device_state: Option<crate::store::DeviceState>,
) -> Result<identity::Identity, Outcome> {
    let who = who?;
    if let Some(id) = &who.device_id {
        identity::check_device_id(id)
            .map_err(|e| Outcome::Fail(ScepFailure::Policy(e.to_string())))?;
    }
    match device_state {
        Some(state) if state != crate::store::DeviceState::Active => {
            Err(Outcome::Fail(ScepFailure::Device(state.as_str())))
        }
        _ => Ok(who),
    }
}

/// Whether `platform`'s challenge is decided by a delegated validator (Intune, webhook) that
/// must hear of each issuance, renewals included. Modes added later count as delegated until
/// said otherwise: the safe side.
fn delegated(platform: &Platform) -> bool {
    !matches!(
        platform.challenge,
        ChallengeConfig::Static { .. } | ChallengeConfig::Dynamic(_)
    )
}

impl Authority {
    /// Builds the authority from loaded CA material.
    /// `base` is the public URL prefix for CRL, OCSP and caIssuers locations.
    pub fn new(
        config: &Config,
        base: &str,
        store: Arc<Store>,
        ca: Arc<CaHandle>,
        revocation: Arc<Revocation>,
    ) -> Self {
        Self {
            verifiers: Verifiers::new(store.clone(), config),
            store,
            ca,
            validity_secs: i64::from(config.validity_days) * 86_400,
            min_rsa_bits: config.min_rsa_bits as usize,
            max_clock_skew: i64::from(config.max_clock_skew_secs),
            rng: SystemRandom,
            revocation,
            public_base: base.to_owned(),
            patterns: Default::default(),
            platforms: Default::default(),
        }
    }

    /// The device profile for certificates issued by the active intermediate of `ca`.
    fn profile(&self, ca: &CaSet) -> DeviceProfile {
        let base = &self.public_base;
        DeviceProfile {
            validity_secs: self.validity_secs,
            min_rsa_bits: self.min_rsa_bits,
            crl_url: Some(format!("{base}/crl/{}.crl", ca.intermediate.id)),
            ocsp_url: Some(format!("{base}/ocsp")),
            ca_issuers_url: Some(format!("{base}/ca/{}.crt", ca.intermediate.id)),
            ..DeviceProfile::default()
        }
    }

    /// The CA material in force.
    pub fn ca(&self) -> Arc<CaSet> {
        self.ca.get()
    }

    /// The replaceable CA handle (rotation).
    pub fn ca_handle(&self) -> &Arc<CaHandle> {
        &self.ca
    }

    /// The revocation service (CRL, OCSP).
    pub fn revocation(&self) -> &Arc<Revocation> {
        &self.revocation
    }

    /// The store (for handlers that list or look up platforms).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// GetCACaps body.
    pub fn ca_caps(&self) -> bytes::Bytes {
        self.ca.get().ca_caps_body.clone()
    }

    /// GetCACert body (`application/x-x509-ca-ra-cert`).
    pub fn ca_cert(&self) -> bytes::Bytes {
        self.ca.get().ca_cert_body.clone()
    }

    /// GetNextCACert body (`application/x-x509-next-ca-cert`), when a rotation is staged.
    pub fn next_ca_cert(&self) -> Option<bytes::Bytes> {
        self.ca.get().next_ca_cert_body.clone()
    }

    /// The public URL prefix (SCEP, CRL, OCSP URLs are under it).
    pub fn public_base(&self) -> &str {
        &self.public_base
    }

    /// The root certificate, DER (its thumbprint goes on the challenge page).
    pub fn root_certificate(&self) -> Vec<u8> {
        self.ca.get().root.cert.der().to_vec()
    }

    /// A CA certificate by store id (the AIA caIssuers URL), DER.
    pub fn ca_certificate(&self, id: &str) -> Option<Vec<u8>> {
        let ca = self.ca.get();
        if ca.root.id == id {
            return Some(ca.root.cert.der().to_vec());
        }
        ca.issuers()
            .chain(ca.next_intermediate.iter())
            .find(|a| a.id == id)
            .map(|a| a.cert.der().to_vec())
    }

    /// Handles one PKIOperation for platform `platform_id` (404 when there is none); returns
    /// the CertRep DER. Blocking (crypto + store). An enrollment starts from the platform as
    /// last read and checks it in its read before signing (`remembered_platforms.rs`); any
    /// other operation reads it now.
    pub fn pki_operation(
        &self,
        platform_id: &str,
        body: &[u8],
        now: i64,
    ) -> Result<ScepReply, AuthorityError> {
        /// Processing again after the platform changed under the request, at most this often.
        const MAX_PLATFORM_CHANGES: u32 = 3;
        let ours = |e: CmsError| AuthorityError::Pki(e.into());
        let (mut platform, mut fresh) = match self.platforms.get(platform_id) {
            Some(p) => (p, false),
            None => (self.read_platform(platform_id)?, true),
        };
        let ca = self.ca.get();
        let ra_cert = ca.ra.cert.get();
        let signer = CertRepSigner {
            ra_cert: &ra_cert,
            ra_key: &ca.ra.key,
            rng: &self.rng,
            now,
        };
        // A signed FAILURE, addressed by the (possibly unauthenticated) header.
        let refuse =
            |platform: &Platform, header: &scepd_pki::scep::request::Header, f: ScepFailure| {
                log_failure(platform, header, &f);
                let reply = f.reply();
                let body = signer.failure(header, &reply).map_err(ours)?;
                Ok(ScepReply {
                    body,
                    fail_info: Some(reply.fail_info),
                })
            };
        let envelope = match Envelope::decode(body) {
            Ok(m) => m,
            Err(e) => {
                return match e.header().cloned() {
                    Some(header) => refuse(&platform, &header, ScepFailure::Request(e.into())),
                    None => {
                        tracing::info!(platform = %platform.id, reason = %e, "unparsable PKIOperation");
                        Err(AuthorityError::NotScep(e))
                    }
                };
            }
        };
        let header = &envelope.header;
        let enrollment = matches!(
            header.message_type,
            MessageType::PkcsReq | MessageType::RenewalReq
        );
        if !enrollment && !fresh {
            platform = self.read_platform(platform_id)?;
            fresh = true;
        }
        let mut changes = 0;
        loop {
            return match self.process(&platform, &envelope, &ca, now) {
                Ok(reply) => Ok(ScepReply {
                    body: reply,
                    fail_info: None,
                }),
                Err(Outcome::PlatformChanged(current)) => {
                    changes += 1;
                    match current {
                        Some(p) if changes < MAX_PLATFORM_CHANGES => {
                            tracing::debug!(platform = %platform_id, fresh, "platform changed since it was last read: processing again");
                            platform = Arc::new(*p);
                            self.platforms.remember(platform.clone());
                            continue;
                        }
                        Some(_) => Err(AuthorityError::PlatformChanging),
                        None => {
                            self.platforms.forget(platform_id);
                            Err(AuthorityError::UnknownPlatform)
                        }
                    }
                }
                Err(Outcome::Fail(f)) => refuse(&platform, header, f),
                Err(Outcome::Internal(e)) => Err(AuthorityError::Internal(e)),
                Err(Outcome::Pki(e)) => Err(AuthorityError::Pki(e)),
                Err(Outcome::Unavailable(e)) => Err(AuthorityError::Unavailable(e)),
            };
        }
    }

    /// Platform `id` read now and remembered (an enrollment that follows starts from this
    /// copy), or [`AuthorityError::UnknownPlatform`].
    pub fn read_platform(&self, id: &str) -> Result<Arc<Platform>, AuthorityError> {
        let platform = Arc::new(
            self.store
                .platform(id)?
                .ok_or(AuthorityError::UnknownPlatform)?,
        );
        self.platforms.remember(platform.clone());
        Ok(platform)
    }

    /// Opens, authorises and serves a request; returns the SUCCESS CertRep.
    fn process(
        &self,
        platform: &Platform,
        envelope: &Envelope<'_>,
        ca: &CaSet,
        now: i64,
    ) -> Result<Vec<u8>, Outcome> {
        let header = &envelope.header;
        if let Some(t) = header.signing_time {
            if (t - now).abs() > self.max_clock_skew {
                return Err(Outcome::Fail(ScepFailure::Time(t - now)));
            }
        }
        if header.message_type == MessageType::CertRep {
            return Err(Outcome::Fail(ScepFailure::Unsupported(
                "CertRep is a response, not a request".into(),
            )));
        }
        let recipients = ca.recipients();
        let opened = envelope
            .open(recipients.offered(), platform.allow_des, &self.rng)
            .map_err(|e| refused_content(e.into()))?;
        let request = opened.request().map_err(refused_content)?;
        // Reply with the RA the client encrypted to (its signing RA when it encrypted to the
        // encryption certificate).
        let used = recipients
            .answering(request.recipient)
            .ok_or_else(|| Outcome::Internal("opened by a recipient not offered".into()))?;
        let used_cert = used.cert.get();
        let signer = CertRepSigner {
            ra_cert: &used_cert,
            ra_key: &used.key,
            rng: &self.rng,
            now,
        };
        let reply = Reply {
            request: &request,
            signer: &signer,
        };
        let granted = match &request.data {
            MessageData::Csr(csr) => self.enroll(platform, &request, csr, now, &reply)?,
            MessageData::IssuerAndSubject { .. } => self.cert_poll(platform, &request)?,
            MessageData::IssuerAndSerial { issuer, .. }
                if header.message_type == MessageType::GetCrl =>
            {
                self.get_crl(issuer, now)?
            }
            MessageData::IssuerAndSerial { issuer, serial } => self.get_cert(issuer, serial)?,
        };
        match granted.reply {
            Some(reply) => Ok(reply),
            None => reply.success(&granted.certs(), &granted.crls()),
        }
    }

    /// PKCSReq and RenewalReq.
    fn enroll(
        &self,
        platform: &Platform,
        message: &Request<'_>,
        csr: &Csr<'_>,
        now: i64,
        reply: &Reply<'_>,
    ) -> Result<Granted, Outcome> {
        let header = message.header;
        let keys = RequestKeys {
            certified: DigestAlg::Sha256.digest(csr.request.spki).as_ref().to_vec(),
            signer: DigestAlg::Sha256
                .digest(message.signer_cert.spki)
                .as_ref()
                .to_vec(),
            request: message.fingerprint().to_vec(),
        };
        let sans: Vec<String> = csr
            .requested_names()
            .iter()
            .map(ToString::to_string)
            .collect();
        let request = ChallengeRequest {
            platform,
            challenge: csr.request.challenge_password.as_ref(),
            transaction_id: header.transaction_id.as_str(),
            csr_der: message.message_data,
            subject: &csr.subject,
            sans: &sans,
            now,
        };
        // Who the request names, worked out now so the store answers the replay question and
        // the device's state in one read; its refusals still come where identify() raises them.
        let who = self.identity_of(platform, csr.request.subject, csr.requested_names());
        let device_id = who
            .as_ref()
            .ok()
            .and_then(|w| w.device_id.as_deref())
            .filter(|id| identity::check_device_id(id).is_ok());
        let lookup = self
            .store
            .enrollment_lookup(
                &platform.id,
                header.transaction_id.as_str(),
                &keys.request,
                &keys.certified,
                device_id,
            )
            .map_err(store_err)?;
        // Everything so far (cipher policy, device id) followed the platform as it was last
        // read; if it is not the platform now, start again with the current one.
        if lookup.platform.as_ref() != Some(platform) {
            return Err(Outcome::PlatformChanged(lookup.platform.map(Box::new)));
        }
        // RFC 8894 §3.3.1: a repeated request for an issued certificate gets the same
        // certificate. Repeated means the same request, not only the same transactionID: a
        // same-key renewal that reuses it (strongSwan, scepclient, certmonger) is authorised
        // and issued below like any other request.
        match lookup.transaction {
            TransactionMatch::Replay(existing) => return self.replay(existing, &request),
            TransactionMatch::OtherKey => {
                return Err(Outcome::Fail(ScepFailure::TransactionReuse));
            }
            TransactionMatch::New | TransactionMatch::SameKey(_) => {}
        }
        let renewed = match header.message_type {
            MessageType::RenewalReq => {
                Some(self.authorize_renewal(platform, message.signer_cert, csr, now)?)
            }
            _ => None,
        };
        // Delegated validators decide renewals too; the other modes' challenge is replaced by
        // the renewed certificate.
        let authorized = match renewed {
            Some(_) if !delegated(platform) => None,
            _ => Some(self.authorize_challenge(&request)?),
        };
        let known = Known {
            keys,
            who,
            device_state: lookup.device_state,
        };
        let result = self.issue_and_record(
            csr,
            known,
            renewed.as_ref(),
            authorized.as_ref(),
            &request,
            reply,
        );
        if let (Err(outcome), Some(a)) = (&result, &authorized) {
            self.after_failure(a, &request, outcome);
        }
        result
    }

    /// Answers a request whose transaction already has a live certificate: the same one, but
    /// never a revoked one, and a held one (its delegated confirmation did not complete: a
    /// concurrent request, or a node that died) only after the validator confirms it now.
    fn replay(
        &self,
        existing: IssuedCertificate,
        request: &ChallengeRequest<'_>,
    ) -> Result<Granted, Outcome> {
        let (platform, txid) = (&request.platform.id, request.transaction_id);
        if existing.status != CertStatus::Valid {
            return Err(Outcome::Fail(ScepFailure::Revoked));
        }
        match existing.delivery {
            Delivery::Released => {
                tracing::info!(%platform, txid, serial = %existing.serial_hex(), "replayed request: returning the issued certificate");
                Ok(Granted::cert(existing.facts.der))
            }
            Delivery::Held => {
                tracing::info!(%platform, txid, serial = %existing.serial_hex(), "replayed request for a certificate awaiting confirmation: confirming again");
                let authorized = self.authorize_challenge(request)?;
                let result = self.confirm(&authorized, request, &existing);
                if let Err(outcome) = &result {
                    self.after_failure(&authorized, request, outcome);
                }
                result.map(|()| Granted::cert(existing.facts.der))
            }
            // The store never answers a transaction with a withdrawn certificate.
            Delivery::Withdrawn => Err(Outcome::Internal(
                "the store returned a withdrawn certificate as live".into(),
            )),
        }
    }

    /// Tells a delegated validator that `cert` was issued and releases it for delivery. If
    /// the validator refuses, or the certificate was revoked meanwhile, it is withdrawn (or
    /// stays revoked) and the request fails: a recorded certificate that will not be
    /// delivered must never be usable.
    fn confirm(
        &self,
        a: &Authorized,
        request: &ChallengeRequest<'_>,
        cert: &IssuedCertificate,
    ) -> Result<(), Outcome> {
        let ca = self.ca.get();
        let issuer = ca
            .issuer(&cert.issuer_id)
            .map(|i| name::to_text(i.cert.subject()))
            .ok_or_else(|| Outcome::Internal(format!("issuer {} not loaded", cert.issuer_id)))?;
        let facts = IssuedFacts {
            der: &cert.der,
            serial: &cert.serial,
            not_after: cert.not_after,
            issuer: &issuer,
            subject: &cert.subject,
        };
        if let Err(e) = a.verifier.issued(request, &facts) {
            self.withdraw(request, cert, &e.to_string())?;
            return Err(Outcome::Fail(ScepFailure::NotConfirmed(e.to_string())));
        }
        match self
            .store
            .release_certificate(&cert.issuer_id, &cert.serial)
            .map_err(store_err)?
        {
            Some(_) => Ok(()),
            None => Err(Outcome::Fail(ScepFailure::Revoked)),
        }
    }

    /// Withdraws a held certificate nobody received (see [`Backend::withdraw_certificate`](crate::store::Backend::withdraw_certificate)).
    /// One already released by a concurrent replay stays valid: that replay delivered it.
    fn withdraw(
        &self,
        request: &ChallengeRequest<'_>,
        cert: &IssuedCertificate,
        why: &str,
    ) -> Result<(), Outcome> {
        match self
            .store
            .withdraw_certificate(&cert.issuer_id, &cert.serial, request.now)
        {
            Ok(_) => {
                tracing::warn!(platform = %request.platform.id, txid = request.transaction_id, serial = %cert.serial_hex(),
                    "certificate withdrawn before delivery: {why}");
                Ok(())
            }
            Err(StoreError::Conflict(detail)) => {
                tracing::info!(platform = %request.platform.id, txid = request.transaction_id, %detail,
                    "certificate not withdrawn: a concurrent request delivered it");
                Ok(())
            }
            Err(e) => Err(store_err(e)),
        }
    }

    /// Signs, records (consuming a one-time challenge in the same transaction) and, for
    /// delegated modes, confirms the certificate with the validator before it may be sent.
    /// A renewal's certificate keeps the renewed one's device and user (`renewed`).
    fn issue_and_record(
        &self,
        csr: &Csr<'_>,
        known: Known,
        renewed: Option<&Renewed>,
        authorized: Option<&Authorized>,
        request: &ChallengeRequest<'_>,
        reply: &Reply<'_>,
    ) -> Result<Granted, Outcome> {
        let (platform, now) = (request.platform, request.now);
        let keys = known.keys;
        let who = identify(known.who, known.device_state)?;
        if let Some(renewed) = renewed {
            renewal::check_binding(renewed, &who)?;
        }
        let ca = self.ca.get();
        let intermediate = ca.intermediate.cert.get();
        let issued = issue_device_certificate(
            csr,
            &self.profile(&ca),
            &intermediate,
            &ca.intermediate.key,
            now,
            &self.rng,
        )
        .map_err(|e| {
            let e = scepd_pki::Error::from(e);
            if e.is_ours() {
                Outcome::Pki(e)
            } else {
                Outcome::Fail(ScepFailure::Policy(e.to_string()))
            }
        })?;
        let sans: Vec<String> = issued.sans.iter().map(ToString::to_string).collect();
        // A delegated validator must confirm the certificate before anybody may receive it,
        // a replay included: until then it is held.
        let held = authorized.is_some() && delegated(platform);
        let record = NewCertificate {
            facts: CertificateFacts {
                serial: issued.serial.clone(),
                issuer_id: ca.intermediate.id.clone(),
                platform_id: platform.id.clone(),
                transaction_id: request.transaction_id.to_owned(),
                public_key_sha256: keys.certified,
                device_id: who.device_id.clone(),
                subject: issued.subject.clone(),
                sans,
                not_before: issued.not_before,
                not_after: issued.not_after,
                der: issued.der.clone(),
                requested_at: now,
            },
            user: who.user.clone(),
            signer_key_sha256: keys.signer,
            request_sha256: keys.request,
            held,
        };
        // Committed before the CertRep leaves: a certificate we hand out is always on record.
        // The row goes to the next group commit (store/group_commit.rs) and this thread signs
        // the CertRep while the disk flushes, its CPU slot already passed on to the next
        // request (cpu_pool.rs). Nothing is sent before the commit is durable (and, for
        // delegated modes, confirmed below); a replay or refusal discards the early CertRep.
        let one_time = authorized.and_then(|a| a.auth.one_time.as_deref());
        let recorded = self
            .store
            .begin_issuance(&record, one_time)
            .and_then(|pending| {
                crate::cpu_pool::release(|| {
                    let early = reply.certificate(&issued.der);
                    pending.wait().map(|r| (r, early))
                })
            });
        let early = match recorded {
            Ok((Issuance::Recorded, early)) => early,
            // A concurrent request of the same transaction won: answer as its replay.
            Ok((Issuance::Replayed(existing), _)) => return self.replay(existing, request),
            Err(StoreError::DeviceNotActive { state }) => {
                return Err(Outcome::Fail(ScepFailure::Device(state)));
            }
            Err(StoreError::ChallengeSpent) => {
                return Err(Outcome::Fail(ScepFailure::Challenge(
                    ChallengeError::Used.to_string(),
                )));
            }
            Err(e) => return Err(store_err(e)),
        };
        let recorded = IssuedCertificate {
            facts: record.facts.clone(),
            status: CertStatus::Valid,
            revoked_at: None,
            revocation_reason: None,
            delivery: if held {
                Delivery::Held
            } else {
                Delivery::Released
            },
            signer_key_sha256: Some(record.signer_key_sha256.clone()),
            request_sha256: Some(record.request_sha256.clone()),
            superseded_at: None,
        };
        // Checked before a delegated validator hears "issued": it must not then hear "failed".
        let reply = match early {
            Ok(reply) => reply,
            Err(e) => {
                if held {
                    self.withdraw(request, &recorded, "the CertRep could not be built")?;
                } else {
                    // Released at recording, so a concurrent replay may hold it: revoke.
                    self.store
                        .revoke_certificate(
                            &record.issuer_id,
                            &issued.serial,
                            now,
                            Some(WITHDRAWN_REASON),
                        )
                        .map_err(store_err)?;
                    tracing::warn!(platform = %platform.id, txid = request.transaction_id, serial = %recorded.serial_hex(),
                        "certificate revoked: the CertRep could not be built");
                }
                return Err(e);
            }
        };
        tracing::info!(platform = %platform.id, txid = request.transaction_id, serial = %recorded.serial_hex(),
            subject = %issued.subject, method = authorized.map_or("renewal", |a| a.auth.method),
            renewed = renewed.map_or("", |r| r.serial_hex.as_str()), "issued certificate");
        if let (Some(a), true) = (authorized, held) {
            self.confirm(a, request, &recorded)?;
        }
        Ok(Granted {
            reply: Some(reply),
            ..Granted::cert(issued.der)
        })
    }

    /// After an authorised request failed: apply the burn rule (challenge/mod.rs) and tell
    /// the verifier.
    fn after_failure(&self, a: &Authorized, request: &ChallengeRequest<'_>, outcome: &Outcome) {
        let reason = match outcome {
            Outcome::Fail(f) => f.to_string(),
            Outcome::Pki(_)
            | Outcome::Internal(_)
            | Outcome::Unavailable(_)
            | Outcome::PlatformChanged(_) => "internal error while issuing".to_owned(),
        };
        // A refused device counts as a policy refusal: the request was authentic.
        let policy = matches!(
            outcome,
            Outcome::Fail(ScepFailure::Policy(_) | ScepFailure::Device(_))
        );
        if let (true, Some(sha256)) = (policy, &a.auth.one_time) {
            let platform = &request.platform.id;
            match self
                .store
                .burn_dynamic_challenge(platform, sha256, request.now)
            {
                Ok(_) => {
                    tracing::info!(%platform, txid = request.transaction_id, "one-time challenge burnt: authentic request refused by policy")
                }
                Err(e) => {
                    tracing::error!(%platform, error = %e, "could not burn a one-time challenge")
                }
            }
        }
        if !matches!(outcome, Outcome::Fail(ScepFailure::Challenge(_))) {
            a.verifier.failed(request, &reason);
        }
    }

    /// The device and user a subject and its SANs name under `platform`'s device-id pattern.
    fn identity_of(
        &self,
        platform: &Platform,
        subject: &[u8],
        sans: &[scepd_pki::x509::general_names::AltName],
    ) -> Result<identity::Identity, Outcome> {
        // Read with the platform at the start of this request, not looked up again.
        let pattern = match &platform.device_id_pattern {
            Some(p) => Some(self.compiled_pattern(p)?),
            None => None,
        };
        Ok(identity::extract(subject, sans, pattern.as_ref()))
    }

    /// A platform's device-id pattern, compiled once per distinct pattern (not per request).
    fn compiled_pattern(&self, pattern: &str) -> Result<DevicePattern, Outcome> {
        let mut cache = self
            .patterns
            .lock()
            .map_err(|_| Outcome::Internal("pattern cache poisoned".into()))?;
        if let Some(p) = cache.get(pattern) {
            return Ok(p.clone());
        }
        let compiled = DevicePattern::new(pattern).map_err(|e| Outcome::Internal(e.to_string()))?;
        cache.insert(pattern.to_owned(), compiled.clone());
        Ok(compiled)
    }

    fn authorize_challenge(&self, request: &ChallengeRequest<'_>) -> Result<Authorized, Outcome> {
        let refused = |e: ChallengeError| match e {
            ChallengeError::Internal(detail) => Outcome::Internal(detail),
            other => Outcome::Fail(ScepFailure::Challenge(other.to_string())),
        };
        let verifier = self
            .verifiers
            .for_platform(request.platform)
            .map_err(refused)?;
        let auth = verifier.verify(request).map_err(refused)?;
        Ok(Authorized { verifier, auth })
    }
}

/// How a request ended inside the authority.
pub(crate) enum Outcome {
    /// Refused: answered with a signed FAILURE.
    Fail(ScepFailure),
    /// One of our own pki operations failed (signing, randomness).
    Pki(scepd_pki::Error),
    /// Our own failure otherwise (the store, inconsistent records).
    Internal(String),
    /// The store cannot be reached (database down or restarting): HTTP 503, retried later.
    Unavailable(String),
    /// The platform is not as the request began with: the current one (`None`: deleted).
    /// Nothing was written; the request is processed again (`pki_operation`).
    PlatformChanged(Option<Box<Platform>>),
}

/// A request whose envelope or messageData we cannot act on: badAlg for a refused
/// algorithm, our own fault for a key failure, otherwise one indistinguishable
/// badMessageCheck.
fn refused_content(e: OpenError) -> Outcome {
    let e = scepd_pki::Error::from(e);
    if e.is_ours() {
        Outcome::Pki(e)
    } else {
        Outcome::Fail(ScepFailure::Request(e))
    }
}

fn store_err(e: StoreError) -> Outcome {
    match e {
        StoreError::Unavailable(_) => Outcome::Unavailable(e.to_string()),
        e => Outcome::Internal(e.to_string()),
    }
}

/// A CRL that cannot be had now (store unreachable, or not yet published by the node holding
/// the lease) is a 503 to retry; anything else is ours.
fn revocation_err(e: crate::revocation::RevocationError) -> Outcome {
    match e {
        crate::revocation::RevocationError::Store(e) => store_err(e),
        e @ crate::revocation::RevocationError::NotPublished(_) => {
            Outcome::Unavailable(e.to_string())
        }
        e => Outcome::Internal(e.to_string()),
    }
}

fn log_failure(platform: &Platform, header: &Header, f: &ScepFailure) {
    let reply = f.reply();
    tracing::warn!(platform = %platform.id, txid = header.transaction_id.as_str(), kind = header.message_type.name(),
        fail_info = reply.fail_info.name(), detail = %f, "PKIOperation refused");
}
