//! Hostile input against the running server: every malformed, tampered, mis-addressed or
//! oversized request gets its documented answer (a signed CertRep FAILURE with the right
//! failInfo, or a one-line 4xx), never a 500, and the server keeps serving afterwards.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::ops::Range;
use std::time::{Duration, Instant};

use scepd_pki::algorithms::{ContentCipher, KeyTransport};
use scepd_pki::cms::enveloped_data;
use scepd_pki::cms::signed_data::SignedData;
use scepd_pki::der::{Reader, oid, tag, writer};
use scepd_pki::keys::Signer;
use scepd_pki::random::{Random, SystemRandom};
use scepd_pki::scep::client::{
    CertRepOutcome, ClientRequest, Protection, RequestBuilder, transaction_id_for_key,
};
use scepd_pki::scep::{FailInfo, MessageType};
use scepd_pki::x509::Certificate;

use super::testkit::*;
use super::vectors::signature_range;

/// Default `[limits] max_body_bytes`.
const MAX_BODY: usize = 256 * 1024;

/// Fails on a 500 first (with the body), then on any other status than `want`.
fn assert_status(r: &HttpReply, want: u16, what: &str) {
    let body = String::from_utf8_lossy(&r.body);
    assert_ne!(r.status, 500, "{what}: HTTP 500 ({body})");
    assert_eq!(r.status, want, "{what}: {body}");
}

/// An HTTP-level refusal: `want` with a single-line text/plain reason.
fn assert_one_line(r: &HttpReply, want: u16, what: &str) {
    assert_status(r, want, what);
    assert!(
        r.content_type.starts_with("text/plain"),
        "{what}: content type {:?}",
        r.content_type
    );
    let text = String::from_utf8(r.body.clone()).unwrap();
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1 && text.trim().len() > 3,
        "{what}: not one line: {text:?}"
    );
}

/// Sends `req` and returns the failInfo and text of the signed FAILURE CertRep it must get.
fn failure(
    server: &Server,
    ca: &CaCerts,
    device: &Device,
    req: &ClientRequest,
    what: &str,
) -> (FailInfo, String) {
    let r = server.pki_operation(&req.der);
    assert_status(&r, 200, what);
    assert_eq!(r.content_type, "application/x-pki-message", "{what}");
    match device.decode(ca, req, &r.body, None) {
        CertRepOutcome::Failure { fail_info, text } => (fail_info, text.unwrap_or_default()),
        other => panic!("{what}: expected FAILURE, got {other:?}"),
    }
}

/// The server is alive, answers GetCACaps, and enrolls a fresh device with the right challenge.
fn still_serves(server: &mut Server, ca: &CaCerts) {
    assert!(server.alive(), "scepd process died");
    let r = server.get(&format!("{}?operation=GetCACaps", server.scep_path()));
    assert_status(&r, 200, "GetCACaps afterwards");
    let device = Device::new("survivor managementAttestation S-1");
    issued(&device.enroll(server, ca, Some(&server.challenge), DEFAULT_PROTECTION));
    assert!(server.alive(), "scepd process died");
}

/// A PKCSReq for `device` with full control over recipient and signingTime.
fn pkcs_req(
    device: &Device,
    recipient_der: &[u8],
    csr: &[u8],
    protection: Protection,
    signing_time: Option<i64>,
) -> ClientRequest {
    let recipient = Certificate::parse(recipient_der).unwrap();
    let signer = Certificate::parse(&device.signer_der).unwrap();
    RequestBuilder {
        message_type: MessageType::PkcsReq,
        transaction_id: transaction_id_for_key(device.key.public_key_der()).unwrap(),
        signer_cert: &signer,
        signer_key: &device.key,
        recipient: &recipient,
        protection,
        rng: &SystemRandom,
        signing_time,
    }
    .build(csr)
    .unwrap()
}

/// Offset of `part` (a sub-slice of `whole`) inside `whole`.
fn offset_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    assert!(start + part.len() <= whole.len(), "not a sub-slice");
    start..start + part.len()
}

