//! The admin API: token scopes, platforms/devices/certificates through the API, audit trail,
//! metrics, the OpenAPI document matching the routes, and the TLS requirement off loopback.

use scepd_pki::scep::client::CertRepOutcome;

use super::testkit::*;

pub(super) fn token(server: &Server, name: &str, scope: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "admin", "token", "create", "--name", name, "--scope", scope, "--json",
    ];
    args.extend_from_slice(extra);
    let v = server.cli_json(&args);
    v["token"].as_str().unwrap().to_owned()
}

/// An HTTP request to the admin listener with an optional bearer token.
pub(super) fn call(
    server: &Server,
    method: &str,
    path: &str,
    tok: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&server.admin_addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = tok
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        head.to_owned(),
    )
}

#[test]
fn token_scopes_are_enforced() {
    let server = Server::start();
    let admin = token(&server, "ops", "admin", &[]);
    let read = token(&server, "auditor", "read", &[]);
    let (s, v, head) = call(&server, "GET", "/admin/v1/platforms", None, None);
    assert_eq!((s, v["error"].as_str()), (401, Some("unauthorized")));
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer")
    );
    assert_eq!(
        call(
            &server,
            "GET",
            "/admin/v1/platforms",
            Some("scepd_NOTATOKEN"),
            None
        )
        .0,
        401
    );
    assert_eq!(
        call(&server, "GET", "/admin/v1/platforms", Some(&read), None).0,
        200
    );
    let (s, v, _) = call(
        &server,
        "POST",
        "/admin/v1/platforms",
        Some(&read),
        Some(serde_json::json!({"name": "x"})),
    );
    assert_eq!((s, v["error"].as_str()), (403, Some("forbidden")));
    assert_eq!(
        call(
            &server,
            "POST",
            "/admin/v1/platforms",
            Some(&admin),
            Some(serde_json::json!({"name": "x"}))
        )
        .0,
        201
    );
    assert_eq!(call(&server, "GET", "/metrics", None, None).0, 401);
    assert_eq!(call(&server, "GET", "/healthz", None, None).0, 200);
    assert_eq!(call(&server, "GET", "/readyz", None, None).0, 200);
    // Probes only read.
    for probe in ["/healthz", "/readyz"] {
        for method in ["PUT", "POST", "DELETE"] {
            assert_eq!(
                call(&server, method, probe, None, None).0,
                405,
                "{method} {probe}"
            );
        }
    }
    // Revoked and expired tokens stop working.
    assert!(
        server
            .cli(&["admin", "token", "revoke", "auditor"])
            .status
            .success()
    );
    assert_eq!(
        call(&server, "GET", "/admin/v1/platforms", Some(&read), None).0,
        401
    );
    let short = token(&server, "short", "read", &["--expires-in", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(
        call(&server, "GET", "/admin/v1/platforms", Some(&short), None).0,
        401
    );
    // Duplicate names are refused; secrets are not stored in clear.
    assert!(
        !server
            .cli(&[
                "admin", "token", "create", "--name", "ops", "--scope", "read"
            ])
            .status
            .success()
    );
    let db = super::test_store::contents(&server.data_path());
    assert!(!db.windows(admin.len()).any(|w| w == admin.as_bytes()));
}

/// A static platform created through the API (as an operator's script would): its id, SCEP
/// path and challenge.
struct ApiPlatform {
    id: String,
    path: String,
    challenge: String,
}

fn api_platform(server: &Server, admin: &str, name: &str) -> ApiPlatform {
    let (s, p, _) = call(
        server,
        "POST",
        "/admin/v1/platforms",
        Some(admin),
        Some(serde_json::json!({"name": name, "challenge": "static"})),
    );
    assert_eq!(s, 201, "{p}");
    let platform = ApiPlatform {
        id: p["platform_id"].as_str().unwrap().to_owned(),
        path: p["scep_path"].as_str().unwrap().to_owned(),
        challenge: p["challenge"].as_str().unwrap().to_owned(),
    };
    assert_eq!(platform.path, format!("/scep/{}", platform.id));
    platform
}

/// A server, its CA certificates, an admin token and a static platform made through the API.
struct ApiFixture {
    server: Server,
    ca: CaCerts,
    admin: String,
    p: ApiPlatform,
}

impl ApiFixture {
    fn new() -> Self {
        let server = Server::start();
        let ca = server.ca_certs();
        let admin = token(&server, "ops", "admin", &[]);
        let p = api_platform(&server, &admin, "jamf");
        Self {
            server,
            ca,
            admin,
            p,
        }
    }

    /// A certificate for a new device `cn`, enrolled with the platform's challenge.
    fn enrolled(&self, cn: &str) -> Vec<u8> {
        issued(&enroll_through(
            &self.server,
            &self.ca,
            &self.p,
            cn,
            Some(&self.p.challenge),
        ))
    }
}

/// One PKCSReq of a new device `cn` through `p` with `challenge`; the CertRep outcome.
fn enroll_through(
    server: &Server,
    ca: &CaCerts,
    p: &ApiPlatform,
    cn: &str,
    challenge: Option<&str>,
) -> CertRepOutcome {
    let dev = Device::new(cn);
    let req = dev.pkcs_req(ca, challenge);
    let r = server.post(&format!("{}?operation=PKIOperation", p.path), &req.der);
    dev.decode(ca, &req, &r.body, None)
}

#[test]
fn a_platform_created_through_the_api_enrolls_and_shows_its_device() {
    let f = ApiFixture::new();
    let (server, admin, p) = (&f.server, &f.admin, &f.p);
    let cn = "dora managementAttestation API-1";
    f.enrolled(cn);
    let (s, d, _) = call(
        server,
        "GET",
        &format!("/admin/v1/devices/{}/API-1", p.id),
        Some(admin),
        None,
    );
    assert_eq!(
        (s, d["state"].as_str(), d["user"].as_str()),
        (200, Some("active"), Some("dora"))
    );
    assert_eq!(d["certificates"].as_array().unwrap().len(), 1);
    assert_eq!(
        call(
            server,
            "GET",
            "/admin/v1/devices/nope/nope",
            Some(admin),
            None
        )
        .0,
        404,
        "unknown things are 404s"
    );
}

#[test]
fn deactivating_a_device_through_the_api_revokes_it_once() {
    let f = ApiFixture::new();
    let (server, ca, admin, p) = (&f.server, &f.ca, &f.admin, &f.p);
    let cn = "dora managementAttestation API-1";
    let cert = f.enrolled(cn);
    let deactivate = format!("/admin/v1/devices/{}/API-1/deactivate", p.id);
    let (s, d, _) = call(
        server,
        "POST",
        &deactivate,
        Some(admin),
        Some(serde_json::json!({"reason": "keyCompromise"})),
    );
    assert_eq!(
        (s, d["state"].as_str(), d["revoked"].as_u64()),
        (200, Some("deactivated"), Some(1))
    );
    let dir = tempfile::tempdir().unwrap();
    let leaf = dir.path().join("leaf.pem");
    write_pem(&leaf, "CERTIFICATE", &cert);
    let text = super::revocation::ocsp_status(server, dir.path(), ca, &leaf);
    assert!(
        text.contains(": revoked") && text.contains("keyCompromise"),
        "{text}"
    );
    // The same transition again is a conflict; a platform with certificates is not deleted.
    assert_eq!(call(server, "POST", &deactivate, Some(admin), None).0, 409);
    let (s, _, _) = call(
        server,
        "DELETE",
        &format!("/admin/v1/platforms/{}", p.id),
        Some(admin),
        None,
    );
    assert_eq!(s, 409, "it has certificates");
}

#[test]
fn certificates_are_listed_shown_and_revoked_idempotently() {
    let f = ApiFixture::new();
    let (server, admin, p) = (&f.server, &f.admin, &f.p);
    let cn = "dora managementAttestation API-1";
    f.enrolled(cn);
    let (s, list, _) = call(
        server,
        "GET",
        &format!("/admin/v1/certificates?platform_id={}&status=valid", p.id),
        Some(admin),
        None,
    );
    assert_eq!((s, list.as_array().unwrap().len()), (200, 1));
    let serial = list[0]["serial"].as_str().unwrap().to_owned();
    let revoke = |reason: &str| {
        call(
            server,
            "POST",
            &format!("/admin/v1/certificates/{serial}/revoke"),
            Some(admin),
            Some(serde_json::json!({ "reason": reason })),
        )
    };
    let (s, r, _) = revoke("keyCompromise");
    assert_eq!((s, r["changed"].as_bool()), (200, Some(true)), "{r}");
    let (_, shown, _) = call(
        server,
        "GET",
        &format!("/admin/v1/certificates/{serial}"),
        Some(admin),
        None,
    );
    assert_eq!(shown["revocation_reason"], "keyCompromise");
    // Again, with another reason: nothing changes, the first reason stays.
    let (s, r, _) = revoke("superseded");
    assert_eq!((s, r["changed"].as_bool()), (200, Some(false)));
    let (_, list, _) = call(
        server,
        "GET",
        &format!("/admin/v1/certificates?platform_id={}&status=revoked", p.id),
        Some(admin),
        None,
    );
    assert_eq!(list[0]["revocation_reason"], "keyCompromise");
}

#[test]
fn rotating_a_platform_secret_retires_the_old_one() {
    let f = ApiFixture::new();
    let (server, ca, admin, p) = (&f.server, &f.ca, &f.admin, &f.p);
    let (s, rot, _) = call(
        server,
        "POST",
        &format!("/admin/v1/platforms/{}/rotate-secret", p.id),
        Some(admin),
        None,
    );
    assert_eq!(s, 200);
    let cn = "eve managementAttestation API-2";
    assert!(matches!(
        enroll_through(server, ca, p, cn, Some(&p.challenge)),
        CertRepOutcome::Failure { .. }
    ));
    issued(&enroll_through(
        server,
        ca,
        p,
        cn,
        rot["challenge"].as_str(),
    ));
}

#[test]
fn other_challenge_modes_through_the_api_print_what_the_cli_prints() {
    let server = Server::start();
    let admin = token(&server, "ops", "admin", &[]);
    let (s, dynp, _) = call(
        &server,
        "POST",
        "/admin/v1/platforms",
        Some(&admin),
        Some(
            serde_json::json!({"name": "jamf-dyn", "challenge": "dynamic", "challenge_ttl": "30m"}),
        ),
    );
    assert_eq!(s, 201);
    for k in [
        "platform_id",
        "scep_path",
        "challenge_url_path",
        "username",
        "password",
    ] {
        assert!(
            dynp[k].as_str().is_some_and(|v| !v.is_empty()),
            "{k} in {dynp}"
        );
    }
    // A webhook platform without its URL is a JSON 400.
    let (s, bad, _) = call(
        &server,
        "POST",
        "/admin/v1/platforms",
        Some(&admin),
        Some(serde_json::json!({"name": "w", "challenge": "webhook"})),
    );
    assert_eq!((s, bad["error"].as_str()), (400, Some("bad_request")));
}

#[test]
fn the_audit_trail_names_the_token_and_metrics_count_what_happened() {
    let f = ApiFixture::new();
    let (server, ca, admin, p) = (&f.server, &f.ca, &f.admin, &f.p);
    let cn = "dora managementAttestation API-1";
    let cert = f.enrolled(cn);
    let cn2 = "eve managementAttestation API-2";
    f.enrolled(cn2);
    let wrong = enroll_through(server, ca, p, "mallory", Some("wrong"));
    assert!(matches!(wrong, CertRepOutcome::Failure { .. }));
    let (s, _, _) = call(
        server,
        "POST",
        &format!("/admin/v1/devices/{}/API-1/deactivate", p.id),
        Some(admin),
        None,
    );
    assert_eq!(s, 200);
    let (s, _, _) = call(
        server,
        "POST",
        &format!("/admin/v1/platforms/{}/rotate-secret", p.id),
        Some(admin),
        None,
    );
    assert_eq!(s, 200);
    let dir = tempfile::tempdir().unwrap();
    let leaf = dir.path().join("leaf.pem");
    write_pem(&leaf, "CERTIFICATE", &cert);
    super::revocation::ocsp_status(server, dir.path(), ca, &leaf);

    let (_, audit, _) = call(
        server,
        "GET",
        "/admin/v1/audit?since=2020-01-01T00:00:00Z",
        Some(admin),
        None,
    );
    let actions: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [
        "platform.created",
        "device.deactivated",
        "platform.secret_rotated",
    ] {
        assert!(
            actions.contains(&("token:ops".to_owned(), want.to_owned())),
            "{want} missing from {actions:?}"
        );
    }
    let cli = server.cli(&["audit", "list", "--json"]);
    assert!(String::from_utf8_lossy(&cli.stdout).contains("device.deactivated"));
    let metrics = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&server.admin_addr).unwrap();
        s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {admin}\r\n\r\n").as_bytes()).unwrap();
        let mut t = String::new();
        let _ = s.read_to_string(&mut t);
        t
    };
    let pid = &p.id;
    assert!(
        metrics.contains(&format!(
            "scepd_pki_operations_total{{platform=\"{pid}\",outcome=\"success\",fail_info=\"\"}} 2"
        )),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("scepd_pki_operations_total{{platform=\"{pid}\",outcome=\"failure\",fail_info=\"badRequest\"}} 1")), "{metrics}");
    assert!(metrics.contains("scepd_ca_not_after_seconds{role=\"intermediate\""));
    // ocsp_status asks once with a nonce and once without (the first nonce-less one: signed).
    assert!(metrics.contains("scepd_ocsp_requests_total 2"), "{metrics}");
    assert!(
        metrics.contains("scepd_ocsp_responses_reused_total 0"),
        "{metrics}"
    );
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"))
    };
    let (commits, issued) = (
        counter("scepd_store_issuance_commits_total"),
        counter("scepd_store_issuances_committed_total"),
    );
    assert!(
        commits >= 1 && issued >= commits,
        "{commits} commits, {issued} issuances"
    );
}

