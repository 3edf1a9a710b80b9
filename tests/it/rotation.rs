//! CA rotation end to end with the test client (real clients are in the interop tests):
//! enroll → rotate → GetNextCACert (signed by the current RA) → activate → enroll again; the
//! old certificate still verifies and OCSP answers for it through the retired CA, whose CRL is
//! still served.

use super::testkit::*;

fn admin_call(
    server: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&server.admin_addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut t = String::new();
    let _ = s.read_to_string(&mut t);
    let (head, body) = t.split_once("\r\n\r\n").unwrap();
    (
        head.split_whitespace().nth(1).unwrap().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn rotation_keeps_old_devices_trusted_and_moves_new_ones() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = server.cli(&[
        "admin", "token", "create", "--name", "ops", "--scope", "admin", "--json",
    ]);
    let token = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let p: serde_json::Value = serde_json::from_slice(
        &server
            .cli(&[
                "platform",
                "add",
                "--name",
                "legacy",
                "--challenge",
                "static",
                "--json",
            ])
            .stdout,
    )
    .unwrap();
    let path = p["scep_path"].as_str().unwrap().to_owned();
    let challenge = p["challenge"].as_str().unwrap().to_owned();
    let old_ca = server.ca_certs();
    let enroll = |cn: &str, ca: &CaCerts| {
        issued(&Device::new(cn).enroll_at(&server, &path, ca, Some(&challenge)))
    };
    let old_cert = enroll("old managementAttestation ROT-1", &old_ca);
    openssl_verify(d, &old_ca, &old_cert);

    // Rotate: staged, advertised, GetNextCACert signed by the current RA.
    let caps = |s: &Server| {
        String::from_utf8(
            s.get(&format!("{}?operation=GetCACaps", s.scep_path()))
                .body,
        )
        .unwrap()
    };
    assert!(!caps(&server).contains("GetNextCACert"));
    let (s, next) = admin_call(&server, "POST", "/admin/v1/ca/rotate", &token, "{}");
    assert_eq!((s, next["state"].as_str()), (201, Some("next")), "{next}");
    let next_id = next["id"].as_str().unwrap().to_owned();
    assert!(caps(&server).lines().any(|l| l == "GetNextCACert"));
    let r = server.get(&format!("{}?operation=GetNextCACert", server.scep_path()));
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (200, "application/x-x509-next-ca-cert")
    );
    std::fs::write(d.join("next.p7"), &r.body).unwrap();
    write_pem(&d.join("root.pem"), "CERTIFICATE", &old_ca.root);
    write_pem(&d.join("int.pem"), "CERTIFICATE", &old_ca.intermediate);
    let q = |n: &str| d.join(n).to_str().unwrap().to_owned();
    // OpenSSL 3.0's `cms -verify` has no -untrusted: trust root and current intermediate.
    let chain = std::fs::read_to_string(d.join("root.pem")).unwrap()
        + &std::fs::read_to_string(d.join("int.pem")).unwrap();
    std::fs::write(d.join("cas.pem"), chain).unwrap();
    let (ok, text) = openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        &q("next.p7"),
        "-CAfile",
        &q("cas.pem"),
        "-purpose",
        "any",
        "-binary",
        "-out",
        &q("next-inner.der"),
    ]);
    assert!(
        ok,
        "GetNextCACert must verify against the current chain: {text}"
    );
    let inner = std::fs::read(d.join("next-inner.der")).unwrap();
    let (certs, _) = scepd_pki::cms::certs_only::parse(&inner).unwrap();
    let (_, list) = admin_call(&server, "GET", "/admin/v1/ca", &token, "");
    let staged_der = scepd_pki::encoding::encode_base64(certs[1]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == next_id.as_str() && a["state"] == "next"),
        "{list}"
    );
    // Until activation, enrollment still chains to the old intermediate.
    let mid = Device::new("mid managementAttestation ROT-2");
    openssl_verify(
        d,
        &old_ca,
        &issued(&mid.enroll(
            &server,
            &old_ca,
            Some(&server.challenge),
            DEFAULT_PROTECTION,
        )),
    );

    // Activate: new chain in GetCACert, new enrollments chain to the new intermediate.
    let (s, _) = admin_call(
        &server,
        "POST",
        &format!("/admin/v1/ca/{next_id}/activate"),
        &token,
        "",
    );
    assert_eq!(s, 200);
    let new_ca = server.ca_certs();
    assert_ne!(new_ca.intermediate, old_ca.intermediate);
    assert_eq!(new_ca.root, old_ca.root);
    assert_eq!(
        scepd_pki::encoding::encode_base64(&new_ca.intermediate),
        staged_der,
        "GetNextCACert announced what became active"
    );
    assert!(!caps(&server).contains("GetNextCACert"));
    let new_cert = enroll("new managementAttestation ROT-3", &new_ca);
    openssl_verify(d, &new_ca, &new_cert);
    // The old certificate still verifies against the retired intermediate, OCSP answers "good"
    // for it through the retired CA, and the retired CA's CRL is still published.
    openssl_verify(d, &old_ca, &old_cert);
    let leaf = d.join("old-leaf.pem");
    write_pem(&leaf, "CERTIFICATE", &old_cert);
    let text = super::revocation::ocsp_status(&server, d, &old_ca, &leaf);
    assert!(text.contains(": good"), "{text}");
    let (_, list) = admin_call(&server, "GET", "/admin/v1/ca", &token, "");
    let retired: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["role"] == "intermediate" && a["state"] == "retired")
        .collect();
    assert_eq!(retired.len(), 1, "{list}");
    let crl = server.get(&format!("/crl/{}.crl", retired[0]["id"].as_str().unwrap()));
    assert_eq!(
        (crl.status, crl.content_type.as_str()),
        (200, "application/pkix-crl")
    );
    // Revoking the old certificate now shows through the retired CA's OCSP.
    let serial = scepd_pki::hex(
        scepd_pki::x509::Certificate::parse(&old_cert)
            .unwrap()
            .serial_magnitude(),
    );
    assert!(
        server
            .cli(&["cert", "revoke", &serial, "--reason", "superseded"])
            .status
            .success()
    );
    assert!(super::revocation::ocsp_status(&server, d, &old_ca, &leaf).contains(": revoked"));
    // A second activation of the same id is refused; the audit trail has both steps.
    assert_eq!(
        admin_call(
            &server,
            "POST",
            &format!("/admin/v1/ca/{next_id}/activate"),
            &token,
            ""
        )
        .0,
        404
    );
    let audit = String::from_utf8(server.cli(&["audit", "list", "--json"]).stdout).unwrap();
    assert!(audit.contains("ca.staged") && audit.contains("ca.activated"));
}

