//! The PKIOperations that look things up rather than issue: renewal authentication, CertPoll,
//! GetCert and GetCRL. Each accepts the active and the retired (still trusted) intermediates.

use scepd_pki::der::{Reader, tag};
use scepd_pki::pkcs10::CertificationRequest;
use scepd_pki::scep::PkiMessage;
use scepd_pki::scep::request::Header;
use scepd_pki::x509::Certificate;

use super::{Authority, Granted, Outcome, store_err};
use crate::ca::{CaSet, LoadedAuthority};
use crate::error::ScepFailure;
use crate::store::Platform;

/// The intermediate (active or retired) whose subject is `issuer_name` and which signed
/// `cert`, when given.
fn issuer_of<'a>(
    ca: &'a CaSet,
    issuer_name: &[u8],
    cert: Option<&Certificate<'_>>,
) -> Option<&'a LoadedAuthority> {
    ca.issuers().find(|a| {
        Certificate::parse(&a.cert_der).is_ok_and(|c| {
            c.subject == issuer_name && cert.is_none_or(|x| x.verify_signed_by(c.spki).is_ok())
        })
    })
}

/// Parses `IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber INTEGER }`.
fn issuer_and_serial(data: &[u8]) -> Result<(&[u8], &[u8]), Outcome> {
    let bad = |s: &str| Outcome::Fail(ScepFailure::Envelope(s.to_owned()));
    let seq = Reader::new(data)
        .expect(tag::SEQUENCE)
        .map_err(|_| bad("IssuerAndSerialNumber"))?;
    let mut r = seq.reader();
    let issuer = r.expect(tag::SEQUENCE).map_err(|_| bad("issuer"))?.raw;
    let serial = r
        .expect(tag::INTEGER)
        .and_then(|t| t.unsigned_integer())
        .map_err(|_| bad("serial"))?;
    Ok((issuer, serial))
}

impl Authority {
    /// Authenticated renewal: the signer certificate must be one we issued on this platform
    /// (under the active or a retired intermediate), currently valid and unrevoked, for the
    /// same subject as the new request.
    pub(super) fn authorize_renewal(
        &self,
        platform: &Platform,
        msg: &PkiMessage<'_>,
        csr: &CertificationRequest<'_>,
        now: i64,
    ) -> Result<(), Outcome> {
        let fail = |s: &str| Outcome::Fail(ScepFailure::Renewal(s.to_owned()));
        let signer = &msg.signer_cert;
        let ca = self.ca.get();
        let issuer = issuer_of(&ca, signer.issuer, Some(signer))
            .ok_or_else(|| fail("signer certificate was not issued by this CA"))?;
        if !signer.is_valid_at(now) {
            return Err(fail("signer certificate is expired or not yet valid"));
        }
        let rec = self
            .store
            .certificate_by_serial(&issuer.id, signer.serial_magnitude())
            .map_err(store_err)?
            .ok_or_else(|| fail("signer certificate is not on record"))?;
        if rec.status != crate::store::CertStatus::Valid {
            return Err(fail("signer certificate is revoked"));
        }
        if rec.platform_id != platform.id {
            return Err(fail("signer certificate belongs to another platform"));
        }
        if csr.subject != signer.subject {
            return Err(fail("subject differs from the certificate being renewed"));
        }
        Ok(())
    }

    /// CertPoll (RFC 8894 §3.3.3): identify by transactionID; unknown transactions are rejected.
    pub(super) fn cert_poll(
        &self,
        platform: &Platform,
        header: &Header,
    ) -> Result<Granted, Outcome> {
        match self
            .store
            .certificate_by_transaction(&platform.id, header.transaction_id.as_str())
            .map_err(store_err)?
        {
            Some(c) => Ok(Granted::cert(c.der)),
            None => Err(Outcome::Fail(ScepFailure::NotFound(
                "no certificate for this transaction".into(),
            ))),
        }
    }

    /// GetCRL (RFC 8894 §3.3.4): IssuerAndSerialNumber names a certificate; reply with the
    /// current CRL of its issuer.
    pub(super) fn get_crl(&self, data: &[u8], now: i64) -> Result<Granted, Outcome> {
        let (issuer, _) = issuer_and_serial(data)?;
        let ca = self.ca.get();
        let issuer = issuer_of(&ca, issuer, None)
            .ok_or_else(|| Outcome::Fail(ScepFailure::NotFound("no CRL for that issuer".into())))?;
        let crl = self
            .revocation
            .crl(&issuer.id, now)
            .map_err(|e| Outcome::Internal(e.to_string()))?
            .ok_or_else(|| Outcome::Internal("CRL unavailable".into()))?;
        Ok(Granted {
            der: Vec::new(),
            crl: Some(crl.der),
            reply: None,
        })
    }

    /// GetCert: a certificate by issuer and serial, from the active or a retired intermediate.
    pub(super) fn get_cert(&self, data: &[u8]) -> Result<Granted, Outcome> {
        let (issuer, serial) = issuer_and_serial(data)?;
        let not_found = || Outcome::Fail(ScepFailure::NotFound("no such certificate".into()));
        let ca = self.ca.get();
        let issuer = issuer_of(&ca, issuer, None).ok_or_else(not_found)?;
        let rec = self
            .store
            .certificate_by_serial(&issuer.id, serial)
            .map_err(store_err)?;
        rec.map(|c| Granted::cert(c.der)).ok_or_else(not_found)
    }
}
