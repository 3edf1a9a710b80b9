//! Requester-shaped bytes never go under our signature: subject, public key
//! and subjectAltName are copied into the certificate as received, so each must be strict DER
//! with characters its type allows and no control characters. Every malformed form the audit
//! got signed is refused with a signed FAILURE badRequest, and the server keeps enrolling.

use scepd_pki::algorithms::DigestAlg;
use scepd_pki::der::{oid, tag, writer};
use scepd_pki::issue::extensions;
use scepd_pki::keys::Signer;
use scepd_pki::pkcs10;
use scepd_pki::scep::{FailInfo, MessageType};

use super::testkit::*;

const UPN_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x14, 0x02, 0x03];

/// `SEQUENCE { SET { SEQUENCE { OID, value } } }` with `value` an already encoded string.
fn name_with(attr_oid: &[u8], value: &[u8]) -> Vec<u8> {
    writer::sequence(&[&writer::set_of(&[&writer::sequence(&[
        &writer::oid(attr_oid),
        value,
    ])])])
}

fn cn(text: &str) -> Vec<u8> {
    name_with(oid::AT_COMMON_NAME, &writer::utf8_string(text))
}

/// A BER re-encoding of `der`'s outer TLV with an indefinite length (constructed types only).
fn indefinite(der: &[u8]) -> Vec<u8> {
    let header = if der[1] < 0x80 {
        2
    } else {
        2 + usize::from(der[1] & 0x7f)
    };
    let mut out = vec![der[0], 0x80];
    out.extend_from_slice(&der[header..]);
    out.extend_from_slice(&[0, 0]);
    out
}

/// `der`'s outer TLV with its length in one more octet than DER allows.
fn padded_length(der: &[u8]) -> Vec<u8> {
    let (len, header) = if der[1] < 0x80 {
        (usize::from(der[1]), 2)
    } else {
        let n = usize::from(der[1] & 0x7f);
        (
            der[2..2 + n]
                .iter()
                .fold(0usize, |a, b| (a << 8) | usize::from(*b)),
            2 + n,
        )
    };
    let mut out = vec![der[0], 0x84];
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(&der[header..]);
    out
}

fn upn_other_name(inner: &[u8]) -> Vec<u8> {
    let mut explicit = writer::sequence(&[inner]);
    explicit[0] = tag::context_constructed(0);
    let mut other = writer::sequence(&[&writer::oid(UPN_OID), &explicit]);
    other[0] = tag::context_constructed(0);
    other
}

fn san(general_names: &[u8]) -> Vec<u8> {
    extensions::subject_alt_name(general_names, false)
}

/// A CSR over `subject` and `spki` (raw), signed by `device`'s key, with the challenge.
fn csr_with(
    device: &Device,
    subject: &[u8],
    spki: &[u8],
    challenge: &str,
    exts: &[Vec<u8>],
) -> Vec<u8> {
    let mut attrs = vec![scepd_pki::cms::attributes::encode(
        oid::CHALLENGE_PASSWORD,
        &writer::utf8_string(challenge),
    )];
    if !exts.is_empty() {
        let refs: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
        attrs.push(scepd_pki::cms::attributes::encode(
            oid::EXTENSION_REQUEST,
            &writer::sequence(&refs),
        ));
    }
    let attr_refs: Vec<&[u8]> = attrs.iter().map(Vec::as_slice).collect();
    let mut attr_set = writer::set_of(&attr_refs);
    attr_set[0] = tag::context_constructed(0);
    let info = writer::sequence(&[&writer::small_integer(0), subject, spki, &attr_set]);
    let alg = device.key.signature_alg(DigestAlg::Sha256).unwrap();
    let sig = device.key.sign(DigestAlg::Sha256, &info).unwrap();
    writer::sequence(&[
        &info,
        &alg.algorithm_identifier(),
        &writer::bit_string(&sig),
    ])
}

/// Sends `csr` as a PKCSReq from `device`; returns the failure's failInfo and text, or None
/// when it was not refused.
fn refusal(
    server: &Server,
    ca: &CaCerts,
    device: &Device,
    csr: &[u8],
    what: &str,
) -> Option<(FailInfo, String)> {
    let req = device.request(ca, MessageType::PkcsReq, csr, DEFAULT_PROTECTION, None);
    let r = server.pki_operation(&req.der);
    assert_eq!(
        r.status,
        200,
        "{what}: {}",
        String::from_utf8_lossy(&r.body)
    );
    match device.decode(ca, &req, &r.body, None) {
        scepd_pki::scep::client::CertRepOutcome::Failure { fail_info, text } => {
            Some((fail_info, text.unwrap_or_default()))
        }
        _ => None,
    }
}

