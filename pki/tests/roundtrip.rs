//! Client → server → client round trips through the pki crate alone, every cipher × key
//! transport × digest we support.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scepd_pki::algorithms::{ContentCipher, DigestAlg, KeyTransport};
use scepd_pki::ca::hierarchy::{HierarchySpec, bootstrap};
use scepd_pki::der::oid;
use scepd_pki::issue::{DeviceProfile, issue_device_certificate};
use scepd_pki::keys::{KeyAlgorithm, SoftwareKey};
use scepd_pki::pkcs10;
use scepd_pki::random::SystemRandom;
use scepd_pki::scep::client::{
    CertRepOutcome, Protection, RequestBuilder, decode_cert_rep, self_signed_signer,
    transaction_id_for_key,
};
use scepd_pki::scep::{
    CertRepSigner, Envelope, FailInfo, FailureReply, MessageData, MessageType, Recipient,
};
use scepd_pki::x509::{Certificate, name};

const NOW: i64 = 1_795_000_000;

#[test]
fn every_protection_round_trips() {
    let rng = SystemRandom;
    let spec = HierarchySpec {
        organization: "Test".into(),
        root_key: KeyAlgorithm::EcP256,
        intermediate_key: KeyAlgorithm::EcP256,
        ra_key: KeyAlgorithm::Rsa2048,
        root_validity_secs: 10 * 365 * 86400,
        intermediate_validity_secs: 5 * 365 * 86400,
        ra_validity_secs: 2 * 365 * 86400,
        now: NOW,
    };
    let h = bootstrap(&spec, &rng).unwrap();
    let ra_cert = Certificate::parse(&h.ra.cert_der).unwrap();
    let int_cert = Certificate::parse(&h.intermediate.cert_der).unwrap();
    ra_cert.verify_signed_by(int_cert.spki).unwrap();
    let (device_key, _) = SoftwareKey::generate(KeyAlgorithm::Rsa2048).unwrap();
    let subject = name::build(&[(oid::AT_COMMON_NAME, "alice managementAttestation DEV-1")]);
    let signer_der = self_signed_signer(&device_key, &subject, NOW, &rng).unwrap();
    let signer_cert = Certificate::parse(&signer_der).unwrap();
    for cipher in [
        ContentCipher::Aes128Cbc,
        ContentCipher::Aes192Cbc,
        ContentCipher::Aes256Cbc,
        ContentCipher::DesEde3Cbc,
        ContentCipher::DesCbc,
    ] {
        for transport in [
            KeyTransport::RsaPkcs1v15,
            KeyTransport::RsaOaep(DigestAlg::Sha1),
            KeyTransport::RsaOaep(DigestAlg::Sha256),
        ] {
            for digest in [DigestAlg::Sha256, DigestAlg::Sha512] {
                let csr =
                    pkcs10::build(&subject, &device_key, digest, Some("s3cret"), &[]).unwrap();
                let req = RequestBuilder {
                    message_type: MessageType::PkcsReq,
                    transaction_id: transaction_id_for_key(device_key_spki(&device_key)).unwrap(),
                    signer_cert: &signer_cert,
                    signer_key: &device_key,
                    recipient: &ra_cert,
                    protection: Protection {
                        cipher,
                        transport,
                        digest,
                    },
                    rng: &rng,
                    signing_time: Some(NOW),
                }
                .build(&csr)
                .unwrap();
                let msg = Envelope::decode(&req.der).unwrap();
                assert_eq!(msg.header.message_type, MessageType::PkcsReq);
                assert_eq!(msg.header.digest, digest);
                let allow_des = cipher == ContentCipher::DesCbc;
                let ra = [Recipient {
                    cert: ra_cert.clone(),
                    key: &h.ra.key,
                }];
                let opened = msg.open(&ra, allow_des, &rng).unwrap();
                assert_eq!((opened.cipher, opened.transport), (cipher, transport));
                let request = opened.request().unwrap();
                let MessageData::Csr(parsed) = &request.data else {
                    panic!("a PKCSReq carries a CSR: {:?}", request.data);
                };
                assert_eq!(
                    parsed
                        .request
                        .challenge_password
                        .as_deref()
                        .map(String::as_str),
                    Some("s3cret")
                );
                let issued = issue_device_certificate(
                    parsed,
                    &DeviceProfile::default(),
                    &int_cert,
                    &h.intermediate.key,
                    NOW,
                    &rng,
                )
                .unwrap();
                Certificate::parse(&issued.der)
                    .unwrap()
                    .verify_signed_by(int_cert.spki)
                    .unwrap();
                let signer = CertRepSigner {
                    ra_cert: &ra_cert,
                    ra_key: &h.ra.key,
                    rng: &rng,
                    now: NOW,
                };
                let rep = request.success(&signer, &[&issued.der], &[]).unwrap();
                let out =
                    decode_cert_rep(&rep, &ra_cert, &req, &signer_cert, &device_key, &rng).unwrap();
                assert_eq!(
                    out,
                    CertRepOutcome::Success {
                        certificates: vec![issued.der.clone()],
                        crls: vec![]
                    }
                );
                let fail = request
                    .failure(
                        &signer,
                        &FailureReply {
                            fail_info: FailInfo::BadRequest,
                            text: "no".into(),
                        },
                    )
                    .unwrap();
                assert_eq!(
                    decode_cert_rep(&fail, &ra_cert, &req, &signer_cert, &device_key, &rng)
                        .unwrap(),
                    CertRepOutcome::Failure {
                        fail_info: FailInfo::BadRequest,
                        text: Some("no".into())
                    }
                );
                if cipher == ContentCipher::DesCbc {
                    assert!(msg.open(&ra, false, &rng).is_err());
                }
            }
        }
    }
}

