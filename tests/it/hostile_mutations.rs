//! Systematically generated hostile PKIOperations: every truncation, bit flips
//! spread over the whole message, a wrong tag and an overflowing length at every TLV header,
//! huge INTEGERs, wrong OIDs, mis-addressed signers, bad CSRs, oversized challengePasswords and
//! unsupported algorithms. Each gets its documented answer — HTTP 400 with a one-line reason
//! before the signature verifies, a signed CertRep FAILURE after — never a 500; the server keeps
//! serving, writes nothing to the store, and its resident memory stays bounded.
//! (`hostile.rs` holds the hand-written cases; CA:true/extra key usages are in `enroll.rs`.)

use scepd_pki::algorithms::DigestAlg;
use scepd_pki::cms::signed_data::{SignedData, SignedDataBuilder};
use scepd_pki::cms::{attributes, enveloped_data};
use scepd_pki::der::{oid, tag, writer};
use scepd_pki::keys::{KeyAlgorithm, Signer};
use scepd_pki::random::SystemRandom;
use scepd_pki::scep::Nonce;
use scepd_pki::scep::client::{ClientRequest, transaction_id_for_key};
use scepd_pki::x509::Certificate;

use super::testkit::*;

/// What the server answered, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// HTTP 400 with a one-line text body.
    Refused400,
    /// A signed CertRep with pkiStatus FAILURE and this failInfo code.
    Failure(String),
    /// A signed CertRep SUCCESS (a certificate was issued).
    Success,
    /// Anything else: status and body, for the failure message.
    Other(u16, String),
}

fn classify(r: &HttpReply) -> Answer {
    let text = String::from_utf8_lossy(&r.body).to_string();
    if r.status == 400 {
        let one_line = text.ends_with('\n') && text.matches('\n').count() == 1;
        if one_line && r.content_type.starts_with("text/plain") {
            return Answer::Refused400;
        }
        return Answer::Other(400, text);
    }
    if r.status != 200 || r.content_type != "application/x-pki-message" {
        return Answer::Other(r.status, text);
    }
    let Ok(sd) = SignedData::parse(&r.body) else {
        return Answer::Other(200, "CertRep does not parse".into());
    };
    let attr = |o: &[u8]| -> Option<String> {
        let t = sd.signers.first()?.attribute(o).ok()??;
        Some(String::from_utf8_lossy(t.value).to_string())
    };
    match attr(oid::SCEP_PKI_STATUS).as_deref() {
        Some("0") => Answer::Success,
        Some("2") => Answer::Failure(attr(oid::SCEP_FAIL_INFO).unwrap_or_default()),
        other => Answer::Other(200, format!("pkiStatus {other:?}")),
    }
}

/// One TLV header in a DER buffer: offset, header length, content length.
#[derive(Debug, Clone, Copy)]
struct Header {
    at: usize,
    head: usize,
    len: usize,
}

/// All TLV headers (definite lengths, as our client writes), depth first.
fn headers(buf: &[u8], base: usize, out: &mut Vec<Header>) {
    let mut i = 0;
    while i + 2 <= buf.len() {
        let t = buf[i];
        let (len, head) = match buf[i + 1] {
            l if l < 0x80 => (usize::from(l), 2),
            0x81..=0x83 => {
                let n = usize::from(buf[i + 1] & 0x7f);
                if i + 2 + n > buf.len() {
                    return;
                }
                let l = buf[i + 2..i + 2 + n]
                    .iter()
                    .fold(0usize, |a, &b| (a << 8) | usize::from(b));
                (l, 2 + n)
            }
            _ => return,
        };
        if i + head + len > buf.len() {
            return;
        }
        out.push(Header {
            at: base + i,
            head,
            len,
        });
        if t & 0x20 != 0 {
            headers(&buf[i + head..i + head + len], base + i + head, out);
        } else if t == tag::OCTET_STRING && len > 2 && buf[i + head] == tag::SEQUENCE {
            // An OCTET STRING wrapping DER (the encapsulated envelope).
            headers(&buf[i + head..i + head + len], base + i + head, out);
        }
        i += head + len;
    }
}

/// Number of certificates in the store.
fn cert_count(server: &Server) -> usize {
    let out = server.cli(&["cert", "list", "--json"]);
    assert!(out.status.success(), "cert list failed");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array().map_or(0, Vec::len)
}