#[test]
fn non_der_and_control_characters_are_refused_before_signing() {
    let server = Server::start();
    let ca = server.ca_certs();
    let challenge = server.challenge.clone();
    let good_subject = cn("strict managementAttestation D-1");
    let nul_upn = upn_other_name(&writer::utf8_string("ceo@corp.example\0evil"));
    let trailing_upn = upn_other_name(
        &[
            writer::utf8_string("ceo@corp.example"),
            writer::utf8_string("extra"),
        ]
        .concat(),
    );
    let good_dns = [0x82u8, 0x0b]
        .iter()
        .copied()
        .chain(*b"d1.corp.dev")
        .collect::<Vec<u8>>();
    let mut odd_universal = vec![tag::UNIVERSAL_STRING, 0x05];
    odd_universal.extend_from_slice(&[0, 0, 0, b'A', 0]);
    let mut bad_printable = vec![tag::PRINTABLE_STRING, 0x03];
    bad_printable.extend_from_slice(b"@*_");

    // (what, subject, spki mutation, SAN extension)
    type Case = (&'static str, Vec<u8>, bool, Option<Vec<u8>>);
    let cases: Vec<Case> = vec![
        (
            "indefinite-length subject",
            indefinite(&good_subject),
            false,
            None,
        ),
        (
            "non-minimal subject length",
            padded_length(&good_subject),
            false,
            None,
        ),
        (
            "PrintableString with @*_",
            name_with(oid::AT_COMMON_NAME, &bad_printable),
            false,
            None,
        ),
        (
            "odd-length UniversalString",
            name_with(oid::AT_COMMON_NAME, &odd_universal),
            false,
            None,
        ),
        (
            "newline and ESC in the CN",
            cn("D-2\n2026 INFO forged \u{1b}[31m"),
            false,
            None,
        ),
        ("NUL in the CN", cn("D-3\0.corp.example"), false, None),
        (
            "non-minimal public key length",
            good_subject.clone(),
            true,
            None,
        ),
        (
            "UPN with an embedded NUL",
            good_subject.clone(),
            false,
            Some(san(&writer::sequence(&[&nul_upn]))),
        ),
        (
            "UPN with trailing TLVs",
            good_subject.clone(),
            false,
            Some(san(&writer::sequence(&[&trailing_upn]))),
        ),
        (
            "indefinite-length subjectAltName",
            good_subject.clone(),
            false,
            Some(san(&indefinite(&writer::sequence(&[&good_dns])))),
        ),
    ];
    let mut not_refused = Vec::new();
    for (what, subject, bad_spki, ext) in cases {
        let device = Device::new("strict managementAttestation D-1");
        let spki = if bad_spki {
            padded_length(device.key.public_key_der())
        } else {
            device.key.public_key_der().to_vec()
        };
        let exts: Vec<Vec<u8>> = ext.into_iter().collect();
        let csr = csr_with(&device, &subject, &spki, &challenge, &exts);
        // The request itself is sound: our own lenient parser takes it and its signature holds.
        pkcs10::CertificationRequest::parse_and_verify(&csr)
            .unwrap_or_else(|e| panic!("{what}: test CSR does not verify: {e}"));
        match refusal(&server, &ca, &device, &csr, what) {
            Some((fail_info, text)) => {
                assert_eq!(fail_info, FailInfo::BadRequest, "{what}: {text}");
                assert!(
                    !text.contains('\n') && !text.contains('\u{1b}'),
                    "{what}: {text:?}"
                );
            }
            None => not_refused.push(what),
        }
    }
    assert!(
        not_refused.is_empty(),
        "signed although malformed: {not_refused:?}"
    );

    // The same shapes, well formed, are issued: DER subject, DER key, a DNS and a UPN SAN.
    let device = Device::new("strict managementAttestation D-9");
    let upn = upn_other_name(&writer::utf8_string("ceo@corp.example"));
    let csr = csr_with(
        &device,
        &cn("strict managementAttestation D-9"),
        device.key.public_key_der(),
        &challenge,
        &[san(&writer::sequence(&[&good_dns, &upn]))],
    );
    let req = device.request(&ca, MessageType::PkcsReq, &csr, DEFAULT_PROTECTION, None);
    let r = server.pki_operation(&req.der);
    assert_eq!(r.status, 200);
    let cert = issued(&device.decode(&ca, &req, &r.body, None));
    let dir = tempfile::tempdir().unwrap();
    openssl_verify(dir.path(), &ca, &cert);
    let text = openssl_text(dir.path(), &cert);
    assert!(text.contains("DNS:d1.corp.dev"), "{text}");
}
