//! `[pki] encryption_ra = true` gives each RA an encryption-only certificate
//! (keyUsage keyEncipherment, its own key), listed in GetCACert right after the RA, so that
//! clients choosing their recipient by key usage enroll unmodified: PyScep 0.0.14 encrypts to
//! the first non-CA certificate with keyEncipherment and without digitalSignature, which
//! without this option is nothing (it then falls back to the intermediate and fails). The RA
//! still signs every CertRep. A staged RA gets its own at once; GetNextCACert lists it.

use scepd_pki::cms::certs_only;
use scepd_pki::x509::Certificate;

use super::interop_clients::{missing, pem_to_der, pyscep_available, pyscep_enroll};
use super::testkit::*;

const ON: &str = "[pki]\nencryption_ra = true\n";

/// GetCACert's certificates, in order.
fn ca_cert_list(server: &Server) -> Vec<Vec<u8>> {
    let r = server.get(&format!("{}?operation=GetCACert", server.scep_path()));
    assert_eq!(r.status, 200);
    let (certs, _) = certs_only::parse(&r.body).unwrap();
    certs.iter().map(|c| c.to_vec()).collect()
}

/// `openssl verify -x509_strict` of a non-client certificate (any purpose) under `ca`.
fn openssl_verify_any_purpose(ca: &CaCerts, der: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    write_pem(&p("root.pem"), "CERTIFICATE", &ca.root);
    write_pem(&p("int.pem"), "CERTIFICATE", &ca.intermediate);
    write_pem(&p("leaf.pem"), "CERTIFICATE", der);
    let s = |n: &str| p(n).to_string_lossy().into_owned();
    let (ok, text) = openssl(&[
        "verify",
        "-x509_strict",
        "-purpose",
        "any",
        "-CAfile",
        &s("root.pem"),
        "-untrusted",
        &s("int.pem"),
        &s("leaf.pem"),
    ]);
    assert!(ok && text.contains(": OK"), "openssl verify failed: {text}");
}

fn openssl_text_of(der: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    openssl_text(dir.path(), der)
}

#[test]
fn an_encryption_ra_lets_pyscep_enroll_and_the_ra_still_signs() {
    if missing(pyscep_available(), "PyScep") {
        return;
    }
    let mut server = Server::start();
    let work = tempfile::tempdir().unwrap();
    // Off by default: GetCACert is RA, intermediate, root, and PyScep cannot enroll.
    assert_eq!(ca_cert_list(&server).len(), 3);
    let refused = pyscep_enroll(&server.scep_url(), &server.challenge, "py off", work.path());
    assert!(refused.is_err(), "PyScep enrolled without an encryption RA");

    server.restart_with_config(ON);
    let certs = ca_cert_list(&server);
    assert_eq!(
        certs.len(),
        4,
        "RA, its encryption certificate, intermediate, root"
    );
    let ca = server.ca_certs_of(&certs);
    let enc = Certificate::parse(&certs[1]).unwrap();
    let text = openssl_text_of(&certs[1]);
    assert!(
        text.contains("Key Encipherment") && !text.contains("Digital Signature"),
        "{text}"
    );
    assert!(text.contains("CA:FALSE"), "{text}");
    // Issued by the intermediate, no longer valid than the RA, a key of its own.
    openssl_verify_any_purpose(&ca, &certs[1]);
    let ra = Certificate::parse(&ca.ra).unwrap();
    assert!(enc.not_after <= ra.not_after);
    assert_ne!(
        enc.spki, ra.spki,
        "the encryption certificate has its own key"
    );

    // PyScep picks it, enrolls, and verifies the CertRep signed by the RA.
    let enrolled = pyscep_enroll(
        &server.scep_url(),
        &server.challenge,
        "py managementAttestation PY-1",
        work.path(),
    )
    .unwrap_or_else(|e| panic!("PyScep failed with the encryption RA: {e}"));
    openssl_verify(work.path(), &ca, &pem_to_der(&enrolled.cert_pem));

    // Our client, encrypting to the encryption certificate: the reply is signed by the RA.
    let device = Device::new("enc managementAttestation E-1");
    let to_enc = CaCerts {
        ra: certs[1].clone(),
        ..server.ca_certs_of(&certs)
    };
    let req = device.pkcs_req(&to_enc, Some(&server.challenge));
    let reply = server.pki_operation(&req.der).body;
    openssl_verify(
        work.path(),
        &ca,
        &issued(&device.decode(&ca, &req, &reply, None)),
    );

    // Restarts reuse it (one per RA); turned off, it is no longer listed but requests already
    // encrypted to it still decrypt.
    server.restart_with_config(ON);
    assert_eq!(ca_cert_list(&server), certs);
    server.restart_with_config("");
    assert_eq!(ca_cert_list(&server).len(), 3);
    let late = Device::new("enc managementAttestation E-2");
    let req = late.pkcs_req(&to_enc, Some(&server.challenge));
    let reply = server.pki_operation(&req.der).body;
    issued(&late.decode(&ca, &req, &reply, None));
}