#[test]
fn openapi_document_matches_the_routes() {
    let server = Server::start();
    let read = token(&server, "r", "read", &[]);
    let (s, doc, _) = call(&server, "GET", "/admin/v1/openapi.json", Some(&read), None);
    assert_eq!(s, 200);
    assert_eq!(
        doc,
        serde_json::from_str::<serde_json::Value>(scepd::admin::OPENAPI).unwrap(),
        "served as kept in the repo"
    );
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 16);
    for (path, item) in paths {
        for method in ["get", "post", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let concrete = path
                .replace("{id}", "nope")
                .replace("{platform_id}", "nope")
                .replace("{device_id}", "nope")
                .replace("{serial}", "0a");
            let (status, body, _) = call(
                &server,
                &method.to_uppercase(),
                &concrete,
                Some(&read),
                None,
            );
            assert_ne!(
                body["message"], "no such endpoint",
                "{method} {path} is documented but not routed"
            );
            if method != "get" {
                assert_eq!(status, 403, "{method} {path} must need an admin token");
            }
        }
    }
    // And an undocumented route is not served.
    let (_, body, _) = call(
        &server,
        "GET",
        "/admin/v1/secret-backdoor",
        Some(&read),
        None,
    );
    assert_eq!(body["message"], "no such endpoint");
}

