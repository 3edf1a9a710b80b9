//! A request signed with a digest we refuse (MD5, an unknown OID) gets a signed
//! CertRep FAILURE badAlg addressed to it (its transactionID, our recipientNonce), not an
//! HTTP 400: the outer structure was readable, so the client can be told why. Nothing is
//! issued. (PSS, which is supported, and SHA-224, which is refused, are shown with strongSwan
//! in `interop_strongswan.rs`.)

use scepd_pki::algorithms::DigestAlg;
use scepd_pki::der::{Reader, oid, tag, writer};
use scepd_pki::scep::client::{CertRepOutcome, Protection};
use scepd_pki::scep::{FailInfo, MessageType};

use super::testkit::*;

/// Re-encodes `der` with every OID `from` replaced by `to`, fixing the lengths of everything
/// around it; returns the new DER and how many were replaced. Primitive values (the encrypted
/// content, signatures) are copied as they are.
fn replace_oid(der: &[u8], from: &[u8], to: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut replaced = 0;
    let mut r = Reader::new(der);
    while !r.is_empty() {
        let t = r.read().unwrap();
        if t.is_constructed() {
            let (inner, n) = replace_oid(t.value, from, to);
            out.extend(writer::tlv(t.tag, &[&inner]));
            replaced += n;
        } else if t.tag == tag::OID && t.value == from {
            out.extend(writer::oid(to));
            replaced += 1;
        } else {
            out.extend_from_slice(t.raw);
        }
    }
    (out, replaced)
}

/// A PKCSReq signed with SHA-512 whose digest OIDs are then rewritten to `digest_oid`.
fn request_with_digest(
    server: &Server,
    ca: &CaCerts,
    device: &Device,
    digest_oid: &[u8],
) -> (scepd_pki::scep::client::ClientRequest, Vec<u8>) {
    let sha512 = Protection {
        digest: DigestAlg::Sha512,
        ..DEFAULT_PROTECTION
    };
    let req = device.request(
        ca,
        MessageType::PkcsReq,
        &device.csr(Some(&server.challenge), &[]),
        sha512,
        None,
    );
    let (der, n) = replace_oid(&req.der, oid::SHA512, digest_oid);
    // SignedData.digestAlgorithms and SignerInfo.digestAlgorithm.
    assert_eq!(n, 2, "expected two digest identifiers");
    (req, der)
}

fn assert_bad_alg(
    device: &Device,
    ca: &CaCerts,
    req: &scepd_pki::scep::client::ClientRequest,
    r: &HttpReply,
) {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.content_type, "application/x-pki-message");
    // decode checks the RA's signature, the transactionID and that our senderNonce came back.
    match device.decode(ca, req, &r.body, None) {
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadAlg,
            text,
        } => assert!(
            text.unwrap_or_default().contains("digest"),
            "failInfoText names the digest"
        ),
        other => panic!("expected a signed FAILURE badAlg, got {other:?}"),
    }
}

#[test]
fn md5_and_unknown_digests_get_a_signed_bad_alg_and_nothing_is_issued() {
    let server = Server::start();
    let ca = server.ca_certs();
    let device = Device::new("md5 managementAttestation M-1");
    let (md5_req, md5) = request_with_digest(&server, &ca, &device, oid::MD5);
    assert_bad_alg(&device, &ca, &md5_req, &server.pki_operation(&md5));
    // An OID nobody assigned (1.3.14.3.2.127), same answer.
    let unknown = [0x2b, 0x0e, 0x03, 0x02, 0x7f];
    let (req, der) = request_with_digest(&server, &ca, &device, &unknown);
    assert_bad_alg(&device, &ca, &req, &server.pki_operation(&der));
    // Over GET too (the same parser behind both).
    let message = scepd_pki::encoding::encode_base64(&md5)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let get = server.get(&format!(
        "{}?operation=PKIOperation&message={message}",
        server.scep_path()
    ));
    assert_bad_alg(&device, &ca, &md5_req, &get);
    let list: serde_json::Value =
        serde_json::from_slice(&server.cli(&["cert", "list", "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
    // The same request unmodified enrolls: only the digest was refused.
    let ok = device.request(
        &ca,
        MessageType::PkcsReq,
        &device.csr(Some(&server.challenge), &[]),
        Protection {
            digest: DigestAlg::Sha512,
            ..DEFAULT_PROTECTION
        },
        None,
    );
    issued(&device.decode(&ca, &ok, &server.pki_operation(&ok.der).body, None));
}
