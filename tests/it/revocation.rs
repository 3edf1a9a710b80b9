//! The device lifecycle end to end: two devices enrolled (with the test client; real clients
//! are in the interop tests), then deactivate / suspend / unsuspend / reactivate / delete,
//! each effect checked with `openssl ocsp`, `openssl verify -crl_check`, enrollment and the
//! device-trust check.

use std::path::{Path, PathBuf};

use scepd_pki::scep::FailInfo;
use scepd_pki::scep::client::CertRepOutcome;

use super::interop_clients::pem_to_der as pem_der;
use super::testkit::*;

struct Enrolled {
    key: PathBuf,
    cert: PathBuf,
}

fn run_cli(server: &Server, args: &[&str]) -> serde_json::Value {
    let out = server.cli(args);
    assert!(
        out.status.success(),
        "scepd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// `openssl ocsp` with a SHA-1 CertID (OpenSSL's default) or SHA-256.
pub(super) fn ocsp_status(server: &Server, dir: &Path, ca: &CaCerts, cert: &Path) -> String {
    ocsp_status_with(server, dir, ca, cert, "-sha1")
}

fn ocsp_status_with(
    server: &Server,
    dir: &Path,
    ca: &CaCerts,
    cert: &Path,
    digest: &str,
) -> String {
    let (root, int) = (dir.join("root.pem"), dir.join("int.pem"));
    write_pem(&root, "CERTIFICATE", &ca.root);
    write_pem(&int, "CERTIFICATE", &ca.intermediate);
    let url = format!("http://{}/ocsp", server.addr);
    // With a nonce (openssl's default: always signed afresh), then the same question without
    // one, which may be answered from the responder's cache of earlier responses: it must
    // never contradict the fresh answer (e.g. after a revocation).
    let ask = |extra: &[&str]| {
        let mut args = vec![
            "ocsp",
            "-issuer",
            int.to_str().unwrap(),
            digest,
            "-cert",
            cert.to_str().unwrap(),
            "-url",
            &url,
            "-CAfile",
            root.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (ok, text) = openssl(&args);
        assert!(
            ok && text.contains("Response verify OK"),
            "openssl ocsp {extra:?}: {text}"
        );
        text
    };
    let text = ask(&[]);
    let cached = ask(&["-no_nonce"]);
    assert_eq!(status_word(&cached), status_word(&text), "{cached}\n{text}");
    text
}

/// The certificate status `openssl ocsp` printed.
fn status_word(text: &str) -> Option<&'static str> {
    [": good", ": revoked", ": unknown"]
        .into_iter()
        .find(|w| text.contains(w))
}

/// POSTs the nonce-less OCSP request for `cert` twice, a second apart: the same bytes come
/// back, so the second answer was reused, not signed again (its producedAt would differ).
fn assert_nonceless_response_reused(server: &Server, dir: &Path, ca: &CaCerts, cert: &Path) {
    let int = dir.join("int.pem");
    write_pem(&int, "CERTIFICATE", &ca.intermediate);
    let req = dir.join("ocsp-req.der");
    let (ok, text) = openssl(&[
        "ocsp",
        "-issuer",
        int.to_str().unwrap(),
        "-cert",
        cert.to_str().unwrap(),
        "-no_nonce",
        "-reqout",
        req.to_str().unwrap(),
    ]);
    assert!(ok, "openssl ocsp -reqout: {text}");
    let der = std::fs::read(&req).unwrap();
    let ask = || {
        let r = http(
            &server.addr,
            "POST",
            "/ocsp",
            &der,
            Some("application/ocsp-request"),
        );
        assert_eq!(r.status, 200);
        r.body
    };
    let first = ask();
    // A second later a re-signed response would differ (producedAt has one-second resolution).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(ask(), first, "the nonce-less response was signed again");
}

fn crl_verify(server: &Server, dir: &Path, ca: &CaCerts, cert: &Path) -> (bool, String) {
    // The CDP URL in the certificate names the CRL.
    let (_, text) = openssl(&[
        "x509",
        "-noout",
        "-ext",
        "crlDistributionPoints",
        "-in",
        cert.to_str().unwrap(),
    ]);
    let url = text.split("URI:").nth(1).unwrap().trim().to_owned();
    let path = url.split_once(&server.addr).unwrap().1.to_owned();
    let r = server.get(&path);
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (200, "application/pkix-crl")
    );
    let crl = dir.join("crl.pem");
    write_pem(&crl, "X509 CRL", &r.body);
    let (root, int) = (dir.join("root.pem"), dir.join("int.pem"));
    write_pem(&root, "CERTIFICATE", &ca.root);
    write_pem(&int, "CERTIFICATE", &ca.intermediate);
    openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        root.to_str().unwrap(),
        "-untrusted",
        int.to_str().unwrap(),
        "-CRLfile",
        crl.to_str().unwrap(),
        cert.to_str().unwrap(),
    ])
}

