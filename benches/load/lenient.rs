//! The same checks as `scepd_pki::scep::client::decode_cert_rep` minus senderNonce freshness,
//! for peers that echo the request's nonce (micromdm scepserver 2.1.0). Everything else —
//! RA signature, messageType, transactionID, recipientNonce, status, decryption — is checked.

use scepd_pki::cms::signed_data::SignedData;
use scepd_pki::cms::{certs_only, enveloped_data::EnvelopedData};
use scepd_pki::der::{oid, tag};
use scepd_pki::keys::SoftwareKey;
use scepd_pki::random::SystemRandom;
use scepd_pki::scep::client::{CertRepOutcome, ClientRequest};
use scepd_pki::scep::{FailInfo, PkiStatus};
use scepd_pki::x509::Certificate;

/// Decodes and verifies a CertRep whose senderNonce may equal ours.
pub fn decode_echoed_nonce(
    reply: &[u8],
    ra: &Certificate<'_>,
    request: &ClientRequest,
    recipient: &Certificate<'_>,
    key: &SoftwareKey,
) -> Result<CertRepOutcome, String> {
    let sd = SignedData::parse(reply).map_err(|e| e.to_string())?;
    let [signer] = sd.signers.as_slice() else {
        return Err("expected exactly one signer".into());
    };
    let cert = sd
        .signer_certificate(signer)
        .ok_or("signer certificate missing")?;
    if cert.raw != ra.raw {
        return Err("CertRep not signed by the RA certificate".into());
    }
    signer
        .verify(
            sd.content_type,
            sd.content.as_deref().unwrap_or(&[]),
            ra.spki,
        )
        .map_err(|e| e.to_string())?;
    let text = |o: &[u8]| -> Result<Option<String>, String> {
        match signer.attribute(o).map_err(|e| e.to_string())? {
            Some(t) => Ok(Some(
                String::from_utf8(t.value.to_vec()).map_err(|_| "attribute text")?,
            )),
            None => Ok(None),
        }
    };
    if text(oid::SCEP_MESSAGE_TYPE)?.as_deref() != Some("3") {
        return Err("messageType is not CertRep".into());
    }
    if text(oid::SCEP_TRANSACTION_ID)?.as_deref() != Some(request.transaction_id.as_str()) {
        return Err("transactionID mismatch".into());
    }
    let rn = signer
        .attribute(oid::SCEP_RECIPIENT_NONCE)
        .map_err(|e| e.to_string())?
        .ok_or("recipientNonce missing")?;
    if rn.tag != tag::OCTET_STRING || rn.value != request.sender_nonce.as_bytes() {
        return Err("recipientNonce does not match our senderNonce".into());
    }
    let status = text(oid::SCEP_PKI_STATUS)?.ok_or("pkiStatus missing")?;
    match PkiStatus::from_code(&status) {
        Some(PkiStatus::Success) => {
            let env = sd.content.as_deref().ok_or("SUCCESS without envelope")?;
            let ed = EnvelopedData::parse(env).map_err(|e| e.to_string())?;
            let (_, _, inner) = ed
                .decrypt(recipient, key, true, &SystemRandom)
                .map_err(|e| e.to_string())?;
            let (certs, crls) = certs_only::parse(&inner).map_err(|e| e.to_string())?;
            Ok(CertRepOutcome::Success {
                certificates: certs.into_iter().map(<[u8]>::to_vec).collect(),
                crls: crls.into_iter().map(<[u8]>::to_vec).collect(),
            })
        }
        Some(PkiStatus::Failure) => {
            let fi = text(oid::SCEP_FAIL_INFO)?.ok_or("failInfo missing")?;
            Ok(CertRepOutcome::Failure {
                fail_info: FailInfo::from_code(&fi).ok_or("unknown failInfo")?,
                text: text(oid::SCEP_FAIL_INFO_TEXT)?,
            })
        }
        Some(PkiStatus::Pending) => Ok(CertRepOutcome::Pending),
        None => Err("unknown pkiStatus".into()),
    }
}
