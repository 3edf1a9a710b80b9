//! The security audit's renewal, replay and polling findings, each as the attack that worked
//! before the fix: renewal may not widen the renewed certificate's identity (names, device,
//! user), needs an active device, and still goes through a delegated validator; a replay
//! never delivers a revoked certificate (an undelivered one is issued afresh); CertPoll
//! answers only the key that signed the original request.

use std::time::Duration;

use scepd_pki::der::{tag, writer};
use scepd_pki::issue::extensions;
use scepd_pki::keys::Signer;
use scepd_pki::random::SystemRandom;
use scepd_pki::scep::client::{
    CertRepOutcome, RequestBuilder, issuer_and_subject, transaction_id_for_key,
};
use scepd_pki::scep::{FailInfo, MessageType};
use scepd_pki::x509::Certificate;

use super::fake_intune::{self, Fail};
use super::testkit::*;
use super::{intune, webhook};

const SID_PREFIX: &str = "tag:microsoft.com,2022-09-14:sid:";

/// A subjectAltName extension with `(context tag, value)` entries: 1 email, 2 DNS, 6 URI.
fn san(entries: &[(u8, &str)]) -> Vec<u8> {
    let names: Vec<Vec<u8>> = entries
        .iter()
        .map(|(t, v)| writer::tlv(tag::context_primitive(*t), &[v.as_bytes()]))
        .collect();
    let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    extensions::subject_alt_name(&writer::sequence(&refs), false)
}

/// A PKCSReq with `sans` on the platform at `path`.
fn enroll_with(
    server: &Server,
    path: &str,
    ca: &CaCerts,
    device: &Device,
    challenge: Option<&str>,
    sans: &[(u8, &str)],
) -> CertRepOutcome {
    let exts: Vec<Vec<u8>> = if sans.is_empty() {
        Vec::new()
    } else {
        vec![san(sans)]
    };
    let csr = device.csr(challenge, &exts);
    let req = device.request(ca, MessageType::PkcsReq, &csr, DEFAULT_PROTECTION, None);
    let r = server.post(&format!("{path}?operation=PKIOperation"), &req.der);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    device.decode(ca, &req, &r.body, None)
}

/// A RenewalReq for a new key with `old`'s subject and `sans`, signed by `old_cert`.
fn renew(
    server: &Server,
    path: &str,
    ca: &CaCerts,
    (old, old_cert): (&Device, &[u8]),
    challenge: Option<&str>,
    sans: &[(u8, &str)],
) -> CertRepOutcome {
    let mut new = Device::new("renewal key");
    new.subject = old.subject.clone();
    let exts: Vec<Vec<u8>> = if sans.is_empty() {
        Vec::new()
    } else {
        vec![san(sans)]
    };
    let csr = new.csr(challenge, &exts);
    let signer = Some((old_cert, &old.key));
    let req = new.request(
        ca,
        MessageType::RenewalReq,
        &csr,
        DEFAULT_PROTECTION,
        signer,
    );
    let r = server.post(&format!("{path}?operation=PKIOperation"), &req.der);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    new.decode(ca, &req, &r.body, signer)
}

fn refused_with(o: &CertRepOutcome, needle: &str) {
    match o {
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadRequest,
            text,
        } => assert!(
            text.as_deref().is_some_and(|t| t.contains(needle)),
            "expected a refusal naming {needle:?}, got {text:?}"
        ),
        other => panic!("expected FAILURE badRequest ({needle}), got {other:?}"),
    }
}