/// Signs a fresh trust nonce with the device key via OpenSSL and asks /trust/v1/verify.
fn trust(server: &Server, dir: &Path, e: &Enrolled) -> serde_json::Value {
    let r = http(
        &server.addr,
        "POST",
        "/trust/v1/challenge",
        b"",
        Some("application/json"),
    );
    assert_eq!(r.status, 200);
    let nonce = serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["nonce"]
        .as_str()
        .unwrap()
        .to_owned();
    let msg = dir.join("nonce.txt");
    std::fs::write(&msg, &nonce).unwrap();
    let sig = dir.join("nonce.sig");
    let (ok, text) = openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        e.key.to_str().unwrap(),
        "-out",
        sig.to_str().unwrap(),
        msg.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let cert_der = pem_der(&e.cert);
    let body = serde_json::json!({
        "certificate": scepd_pki::encoding::encode_base64(&cert_der),
        "nonce": nonce,
        "signature": scepd_pki::encoding::encode_base64(&std::fs::read(&sig).unwrap()),
        "algorithm": "rsa-pkcs1-sha256",
    });
    let r = http(
        &server.addr,
        "POST",
        "/trust/v1/verify",
        body.to_string().as_bytes(),
        Some("application/json"),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    // A nonce works once.
    let again = http(
        &server.addr,
        "POST",
        "/trust/v1/verify",
        body.to_string().as_bytes(),
        Some("application/json"),
    );
    let again: serde_json::Value = serde_json::from_slice(&again.body).unwrap();
    assert_eq!(again["managed"], false);
    v
}

/// Our own client enrolling the same device id (new key) to see whether enrollment is allowed.
fn enroll_again(
    server: &Server,
    ca: &CaCerts,
    path: &str,
    challenge: &str,
    cn: &str,
) -> CertRepOutcome {
    let d = Device::new(cn);
    let req = d.pkcs_req(ca, Some(challenge));
    d.decode(
        ca,
        &req,
        &server
            .post(&format!("{path}?operation=PKIOperation"), &req.der)
            .body,
        None,
    )
}

#[test]
fn device_lifecycle_drives_revocation_enrollment_and_trust() {
    let server = Server::start();
    let ca = server.ca_certs();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = run_cli(
        &server,
        &[
            "platform",
            "add",
            "--name",
            "macs",
            "--challenge",
            "static",
            "--json",
        ],
    );
    let (path, challenge) = (
        p["scep_path"].as_str().unwrap().to_owned(),
        p["challenge"].as_str().unwrap().to_owned(),
    );
    // Key and certificate as PEM files, for openssl and the trust check.
    let enrolled = std::cell::Cell::new(0);
    let enroll = |cn: &str| {
        let dev = Device::new(cn);
        let cert = issued(&dev.enroll_at(&server, &path, &ca, Some(&challenge)));
        let n = enrolled.get() + 1;
        enrolled.set(n);
        let (key, cert_pem) = (
            d.join(format!("key-{n}.pem")),
            d.join(format!("cert-{n}.pem")),
        );
        write_pem(&key, "PRIVATE KEY", &dev.pkcs8);
        write_pem(&cert_pem, "CERTIFICATE", &cert);
        Enrolled {
            key,
            cert: cert_pem,
        }
    };
    let a = enroll("alice managementAttestation DEV-A");
    let b = enroll("bob managementAttestation DEV-B");
    let devices = run_cli(&server, &["device", "list", "--json"]);
    assert_eq!(
        devices.as_array().unwrap().len(),
        2,
        "devices appear at first enrollment: {devices}"
    );
    assert_eq!(devices[0]["user"], "alice");
    assert_nonceless_response_reused(&server, d, &ca, &a.cert);
    for e in [&a, &b] {
        assert!(ocsp_status(&server, d, &ca, &e.cert).contains(": good"));
        assert!(crl_verify(&server, d, &ca, &e.cert).0);
        assert_eq!(trust(&server, d, e)["managed"], true);
    }

    // Deactivate A: revoked everywhere within a second, enrollment refused, not managed.
    let v = run_cli(&server, &["device", "deactivate", "DEV-A", "--json"]);
    assert_eq!(
        (v["state"].as_str(), v["revoked"].as_u64()),
        (Some("deactivated"), Some(1))
    );
    // OCSP reads the store; the CRL is re-signed on the next refresh (every 500 ms). Bounded
    // generously: a loaded CI machine may delay a tick.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while crl_verify(&server, d, &ca, &a.cert).0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the CRL did not list the revoked certificate within 3 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for digest in ["-sha1", "-sha256"] {
        let text = ocsp_status_with(&server, d, &ca, &a.cert, digest);
        assert!(
            text.contains(": revoked") && text.contains("Reason: cessationOfOperation"),
            "{text}"
        );
    }
    let (ok, text) = crl_verify(&server, d, &ca, &a.cert);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    assert!(
        crl_verify(&server, d, &ca, &b.cert).0,
        "B stays valid under the new CRL"
    );
    match enroll_again(
        &server,
        &ca,
        &path,
        &challenge,
        "alice managementAttestation DEV-A",
    ) {
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadRequest,
            text,
        } => assert_eq!(
            text.as_deref(),
            Some("device is deactivated: enrollment refused")
        ),
        other => panic!("{other:?}"),
    }
    let t = trust(&server, d, &a);
    assert_eq!(
        (t["managed"].as_bool(), t["reason"].as_str()),
        (Some(false), Some("certificate revoked"))
    );

    // Suspend B: certificate stays good, enrollment refused, not managed (suspended).
    run_cli(&server, &["device", "suspend", "DEV-B", "--json"]);
    assert!(ocsp_status(&server, d, &ca, &b.cert).contains(": good"));
    assert!(matches!(
        enroll_again(
            &server,
            &ca,
            &path,
            &challenge,
            "bob managementAttestation DEV-B"
        ),
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadRequest,
            ..
        }
    ));
    let t = trust(&server, d, &b);
    assert_eq!(
        (
            t["managed"].as_bool(),
            t["reason"].as_str(),
            t["device_id"].as_str()
        ),
        (Some(false), Some("suspended"), Some("DEV-B"))
    );
    run_cli(&server, &["device", "unsuspend", "DEV-B", "--json"]);
    assert_eq!(trust(&server, d, &b)["managed"], true);

    // Reactivate A: enrolls again with a new certificate; the old one stays revoked.
    run_cli(&server, &["device", "reactivate", "DEV-A", "--json"]);
    let new_a = enroll("alice managementAttestation DEV-A");
    assert!(ocsp_status(&server, d, &ca, &new_a.cert).contains(": good"));
    assert!(ocsp_status(&server, d, &ca, &a.cert).contains(": revoked"));
    assert_eq!(trust(&server, d, &new_a)["managed"], true);

    // Delete B with keyCompromise: revoked with that reason, never enrolls again.
    run_cli(
        &server,
        &[
            "device",
            "delete",
            "DEV-B",
            "--reason",
            "keyCompromise",
            "--json",
        ],
    );
    let text = ocsp_status(&server, d, &ca, &b.cert);
    assert!(
        text.contains(": revoked") && text.contains("Reason: keyCompromise"),
        "{text}"
    );
    assert!(matches!(
        enroll_again(
            &server,
            &ca,
            &path,
            &challenge,
            "bob managementAttestation DEV-B"
        ),
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadRequest,
            ..
        }
    ));
    let out = server.cli(&["device", "reactivate", "DEV-B"]);
    assert!(!out.status.success(), "a deleted device cannot come back");
}