#[test]
fn admin_listener_off_loopback_needs_tls() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(scepd_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
            "--data-dir",
        ])
        .arg(dir.path().join("d"))
        .env("SCEPD_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs --admin-tls-cert and --admin-tls-key")
    );
}

/// The exported mobileconfig parses as a plist (Python's plistlib as the independent reader)
/// with exactly the SCEP payload keys device trust needs; other formats carry their fields.
#[test]
fn mdm_profiles_export() {
    let server = Server::start();
    let read = token(&server, "r", "read", &[]);
    let path = format!(
        "/admin/v1/platforms/{}/profile.mobileconfig?challenge={}",
        server.platform_id, server.challenge
    );
    let r = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&server.admin_addr).unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {read}\r\n\r\n").as_bytes()).unwrap();
        let mut t = String::new();
        let _ = s.read_to_string(&mut t);
        t
    };
    let (head, body) = r.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains("200") && head.contains("application/x-apple-aspen-config"),
        "{head}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.mobileconfig");
    std::fs::write(&file, body).unwrap();
    let script = r#"
import plistlib, sys, json, hashlib
p = plistlib.load(open(sys.argv[1], 'rb'))
root, scep = p['PayloadContent']
c = scep['PayloadContent']
print(json.dumps({'type': p['PayloadType'], 'root_type': root['PayloadType'], 'scep_type': scep['PayloadType'],
  'keys': sorted(c.keys()), 'url': c['URL'], 'challenge': c['Challenge'], 'keysize': c['Keysize'], 'ktype': c['Key Type'],
  'usage': c['Key Usage'], 'extractable': c['KeyIsExtractable'], 'allapps': c['AllowAllAppsAccess'],
  'subject': c['Subject'], 'fp_ok': hashlib.sha256(root['PayloadContent']).digest() == c['CAFingerprint']}))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            v["type"].as_str(),
            v["root_type"].as_str(),
            v["scep_type"].as_str()
        ),
        (
            Some("Configuration"),
            Some("com.apple.security.root"),
            Some("com.apple.security.scep")
        )
    );
    let keys: Vec<&str> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "AllowAllAppsAccess",
            "CAFingerprint",
            "Challenge",
            "Key Type",
            "Key Usage",
            "KeyIsExtractable",
            "Keysize",
            "Name",
            "Retries",
            "RetryDelay",
            "Subject",
            "URL"
        ]
    );
    assert_eq!(
        v["url"].as_str().unwrap(),
        format!("http://{}/scep/{}", server.addr, server.platform_id)
    );
    assert_eq!(
        (
            v["challenge"].as_str(),
            v["keysize"].as_i64(),
            v["ktype"].as_str(),
            v["usage"].as_i64()
        ),
        (
            Some(server.challenge.as_str()),
            Some(2048),
            Some("RSA"),
            Some(1)
        )
    );
    assert_eq!(
        (
            v["extractable"].as_bool(),
            v["allapps"].as_bool(),
            v["fp_ok"].as_bool()
        ),
        (Some(false), Some(true), Some(true))
    );
    assert_eq!(
        v["subject"],
        serde_json::json!([[["CN", "%ComputerName% managementAttestation %HardwareUUID%"]]])
    );
    // JSON formats.
    for (fmt, key) in [
        ("windows", "CAThumbprint"),
        ("intune", "SCEP Server URLs"),
        ("workspace-one", "Certificate Template"),
    ] {
        let (s, v, _) = call(
            &server,
            "GET",
            &format!(
                "/admin/v1/platforms/{}/profile.mobileconfig?format={fmt}",
                server.platform_id
            ),
            Some(&read),
            None,
        );
        assert_eq!(s, 200);
        assert!(v.get(key).is_some(), "{fmt}: {v}");
    }
    let (_, w, _) = call(
        &server,
        "GET",
        &format!(
            "/admin/v1/platforms/{}/profile.mobileconfig?format=windows",
            server.platform_id
        ),
        Some(&read),
        None,
    );
    assert_eq!(
        (
            w["KeyUsage"].as_i64(),
            w["EKUMapping"].as_str(),
            w["HashAlgorithm"].as_str()
        ),
        (Some(128), Some("1.3.6.1.5.5.7.3.2"), Some("SHA-2"))
    );
    // The CLI prints the same profile offline.
    let cli = server.cli(&[
        "platform",
        "profile",
        &server.platform_id,
        "--format",
        "windows",
    ]);
    assert!(cli.status.success());
    let v: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(v["CAThumbprint"], w["CAThumbprint"]);
}

