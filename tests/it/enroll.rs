//! Enrollment through the real server for every cipher × key transport × digest our client
//! can produce, each CertRep and certificate checked independently by OpenSSL.

use scepd_pki::algorithms::{ContentCipher, DigestAlg, KeyTransport};
use scepd_pki::scep::client::{CertRepOutcome, Protection};
use scepd_pki::scep::{FailInfo, MessageType};

use super::testkit::*;

#[test]
fn matrix_enrolls_and_openssl_accepts_every_certificate() {
    let server = Server::start();
    let ca = server.ca_certs();
    let dir = tempfile::tempdir().unwrap();
    let ciphers = [
        ContentCipher::Aes128Cbc,
        ContentCipher::Aes192Cbc,
        ContentCipher::Aes256Cbc,
        ContentCipher::DesEde3Cbc,
    ];
    let transports = [
        KeyTransport::RsaPkcs1v15,
        KeyTransport::RsaOaep(DigestAlg::Sha1),
        KeyTransport::RsaOaep(DigestAlg::Sha256),
    ];
    let digests = [DigestAlg::Sha256, DigestAlg::Sha384, DigestAlg::Sha512];
    let mut serials = std::collections::HashSet::new();
    for cipher in ciphers {
        for transport in transports {
            for digest in digests {
                let device = Device::new(&format!(
                    "alice managementAttestation DEV-{cipher:?}-{transport:?}-{digest:?}"
                ));
                let out = device.enroll(
                    &server,
                    &ca,
                    Some(&server.challenge),
                    Protection {
                        cipher,
                        transport,
                        digest,
                    },
                );
                let cert = issued(&out);
                openssl_verify(dir.path(), &ca, &cert);
                let c = scepd_pki::x509::Certificate::parse(&cert).unwrap();
                assert!(serials.insert(c.serial.to_vec()), "serials are unique");
            }
        }
    }
}

#[test]
fn issued_certificate_has_the_device_trust_profile() {
    let server = Server::start();
    let ca = server.ca_certs();
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new("bob managementAttestation 5A1B-22");
    // Ask for things the profile must not grant: keyEncipherment, serverAuth, CA:true, plus SANs.
    use scepd_pki::der::{tag, writer};
    use scepd_pki::issue::extensions;
    let sid = "tag:microsoft.com,2022-09-14:sid:S-1-5-21-1-2-3-1001";
    let san = writer::sequence(&[
        &writer::tlv(tag::context_primitive(6), &[sid.as_bytes()]),
        &writer::tlv(tag::context_primitive(2), &[b"bob-mac.example.com"]),
    ]);
    let evil_ku = extensions::KeyUsage(
        extensions::KeyUsage::KEY_ENCIPHERMENT | extensions::KeyUsage::KEY_CERT_SIGN,
    )
    .extension();
    let exts = vec![
        extensions::subject_alt_name(&san, false),
        evil_ku,
        extensions::basic_constraints(true, None),
        extensions::extended_key_usage(&[&[0x2b, 6, 1, 5, 5, 7, 3, 1]]),
    ];
    let req = device.request(
        &ca,
        MessageType::PkcsReq,
        &device.csr(Some(&server.challenge), &exts),
        DEFAULT_PROTECTION,
        None,
    );
    let r = server.pki_operation(&req.der);
    let cert = issued(&device.decode(&ca, &req, &r.body, None));
    openssl_verify(dir.path(), &ca, &cert);
    let text = openssl_text(dir.path(), &cert);
    let after = |h: &str| {
        text.split(h)
            .nth(1)
            .and_then(|t| t.lines().nth(1))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert_eq!(after("X509v3 Key Usage: critical"), "Digital Signature");
    assert_eq!(
        after("X509v3 Extended Key Usage"),
        "TLS Web Client Authentication"
    );
    assert!(
        text.contains("X509v3 Basic Constraints: critical"),
        "{text}"
    );
    assert_eq!(after("X509v3 Basic Constraints: critical"), "CA:FALSE");
    assert!(
        text.contains("X509v3 Subject Key Identifier")
            && text.contains("X509v3 Authority Key Identifier")
    );
    assert!(
        text.contains(&format!("URI:{sid}")) && text.contains("DNS:bob-mac.example.com"),
        "{text}"
    );
    assert!(
        text.contains("CRL Distribution Points") && text.contains(".crl"),
        "{text}"
    );
    assert!(
        text.contains("OCSP - URI:") && text.contains("CA Issuers - URI:"),
        "{text}"
    );
    assert!(
        text.contains("Subject: O = Example Corp, CN = bob managementAttestation 5A1B-22"),
        "{text}"
    );
    // The caIssuers URL serves the issuing CA.
    let ca_url = text
        .split("CA Issuers - URI:")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim();
    let path = ca_url.split_once(&server.addr).unwrap().1;
    let r = server.get(path);
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (200, "application/pkix-cert")
    );
    assert_eq!(r.body, ca.intermediate);
    let c = scepd_pki::x509::Certificate::parse(&cert).unwrap();
    assert!(c.serial.len() <= 20 && c.serial[0] & 0x80 == 0);
    let validity = c.not_after - c.not_before;
    assert!(
        (365 * 86400..=365 * 86400 + 600).contains(&validity),
        "default validity is one year: {validity}"
    );
    // The store recorded it, with the device id taken from the CN.
    let out = server.cli(&["cert", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = &list[0];
    assert_eq!(
        entry["serial"].as_str().unwrap(),
        scepd_pki::hex(c.serial_magnitude())
    );
    assert_eq!(entry["device"], "5A1B-22");
    assert_eq!(entry["status"], "valid");
    assert_eq!(entry["platform_id"], server.platform_id.as_str());
    assert!(
        entry["sans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().contains(sid))
    );
}

#[test]
fn openssl_cms_verifies_and_decrypts_the_cert_rep() {
    let server = Server::start();
    let ca = server.ca_certs();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let device = Device::new("carol managementAttestation C-1");
    let req = device.pkcs_req(&ca, Some(&server.challenge));
    let r = server.pki_operation(&req.der);
    std::fs::write(d.join("rep.der"), &r.body).unwrap();
    write_pem(&d.join("ra.pem"), "CERTIFICATE", &ca.ra);
    let chain = format!(
        "{}{}",
        {
            write_pem(&d.join("r.pem"), "CERTIFICATE", &ca.root);
            std::fs::read_to_string(d.join("r.pem")).unwrap()
        },
        {
            write_pem(&d.join("i.pem"), "CERTIFICATE", &ca.intermediate);
            std::fs::read_to_string(d.join("i.pem")).unwrap()
        }
    );
    std::fs::write(d.join("cas.pem"), chain).unwrap();
    let p = |n: &str| d.join(n).to_str().unwrap().to_owned();
    // Signature over the CertRep, chained to our root.
    let (ok, text) = openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        &p("rep.der"),
        "-CAfile",
        &p("cas.pem"),
        "-purpose",
        "any",
        "-out",
        &p("env.der"),
        "-binary",
    ]);
    assert!(ok, "openssl cms -verify: {text}");
    // The envelope decrypts with the device key, yielding a certs-only PKCS#7 with the leaf.
    write_pem(&d.join("dev.key"), "PRIVATE KEY", &device.pkcs8);
    write_pem(&d.join("dev.pem"), "CERTIFICATE", &device.signer_der);
    let (ok, text) = openssl(&[
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        &p("env.der"),
        "-inkey",
        &p("dev.key"),
        "-recip",
        &p("dev.pem"),
        "-out",
        &p("inner.der"),
        "-binary",
    ]);
    assert!(ok, "openssl cms -decrypt: {text}");
    let (ok, text) = openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        &p("inner.der"),
        "-print_certs",
        "-noout",
    ]);
    assert!(
        ok && text.contains("carol managementAttestation C-1"),
        "{text}"
    );
    // A FAILURE CertRep verifies too. It has no eContent, so openssl verifies it as a
    // detached signature over empty content. The same key and transactionID with a wrong
    // challenge is a new request, not a replay: it must not be answered with SUCCESS.
    let bad = device.pkcs_req(&ca, Some("WRONG"));
    let r = server.pki_operation(&bad.der);
    assert!(
        matches!(
            device.decode(&ca, &bad, &r.body, None),
            CertRepOutcome::Failure { .. }
        ),
        "a wrong challenge must not get a certificate"
    );
    std::fs::write(d.join("fail.der"), &r.body).unwrap();
    std::fs::write(d.join("empty"), b"").unwrap();
    let (ok, text) = openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        &p("fail.der"),
        "-content",
        &p("empty"),
        "-CAfile",
        &p("cas.pem"),
        "-purpose",
        "any",
        "-binary",
        "-out",
        &p("nothing"),
    ]);
    assert!(ok, "FAILURE CertRep must verify: {text}");
}

