//! Webhook mode through real SCEP enrollments against a fake webhook receiver on loopback that
//! checks the HMAC signature: allow (payload and notification checked), deny, timeout, bad
//! signature, non-2xx and invalid JSON all fail closed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::hmac;
use scepd_pki::keys::KeyAlgorithm;
use scepd_pki::scep::FailInfo;
use scepd_pki::scep::client::CertRepOutcome;
use serde_json::json;

use super::fake_http::{FakeRequest, FakeResponse, FakeServer};
use super::testkit::*;

/// How the fake receiver answers decision requests.
#[derive(Debug, Clone)]
pub enum Mode {
    Allow,
    Deny,
    Slow,
    Status500,
    BadJson,
}

pub struct Receiver {
    pub fake: FakeServer,
    pub mode: Arc<Mutex<Mode>>,
}

fn sign(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    format!("sha256={}", scepd_pki::hex(hmac::sign(&key, body).as_ref()))
}

/// A receiver that knows `secret` and refuses (401) anything not signed with it.
pub fn receiver(secret: &'static str) -> Receiver {
    let mode = Arc::new(Mutex::new(Mode::Allow));
    let m = mode.clone();
    let fake = FakeServer::start(move |r: &FakeRequest| {
        if r.method != "POST" || r.target != "/scep-hook" {
            return FakeResponse::text(404, "no");
        }
        if r.header("x-scepd-signature") != Some(sign(secret, &r.body).as_str())
            || r.header("content-type") != Some("application/json")
        {
            return FakeResponse::json(401, json!({"allow": true, "reason": "bad signature"}));
        }
        if r.json().get("event").is_some() {
            return FakeResponse::text(204, "");
        }
        match *m.lock().unwrap() {
            Mode::Allow => FakeResponse::json(200, json!({"allow": true})),
            Mode::Deny => FakeResponse::json(
                200,
                json!({"allow": false, "reason": "device\nnot in inventory"}),
            ),
            Mode::Slow => {
                FakeResponse::json(200, json!({"allow": true})).delayed(Duration::from_secs(4))
            }
            Mode::Status500 => FakeResponse::json(500, json!({"allow": true})),
            Mode::BadJson => FakeResponse::text(200, "allow"),
        }
    });
    Receiver { fake, mode }
}

/// Adds a webhook platform posting to `url`, signing with `secret`; returns its SCEP path.
pub fn add_webhook(server: &Server, name: &str, url: &str, secret: &str, extra: &[&str]) -> String {
    let file = server.data_dir.path().join(format!("{name}.secret"));
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let mut args = vec![
        "--name",
        name,
        "--challenge",
        "webhook",
        "--webhook-url",
        url,
        "--webhook-secret-file",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let v = server.add_platform(&args);
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["platform_id", "scep_path", "scep_url"]);
    let path = v["scep_path"].as_str().unwrap().to_owned();
    assert!(v["scep_url"].as_str().unwrap().ends_with(&path), "{v}");
    path
}

fn refused(o: &CertRepOutcome) -> bool {
    matches!(
        o,
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadRequest,
            ..
        }
    )
}