fn certs(server: &Server) -> Vec<serde_json::Value> {
    server
        .cli_json(&["cert", "list", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

fn cert_entry(server: &Server, der: &[u8]) -> serde_json::Value {
    let serial = serial_of(der);
    certs(server)
        .into_iter()
        .find(|c| c["serial"] == serial.as_str())
        .unwrap_or_else(|| panic!("{serial} not listed"))
}

#[test]
fn renewal_cannot_widen_identity_and_stays_bound_to_the_device() {
    let server = Server::start();
    let ca = server.ca_certs();
    let path = server.scep_path();
    let dir = tempfile::tempdir().unwrap();
    let old = Device::new("alice managementAttestation REN-1");
    let old_cert = issued(&enroll_with(
        &server,
        &path,
        &ca,
        &old,
        Some(&server.challenge),
        &[(2, "ren-1.corp.example")],
    ));
    let other_sid = format!("{SID_PREFIX}S-1-5-21-VICTIM");
    let victim = Device::new("ceo");
    issued(&enroll_with(
        &server,
        &path,
        &ca,
        &victim,
        Some(&server.challenge),
        &[(6, &other_sid), (1, "ceo@corp.example")],
    ));
    // Every name the renewed certificate does not carry is refused, with or without it.
    let escape = format!("{SID_PREFIX}S-1-5-21-ESCAPE");
    for sans in [
        vec![(6u8, escape.as_str())],
        vec![(2, "ren-1.corp.example"), (6, other_sid.as_str())],
        vec![(1, "ceo@corp.example")],
        vec![(2, "evil.example")],
    ] {
        let outcome = renew(&server, &path, &ca, (&old, &old_cert), None, &sans);
        refused_with(&outcome, "renewal");
    }
    assert_eq!(certs(&server).len(), 2, "a refused renewal stores nothing");

    // Keeping (or dropping) names is fine, and the new certificate stays with REN-1.
    let renewed = issued(&renew(
        &server,
        &path,
        &ca,
        (&old, &old_cert),
        None,
        &[(2, "ren-1.corp.example")],
    ));
    openssl_verify(dir.path(), &ca, &renewed);
    assert_eq!(cert_entry(&server, &renewed)["device"], "REN-1");
    let dropped = issued(&renew(&server, &path, &ca, (&old, &old_cert), None, &[]));
    assert_eq!(cert_entry(&server, &dropped)["device"], "REN-1");
    let devices = server.cli_json(&["device", "list", "--json"]);
    let ids: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert!(!ids.iter().any(|i| i.contains("ESCAPE")), "{ids:?}");

    // Deactivating the device revokes the renewed certificates with the original.
    let v = server.cli_json(&["device", "deactivate", "REN-1", "--json"]);
    assert_eq!(v["revoked"], 3, "{v}");
    for der in [&old_cert, &renewed, &dropped] {
        assert_eq!(cert_entry(&server, der)["status"], "revoked");
    }
}

#[test]
fn a_suspended_device_cannot_renew_even_into_another_identity() {
    let server = Server::start();
    let ca = server.ca_certs();
    let path = server.scep_path();
    let old = Device::new("bob managementAttestation REN-2");
    let old_cert = issued(&old.enroll(&server, &ca, Some(&server.challenge), DEFAULT_PROTECTION));
    server.cli_json(&["device", "suspend", "REN-2", "--json"]);
    let escape = format!("{SID_PREFIX}S-1-5-21-ESCAPE");
    refused_with(
        &renew(&server, &path, &ca, (&old, &old_cert), None, &[]),
        "device is suspended",
    );
    refused_with(
        &renew(
            &server,
            &path,
            &ca,
            (&old, &old_cert),
            None,
            &[(6, &escape)],
        ),
        "renewal",
    );
    assert_eq!(certs(&server).len(), 1);
    let devices = server.cli_json(&["device", "list", "--json"]);
    assert_eq!(devices.as_array().unwrap().len(), 1, "{devices}");
    // After unsuspending, the same renewal goes through.
    server.cli_json(&["device", "unsuspend", "REN-2", "--json"]);
    issued(&renew(&server, &path, &ca, (&old, &old_cert), None, &[]));
}

#[test]
fn renewal_on_a_webhook_platform_asks_the_webhook() {
    const SECRET: &str = "whsec-renewal-0123456789";
    let server = Server::start_with_config("[outbound]\ntimeout_secs = 2\n");
    let ca = server.ca_certs();
    let hook = webhook::receiver(SECRET);
    let path = webhook::add_webhook(&server, "hook", &hook.fake.url("/scep-hook"), SECRET, &[]);
    let decisions = || {
        hook.fake
            .requests()
            .iter()
            .filter(|r| r.json().get("event").is_none())
            .count()
    };
    let old = Device::new("carol managementAttestation REN-3");
    let old_cert = issued(&enroll_with(&server, &path, &ca, &old, Some("c-1"), &[]));
    assert_eq!(decisions(), 1);
    *hook.mode.lock().unwrap() = webhook::Mode::Deny;
    refused_with(
        &renew(&server, &path, &ca, (&old, &old_cert), None, &[]),
        "challenge",
    );
    assert_eq!(decisions(), 2, "the validator must decide the renewal");
    assert_eq!(certs(&server).len(), 1);
    *hook.mode.lock().unwrap() = webhook::Mode::Allow;
    let renewed = issued(&renew(&server, &path, &ca, (&old, &old_cert), None, &[]));
    assert_eq!(decisions(), 3);
    assert_eq!(cert_entry(&server, &renewed)["device"], "REN-3");
}

#[test]
fn renewal_on_an_intune_platform_asks_intune() {
    const CHALLENGE: &str = "MIIBintune-renewal-challenge-0123456789";
    let fake = fake_intune::start(CHALLENGE);
    let server = Server::start_with_config("[outbound]\ntimeout_secs = 2\n");
    let ca = server.ca_certs();
    let path = intune::add_intune(&server, "intune", &fake, &[]);
    let sid = format!("{SID_PREFIX}S-1-12-1-5555");
    let old = Device::new("dave");
    let old_cert = issued(&enroll_with(
        &server,
        &path,
        &ca,
        &old,
        Some(CHALLENGE),
        &[(6, &sid)],
    ));
    let validations = || fake.actions("validateRequest").len();
    assert_eq!(validations(), 1);
    fake.set(Fail::ValidateDenied);
    refused_with(
        &renew(
            &server,
            &path,
            &ca,
            (&old, &old_cert),
            Some(CHALLENGE),
            &[(6, &sid)],
        ),
        "challenge",
    );
    assert_eq!(validations(), 2, "Intune must validate the renewal");
    assert_eq!(certs(&server).len(), 1);
    fake.set(Fail::None);
    let renewed = issued(&renew(
        &server,
        &path,
        &ca,
        (&old, &old_cert),
        Some(CHALLENGE),
        &[(6, &sid)],
    ));
    assert_eq!(validations(), 3);
    assert_eq!(fake.actions("successNotification").len(), 2);
    assert_eq!(cert_entry(&server, &renewed)["device"], "S-1-12-1-5555");
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[test]
fn a_replay_never_delivers_a_revoked_certificate() {
    // Static platform: an operator revokes the certificate, the device replays its request.
    let server = Server::start();
    let ca = server.ca_certs();
    let device = Device::new("erin managementAttestation REP-1");
    let req = device.pkcs_req(&ca, Some(&server.challenge));
    let cert = issued(&device.decode(&ca, &req, &server.pki_operation(&req.der).body, None));
    server.cli_json(&[
        "cert",
        "revoke",
        &serial_of(&cert),
        "--reason",
        "keyCompromise",
        "--json",
    ]);
    let replay = device.decode(&ca, &req, &server.pki_operation(&req.der).body, None);
    refused_with(&replay, "revoked");
    assert_eq!(
        certs(&server).len(),
        1,
        "no new certificate for a revoked one"
    );
}

#[test]
fn an_unconfirmed_certificate_is_issued_afresh_on_retry_never_replayed() {
    const CHALLENGE: &str = "MIIBintune-replay-challenge-0123456789";
    let fake = fake_intune::start(CHALLENGE);
    let server = Server::start_with_config("[outbound]\ntimeout_secs = 2\n");
    let ca = server.ca_certs();
    let path = intune::add_intune(&server, "intune", &fake, &[]);
    let device = Device::new("frank");
    let sid = format!("{SID_PREFIX}S-1-12-1-7777");
    let csr = device.csr(Some(CHALLENGE), &[san(&[(6, &sid)])]);
    let req = device.request(&ca, MessageType::PkcsReq, &csr, DEFAULT_PROTECTION, None);
    let send = || {
        let r = server.post(&format!("{path}?operation=PKIOperation"), &req.der);
        assert_eq!(r.status, 200);
        device.decode(&ca, &req, &r.body, None)
    };
    // Intune's success notification fails twice: each attempt is refused; the retry is not
    // answered with the revoked certificate of the first.
    fake.set(Fail::Success500);
    refused_with(&send(), "could not be confirmed");
    refused_with(&send(), "could not be confirmed");
    let list = certs(&server);
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list.iter().all(|c| c["status"] == "revoked"), "{list:?}");
    // Intune healthy again: the same request (transactionID, key) gets a fresh, valid
    // certificate, and replays of it get that one.
    fake.set(Fail::None);
    let cert = issued(&send());
    let dir = tempfile::tempdir().unwrap();
    openssl_verify(dir.path(), &ca, &cert);
    assert_eq!(cert_entry(&server, &cert)["status"], "valid");
    assert!(
        list.iter()
            .all(|c| c["serial"] != serial_of(&cert).as_str())
    );
    assert_eq!(issued(&send()), cert);
    assert_eq!(certs(&server).len(), 3);
    assert_eq!(fake.violations(), Vec::<String>::new());
    // Failure notifications went out in the background for both refused attempts.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while fake.actions("failureNotification").len() < 2 && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fake.actions("failureNotification").len(), 2);
}

#[test]
fn cert_poll_answers_only_the_original_signer() {
    let server = Server::start();
    let ca = server.ca_certs();
    let victim = Device::new("grace managementAttestation POLL-1");
    let cert = issued(&victim.enroll(&server, &ca, Some(&server.challenge), DEFAULT_PROTECTION));
    let issuer = Certificate::parse(&cert).unwrap().issuer.to_vec();
    // The attacker knows the transactionID (derived from the victim's public key) and the
    // subject, and signs a CertPoll with its own key.
    let attacker = Device::new("grace managementAttestation POLL-1");
    let ra = Certificate::parse(&ca.ra).unwrap();
    let signer = Certificate::parse(&attacker.signer_der).unwrap();
    let poll = RequestBuilder {
        message_type: MessageType::CertPoll,
        transaction_id: transaction_id_for_key(victim.key.public_key_der()).unwrap(),
        signer_cert: &signer,
        signer_key: &attacker.key,
        recipient: &ra,
        protection: DEFAULT_PROTECTION,
        rng: &SystemRandom,
        signing_time: Some(unix_now()),
    }
    .build(&issuer_and_subject(&issuer, &victim.subject))
    .unwrap();
    match attacker.decode(&ca, &poll, &server.pki_operation(&poll.der).body, None) {
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadCertId,
            ..
        } => {}
        other => panic!("CertPoll by another key must not return the certificate: {other:?}"),
    }
    // The victim's own poll still gets it.
    let own = victim.request(
        &ca,
        MessageType::CertPoll,
        &issuer_and_subject(&issuer, &victim.subject),
        DEFAULT_PROTECTION,
        None,
    );
    assert_eq!(
        issued(&victim.decode(&ca, &own, &server.pki_operation(&own.der).body, None)),
        cert
    );
}
