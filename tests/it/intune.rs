//! Intune delegated mode through real SCEP enrollments against the in-repo fake AAD + Graph +
//! Intune: the happy path with every call checked (tokens, discovery, validateRequest, success
//! notification before the CertRep, SID SAN copied), caching, and each failure injection
//! failing closed (no certificate, or a revoked one when the success notification fails).

use std::time::{Duration, Instant};

use scepd_pki::der::{tag, writer};
use scepd_pki::issue::extensions;
use scepd_pki::keys::KeyAlgorithm;
use scepd_pki::scep::client::CertRepOutcome;
use scepd_pki::scep::{FailInfo, MessageType};

use super::fake_intune::{self, CLIENT_ID, CLIENT_SECRET, Fail, FakeIntune, INTUNE_SCOPE, TENANT};
use super::testkit::*;

const CHALLENGE: &str = "MIIBintune-opaque-challenge-blob-0123456789ABCDEFGHIJKLMNOPQRSTUV";
const SID: &str = "tag:microsoft.com,2022-09-14:sid:S-1-12-1-1111-2222-3333-4444";

/// Adds an Intune platform pointed at the fake; returns the SCEP path.
pub fn add_intune(server: &Server, name: &str, fake: &FakeIntune, extra: &[&str]) -> String {
    let file = server.data_dir.path().join(format!("{name}.aad"));
    std::fs::write(&file, format!("{CLIENT_SECRET}\n")).unwrap();
    let url = fake.url();
    let mut args = vec![
        "--name",
        name,
        "--challenge",
        "intune",
        "--aad-tenant",
        TENANT,
        "--aad-client-id",
        CLIENT_ID,
        "--aad-client-secret-file",
        file.to_str().unwrap(),
        "--intune-login-url",
        &url,
        "--intune-graph-url",
        &url,
    ];
    args.extend_from_slice(extra);
    let v = server.add_platform(&args);
    v["scep_path"].as_str().unwrap().to_owned()
}

/// PKCSReq with the Intune challenge and SID SAN; returns the outcome.
fn enroll(
    server: &Server,
    path: &str,
    ca: &CaCerts,
    device: &Device,
    challenge: &str,
) -> CertRepOutcome {
    let san = writer::sequence(&[&writer::tlv(tag::context_primitive(6), &[SID.as_bytes()])]);
    let csr = device.csr(
        Some(challenge),
        &[extensions::subject_alt_name(&san, false)],
    );
    let req = device.request(ca, MessageType::PkcsReq, &csr, DEFAULT_PROTECTION, None);
    let r = server.post(&format!("{path}?operation=PKIOperation"), &req.der);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    device.decode(ca, &req, &r.body, None)
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

/// Failure notifications are sent in the background: wait (bounded) until `n` arrived.
fn wait_failures(fake: &FakeIntune, n: usize) {
    let end = Instant::now() + Duration::from_secs(10);
    while fake.actions("failureNotification").len() < n && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fake.actions("failureNotification").len(), n);
}