fn device_key_spki(k: &SoftwareKey) -> &[u8] {
    use scepd_pki::keys::Signer;
    k.public_key_der()
}

/// A KeyTransRecipientInfo that names the RA by subjectKeyIdentifier (RFC 5652 §6.2.1 `[0]`)
/// decrypts like one naming it by issuer and serial.
#[test]
fn recipient_by_subject_key_identifier() {
    use scepd_pki::cms::enveloped_data::{EnvelopedData, RecipientIdKind, build_for};
    let rng = SystemRandom;
    let (ra_key, _) = SoftwareKey::generate(KeyAlgorithm::Rsa2048).unwrap();
    let subject = name::build(&[(oid::AT_COMMON_NAME, "RA")]);
    let ski_ext = scepd_pki::issue::extensions::subject_key_identifier(&[7u8; 20]);
    let ra_der = scepd_pki::ca::hierarchy::certify(
        &subject,
        &ra_key,
        None,
        KeyAlgorithm::Rsa2048,
        NOW - 10,
        NOW + 1000,
        vec![ski_ext],
        &rng,
    )
    .unwrap();
    let ra = Certificate::parse(&ra_der).unwrap();
    let env = build_for(
        b"hello",
        &ra,
        RecipientIdKind::SubjectKeyId,
        KeyTransport::RsaOaep(DigestAlg::Sha1),
        ContentCipher::Aes128Cbc,
        &rng,
    )
    .unwrap();
    let parsed = EnvelopedData::parse(&env).unwrap();
    assert!(
        matches!(parsed.recipients[0].rid, scepd_pki::cms::signed_data::SignerId::KeyId(k) if k == [7u8; 20])
    );
    let (_, _, plain) = parsed.decrypt(&ra, &ra_key, false, &rng).unwrap();
    assert_eq!(&plain[..], b"hello");
    // A certificate without that key identifier is not the recipient.
    let other_der = scepd_pki::ca::hierarchy::certify(
        &subject,
        &ra_key,
        None,
        KeyAlgorithm::Rsa2048,
        NOW - 10,
        NOW + 1000,
        vec![],
        &rng,
    )
    .unwrap();
    let other = Certificate::parse(&other_der).unwrap();
    assert!(parsed.decrypt(&other, &ra_key, false, &rng).is_err());
}

/// The client-side OCSP request builder and the responder's parser agree: CertID hashes name
/// the issuer, the serial and the nonce come through.
#[test]
fn ocsp_requests_round_trip() {
    use scepd_pki::revocation::ocsp::{IssuerHashes, build_request, parse_request};
    let (key, _) = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
    let subject = name::build(&[(oid::AT_COMMON_NAME, "Issuing CA")]);
    let der = scepd_pki::ca::hierarchy::certify(
        &subject,
        &key,
        None,
        KeyAlgorithm::EcP256,
        NOW - 10,
        NOW + 1000,
        vec![],
        &SystemRandom,
    )
    .unwrap();
    let issuer = Certificate::parse(&der).unwrap();
    let hashes = IssuerHashes::new(&issuer).unwrap();
    let serial = [0x51u8, 0, 7, 0x80];
    let plain = parse_request(&build_request(&issuer, &serial, None).unwrap()).unwrap();
    assert_eq!(plain.cert_ids.len(), 1);
    assert!(hashes.matches(&plain.cert_ids[0]));
    assert_eq!(plain.cert_ids[0].serial, serial);
    assert_eq!(plain.nonce, None);
    let with_nonce =
        parse_request(&build_request(&issuer, &serial, Some(&[9u8; 16])).unwrap()).unwrap();
    assert_eq!(with_nonce.cert_ids, plain.cert_ids);
    // extnValue holds the DER OCTET STRING of the nonce.
    let nonce = with_nonce.nonce.unwrap();
    assert_eq!(nonce[..2], [0x04, 16]);
    assert_eq!(nonce[2..], [9u8; 16]);
}