/// Resident set size of the server, in KiB.
fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Signs `content` into a PKCSReq pkiMessage with full control over certificates, digest and
/// signed attributes.
fn signed(
    device: &Device,
    content: &[u8],
    certificates: Vec<&[u8]>,
    digest: DigestAlg,
    message_type: &str,
) -> ClientRequest {
    let signer = Certificate::parse(&device.signer_der).unwrap();
    let transaction_id = transaction_id_for_key(device.key.public_key_der()).unwrap();
    let sender_nonce = Nonce::random(&SystemRandom).unwrap();
    let attrs = vec![
        attributes::encode(oid::SCEP_TRANSACTION_ID, &transaction_id.encode()),
        attributes::encode(
            oid::SCEP_MESSAGE_TYPE,
            &writer::printable_string(message_type),
        ),
        attributes::encode(
            oid::SCEP_SENDER_NONCE,
            &writer::octet_string(sender_nonce.as_bytes()),
        ),
    ];
    let der = SignedDataBuilder {
        content: Some(content),
        certificates,
        signer_cert: &signer,
        signer: &device.key,
        digest,
        attributes: attrs,
        signing_time: Some(unix_now()),
    }
    .build()
    .unwrap();
    ClientRequest {
        der,
        transaction_id,
        sender_nonce,
    }
}

/// Envelopes `data` to the RA and signs it as a PKCSReq from `device`.
fn enveloped_req(ca: &CaCerts, device: &Device, data: &[u8]) -> ClientRequest {
    let ra = Certificate::parse(&ca.ra).unwrap();
    let env = enveloped_data::build(
        data,
        &ra,
        DEFAULT_PROTECTION.transport,
        DEFAULT_PROTECTION.cipher,
        &SystemRandom,
    )
    .unwrap();
    signed(
        device,
        &env,
        vec![&device.signer_der],
        DigestAlg::Sha256,
        "19",
    )
}

/// Runs one case; records it and what was expected.
struct Suite<'a> {
    server: &'a Server,
    cases: usize,
    bad: Vec<String>,
}

impl Suite<'_> {
    /// `ok` decides whether the answer is the documented one for this case.
    fn case(&mut self, what: &str, body: &[u8], ok: impl Fn(&Answer) -> bool) {
        let a = classify(&self.server.pki_operation(body));
        self.cases += 1;
        if !ok(&a) {
            self.bad.push(format!("{what}: {a:?}"));
        }
    }
}

fn refused_or_failed(a: &Answer) -> bool {
    matches!(a, Answer::Refused400 | Answer::Failure(_))
}