/// Byte range of the encryptedContent octets inside a pkiMessage built by our client.
fn ciphertext_range(der: &[u8]) -> Range<usize> {
    let sd = SignedData::parse(der).unwrap();
    let env = sd.content.as_deref().unwrap();
    let env_range = offset_in(der, env);
    let mut ci = Reader::new(&der[env_range])
        .expect(tag::SEQUENCE)
        .unwrap()
        .reader();
    assert_eq!(ci.expect(tag::OID).unwrap().value, oid::ENVELOPED_DATA);
    let mut ed = ci
        .expect(tag::context_constructed(0))
        .unwrap()
        .reader()
        .expect(tag::SEQUENCE)
        .unwrap()
        .reader();
    ed.expect(tag::INTEGER).unwrap();
    ed.expect(tag::SET).unwrap();
    let mut eci = ed.expect(tag::SEQUENCE).unwrap().reader();
    eci.expect(tag::OID).unwrap();
    eci.expect(tag::SEQUENCE).unwrap();
    let ct = eci.expect(tag::context_primitive(0)).unwrap();
    assert!(ct.value.len() >= 16);
    offset_in(der, ct.value)
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    SystemRandom.fill(&mut b).unwrap();
    b
}

/// Writes raw request bytes and returns the status code of the reply (None if the server closed
/// the connection without one).
fn raw_status(addr: &str, request: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(request);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let head = String::from_utf8_lossy(&raw);
    head.split_whitespace().nth(1)?.parse().ok()
}

/// A device relies on every refusal of a well-formed but unacceptable request being a signed
/// CertRep FAILURE with the documented failInfo and text: wrong challenge (badRequest), envelope
/// for another recipient (badMessageCheck), tampered signature or ciphertext (badMessageCheck),
/// unknown or forbidden content cipher (badAlg), signingTime far off (badTime).
#[test]
fn signed_refusals_carry_the_documented_fail_info() {
    let mut server = Server::start();
    let ca = server.ca_certs();
    let device = Device::new("hostile managementAttestation H-1");
    let good_csr = device.csr(Some(&server.challenge), &[]);

    // Wrong challenge.
    let req = device.pkcs_req(&ca, Some("not-the-secret"));
    let (fi, text) = failure(&server, &ca, &device, &req, "wrong challenge");
    assert_eq!(fi, FailInfo::BadRequest);
    assert_eq!(text, "challenge password rejected");

    // Envelope encrypted to the device's own certificate instead of the RA.
    let req = pkcs_req(
        &device,
        &device.signer_der,
        &good_csr,
        DEFAULT_PROTECTION,
        Some(unix_now()),
    );
    let (fi, text) = failure(&server, &ca, &device, &req, "wrong recipient");
    assert_eq!(fi, FailInfo::BadMessageCheck);
    assert_eq!(text, "could not decrypt or parse the request");

    // One flipped octet in the SignerInfo signature. For our builder the signature OCTET STRING
    // is the last thing in the DER; check that rather than assume it.
    let mut req = device.request(
        &ca,
        MessageType::PkcsReq,
        &good_csr,
        DEFAULT_PROTECTION,
        None,
    );
    let sig = signature_range(&req.der);
    assert_eq!(sig.end, req.der.len(), "signature ends the message");
    *req.der.last_mut().unwrap() ^= 0x01;
    let (fi, text) = failure(&server, &ca, &device, &req, "tampered signature");
    assert_eq!(fi, FailInfo::BadMessageCheck);
    assert_eq!(text, "message signature did not verify");

    // One flipped octet in the encrypted content: the signed messageDigest covers it.
    let mut req = device.request(
        &ca,
        MessageType::PkcsReq,
        &good_csr,
        DEFAULT_PROTECTION,
        None,
    );
    let ct = ciphertext_range(&req.der);
    req.der[ct.start + ct.len() / 2] ^= 0x80;
    let (fi, text) = failure(&server, &ca, &device, &req, "tampered ciphertext");
    assert_eq!(fi, FailInfo::BadMessageCheck);
    assert_eq!(text, "message signature did not verify");

    // Unknown content cipher: AES-128-CBC's OID patched to 2.16.840.1.101.3.4.1.127, then signed.
    let ra = Certificate::parse(&ca.ra).unwrap();
    let mut env = enveloped_data::build(
        &good_csr,
        &ra,
        KeyTransport::RsaPkcs1v15,
        ContentCipher::Aes128Cbc,
        &SystemRandom,
    )
    .unwrap();
    let aes = writer::oid(oid::AES128_CBC);
    let hits: Vec<usize> = env
        .windows(aes.len())
        .enumerate()
        .filter_map(|(i, w)| (w == aes.as_slice()).then_some(i))
        .collect();
    assert_eq!(hits.len(), 1, "exactly one AES-128-CBC OID in the envelope");
    env[hits[0] + aes.len() - 1] = 0x7f;
    let req = device.sign_envelope(&Certificate::parse(&ca.ra).unwrap(), &env);
    let (fi, text) = failure(&server, &ca, &device, &req, "unknown cipher");
    assert_eq!(fi, FailInfo::BadAlg);
    assert!(text.contains("2.16.840.1.101.3.4.1.127"), "{text}");

    // Single DES on a platform that does not allow it.
    let des = Protection {
        cipher: ContentCipher::DesCbc,
        ..DEFAULT_PROTECTION
    };
    let req = device.request(&ca, MessageType::PkcsReq, &good_csr, des, None);
    let (fi, text) = failure(&server, &ca, &device, &req, "DES");
    assert_eq!(fi, FailInfo::BadAlg);
    assert!(text.contains("DES"), "{text}");

    // signingTime ten days in the past, and ten days in the future (skew allowed: one day).
    for delta in [-10 * 86_400, 10 * 86_400] {
        let req = pkcs_req(
            &device,
            &ca.ra,
            &good_csr,
            DEFAULT_PROTECTION,
            Some(unix_now() + delta),
        );
        let (fi, text) = failure(&server, &ca, &device, &req, "signingTime");
        assert_eq!(fi, FailInfo::BadTime, "signingTime off by {delta} s");
        assert_eq!(text, "signingTime is too far from the CA's clock");
    }

    // None of the refusals issued anything; the same device still enrolls.
    let list: serde_json::Value =
        serde_json::from_slice(&server.cli(&["cert", "list", "--json"]).stdout).unwrap();
    assert_eq!(list, serde_json::json!([]));
    issued(&device.enroll(&server, &ca, Some(&server.challenge), DEFAULT_PROTECTION));
    still_serves(&mut server, &ca);
}

