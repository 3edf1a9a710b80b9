//! Replay, polling, GetCert, authenticated renewal, DES policy and runtime platforms.

use scepd_pki::algorithms::{ContentCipher, DigestAlg, KeyTransport};
use scepd_pki::keys::KeyAlgorithm;
use scepd_pki::scep::client::{CertRepOutcome, Protection, issuer_and_serial, issuer_and_subject};
use scepd_pki::scep::{FailInfo, MessageType};
use scepd_pki::x509::Certificate;

use super::testkit::*;

#[test]
fn replayed_pkcsreq_returns_the_same_certificate() {
    let server = Server::start();
    let ca = server.ca_certs();
    let device = Device::new("replay managementAttestation R-1");
    let req = device.pkcs_req(&ca, Some(&server.challenge));
    let first = issued(&device.decode(&ca, &req, &server.pki_operation(&req.der).body, None));
    let second = issued(&device.decode(&ca, &req, &server.pki_operation(&req.der).body, None));
    assert_eq!(first, second, "a replay must not mint a second certificate");
    // Concurrent replays too.
    let der = req.der.clone();
    let bodies: Vec<Vec<u8>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| s.spawn(|| server.pki_operation(&der).body))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for b in bodies {
        assert_eq!(issued(&device.decode(&ca, &req, &b, None)), first);
    }
    let list: serde_json::Value =
        serde_json::from_slice(&server.cli(&["cert", "list", "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn cert_poll_and_get_cert_return_the_issued_certificate() {
    let server = Server::start();
    let ca = server.ca_certs();
    let device = Device::new("poll managementAttestation P-1");
    let cert = issued(&device.enroll(&server, &ca, Some(&server.challenge), DEFAULT_PROTECTION));
    let parsed = Certificate::parse(&cert).unwrap();
    let poll = device.request(
        &ca,
        MessageType::CertPoll,
        &issuer_and_subject(parsed.issuer, &device.subject),
        DEFAULT_PROTECTION,
        None,
    );
    assert_eq!(
        issued(&device.decode(&ca, &poll, &server.pki_operation(&poll.der).body, None)),
        cert
    );
    let get = device.request(
        &ca,
        MessageType::GetCert,
        &issuer_and_serial(parsed.issuer, parsed.serial_magnitude()),
        DEFAULT_PROTECTION,
        None,
    );
    assert_eq!(
        issued(&device.decode(&ca, &get, &server.pki_operation(&get.der).body, None)),
        cert
    );
    // Unknown transaction / serial: badCertId.
    let other = Device::new("nobody");
    let poll = other.request(
        &ca,
        MessageType::CertPoll,
        &issuer_and_subject(parsed.issuer, &other.subject),
        DEFAULT_PROTECTION,
        None,
    );
    assert!(matches!(
        other.decode(&ca, &poll, &server.pki_operation(&poll.der).body, None),
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadCertId,
            ..
        }
    ));
    let get = other.request(
        &ca,
        MessageType::GetCert,
        &issuer_and_serial(parsed.issuer, &[1, 2, 3]),
        DEFAULT_PROTECTION,
        None,
    );
    assert!(matches!(
        other.decode(&ca, &get, &server.pki_operation(&get.der).body, None),
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadCertId,
            ..
        }
    ));
}

