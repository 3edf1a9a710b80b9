//! strongSwan's `pki --scep` 5.9.8 (Debian 12) against a running `scepd serve`, every
//! certificate checked by `openssl verify`. strongSwan derives the transactionID
//! from the key, so its same-key renewal reuses the original one: it must get a new
//! certificate, not the old one again. It can sign with RSASSA-PSS, which scepd verifies, and
//! with SHA-224, which scepd refuses with a signed badAlg.

use super::interop_clients::{
    STRONGSWAN_DEFAULT, StrongswanSigning, key_matches_cert, missing, pem_to_der,
    strongswan_available, strongswan_enroll, strongswan_renew,
};
use super::testkit::*;
use scepd_pki::x509::Certificate;

/// A static platform for strongSwan: (SCEP URL, challenge).
fn platform(server: &Server, name: &str) -> (String, String) {
    let p = server.add_platform(&["--name", name, "--challenge", "static"]);
    (
        format!("http://{}{}", server.addr, p["scep_path"].as_str().unwrap()),
        p["challenge"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn strongswan_enrolls_and_its_same_key_renewal_gets_a_new_certificate() {
    if missing(strongswan_available(), "strongSwan pki") {
        return;
    }
    let server = Server::start();
    let (url, challenge) = platform(&server, "strongswan");
    let work = tempfile::tempdir().unwrap();
    let cn = "vpn managementAttestation SW-1";
    let first = strongswan_enroll(&url, &challenge, cn, STRONGSWAN_DEFAULT, work.path())
        .unwrap_or_else(|e| panic!("strongSwan enrollment failed: {e}"));
    let old_der = pem_to_der(&first.cert_pem);
    openssl_verify(work.path(), &server.ca_certs(), &old_der);
    key_matches_cert(&first.key_pem, &first.cert_pem).unwrap();
    // notAfter has one-second resolution.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let renewed = strongswan_renew(&url, cn, STRONGSWAN_DEFAULT, &first)
        .unwrap_or_else(|e| panic!("strongSwan renewal failed: {e}"));
    let new_der = pem_to_der(&renewed.cert_pem);
    openssl_verify(work.path(), &server.ca_certs(), &new_der);
    let (old, new) = (
        Certificate::parse(&old_der).unwrap(),
        Certificate::parse(&new_der).unwrap(),
    );
    assert_ne!(
        old.serial, new.serial,
        "the renewal got the old certificate back"
    );
    assert!(new.not_after > old.not_after, "validity did not extend");
    assert_eq!(old.spki, new.spki, "strongSwan renewed with the same key");
    let list: serde_json::Value =
        serde_json::from_slice(&server.cli(&["cert", "list", "--json"]).stdout).unwrap();
    let certs = list.as_array().unwrap();
    assert_eq!(certs.len(), 2, "{list}");
    assert_eq!(
        certs[0]["transaction_id"], certs[1]["transaction_id"],
        "strongSwan reused its key-derived transactionID"
    );
}

#[test]
fn strongswan_rsa_pss_requests_enroll() {
    if missing(strongswan_available(), "strongSwan pki") {
        return;
    }
    let server = Server::start();
    let (url, challenge) = platform(&server, "strongswan-pss");
    let work = tempfile::tempdir().unwrap();
    for (i, digest) in ["sha256", "sha384", "sha512"].into_iter().enumerate() {
        let signing = StrongswanSigning {
            padding: "pss",
            digest,
        };
        let cn = format!("vpn managementAttestation PSS-{i}");
        let enrolled = strongswan_enroll(&url, &challenge, &cn, signing, work.path())
            .unwrap_or_else(|e| panic!("strongSwan PSS/{digest} enrollment failed: {e}"));
        openssl_verify(
            work.path(),
            &server.ca_certs(),
            &pem_to_der(&enrolled.cert_pem),
        );
        key_matches_cert(&enrolled.key_pem, &enrolled.cert_pem).unwrap();
    }
}

#[test]
fn strongswan_sha224_gets_a_signed_bad_alg() {
    if missing(strongswan_available(), "strongSwan pki") {
        return;
    }
    let server = Server::start();
    let (url, challenge) = platform(&server, "strongswan-sha224");
    let work = tempfile::tempdir().unwrap();
    for padding in ["pkcs1", "pss"] {
        let signing = StrongswanSigning {
            padding,
            digest: "sha224",
        };
        let err = strongswan_enroll(&url, &challenge, "vpn sha224", signing, work.path())
            .expect_err("SHA-224 must be refused");
        // strongSwan verified our signed CertRep and printed its failInfo.
        assert!(err.contains("badAlg"), "{padding}: {err}");
    }
    let list: serde_json::Value =
        serde_json::from_slice(&server.cli(&["cert", "list", "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
}
