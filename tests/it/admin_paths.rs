//! Device ids in admin API paths: the remote CLI percent-encodes every id it puts in a path,
//! the API decodes each segment once, so an id holding a space, an apostrophe, `/` or `?`
//! names exactly that device and can never turn one action into another.

use std::sync::atomic::{AtomicU8, Ordering};

use scepd::store::{CaRole, CaState, CertificateFacts, NewCertificate, Store};

use super::testkit::*;

/// Opens the server's store (the CLI does the same while the server runs).
pub fn store_of(server: &Server) -> Store {
    super::test_store::open(&server.data_path())
}

/// Records a certificate for `device_id` on `platform_id` straight through the store, so
/// names that enrollment refuses (or will refuse) can still be tested as old data.
pub fn seed_device(server: &Server, platform_id: &str, device_id: &str, subject: &str) -> String {
    static NEXT: AtomicU8 = AtomicU8::new(1);
    let store = store_of(server);
    let issuer = store
        .authorities()
        .unwrap()
        .into_iter()
        .find(|a| a.role == CaRole::Intermediate && a.state == CaState::Active)
        .unwrap()
        .id;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_be_bytes();
    let mut serial = vec![0x5e, n];
    serial.extend_from_slice(&nanos[8..]);
    let now = unix_now();
    store
        .record_issuance(&NewCertificate {
            facts: CertificateFacts {
                serial: serial.clone(),
                issuer_id: issuer,
                platform_id: platform_id.to_owned(),
                transaction_id: format!("seed-{}", scepd_pki::hex(&serial)),
                public_key_sha256: vec![n; 32],
                subject: subject.to_owned(),
                sans: vec![],
                device_id: Some(device_id.to_owned()),
                not_before: now,
                not_after: now + 86_400,
                der: vec![0x30, 0x00],
                requested_at: now,
            },
            user: None,
            signer_key_sha256: vec![n; 32],
            request_sha256: vec![n; 32],
            held: false,
        })
        .unwrap();
    scepd_pki::hex(&serial)
}

/// An admin-scope token.
pub fn admin_token(server: &Server) -> String {
    let v = server.cli_json(&[
        "admin", "token", "create", "--name", "ops", "--scope", "admin", "--json",
    ]);
    v["token"].as_str().unwrap().to_owned()
}

/// `scepd ARGS --admin-url …` with the token in the environment.
fn remote(server: &Server, token: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(scepd_bin())
        .args(args)
        .args(["--admin-url", &format!("http://{}", server.admin_addr)])
        .env("SCEPD_ADMIN_TOKEN", token)
        .env("SCEPD_LOG", "warn")
        .output()
        .unwrap()
}

fn state_of(server: &Server, device_id: &str) -> String {
    let list = server.cli_json(&["device", "list", "--json"]);
    let found: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["device_id"] == device_id)
        .collect();
    assert_eq!(found.len(), 1, "{device_id:?} in {list}");
    found[0]["state"].as_str().unwrap().to_owned()
}

#[test]
fn remote_device_actions_hit_exactly_the_named_device() {
    let server = Server::start();
    let token = admin_token(&server);
    let p = server.platform_id.clone();
    let hostile = "LAPTOP-8/deactivate?x";
    let spaced = "John's MacBook";
    for id in ["LAPTOP-8", hostile, spaced] {
        seed_device(&server, &p, id, &format!("CN={id}"));
    }
    // The attack of the audit: suspending `LAPTOP-8/deactivate?x` deactivated `LAPTOP-8`.
    let out = remote(
        &server,
        &token,
        &["device", "suspend", hostile, "--platform", &p, "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            v["device_id"].as_str(),
            v["state"].as_str(),
            v["revoked"].as_u64()
        ),
        (Some(hostile), Some("suspended"), Some(0))
    );
    assert_eq!(state_of(&server, hostile), "suspended");
    assert_eq!(state_of(&server, "LAPTOP-8"), "active");
    // A space and an apostrophe work.
    let out = remote(
        &server,
        &token,
        &["device", "deactivate", spaced, "--platform", &p, "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            v["device_id"].as_str(),
            v["state"].as_str(),
            v["revoked"].as_u64()
        ),
        (Some(spaced), Some("deactivated"), Some(1))
    );
    assert_eq!(state_of(&server, "LAPTOP-8"), "active");
    let certs = server.cli_json(&["cert", "list", "--json"]);
    for c in certs.as_array().unwrap() {
        let want = if c["device"] == spaced {
            "revoked"
        } else {
            "valid"
        };
        assert_eq!(c["status"], want, "{c}");
    }
}

#[test]
fn admin_api_decodes_path_segments_once_and_refuses_malformed_ones() {
    let server = Server::start();
    let token = admin_token(&server);
    let p = server.platform_id.clone();
    seed_device(&server, &p, "a/b?c d", "CN=x");
    seed_device(&server, &p, "100%25", "CN=y");
    let auth = format!("Bearer {token}");
    let get = |path: &str| {
        http_with(
            &server.admin_addr,
            "GET",
            path,
            &[("Authorization", &auth)],
            &[],
            None,
        )
    };
    let r = get(&format!("/admin/v1/devices/{p}/a%2Fb%3Fc%20d"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["device_id"], "a/b?c d");
    // Decoded exactly once: the id `100%25` is reached as `100%2525`, not as `100%25`.
    let r = get(&format!("/admin/v1/devices/{p}/100%2525"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["device_id"], "100%25");
    for bad in ["50%", "%zz", "%FF", "%C3"] {
        let r = http_with(
            &server.admin_addr,
            "POST",
            &format!("/admin/v1/devices/{p}/{bad}/suspend"),
            &[("Authorization", &auth)],
            &[],
            None,
        );
        assert_eq!(r.status, 400, "{bad}: {}", String::from_utf8_lossy(&r.body));
    }
}

/// Names stored before enrollment refused control characters (or written
/// by any other path) cannot forge lines or recolour the terminal in `cert list` and
/// `device list`; `--json` keeps them exact.
#[test]
fn cli_tables_escape_control_characters_and_json_stays_exact() {
    let server = Server::start();
    let forged = "LAPTOP-9\n2026-12-03T00:00:00Z  INFO forged \u{1b}[31mred";
    seed_device(
        &server,
        &server.platform_id,
        forged,
        &format!("CN={forged}"),
    );
    for args in [["cert", "list"], ["device", "list"]] {
        let out = server.cli(&[args[0], args[1]]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains('\u{1b}'), "{args:?}: {text:?}");
        assert!(
            !text.contains("\n2026-12-03"),
            "{args:?}: a forged line: {text:?}"
        );
        assert!(text.contains("LAPTOP-9\\n2026-12-03"), "{args:?}: {text:?}");
        assert!(text.contains("\\x1b[31mred"), "{args:?}: {text:?}");
        let json = server.cli(&[args[0], args[1], "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert!(v.to_string().contains("\\u001b[31mred"), "{args:?}: {v}");
        let exact = v
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.to_string().contains("LAPTOP-9\\n2026"));
        assert!(exact, "{args:?}: --json keeps the value: {v}");
    }
}