#[test]
fn get_and_quirky_base64_pki_operations_work() {
    let server = Server::start();
    let ca = server.ca_certs();
    for (i, style) in ["raw", "spaces", "escaped", "wrapped"].iter().enumerate() {
        let device = Device::new(&format!("get managementAttestation G-{i}"));
        let req = device.pkcs_req(&ca, Some(&server.challenge));
        let b64 = scepd_pki::encoding::encode_base64(&req.der);
        let msg = match *style {
            "raw" => b64.clone(),
            "spaces" => b64.replace('+', "%20"),
            "escaped" => b64
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D"),
            _ => b64
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("%0A"),
        };
        for path in [
            server.scep_path(),
            format!("{}/pkiclient.exe", server.scep_path()),
            format!("{}/cgi-bin/pkiclient.exe", server.scep_path()),
        ] {
            let r = server.get(&format!("{path}?operation=PKIOperation&message={msg}"));
            assert_eq!(
                r.status,
                200,
                "{style}: {}",
                String::from_utf8_lossy(&r.body)
            );
            issued(&device.decode(&ca, &req, &r.body, None));
        }
    }
}

#[test]
fn wrong_and_missing_challenge_fail_with_bad_request() {
    let server = Server::start();
    let ca = server.ca_certs();
    let device = Device::new("mallory");
    for ch in [Some("NOT-THE-SECRET"), None] {
        match device.enroll(&server, &ca, ch, DEFAULT_PROTECTION) {
            CertRepOutcome::Failure { fail_info, text } => {
                assert_eq!(fail_info, FailInfo::BadRequest);
                assert_eq!(text.as_deref(), Some("challenge password rejected"));
            }
            other => panic!("{other:?}"),
        }
    }
    let out = server.cli(&["cert", "list", "--json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn get_ca_caps_lists_exactly_what_is_implemented() {
    let server = Server::start();
    let r = server.get(&format!("{}?operation=GetCACaps", server.scep_path()));
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/plain"));
    let body = String::from_utf8(r.body).unwrap();
    let caps: Vec<&str> = body.lines().collect();
    for want in [
        "AES",
        "DES3",
        "SHA-1",
        "SHA-256",
        "SHA-384",
        "SHA-512",
        "POSTPKIOperation",
        "SCEPStandard",
        "Renewal",
    ] {
        assert!(caps.contains(&want), "{want} missing from {caps:?}");
    }
    assert!(
        !caps.contains(&"GetNextCACert"),
        "no rollover staged, so not advertised"
    );
    assert!(caps.iter().all(|c| c.trim() == *c && !c.is_empty()));
}