#[test]
fn ra_rotation_and_scheduled_activation() {
    let server = Server::start();
    let out = server.cli(&[
        "admin", "token", "create", "--name", "ops", "--scope", "admin", "--json",
    ]);
    let token = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = server.ca_certs();
    // A client that fetched GetCACert before the RA rotation still gets its answer.
    let dev = Device::new("late managementAttestation RA-1");
    let req = dev.pkcs_req(&before, Some(&server.challenge));
    let (s, ra) = admin_call(&server, "POST", "/admin/v1/ra/rotate", &token, "");
    assert_eq!((s, ra["state"].as_str()), (201, Some("active")), "{ra}");
    let after = server.ca_certs();
    assert_ne!(after.ra, before.ra);
    assert_eq!(after.intermediate, before.intermediate);
    let r = server.pki_operation(&req.der);
    issued(&dev.decode(&before, &req, &r.body, None));
    // Scheduled activation: activate_at a moment from now takes effect by itself.
    let when = scepd_pki::encoding::rfc3339(unix_now() + 2);
    let (s, next) = admin_call(
        &server,
        "POST",
        "/admin/v1/ca/rotate",
        &token,
        &format!("{{\"activate_at\": \"{when}\", \"key_algorithm\": \"ecdsa-p256\"}}"),
    );
    assert_eq!(s, 201, "{next}");
    let mut activated = false;
    for _ in 0..60 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        if server.ca_certs().intermediate != before.intermediate {
            activated = true;
            break;
        }
    }
    assert!(activated, "scheduled activation did not happen");
    let fresh = server.ca_certs();
    let d2 = Device::new("after managementAttestation RA-2");
    let dir = tempfile::tempdir().unwrap();
    openssl_verify(
        dir.path(),
        &fresh,
        &issued(&d2.enroll(&server, &fresh, Some(&server.challenge), DEFAULT_PROTECTION)),
    );
    let (_, bad) = admin_call(
        &server,
        "POST",
        "/admin/v1/ca/rotate",
        &token,
        "{\"key_algorithm\": \"dsa-1024\"}",
    );
    assert_eq!(bad["error"], "bad_request");
}