/// With --admin-url the CLI's mutating commands go through the API (audited as the token).
#[test]
fn cli_admin_url_mode() {
    let server = Server::start();
    let ca = server.ca_certs();
    let admin = token(&server, "ops", "admin", &[]);
    let url = format!("http://{}", server.admin_addr);
    let remote = |args: &[&str]| {
        std::process::Command::new(scepd_bin())
            .args(args)
            .args(["--admin-url", &url])
            .env("SCEPD_ADMIN_TOKEN", &admin)
            .env("SCEPD_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = remote(&[
        "platform",
        "add",
        "--name",
        "remote",
        "--challenge",
        "static",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dev = Device::new("rita managementAttestation REM-1");
    let req = dev.pkcs_req(&ca, p["challenge"].as_str());
    issued(
        &dev.decode(
            &ca,
            &req,
            &server
                .post(
                    &format!(
                        "{}?operation=PKIOperation",
                        p["scep_path"].as_str().unwrap()
                    ),
                    &req.der,
                )
                .body,
            None,
        ),
    );
    let out = remote(&[
        "device",
        "deactivate",
        "REM-1",
        "--platform",
        p["platform_id"].as_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["state"].as_str(), v["revoked"].as_u64()),
        (Some("deactivated"), Some(1))
    );
    let audit = String::from_utf8(server.cli(&["audit", "list", "--json"]).stdout).unwrap();
    assert!(
        audit.contains("token:ops") && audit.contains("device.deactivated"),
        "{audit}"
    );
    // A command without an API form is refused, never run on a local data dir instead.
    for args in [&["platform", "list"][..], &["audit", "list"], &["init"]] {
        let out = remote(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("`scepd {}` has no admin-API form", args.join(" "))),
            "{args:?}: {err}"
        );
    }
    // A bad token is reported, not silently applied offline.
    let out = std::process::Command::new(scepd_bin())
        .args([
            "cert",
            "revoke",
            "00",
            "--reason",
            "superseded",
            "--admin-url",
            &url,
        ])
        .env("SCEPD_ADMIN_TOKEN", "scepd_WRONG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

/// Off loopback the admin API is served over TLS (rustls); a TLS client gets answers.
#[test]
fn admin_listener_serves_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("admin.pem"), dir.path().join("admin.key"));
    let (ok, text) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-days",
        "1",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let server = Server::start_with_args(
        "",
        &[
            "--admin-tls-cert",
            cert.to_str().unwrap(),
            "--admin-tls-key",
            key.to_str().unwrap(),
        ],
    );
    let mut child = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &server.admin_addr,
            "-quiet",
            "-verify_quiet",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut done = None;
    for _ in 0..100 {
        if let Some(_status) = child.try_wait().unwrap() {
            done = Some(child.wait_with_output().unwrap());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = done.unwrap_or_else(|| panic!("openssl s_client did not finish"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("200 OK") && text.contains("ok"), "{text}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = std::panic::catch_unwind(|| call(&server, "GET", "/healthz", None, None));
    assert!(plain.is_err() || plain.unwrap().0 != 200);
}

/// A platform is named by its id or its unique name, in CLI flags and arguments and in API
/// paths and filters alike; an unknown one is refused ("no platform X", 404) instead of
/// filtering everything away.
#[test]
fn platforms_are_named_by_id_or_name_and_an_unknown_one_is_refused() {
    let f = ApiFixture::new();
    let (server, admin) = (&f.server, f.admin.as_str());
    f.enrolled("nina managementAttestation NAME-1");
    let by = |platform: &str| server.cli_json(&["cert", "list", "--platform", platform, "--json"]);
    let (by_id, by_name) = (by(&f.p.id), by("jamf"));
    assert_eq!(by_id.as_array().unwrap().len(), 1, "{by_id}");
    assert_eq!(by_id, by_name);
    let devices = server.cli_json(&["device", "list", "--platform", "jamf", "--json"]);
    assert_eq!(devices[0]["device_id"], "NAME-1", "{devices}");
    let shown = server.cli_json(&["device", "show", "NAME-1", "--platform", "jamf", "--json"]);
    assert_eq!(shown["platform_id"], f.p.id.as_str(), "{shown}");
    let profile = server.cli(&["platform", "profile", "jamf", "--format", "windows"]);
    assert!(
        profile.status.success(),
        "{}",
        String::from_utf8_lossy(&profile.stderr)
    );
    for args in [
        &["cert", "list", "--platform", "jmaf"][..],
        &["device", "list", "--platform", "jmaf"],
        &["device", "show", "NAME-1", "--platform", "jmaf"],
        &["platform", "profile", "jmaf"],
    ] {
        let out = server.cli(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no platform jmaf"), "{args:?}: {err}");
    }
    let (s, p, _) = call(server, "GET", "/admin/v1/platforms/jamf", Some(admin), None);
    assert_eq!(
        (s, p["platform_id"].as_str()),
        (200, Some(f.p.id.as_str())),
        "{p}"
    );
    let (s, list, _) = call(
        server,
        "GET",
        "/admin/v1/certificates?platform_id=jamf",
        Some(admin),
        None,
    );
    assert_eq!((s, list.as_array().map(Vec::len)), (200, Some(1)), "{list}");
    for path in [
        "/admin/v1/certificates?platform_id=jmaf",
        "/admin/v1/devices?platform_id=jmaf",
        "/admin/v1/devices/jmaf/NAME-1",
        "/admin/v1/platforms/jmaf",
    ] {
        let (s, v, _) = call(server, "GET", path, Some(admin), None);
        assert_eq!(s, 404, "{path}: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap_or("")
                .contains("no platform jmaf"),
            "{path}: {v}"
        );
    }
}