#[test]
fn a_staged_ra_gets_its_encryption_certificate_and_get_next_ca_cert_lists_it() {
    let server = Server::start_with_config(ON);
    let before = ca_cert_list(&server);
    assert_eq!(before.len(), 4);
    let v = server.cli_json(&["ca", "rotate", "--json"]);
    let id = v["id"].as_str().unwrap().to_owned();
    // The running server notices the staged RA and creates its encryption certificate.
    let next = || {
        let r = server.get(&format!("{}?operation=GetNextCACert", server.scep_path()));
        (r.status == 200).then_some(r.body)
    };
    let mut inner = Vec::new();
    for _ in 0..50 {
        if let Some(body) = next() {
            let sd = scepd_pki::cms::signed_data::SignedData::parse(&body).unwrap();
            let (certs, _) = certs_only::parse(sd.content.as_deref().unwrap()).unwrap();
            inner = certs.iter().map(|c| c.to_vec()).collect();
            if inner.len() == 4 {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        inner.len(),
        4,
        "next RA, its encryption certificate, next intermediate, root"
    );
    let text = openssl_text_of(&inner[1]);
    assert!(
        text.contains("Key Encipherment") && !text.contains("Digital Signature"),
        "{text}"
    );
    let next_int = Certificate::parse(&inner[2]).unwrap();
    assert_eq!(
        Certificate::parse(&inner[1]).unwrap().issuer,
        next_int.subject
    );
    assert!(server.cli(&["ca", "activate", &id]).status.success());
    let mut after = Vec::new();
    for _ in 0..50 {
        after = ca_cert_list(&server);
        if after[0] != before[0] {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        after, inner,
        "GetCACert now lists what GetNextCACert announced"
    );
    // Both generations' encryption certificates are on record, one per RA.
    let ca = server.ca_certs_of(&after);
    let device = Device::new("enc rotated managementAttestation E-3");
    let to_enc = CaCerts {
        ra: after[1].clone(),
        ..server.ca_certs_of(&after)
    };
    let req = device.pkcs_req(&to_enc, Some(&server.challenge));
    let reply = server.pki_operation(&req.der).body;
    issued(&device.decode(&ca, &req, &reply, None));
}

/// Turning the option on must not cost the clients that managed without it: micromdm
/// scepclient (encrypts to every GetCACert certificate), certmonger (prefers a leaf with
/// keyEncipherment) and strongSwan all still enroll, and every reply is signed by the RA.
#[test]
fn the_other_clients_still_enroll_with_an_encryption_ra() {
    use super::interop_clients::{
        STRONGSWAN_DEFAULT, certmonger_available, certmonger_enroll, scepclient_available,
        scepclient_enroll, strongswan_available, strongswan_enroll,
    };
    let (have_scepclient, have_certmonger, have_strongswan) = (
        !missing(scepclient_available(), "scepclient"),
        !missing(certmonger_available(), "certmonger"),
        !missing(strongswan_available(), "strongSwan pki"),
    );
    let server = Server::start_with_config(ON);
    let certs = ca_cert_list(&server);
    assert_eq!(certs.len(), 4);
    let ca = server.ca_certs_of(&certs);
    let work = tempfile::tempdir().unwrap();
    if have_scepclient {
        let p = server.add_platform(&["--name", "des", "--challenge", "static", "--allow-des"]);
        let url = format!("http://{}{}", server.addr, p["scep_path"].as_str().unwrap());
        let e = scepclient_enroll(
            &url,
            p["challenge"].as_str().unwrap(),
            "sc enc",
            work.path(),
        )
        .unwrap_or_else(|e| panic!("scepclient failed with the encryption RA: {e}"));
        openssl_verify(work.path(), &ca, &pem_to_der(&e.cert_pem));
    }
    if have_certmonger {
        let root = work.path().join("root.pem");
        write_pem(&root, "CERTIFICATE", &ca.root);
        let e = certmonger_enroll(
            &server.scep_url(),
            &server.challenge,
            "cm enc",
            Some(&root),
            work.path(),
        )
        .unwrap_or_else(|e| panic!("certmonger failed with the encryption RA: {e}"));
        openssl_verify(work.path(), &ca, &pem_to_der(&e.cert_pem));
    }
    if have_strongswan {
        let e = strongswan_enroll(
            &server.scep_url(),
            &server.challenge,
            "sw enc",
            STRONGSWAN_DEFAULT,
            work.path(),
        )
        .unwrap_or_else(|e| panic!("strongSwan failed with the encryption RA: {e}"));
        openssl_verify(work.path(), &ca, &pem_to_der(&e.cert_pem));
    }
}