/// A same-key renewal reuses the key-derived transactionID (as strongSwan,
/// scepclient and certmonger do). It is a new request, not a replay: a new serial, a later
/// notAfter, CertPoll's answer from then on. Each request's exact resend still replays to
/// its own certificate, and a new request under that transactionID is still authorised.
#[test]
fn same_key_renewal_under_the_same_transaction_gets_a_new_certificate() {
    let server = Server::start();
    let ca = server.ca_certs();
    let device = Device::new("renew managementAttestation SK-1");
    let first_req = device.pkcs_req(&ca, Some(&server.challenge));
    let first = issued(&device.decode(
        &ca,
        &first_req,
        &server.pki_operation(&first_req.der).body,
        None,
    ));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let renew_req = device.request(
        &ca,
        MessageType::RenewalReq,
        &device.csr(None, &[]),
        DEFAULT_PROTECTION,
        Some((&first, &device.key)),
    );
    assert_eq!(renew_req.transaction_id, first_req.transaction_id);
    let signer = Some((&first[..], &device.key));
    let renewed = issued(&device.decode(
        &ca,
        &renew_req,
        &server.pki_operation(&renew_req.der).body,
        signer,
    ));
    let (old, new) = (
        Certificate::parse(&first).unwrap(),
        Certificate::parse(&renewed).unwrap(),
    );
    assert_ne!(
        old.serial, new.serial,
        "answered with the certificate being renewed"
    );
    assert!(new.not_after > old.not_after, "validity did not extend");
    assert_eq!(old.spki, new.spki);
    // Exact resends: each gets its own certificate back.
    let again = device.decode(
        &ca,
        &renew_req,
        &server.pki_operation(&renew_req.der).body,
        signer,
    );
    assert_eq!(issued(&again), renewed);
    let again = device.decode(
        &ca,
        &first_req,
        &server.pki_operation(&first_req.der).body,
        None,
    );
    assert_eq!(issued(&again), first);
    // CertPoll now answers with the renewed certificate.
    let poll = device.request(
        &ca,
        MessageType::CertPoll,
        &issuer_and_subject(old.issuer, &device.subject),
        DEFAULT_PROTECTION,
        None,
    );
    assert_eq!(
        issued(&device.decode(&ca, &poll, &server.pki_operation(&poll.der).body, None)),
        renewed
    );
    // A new PKCSReq under the transaction is authorised like any other: a wrong challenge
    // gets no certificate (neither a new one nor the old one).
    let guess = device.pkcs_req(&ca, Some("not-the-challenge"));
    assert!(matches!(
        device.decode(&ca, &guess, &server.pki_operation(&guess.der).body, None),
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadRequest,
            ..
        }
    ));
    let list: serde_json::Value =
        serde_json::from_slice(&server.cli(&["cert", "list", "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
}

#[test]
fn renewal_is_authenticated_by_the_existing_certificate() {
    let server = Server::start();
    let ca = server.ca_certs();
    let dir = tempfile::tempdir().unwrap();
    let old = Device::new("renew managementAttestation N-1");
    let old_cert = issued(&old.enroll(&server, &ca, Some(&server.challenge), DEFAULT_PROTECTION));
    // New key, same subject, no challenge, signed with the old certificate and key.
    let mut new = Device::new("renew managementAttestation N-1");
    new.subject = old.subject.clone();
    let csr = new.csr(None, &[]);
    let req = new.request(
        &ca,
        MessageType::RenewalReq,
        &csr,
        DEFAULT_PROTECTION,
        Some((&old_cert, &old.key)),
    );
    let renewed = issued(&new.decode(
        &ca,
        &req,
        &server.pki_operation(&req.der).body,
        Some((&old_cert, &old.key)),
    ));
    openssl_verify(dir.path(), &ca, &renewed);
    assert_ne!(renewed, old_cert);
    // A self-signed signer cannot renew.
    let stranger = Device::new("renew managementAttestation N-1");
    let req = stranger.request(
        &ca,
        MessageType::RenewalReq,
        &stranger.csr(None, &[]),
        DEFAULT_PROTECTION,
        None,
    );
    match stranger.decode(&ca, &req, &server.pki_operation(&req.der).body, None) {
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadRequest,
            text,
        } => assert!(text.unwrap().contains("renewal")),
        other => panic!("{other:?}"),
    }
    // A different subject cannot be renewed into.
    let thief = Device::new("someone else");
    let req = thief.request(
        &ca,
        MessageType::RenewalReq,
        &thief.csr(None, &[]),
        DEFAULT_PROTECTION,
        Some((&old_cert, &old.key)),
    );
    assert!(matches!(
        thief.decode(
            &ca,
            &req,
            &server.pki_operation(&req.der).body,
            Some((&old_cert, &old.key))
        ),
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadRequest,
            ..
        }
    ));
}