fn certs(server: &Server) -> Vec<serde_json::Value> {
    let out = server.cli(&["cert", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array().unwrap().clone()
}

#[test]
fn intune_happy_path_calls_every_step_and_caches_tokens_and_discovery() {
    let fake = fake_intune::start(CHALLENGE);
    let server = Server::start_logging("");
    let ca = server.ca_certs();
    let dir = tempfile::tempdir().unwrap();
    let path = add_intune(&server, "intune", &fake, &[]);
    let device = Device::new("user@contoso.com managementAttestation 8f1c-intune");
    let cert = issued(&enroll(&server, &path, &ca, &device, CHALLENGE));
    openssl_verify(dir.path(), &ca, &cert);
    assert!(
        openssl_text(dir.path(), &cert).contains(&format!("URI:{SID}")),
        "SID SAN copied"
    );
    let c = scepd_pki::x509::Certificate::parse(&cert).unwrap();
    let v = fake.actions("validateRequest");
    let s = fake.actions("successNotification");
    assert_eq!((v.len(), s.len()), (1, 1));
    let n = &s[0]["notification"];
    assert_eq!(
        n["certificateSerialNumber"],
        scepd_pki::hex(c.serial_magnitude())
    );
    assert_eq!(
        n["certificateThumbprint"],
        scepd_challenge_thumbprint(&cert)
    );
    assert_eq!(n["transactionId"], v[0]["request"]["transactionId"]);
    assert_eq!(
        n["certificateRequest"],
        v[0]["request"]["certificateRequest"]
    );
    assert!(
        n["issuingCertificateAuthority"]
            .as_str()
            .unwrap()
            .contains("CN=")
    );
    assert_eq!(
        n["certificateExpirationDateUtc"],
        scepd_pki::encoding::rfc3339(c.not_after)
    );
    {
        let seen = fake.seen.lock().unwrap();
        assert_eq!(
            seen.tokens,
            [format!("{}/.default", fake.url()), INTUNE_SCOPE.to_owned()]
        );
        assert_eq!(seen.discoveries, 1);
    }
    // A second device: tokens and the service URL come from the caches.
    let second = Device::new("user2 managementAttestation 8f1c-2");
    issued(&enroll(&server, &path, &ca, &second, CHALLENGE));
    {
        let seen = fake.seen.lock().unwrap();
        assert_eq!((seen.tokens.len(), seen.discoveries), (2, 1));
    }
    // A challenge Intune does not accept (its answer is an error code, not Success).
    let third = Device::new("user3 managementAttestation 8f1c-3");
    assert!(refused(&enroll(
        &server,
        &path,
        &ca,
        &third,
        "forged-challenge"
    )));
    assert_eq!(certs(&server).len(), 2);
    assert!(
        fake.actions("failureNotification").is_empty(),
        "no failure report for a refused validation"
    );
    assert_eq!(fake.violations(), Vec::<String>::new());
    let log = server.log();
    assert!(log.contains("ChallengeDecodingError"), "{log}");
    for secret in [
        CLIENT_SECRET,
        CHALLENGE,
        "intune-token-abc",
        "graph-token-xyz",
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    // The client secret is in a 0600 file, not in the database.
    use std::os::unix::fs::PermissionsExt;
    let secrets_dir = server.data_path().join("secrets");
    let files: Vec<_> = std::fs::read_dir(&secrets_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let db = super::test_store::contents(&server.data_path());
    assert!(
        !db.windows(CLIENT_SECRET.len())
            .any(|w| w == CLIENT_SECRET.as_bytes())
    );
}

/// SHA-1 of the certificate, upper-case hex (Intune's thumbprint form).
fn scepd_challenge_thumbprint(der: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    scepd_pki::hex(d.as_ref()).to_ascii_uppercase()
}

#[test]
fn every_intune_failure_fails_closed() {
    let fake = fake_intune::start(CHALLENGE);
    let server =
        Server::start_with_config("[outbound]\ntimeout_secs = 2\n[pki]\nmin_rsa_bits = 3072\n");
    let ca = server.ca_certs();
    let path = add_intune(&server, "intune-strict", &fake, &[]);
    let device = Device::with_key("u managementAttestation F-1", KeyAlgorithm::Rsa3072);
    // Steps before issuance: no certificate at all.
    for mode in [
        Fail::Token,
        Fail::Discovery,
        Fail::ServiceMissing,
        Fail::Validate500,
        Fail::ValidateDenied,
        Fail::ValidateSlow,
    ] {
        fake.set(mode);
        let started = Instant::now();
        assert!(
            refused(&enroll(&server, &path, &ca, &device, CHALLENGE)),
            "{mode:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{mode:?} took {:?}",
            started.elapsed()
        );
        assert!(certs(&server).is_empty(), "{mode:?} left a certificate");
    }
    assert!(fake.actions("successNotification").is_empty());
    // The success notification fails: the stored certificate is revoked, the device gets
    // FAILURE, and Intune hears about the failure.
    for (i, mode) in [Fail::Success500, Fail::SuccessCode]
        .into_iter()
        .enumerate()
    {
        fake.set(mode);
        let d = Device::with_key(
            &format!("u managementAttestation S-{i}"),
            KeyAlgorithm::Rsa3072,
        );
        assert!(
            refused(&enroll(&server, &path, &ca, &d, CHALLENGE)),
            "{mode:?}"
        );
        let list = certs(&server);
        assert_eq!(list.len(), i + 1);
        assert!(list.iter().all(|c| c["status"] == "revoked"), "{list:?}");
        wait_failures(&fake, i + 1);
    }
    // Validation passes but policy refuses (RSA-2048 < 3072): failureNotification with an
    // HRESULT and a short description.
    fake.set(Fail::None);
    let small = Device::new("u managementAttestation P-1");
    assert!(refused(&enroll(&server, &path, &ca, &small, CHALLENGE)));
    wait_failures(&fake, 3);
    let failures = fake.actions("failureNotification");
    let last = &failures.last().unwrap()["notification"];
    assert_eq!(last["hResult"], 0x8000_4005_i64);
    assert!(
        last["errorDescription"]
            .as_str()
            .unwrap()
            .contains("below the minimum"),
        "{last}"
    );
    // And with everything healthy again, a certificate is delivered.
    issued(&enroll(&server, &path, &ca, &device, CHALLENGE));
    assert_eq!(fake.violations(), Vec::<String>::new());
}

/// Regression: the token fetch holds the token cache's lock while it waits for Entra ID, and
/// gives its CPU slot away meanwhile. Requests queueing for that lock must give theirs away too:
/// with more of them than cores, the fetcher would never get a slot back and the whole CPU
/// pool (every platform's enrollments, OCSP) would hang. More concurrent first enrollments than any CI machine has
/// cores, against a slow token endpoint, must all be answered.
#[test]
fn concurrent_first_enrollments_during_a_slow_token_fetch_all_complete() {
    let fake = fake_intune::start(CHALLENGE);
    fake.set(Fail::TokenSlow);
    let server = Server::start_logging("");
    let ca = server.ca_certs();
    let path = add_intune(&server, "intune", &fake, &[]);
    let clients = 16;
    let devices: Vec<Device> = (0..clients)
        .map(|i| {
            Device::new(&format!(
                "user{i}@contoso.com managementAttestation intune-{i}"
            ))
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        for device in &devices {
            let (tx, server, path, ca) = (tx.clone(), &server, &path, &ca);
            s.spawn(move || {
                let outcome = enroll(server, path, ca, device, CHALLENGE);
                let _ = tx.send(matches!(outcome, CertRepOutcome::Success { .. }));
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut ok = 0;
        for _ in 0..clients {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(success) => ok += usize::from(success),
                // Stop the server so the stuck clients' connections close and the scope ends.
                Err(_) => {
                    let _ = std::process::Command::new("kill")
                        .args(["-9", &server.pid().to_string()])
                        .status();
                    panic!("PKIOperations hung: the CPU pool deadlocked");
                }
            }
        }
        assert_eq!(ok, clients, "every enrollment succeeds");
    });
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[test]
fn intune_options_are_checked() {
    let server = Server::start();
    let file = server.data_dir.path().join("s");
    std::fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["--aad-client-id", "c", "--aad-client-secret-file", f],
            "needs --aad-tenant",
        ),
        (
            vec!["--aad-tenant", "t", "--aad-client-secret-file", f],
            "needs --aad-client-id",
        ),
        (
            vec!["--aad-tenant", "t", "--aad-client-id", "c"],
            "needs --aad-client-secret-file",
        ),
        (
            vec![
                "--aad-tenant",
                "t/../x",
                "--aad-client-id",
                "c",
                "--aad-client-secret-file",
                f,
            ],
            "--aad-tenant",
        ),
        (
            vec![
                "--aad-tenant",
                "t",
                "--aad-client-id",
                "c",
                "--aad-client-secret-file",
                f,
                "--intune-graph-url",
                "http://graph.example",
            ],
            "loopback",
        ),
        (
            vec![
                "--aad-tenant",
                "t",
                "--aad-client-id",
                "c",
                "--aad-client-secret-file",
                f,
                "--webhook-url",
                "https://x",
            ],
            "not valid",
        ),
    ] {
        let mut all = vec!["platform", "add", "--name", "i", "--challenge", "intune"];
        all.extend(args.iter().copied());
        let out = server.cli(&all);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v = server.add_platform(&[
        "--name",
        "intune",
        "--challenge",
        "intune",
        "--aad-tenant",
        TENANT,
        "--aad-client-id",
        CLIENT_ID,
        "--aad-client-secret-file",
        f,
    ]);
    let list = server.cli(&["platform", "list", "--json"]);
    let l: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let p = l
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["platform_id"] == v["platform_id"])
        .unwrap();
    assert_eq!(p["challenge"], "intune");
    assert_eq!(p["intune_login_url"], "https://login.microsoftonline.com");
    assert_eq!(p["intune_graph_url"], "https://graph.microsoft.com");
    assert_eq!(p["aad_tenant"], TENANT);
}
