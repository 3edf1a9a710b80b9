//! Real, independent SCEP clients against a running `scepd serve`, each result checked by
//! `openssl verify`: micromdm `scepclient` (Debian `scep`; signs SHA-1, encrypts single DES, so
//! it needs a platform with `--allow-des`) and certmonger's `scep-submit` (GET, AES-256, SHA-256).

use super::interop_clients::{
    certmonger_available, certmonger_enroll, key_matches_cert, missing, pem_to_der,
    scepclient_available, scepclient_enroll, scepclient_renew,
};
use super::testkit::*;

#[test]
fn micromdm_scepclient_enrolls() {
    if missing(scepclient_available(), "scepclient") {
        return;
    }
    let server = Server::start();
    let p = server.add_platform(&[
        "--name",
        "scepclient",
        "--challenge",
        "static",
        "--allow-des",
    ]);
    let url = format!("http://{}{}", server.addr, p["scep_path"].as_str().unwrap());
    let work = tempfile::tempdir().unwrap();
    let enrolled = scepclient_enroll(
        &url,
        p["challenge"].as_str().unwrap(),
        "laptop managementAttestation SC-1",
        work.path(),
    )
    .unwrap_or_else(|e| panic!("scepclient failed: {e}"));
    let der = pem_to_der(&enrolled.cert_pem);
    openssl_verify(work.path(), &server.ca_certs(), &der);
    key_matches_cert(&enrolled.key_pem, &enrolled.cert_pem).unwrap();
    // With the default platform (no DES), the same client is refused with badAlg.
    let refused = scepclient_enroll(
        &server.scep_url(),
        &server.challenge,
        "laptop2",
        work.path(),
    );
    assert!(
        refused.is_err(),
        "DES must be refused on a default platform"
    );
}

/// scepclient renews with its key, so it reuses the original transactionID. That
/// is a new request (RenewalReq, signed by the old certificate), not a replay: it gets a new
/// serial with a later notAfter, which becomes the transaction's current certificate.
#[test]
fn micromdm_scepclient_same_key_renewal_gets_a_new_certificate() {
    if missing(scepclient_available(), "scepclient") {
        return;
    }
    let server = Server::start_logging("");
    let p = server.add_platform(&["--name", "renewals", "--challenge", "static", "--allow-des"]);
    let url = format!("http://{}{}", server.addr, p["scep_path"].as_str().unwrap());
    let challenge = p["challenge"].as_str().unwrap();
    let cn = "laptop managementAttestation RN-1";
    let work = tempfile::tempdir().unwrap();
    let first = scepclient_enroll(&url, challenge, cn, work.path())
        .unwrap_or_else(|e| panic!("scepclient failed: {e}"));
    let old = pem_to_der(&first.cert_pem);
    // notAfter has one-second resolution: let a second pass so a later one is visible.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let renewed = scepclient_renew(&url, challenge, cn, &first)
        .unwrap_or_else(|e| panic!("scepclient renewal failed: {e}"));
    // Authorised as a renewal (by the old certificate), not by the challenge, nor replayed.
    let log = server.log();
    let renewal_line = log
        .lines()
        .find(|l| l.contains("issued certificate") && l.contains("method=\"renewal\""));
    assert!(renewal_line.is_some(), "no renewal was issued:\n{log}");
    assert!(!log.contains("replayed request"), "{log}");
    let new = pem_to_der(&renewed.cert_pem);
    openssl_verify(work.path(), &server.ca_certs(), &new);
    key_matches_cert(&renewed.key_pem, &renewed.cert_pem).unwrap();
    let (old, new) = (
        scepd_pki::x509::Certificate::parse(&old).unwrap(),
        scepd_pki::x509::Certificate::parse(&new).unwrap(),
    );
    assert_ne!(
        old.serial, new.serial,
        "the renewal was answered with the old certificate"
    );
    assert!(new.not_after > old.not_after, "validity did not extend");
    assert_eq!(old.spki, new.spki, "scepclient renews with the same key");
    let list: serde_json::Value =
        serde_json::from_slice(&server.cli(&["cert", "list", "--json"]).stdout).unwrap();
    let txids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(txids.len(), 2, "{list}");
    assert_eq!(txids[0], txids[1], "the renewal reused the transactionID");
}