#[test]
fn single_certificate_revocation_and_get_crl() {
    let server = Server::start();
    let ca = server.ca_certs();
    let dev = Device::new("carol managementAttestation DEV-C");
    let cert = issued(&dev.enroll(&server, &ca, Some(&server.challenge), DEFAULT_PROTECTION));
    let parsed = scepd_pki::x509::Certificate::parse(&cert).unwrap();
    let serial = scepd_pki::hex(parsed.serial_magnitude());
    let v = run_cli(
        &server,
        &[
            "cert",
            "revoke",
            &serial,
            "--reason",
            "superseded",
            "--json",
        ],
    );
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str()),
        (Some("revoked"), Some("superseded"))
    );
    let bad = server.cli(&["cert", "revoke", &serial, "--reason", "bogus"]);
    assert_eq!(bad.status.code(), Some(2));
    // GetCRL over SCEP returns a CRL listing it, signed by the intermediate (re-signed on the
    // next refresh, every 500 ms: polled, bounded).
    let data = scepd_pki::scep::client::issuer_and_serial(parsed.issuer, parsed.serial_magnitude());
    let dir = tempfile::tempdir().unwrap();
    let (crl, int) = (dir.path().join("c.pem"), dir.path().join("i.pem"));
    write_pem(&int, "CERTIFICATE", &ca.intermediate);
    let get_crl = || {
        let req = dev.request(
            &ca,
            scepd_pki::scep::MessageType::GetCrl,
            &data,
            DEFAULT_PROTECTION,
            None,
        );
        match dev.decode(&ca, &req, &server.pki_operation(&req.der).body, None) {
            CertRepOutcome::Success { certificates, crls } => {
                assert!(certificates.is_empty());
                write_pem(&crl, "X509 CRL", &crls[0]);
                openssl(&[
                    "crl",
                    "-in",
                    crl.to_str().unwrap(),
                    "-CAfile",
                    int.to_str().unwrap(),
                    "-noout",
                    "-text",
                ])
            }
            other => panic!("{other:?}"),
        }
    };
    let listed = |text: &str| {
        text.to_ascii_lowercase()
            .contains(&serial.to_ascii_lowercase())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let (ok, text) = loop {
        let (ok, text) = get_crl();
        if listed(&text) || std::time::Instant::now() > deadline {
            break (ok, text);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(ok && text.contains("verify OK"), "CRL signature: {text}");
    assert!(listed(&text) && text.contains("Superseded"), "{text}");
    assert!(
        text.contains("X509v3 CRL Number") && text.contains("X509v3 Authority Key Identifier"),
        "{text}"
    );
    // OCSP for a serial we never issued: unknown; garbage: malformedRequest.
    let r = server.post("/ocsp", b"\x30\x03\x02\x01\x00");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, vec![0x30, 0x03, 0x0a, 0x01, 0x01]);
}
