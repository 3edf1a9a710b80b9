//! The PKIOperations that look things up rather than issue: CertPoll, GetCert and GetCRL.
//! Each accepts the active and the retired (still trusted) intermediates.

use scepd_pki::algorithms::DigestAlg;
use scepd_pki::scep::Request;

use super::ScepFailure;
use super::{Authority, Granted, Outcome, store_err};
use crate::store::{CertStatus, Delivery, Platform};

impl Authority {
    /// CertPoll (RFC 8894 §3.3.3): identify by transactionID; unknown transactions are rejected.
    /// Only the key that signed the original request may collect its certificate (a
    /// transactionID is no secret: it is often derived from the public key), and only a
    /// certificate released for delivery and unrevoked is handed out.
    pub(super) fn cert_poll(
        &self,
        platform: &Platform,
        msg: &Request<'_>,
    ) -> Result<Granted, Outcome> {
        let header = msg.header;
        let not_found = || {
            Outcome::Fail(ScepFailure::NotFound(
                "no certificate for this transaction".into(),
            ))
        };
        let Some(c) = self
            .store
            .certificate_by_transaction(&platform.id, header.transaction_id.as_str())
            .map_err(store_err)?
        else {
            return Err(not_found());
        };
        // Rows from before schema 7 lack the signer: a PKCSReq's signer is normally the
        // device's self-signed certificate for the certified key.
        let expected = c
            .signer_key_sha256
            .as_deref()
            .unwrap_or(&c.public_key_sha256);
        let signer = DigestAlg::Sha256.digest(msg.signer_cert.spki);
        if signer.as_ref() != expected {
            tracing::info!(platform = %platform.id, txid = header.transaction_id.as_str(),
                "CertPoll signed by another key than the request: refused");
            return Err(not_found());
        }
        if c.status != CertStatus::Valid {
            return Err(Outcome::Fail(ScepFailure::Revoked));
        }
        if c.delivery != Delivery::Released {
            return Err(not_found());
        }
        Ok(Granted::cert(c.facts.der))
    }

    /// GetCRL (RFC 8894 §3.3.4): IssuerAndSerialNumber names a certificate; reply with the
    /// current CRL of its issuer.
    pub(super) fn get_crl(&self, issuer: &[u8], now: i64) -> Result<Granted, Outcome> {
        let ca = self.ca.get();
        let issuer = ca
            .issuer_named(issuer, None)
            .ok_or_else(|| Outcome::Fail(ScepFailure::NotFound("no CRL for that issuer".into())))?;
        let crl = self
            .revocation
            .crl(&issuer.id, now)
            .map_err(super::revocation_err)?
            .ok_or_else(|| Outcome::Internal("CRL unavailable".into()))?;
        Ok(Granted {
            der: Vec::new(),
            crl: Some(crl.der),
            reply: None,
        })
    }

    /// GetCert: a certificate by issuer and serial, from the active or a retired intermediate.
    pub(super) fn get_cert(&self, issuer: &[u8], serial: &[u8]) -> Result<Granted, Outcome> {
        let not_found = || Outcome::Fail(ScepFailure::NotFound("no such certificate".into()));
        let ca = self.ca.get();
        let issuer = ca.issuer_named(issuer, None).ok_or_else(not_found)?;
        let rec = self
            .store
            .certificate_by_serial(&issuer.id, serial)
            .map_err(store_err)?;
        rec.map(|c| Granted::cert(c.facts.der))
            .ok_or_else(not_found)
    }
}