/// Bodies that are not a pkiMessage at all (truncated, random, empty, not base64) get HTTP 400
/// with a one-line text reason, not a CertRep and not a 500.
#[test]
fn unparsable_requests_get_a_one_line_400() {
    let mut server = Server::start();
    let ca = server.ca_certs();
    let device = Device::new("truncator");
    let req = device.pkcs_req(&ca, Some(&server.challenge));
    for cut in [1, 2, 10, req.der.len() / 2, req.der.len() - 1] {
        let r = server.pki_operation(&req.der[..cut]);
        assert_one_line(&r, 400, &format!("truncated to {cut} octets"));
    }
    for n in [1, 16, 1000, 64 * 1024] {
        let r = server.pki_operation(&random_bytes(n));
        assert_one_line(&r, 400, &format!("{n} random octets"));
    }
    assert_one_line(&server.pki_operation(&[]), 400, "empty body");
    // Well-formed DER that is not a pkiMessage: a certificate, and the certs-only SignedData
    // GetCACert returns (no SignerInfo).
    assert_one_line(&server.pki_operation(&ca.ra), 400, "a certificate");
    let certs_only = server.get(&format!("{}?operation=GetCACert", server.scep_path()));
    assert_one_line(
        &server.pki_operation(&certs_only.body),
        400,
        "a certs-only SignedData",
    );
    // GET forms: missing message, non-base64 message, base64 of garbage.
    let path = server.scep_path();
    let r = server.get(&format!("{path}?operation=PKIOperation"));
    assert_one_line(&r, 400, "GET without message");
    let r = server.get(&format!("{path}?operation=PKIOperation&message=%21%21%21"));
    assert_one_line(&r, 400, "GET with non-base64 message");
    let b64 = scepd_pki::encoding::encode_base64(&random_bytes(300));
    let r = server.get(&format!(
        "{path}?operation=PKIOperation&message={}",
        b64.replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    ));
    assert_one_line(&r, 400, "GET with base64 garbage");
    still_serves(&mut server, &ca);
}

/// Pathologically nested BER (definite and indefinite lengths, constructed strings) is refused
/// with 400 quickly, without exhausting the stack or the CPU.
#[test]
fn deeply_nested_ber_is_refused_fast() {
    let mut server = Server::start();
    let ca = server.ca_certs();
    let n = 10_000;
    let mut definite = Vec::new();
    for _ in 0..n {
        // SEQUENCE with a 4-octet length covering everything after it (wrapped from inside out).
        let len = definite.len() as u32;
        let mut outer = vec![0x30, 0x84];
        outer.extend_from_slice(&len.to_be_bytes());
        outer.extend_from_slice(&definite);
        definite = outer;
    }
    // A plausible prefix: ContentInfo { signedData, [0] { <nesting> } }, all indefinite.
    let mut prefixed = vec![0x30, 0x80];
    prefixed.extend_from_slice(&writer::oid(oid::SIGNED_DATA));
    prefixed.extend_from_slice(&[0xa0, 0x80]);
    prefixed.extend(std::iter::repeat_n([0x30, 0x80], n).flatten());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("SEQUENCE indefinite", [0x30, 0x80].repeat(n)),
        ("[0] indefinite", [0xa0, 0x80].repeat(n)),
        ("constructed OCTET STRING", [0x24, 0x80].repeat(n)),
        ("SEQUENCE definite", definite),
        ("ContentInfo prefix", prefixed),
    ];
    for (what, body) in cases {
        let t = Instant::now();
        let r = server.pki_operation(&body);
        assert_one_line(&r, 400, what);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{what}: took {:?}",
            t.elapsed()
        );
    }
    still_serves(&mut server, &ca);
}