#[test]
fn certmonger_scep_submit_enrolls() {
    if missing(certmonger_available(), "certmonger") {
        return;
    }
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let ca = server.ca_certs();
    let root = work.path().join("root.pem");
    write_pem(&root, "CERTIFICATE", &ca.root);
    let enrolled = certmonger_enroll(
        &server.scep_url(),
        &server.challenge,
        "desktop managementAttestation CM-1",
        Some(&root),
        work.path(),
    )
    .unwrap_or_else(|e| panic!("certmonger failed: {e}"));
    openssl_verify(work.path(), &ca, &pem_to_der(&enrolled.cert_pem));
    key_matches_cert(&enrolled.key_pem, &enrolled.cert_pem).unwrap();
}

/// micromdm scepclient with a challenge fetched from the NDES-compatible challenge URL; the
/// challenge is one-time, so a second enrollment with it is refused.
#[test]
fn micromdm_scepclient_enrolls_with_a_dynamic_challenge() {
    if missing(scepclient_available(), "scepclient") {
        return;
    }
    let server = Server::start();
    let d = super::dynamic::add_dynamic(&server, "scepclient-dynamic", &["--allow-des"]);
    let challenge =
        super::dynamic::fetch_challenge(&server, &d.challenge_url_path, &d.username, &d.password);
    let url = format!("http://{}{}", server.addr, d.scep_path);
    let work = tempfile::tempdir().unwrap();
    let enrolled = scepclient_enroll(
        &url,
        &challenge,
        "mac managementAttestation SD-1",
        work.path(),
    )
    .unwrap_or_else(|e| panic!("scepclient failed: {e}"));
    openssl_verify(
        work.path(),
        &server.ca_certs(),
        &pem_to_der(&enrolled.cert_pem),
    );
    key_matches_cert(&enrolled.key_pem, &enrolled.cert_pem).unwrap();
    let reused = scepclient_enroll(
        &url,
        &challenge,
        "mac managementAttestation SD-2",
        work.path(),
    );
    assert!(reused.is_err(), "a used challenge must be refused");
}

/// micromdm scepclient against a webhook platform: the fake receiver allows, then denies.
#[test]
fn micromdm_scepclient_enrolls_through_a_webhook() {
    if missing(scepclient_available(), "scepclient") {
        return;
    }
    let server = Server::start();
    let hook = super::webhook::receiver("interop-secret");
    let path = super::webhook::add_webhook(
        &server,
        "scepclient-hook",
        &hook.fake.url("/scep-hook"),
        "interop-secret",
        &["--allow-des"],
    );
    let url = format!("http://{}{}", server.addr, path);
    let work = tempfile::tempdir().unwrap();
    let enrolled = scepclient_enroll(
        &url,
        "anything",
        "mac managementAttestation WH-1",
        work.path(),
    )
    .unwrap_or_else(|e| panic!("scepclient failed: {e}"));
    openssl_verify(
        work.path(),
        &server.ca_certs(),
        &pem_to_der(&enrolled.cert_pem),
    );
    *hook.mode.lock().unwrap() = super::webhook::Mode::Deny;
    let denied = scepclient_enroll(
        &url,
        "anything",
        "mac managementAttestation WH-2",
        work.path(),
    );
    assert!(
        denied.is_err(),
        "a denied request must not get a certificate"
    );
}

/// micromdm scepclient against an Intune platform backed by the fake AAD + Graph + Intune:
/// validated, issued, success-notified; a challenge Intune does not accept is refused.
#[test]
fn micromdm_scepclient_enrolls_through_intune_validation() {
    if missing(scepclient_available(), "scepclient") {
        return;
    }
    const CHALLENGE: &str = "intune-interop-challenge-0123456789";
    let fake = super::fake_intune::start(CHALLENGE);
    let server = Server::start();
    let path = super::intune::add_intune(&server, "scepclient-intune", &fake, &["--allow-des"]);
    let url = format!("http://{}{}", server.addr, path);
    let work = tempfile::tempdir().unwrap();
    let enrolled = scepclient_enroll(
        &url,
        CHALLENGE,
        "pc managementAttestation IN-1",
        work.path(),
    )
    .unwrap_or_else(|e| panic!("scepclient failed: {e}"));
    openssl_verify(
        work.path(),
        &server.ca_certs(),
        &pem_to_der(&enrolled.cert_pem),
    );
    assert_eq!(fake.actions("successNotification").len(), 1);
    let forged = scepclient_enroll(
        &url,
        "not-from-intune",
        "pc managementAttestation IN-2",
        work.path(),
    );
    assert!(forged.is_err(), "Intune refused it, so must scepd");
    assert_eq!(fake.violations(), Vec::<String>::new());
}