/// Rotation from the CLI on the data dir reaches a running server within a second or two.
#[test]
fn cli_rotation_reaches_the_running_server() {
    let server = Server::start();
    let before = server.ca_certs();
    let v = server.cli_json(&["ca", "rotate", "--json"]);
    let id = v["id"].as_str().unwrap().to_owned();
    let caps = || {
        String::from_utf8(
            server
                .get(&format!("{}?operation=GetCACaps", server.scep_path()))
                .body,
        )
        .unwrap()
    };
    let mut seen = false;
    for _ in 0..40 {
        if caps().contains("GetNextCACert") {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(seen, "the staged CA is announced");
    assert!(server.cli(&["ca", "activate", &id]).status.success());
    let mut switched = false;
    for _ in 0..40 {
        if server.ca_certs().intermediate != before.intermediate {
            switched = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(switched, "the running server serves the new chain");
    let list: serde_json::Value =
        serde_json::from_slice(&server.cli(&["ca", "list", "--json"]).stdout).unwrap();
    let states: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["role"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states
            .iter()
            .filter(|(r, s)| r == "intermediate" && s == "retired")
            .count(),
        1,
        "{states:?}"
    );
    assert_eq!(
        states
            .iter()
            .filter(|(r, s)| r == "ra" && s == "retired")
            .count(),
        1,
        "{states:?}"
    );
}

/// Offline root: with the root key out of the keystore, online rotation is refused with a clear
/// message; the CSR flow (signed here by OpenSSL with the exported root key, as an offline
/// ceremony would) stages, activates and issues.
#[test]
fn offline_root_rotation_via_csr_and_import() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = server.data_path();
    let root_key = std::fs::read_dir(data.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("root-")
        })
        .unwrap();
    // Export the root key for the "ceremony", then take it offline.
    let pass = data.join("key-passphrase");
    let (ok, text) = openssl(&[
        "pkey",
        "-inform",
        "DER",
        "-in",
        root_key.to_str().unwrap(),
        "-passin",
        &format!("file:{}", pass.display()),
        "-out",
        d.join("root.key").to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    std::fs::rename(&root_key, d.join("root.pk8.offline")).unwrap();
    let out = server.cli(&["ca", "rotate"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("offline root"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csr = d.join("int.csr");
    let out = server.cli(&["ca", "rotate", "--csr-out", csr.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ca = server.ca_certs();
    write_pem(&d.join("root.pem"), "CERTIFICATE", &ca.root);
    std::fs::write(d.join("ext.cnf"), "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n").unwrap();
    let p = |n: &str| d.join(n).to_str().unwrap().to_owned();
    let (ok, text) = openssl(&[
        "x509",
        "-req",
        "-in",
        &p("int.csr"),
        "-CA",
        &p("root.pem"),
        "-CAkey",
        &p("root.key"),
        "-CAcreateserial",
        "-days",
        "3650",
        "-sha256",
        "-extfile",
        &p("ext.cnf"),
        "-out",
        &p("int.pem"),
    ]);
    assert!(ok, "{text}");
    // A certificate for another key is refused.
    let bad = server.cli(&["ca", "rotate", "--import-cert", &p("root.pem"), "--id", &id]);
    assert!(!bad.status.success());
    let out = server.cli(&[
        "ca",
        "rotate",
        "--import-cert",
        &p("int.pem"),
        "--id",
        &id,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.cli(&["ca", "activate", &id]).status.success());
    let mut switched = None;
    for _ in 0..40 {
        let now = server.ca_certs();
        if now.intermediate != ca.intermediate {
            switched = Some(now);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let new_ca = switched.expect("the running server serves the imported intermediate");
    let dev = Device::new("offline managementAttestation OFF-1");
    openssl_verify(
        d,
        &new_ca,
        &issued(&dev.enroll(
            &server,
            &new_ca,
            Some(&server.challenge),
            DEFAULT_PROTECTION,
        )),
    );
}