/// Bodies over the 256 KiB limit get 413 whether announced by Content-Length or streamed
/// chunked, without the server buffering them.
#[test]
fn oversized_posts_get_413() {
    let mut server = Server::start();
    let ca = server.ca_certs();
    let r = server.pki_operation(&vec![0x30; MAX_BODY + 1]);
    assert_one_line(&r, 413, "Content-Length over the limit");
    // Exactly at the limit is read (and refused as unparsable, not as too large).
    let r = server.pki_operation(&vec![0x30; MAX_BODY]);
    assert_one_line(&r, 400, "body at the limit");
    // Chunked, no Content-Length: the limit applies while streaming.
    let path = server.scep_path();
    let mut raw = format!(
        "POST {path}?operation=PKIOperation HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-pki-message\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    let chunk = vec![0x41u8; 64 * 1024];
    for _ in 0..5 {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(&chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw_status(&server.addr, &raw), Some(413), "chunked body");
    still_serves(&mut server, &ca);
}

/// An over-long GET message is refused with a 4xx (never 500) and leaves the server serving.
#[test]
fn over_long_get_message_is_refused_without_harm() {
    let mut server = Server::start();
    let ca = server.ca_certs();
    let path = server.scep_path();
    // 414 past hyper's 64 KiB URI limit (or our own base64 bound), 431 past its header buffer.
    for len in [70_000, 300_000, 2 * MAX_BODY + 1] {
        let r = server.get(&format!(
            "{path}?operation=PKIOperation&message={}",
            "A".repeat(len)
        ));
        assert_ne!(r.status, 500);
        assert!(
            [414, 431].contains(&r.status),
            "GET message of {len} characters: {}",
            r.status
        );
    }
    still_serves(&mut server, &ca);
}

/// Routing refusals: unknown platform 404, unknown or missing operation 400, methods other
/// than GET/POST/HEAD 405; each a one-line text body.
#[test]
fn routing_refusals_are_one_line_4xx() {
    let mut server = Server::start();
    let ca = server.ca_certs();
    let path = server.scep_path();
    let addr = server.addr.clone();
    for p in [
        "/scep/nosuchplatform?operation=GetCACaps",
        "/scep/nosuchplatform?operation=GetCACert",
        "/scep/has-dash?operation=GetCACaps",
        "/scep/?operation=GetCACaps",
        "/scep?operation=GetCACaps",
        "/",
    ] {
        assert_one_line(&server.get(p), 404, p);
    }
    // Unknown platform with a perfectly valid request: still 404, nothing signed.
    let device = Device::new("lost");
    let req = device.pkcs_req(&ca, Some(&server.challenge));
    let r = server.post("/scep/nosuchplatform?operation=PKIOperation", &req.der);
    assert_one_line(&r, 404, "PKIOperation to an unknown platform");

    for q in ["operation=Frobnicate", "operation=", "op=GetCACaps", ""] {
        let p = format!("{path}?{q}");
        assert_one_line(&server.get(&p), 400, &p);
    }
    let r = server.post(&path, &req.der);
    assert_one_line(&r, 400, "POST without operation");
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = http(
            &addr,
            method,
            &format!("{path}?operation=GetCACaps"),
            b"",
            None,
        );
        assert_one_line(&r, 405, method);
        let r = http(&addr, method, "/healthz", b"", None);
        assert_one_line(&r, 405, &format!("{method} /healthz"));
    }
    still_serves(&mut server, &ca);
}

/// A burst of 100 concurrent garbage requests is answered with 400s and does not stop a real
/// device enrolling right after.
#[test]
fn concurrent_garbage_does_not_block_a_valid_enrollment() {
    let mut server = Server::start();
    let ca = server.ca_certs();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let server = &server;
                s.spawn(move || {
                    let body = match i % 3 {
                        0 => random_bytes(4096),
                        1 => [0x30, 0x80].repeat(2000),
                        _ => Vec::new(),
                    };
                    server.pki_operation(&body).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(!statuses.contains(&500), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    still_serves(&mut server, &ca);
}