#[test]
fn webhook_allow_deny_timeout_bad_signature_and_errors() {
    const SECRET: &str = "whsec-0123456789abcdef";
    let server =
        Server::start_logging("[outbound]\ntimeout_secs = 2\n[pki]\nmin_rsa_bits = 3072\n");
    let ca = server.ca_certs();
    let dir = tempfile::tempdir().unwrap();
    let hook = receiver(SECRET);
    let path = add_webhook(&server, "hooked", &hook.fake.url("/scep-hook"), SECRET, &[]);
    let platform_id = path.rsplit('/').next().unwrap().to_owned();

    // Allow: the decision request carries exactly the documented fields, signed.
    let device = Device::with_key("hooked managementAttestation W-1", KeyAlgorithm::Rsa3072);
    let cert = issued(&device.enroll_at(&server, &path, &ca, Some("device-challenge-1")));
    openssl_verify(dir.path(), &ca, &cert);
    let decision = hook
        .fake
        .wait_for(Duration::from_secs(5), |r| r.json().get("event").is_none())
        .unwrap();
    let v = decision.json();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "challenge",
            "csr",
            "platform_id",
            "sans",
            "subject",
            "transaction_id"
        ]
    );
    assert_eq!(v["platform_id"], platform_id.as_str());
    assert_eq!(v["challenge"], "device-challenge-1");
    assert!(
        v["subject"]
            .as_str()
            .unwrap()
            .contains("hooked managementAttestation W-1"),
        "{v}"
    );
    let csr =
        scepd_pki::encoding::decode_base64_lenient(v["csr"].as_str().unwrap().as_bytes()).unwrap();
    let parsed = scepd_pki::pkcs10::CertificationRequest::parse_and_verify(&csr).unwrap();
    assert_eq!(
        parsed.challenge_password.as_deref().map(String::as_str),
        Some("device-challenge-1")
    );
    assert!(v["transaction_id"].as_str().unwrap().len() >= 8);
    // …followed by a signed "issued" notification naming the certificate.
    let issued_event = hook
        .fake
        .wait_for(Duration::from_secs(5), |r| r.json()["event"] == "issued")
        .expect("issued notification");
    let c = scepd_pki::x509::Certificate::parse(&cert).unwrap();
    assert_eq!(
        issued_event.json()["serial"],
        scepd_pki::hex(c.serial_magnitude())
    );
    assert_eq!(issued_event.json()["transaction_id"], v["transaction_id"]);

    // An allowed request that policy refuses (RSA-2048 < 3072) gets a "failed" notification.
    let small = Device::new("small managementAttestation W-2");
    assert!(refused(&small.enroll_at(&server, &path, &ca, Some("c2"))));
    let failed = hook
        .fake
        .wait_for(Duration::from_secs(5), |r| r.json()["event"] == "failed")
        .expect("failed notification");
    assert!(
        failed.json()["reason"]
            .as_str()
            .unwrap()
            .contains("below the minimum")
    );

    // Deny, timeout, non-2xx and invalid JSON all refuse.
    for mode in [Mode::Deny, Mode::Slow, Mode::Status500, Mode::BadJson] {
        *hook.mode.lock().unwrap() = mode.clone();
        let d = Device::with_key("no managementAttestation W-3", KeyAlgorithm::Rsa3072);
        let started = std::time::Instant::now();
        assert!(
            refused(&d.enroll_at(&server, &path, &ca, Some("c3"))),
            "{mode:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "bounded: {mode:?}"
        );
    }
    // A platform whose secret the receiver does not know: bad signature → 401 → refused.
    *hook.mode.lock().unwrap() = Mode::Allow;
    let wrong = add_webhook(
        &server,
        "wrong-key",
        &hook.fake.url("/scep-hook"),
        "not-the-secret",
        &[],
    );
    let d = Device::with_key("sig managementAttestation W-4", KeyAlgorithm::Rsa3072);
    assert!(refused(&d.enroll_at(&server, &wrong, &ca, Some("c4"))));
    // An unreachable webhook refuses too.
    let gone = add_webhook(&server, "gone", "http://127.0.0.1:9/hook", SECRET, &[]);
    assert!(refused(&d.enroll_at(&server, &gone, &ca, Some("c5"))));

    let log = server.log();
    assert!(
        log.contains("denied by the validator: devicenot in inventory"),
        "{log}"
    );
    assert!(
        log.contains("timed out") && log.contains("HTTP 500") && log.contains("invalid JSON"),
        "{log}"
    );
    assert!(
        !log.contains(SECRET) && !log.contains("device-challenge-1"),
        "secret in the log:\n{log}"
    );
    // The key is in a 0600 file under secrets/, not in the database.
    use std::os::unix::fs::PermissionsExt;
    let key_file = server
        .data_path()
        .join("secrets")
        .join(format!("{platform_id}.webhook-secret"));
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let db = super::test_store::contents(&server.data_path());
    assert!(!db.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
}

#[test]
fn webhook_options_are_checked() {
    let server = Server::start();
    let file = server.data_dir.path().join("s");
    std::fs::write(&file, "k").unwrap();
    let f = file.to_str().unwrap();
    for (args, needle) in [
        (
            vec![
                "--webhook-url",
                "http://example.com/x",
                "--webhook-secret-file",
                f,
            ],
            "loopback",
        ),
        (vec!["--webhook-secret-file", f], "needs --webhook-url"),
        (
            vec!["--webhook-url", "https://h.example/x"],
            "needs --webhook-secret-file",
        ),
        (
            vec![
                "--webhook-url",
                "https://h.example/x",
                "--webhook-secret-file",
                "/nonexistent",
            ],
            "--webhook-secret-file",
        ),
        (
            vec![
                "--webhook-url",
                "https://h.example/x",
                "--webhook-secret-file",
                f,
                "--challenge-ttl",
                "1m",
            ],
            "not valid",
        ),
    ] {
        let mut all = vec!["platform", "add", "--name", "w", "--challenge", "webhook"];
        all.extend(args.iter().copied());
        let out = server.cli(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