#[test]
fn two_hundred_generated_hostile_requests_get_documented_answers() {
    let mut server = Server::start();
    let ca = server.ca_certs();
    let pid = server.pid();
    // Warm up (first enrollment loads everything), then measure.
    let warm = Device::new("warmup managementAttestation W-1");
    issued(&warm.enroll(&server, &ca, Some(&server.challenge), DEFAULT_PROTECTION));
    let certs_before = cert_count(&server);
    let rss_before = vm_rss_kib(pid);

    // The victim uses a wrong challenge: even a mutation the signature does not cover can then
    // not issue, so "nothing written" is exact. A right-challenge copy checks the flips below.
    let device = Device::new("victim managementAttestation V-1");
    let base = device.pkcs_req(&ca, Some("wrong challenge"));
    let der = &base.der;
    let mut hs = Vec::new();
    headers(der, 0, &mut hs);
    assert!(hs.len() > 40, "walked only {} TLVs", hs.len());
    let mut suite = Suite {
        server: &server,
        cases: 0,
        bad: Vec::new(),
    };

    // 1. Every truncation at a step of len/100: unparsable → 400.
    let step = (der.len() / 100).max(1);
    for cut in (0..der.len()).step_by(step) {
        suite.case(&format!("truncated to {cut}"), &der[..cut], |a| {
            *a == Answer::Refused400
        });
    }
    // 2. Single bit flips spread over the message.
    for k in 0..64 {
        let at = k * der.len() / 64 + (k % 7);
        let mut m = der.clone();
        m[at] ^= 1 << (k % 8);
        suite.case(&format!("bit flip at {at}"), &m, refused_or_failed);
    }
    // 3. A wrong tag at each of the first 40 TLV headers (NULL, then a high private tag).
    for (i, h) in hs.iter().take(40).enumerate() {
        let mut m = der.clone();
        m[h.at] = if i % 2 == 0 { tag::NULL } else { 0xdf };
        suite.case(&format!("wrong tag at {}", h.at), &m, refused_or_failed);
    }
    // 4. A length claiming 4 GiB at each of the first 30 TLV headers.
    for h in hs.iter().take(30) {
        let mut m = der[..h.at + 1].to_vec();
        m.extend_from_slice(&[0x84, 0xff, 0xff, 0xff, 0xf0]);
        m.extend_from_slice(&der[h.at + h.head..]);
        suite.case(&format!("4 GiB length at {}", h.at), &m, |a| {
            *a == Answer::Refused400
        });
    }
    // 5. Lengths one too long and one too short at each of the first 20 headers (short form).
    for h in hs.iter().filter(|h| h.head == 2 && h.len > 1).take(20) {
        for d in [1u8, 0xff] {
            let mut m = der.clone();
            m[h.at + 1] = m[h.at + 1].wrapping_add(d);
            suite.case(&format!("length {d:+} at {}", h.at), &m, refused_or_failed);
        }
    }
    // 6. Huge INTEGERs: SignedData version and a 100 KiB serial-sized INTEGER as the body.
    let huge = writer::tlv(tag::INTEGER, &[&vec![0x7f; 100 * 1024]]);
    suite.case("100 KiB INTEGER", &huge, |a| *a == Answer::Refused400);
    let ci = writer::sequence(&[
        &writer::oid(oid::SIGNED_DATA),
        &writer::context(0, &[&writer::sequence(&[&huge])]),
    ]);
    suite.case("SignedData version of 100 KiB", &ci, |a| {
        *a == Answer::Refused400
    });
    // 7. Wrong OIDs: outer contentType id-data instead of signedData; eContentType changed.
    let mut m = der.clone();
    let sd_oid = writer::oid(oid::SIGNED_DATA);
    let pos = m.windows(sd_oid.len()).position(|w| w == sd_oid).unwrap();
    m[pos + sd_oid.len() - 1] = 0x01; // 1.2.840.113549.1.7.1 (data)
    suite.case("outer contentType id-data", &m, |a| {
        *a == Answer::Refused400
    });
    // 8. Message types we never accept.
    // (The wrong challenge again: "19 " is read as PKCSReq, then refused with badRequest. A
    // success here would also turn every later request of this transactionID into a replay.)
    for mt in ["3", "99", "", "-1", "19 "] {
        let csr = device.csr(Some("wrong challenge"), &[]);
        let ra = Certificate::parse(&ca.ra).unwrap();
        let env = enveloped_data::build(
            &csr,
            &ra,
            DEFAULT_PROTECTION.transport,
            DEFAULT_PROTECTION.cipher,
            &SystemRandom,
        )
        .unwrap();
        let r = signed(
            &device,
            &env,
            vec![&device.signer_der],
            DigestAlg::Sha256,
            mt,
        );
        suite.case(&format!("messageType {mt:?}"), &r.der, refused_or_failed);
    }
    // 9. Signer certificate missing, or replaced by another device's: the signer is unknown.
    let other = Device::new("someone else");
    let env = {
        let ra = Certificate::parse(&ca.ra).unwrap();
        enveloped_data::build(
            &device.csr(Some("wrong challenge"), &[]),
            &ra,
            DEFAULT_PROTECTION.transport,
            DEFAULT_PROTECTION.cipher,
            &SystemRandom,
        )
        .unwrap()
    };
    for (what, certs) in [
        ("no certificates", vec![]),
        (
            "another device's certificate",
            vec![other.signer_der.as_slice()],
        ),
        ("the RA certificate", vec![ca.ra.as_slice()]),
    ] {
        let r = signed(&device, &env, certs, DigestAlg::Sha256, "19");
        suite.case(what, &r.der, |a| {
            *a == Answer::Failure("1".into()) || *a == Answer::Refused400
        });
    }
    // 10. Envelope content that is not a CSR, or a CSR whose self-signature is wrong: the one
    // deliberately indistinguishable badMessageCheck.
    let good_csr = device.csr(Some(&server.challenge), &[]);
    let mut bad_sig = good_csr.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 0x01;
    for (what, data) in [
        ("CSR signature mismatch", bad_sig),
        ("envelope holds a certificate", ca.ra.clone()),
        ("envelope holds garbage", vec![0x30, 0x03, 0x02, 0x01, 0x00]),
        ("envelope holds nothing", vec![]),
    ] {
        let r = enveloped_req(&ca, &device, &data);
        suite.case(what, &r.der, |a| *a == Answer::Failure("1".into()));
    }
    // 11. Oversized challengePassword (beyond pki::pkcs10::MAX_CHALLENGE_LEN) and an almost
    // oversized wrong one: refused, badMessageCheck or badRequest.
    for n in [8193, 60_000, 8192] {
        let csr = device.csr(Some(&"A".repeat(n)), &[]);
        let r = enveloped_req(&ca, &device, &csr);
        suite.case(
            &format!("challengePassword of {n}"),
            &r.der,
            |a| matches!(a, Answer::Failure(f) if f == "1" || f == "2"),
        );
    }
    // 12. Unsupported or weak algorithms: SHA-1 signer digest (allowed for old clients, so
    // here it meets the wrong challenge), and rsaEncryption patched to an unknown OID wherever
    // it occurs (signer key, key transport, signature algorithm).
    let r = signed(
        &device,
        &env,
        vec![&device.signer_der],
        DigestAlg::Sha512,
        "19",
    );
    suite.case("SHA-512 signer digest", &r.der, |a| {
        *a == Answer::Failure("2".into())
    });
    let sha512 = writer::oid(oid::SHA512);
    let mut unknown_digest = r.der.clone();
    let mut patched = 0;
    for i in 0..unknown_digest.len() - sha512.len() {
        if unknown_digest[i..i + sha512.len()] == sha512[..] {
            unknown_digest[i + sha512.len() - 1] = 0x7f;
            patched += 1;
        }
    }
    assert!(patched >= 2, "digestAlgorithms and SignerInfo");
    // Readable but refused: a signed badAlg, never a 400.
    suite.case("unknown digest OID", &unknown_digest, |a| {
        *a == Answer::Failure("0".into())
    });
    // An EC signer certificate with the right challenge: the reply could not be encrypted to
    // it, so it is refused (badAlg) before anything is issued.
    let ec = Device::with_key("ec signer managementAttestation E-1", KeyAlgorithm::EcP256);
    let r = ec.pkcs_req(&ca, Some(&server.challenge));
    suite.case("EC signer certificate", &r.der, |a| {
        *a == Answer::Failure("0".into())
    });
    let m = r.der.clone();
    let rsa = writer::oid(oid::RSA_ENCRYPTION);
    let hits: Vec<usize> = m
        .windows(rsa.len())
        .enumerate()
        .filter_map(|(i, w)| (w == rsa.as_slice()).then_some(i))
        .collect();
    for h in &hits {
        let mut mm = m.clone();
        mm[h + rsa.len() - 1] = 0x7e;
        suite.case(&format!("rsaEncryption OID patched at {h}"), &mm, |a| {
            refused_or_failed(a)
        });
    }

    let cases = suite.cases;
    let bad = std::mem::take(&mut suite.bad);
    assert!(cases >= 200, "only {cases} cases");
    assert!(
        bad.is_empty(),
        "{} of {cases} cases got an undocumented answer:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(server.alive(), "server died");
    assert_eq!(
        cert_count(&server),
        certs_before,
        "a hostile request was stored"
    );
    let rss_after = vm_rss_kib(pid);
    assert!(
        rss_after < rss_before + 64 * 1024,
        "VmRSS grew from {rss_before} KiB to {rss_after} KiB over {cases} hostile requests"
    );
    eprintln!("{cases} hostile requests; VmRSS {rss_before} → {rss_after} KiB");
    // And a real client still enrolls.
    let fine = Device::new("afterwards managementAttestation A-1");
    issued(&fine.enroll(&server, &ca, Some(&server.challenge), DEFAULT_PROTECTION));
}

/// Subject and SAN injection attempts: names that look like more RDNs, control characters,
/// NULs, over-long CNs. Each is either issued with exactly the requested subject bytes (no
/// re-parsing of text into structure) or refused with a signed badRequest — never a 500.
#[test]
fn subject_injection_is_issued_verbatim_or_refused() {
    let server = Server::start();
    let ca = server.ca_certs();
    let cns = [
        "alice managementAttestation X-1,CN=root,O=Evil",
        "alice\nCN=admin managementAttestation X-2",
        "alice\0admin managementAttestation X-3",
        "alice/CN=root managementAttestation X-4",
        "alice \u{202e}nimda managementAttestation X-5",
        &"A".repeat(5000),
        "",
    ];
    for cn in cns {
        let device = Device::new(cn);
        let req = device.pkcs_req(&ca, Some(&server.challenge));
        let r = server.pki_operation(&req.der);
        match classify(&r) {
            Answer::Success => {
                let cert = issued(&device.decode(&ca, &req, &r.body, None));
                let parsed = Certificate::parse(&cert).unwrap();
                assert_eq!(parsed.subject, device.subject.as_slice(), "{cn:?}");
            }
            Answer::Failure(f) => assert_eq!(f, "2", "{cn:?}: failInfo"),
            other => panic!("{cn:?}: {other:?}"),
        }
    }
}