#[test]
fn single_des_needs_an_opted_in_platform() {
    let server = Server::start();
    let ca = server.ca_certs();
    let des = Protection {
        cipher: ContentCipher::DesCbc,
        transport: KeyTransport::RsaPkcs1v15,
        digest: DigestAlg::Sha256,
    };
    let device = Device::new("legacy");
    match device.enroll(&server, &ca, Some(&server.challenge), des) {
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadAlg,
            text,
        } => assert!(text.unwrap().contains("DES is disabled"), "text names DES"),
        other => panic!("{other:?}"),
    }
    // A platform added while the server runs, with --allow-des, is served at once.
    let p = server.add_platform(&[
        "--name",
        "legacy-macs",
        "--challenge",
        "static",
        "--allow-des",
    ]);
    let path = p["scep_path"].as_str().unwrap().to_owned();
    let req = device.request(
        &ca,
        MessageType::PkcsReq,
        &device.csr(Some(p["challenge"].as_str().unwrap()), &[]),
        des,
        None,
    );
    let r = server.post(&format!("{path}?operation=PKIOperation"), &req.der);
    let cert = issued(&device.decode(&ca, &req, &r.body, None));
    assert!(!cert.is_empty());
    // The default platform's secret does not work on the new platform.
    let other = Device::new("cross");
    let req = other.pkcs_req(&ca, Some(&server.challenge));
    let r = server.post(&format!("{path}?operation=PKIOperation"), &req.der);
    assert!(matches!(
        other.decode(&ca, &req, &r.body, None),
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadRequest,
            ..
        }
    ));
}

#[test]
fn requests_below_the_minimum_rsa_size_are_refused() {
    let server = Server::start();
    let ca = server.ca_certs();
    // Our client cannot make RSA-1024 keys (aws-lc-rs generates ≥ 2048), so test the policy
    // boundary with a configured minimum above the device key instead.
    drop(server);
    let server = Server::start_with_config("[pki]\nmin_rsa_bits = 3072\n");
    let ca2 = server.ca_certs();
    let device = Device::new("tiny");
    match device.enroll(&server, &ca2, Some(&server.challenge), DEFAULT_PROTECTION) {
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadRequest,
            text,
        } => assert!(
            text.unwrap()
                .contains("RSA-2048 is below the minimum of 3072")
        ),
        other => panic!("{other:?}"),
    }
    let ok = Device::with_key("big", KeyAlgorithm::Rsa3072);
    issued(&ok.enroll(&server, &ca2, Some(&server.challenge), DEFAULT_PROTECTION));
    let _ = ca;
}

/// A platform's own `--device-id-pattern` decides the device id; invalid patterns are refused.
#[test]
fn device_id_pattern_per_platform() {
    let server = Server::start();
    let ca = server.ca_certs();
    let bad = server.cli(&[
        "platform",
        "add",
        "--name",
        "x",
        "--challenge",
        "static",
        "--device-id-pattern",
        "(a)(b)",
    ]);
    assert_eq!(bad.status.code(), Some(2), "two capture groups are refused");
    let p = server.add_platform(&[
        "--name",
        "fleet",
        "--challenge",
        "static",
        "--device-id-pattern",
        r"serial=(\w+)",
    ]);
    let d = Device::new("host serial=C02XYZ");
    let req = d.pkcs_req(&ca, p["challenge"].as_str());
    let r = server.post(
        &format!(
            "{}?operation=PKIOperation",
            p["scep_path"].as_str().unwrap()
        ),
        &req.der,
    );
    issued(&d.decode(&ca, &req, &r.body, None));
    let list = server.cli(&[
        "device",
        "list",
        "--platform",
        p["platform_id"].as_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["device_id"], "C02XYZ");
    assert_eq!(v[0]["state"], "active");
}
