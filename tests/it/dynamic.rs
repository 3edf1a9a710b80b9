//! Dynamic (NDES-compatible) one-time challenges through real SCEP enrollments: the challenge
//! URL contract (UTF-16 page parsed like MDMs parse it, JSON, Basic auth, lockout, cache
//! bound), one-time use, expiry, the burn rule, and 20 concurrent enrollments racing one
//! challenge.

use std::sync::Barrier;

use scepd_pki::algorithms::{ContentCipher, DigestAlg, KeyTransport};
use scepd_pki::keys::KeyAlgorithm;
use scepd_pki::scep::FailInfo;
use scepd_pki::scep::client::{CertRepOutcome, Protection};

use super::testkit::*;

/// A dynamic platform as `platform add --json` printed it.
pub struct Dynamic {
    pub platform_id: String,
    pub scep_path: String,
    pub challenge_url_path: String,
    pub username: String,
    pub password: String,
}

pub fn add_dynamic(server: &Server, name: &str, extra: &[&str]) -> Dynamic {
    let mut args = vec!["--name", name, "--challenge", "dynamic"];
    args.extend_from_slice(extra);
    let v = server.add_platform(&args);
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "challenge_url",
            "challenge_url_path",
            "password",
            "platform_id",
            "scep_path",
            "scep_url",
            "username"
        ],
        "the JSON contract"
    );
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    // The full URLs an MDM is given: the public base plus each path.
    for (url, path) in [
        ("scep_url", "scep_path"),
        ("challenge_url", "challenge_url_path"),
    ] {
        assert!(
            s(url).starts_with("http") && s(url).ends_with(&s(path)),
            "{v}"
        );
    }
    let d = Dynamic {
        platform_id: s("platform_id"),
        scep_path: s("scep_path"),
        challenge_url_path: s("challenge_url_path"),
        username: s("username"),
        password: s("password"),
    };
    assert_eq!(d.scep_path, format!("/scep/{}", d.platform_id));
    assert_eq!(
        d.challenge_url_path,
        format!("/scep/{}/challenge", d.platform_id)
    );
    d
}

/// Decodes a UTF-16 body the way Fleet does: honour the BOM (LE or BE).
fn decode_utf16(body: &[u8]) -> String {
    let (le, rest) = match body {
        [0xFF, 0xFE, rest @ ..] => (true, rest),
        [0xFE, 0xFF, rest @ ..] => (false, rest),
        _ => panic!("no UTF-16 BOM: {:?}", &body[..body.len().min(8)]),
    };
    assert_eq!(rest.len() % 2, 0);
    let units: Vec<u16> = rest
        .chunks(2)
        .map(|c| match le {
            true => u16::from_le_bytes([c[0], c[1]]),
            false => u16::from_be_bytes([c[0], c[1]]),
        })
        .collect();
    String::from_utf16(&units).unwrap()
}

/// Fleet's `(?i)The enrollment challenge password is: <B> (?P<password>\S*)`, without a regex
/// crate: case-insensitive literal, then the run of non-whitespace after it.
pub fn scrape_password(page: &str) -> Option<String> {
    const NEEDLE: &str = "the enrollment challenge password is: <b> ";
    let at = page.to_lowercase().find(NEEDLE)? + NEEDLE.len();
    let token: String = page[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    Some(token)
}

/// GETs the NDES page at `path` with Basic credentials; returns the scraped challenge.
pub fn fetch_challenge(server: &Server, path: &str, user: &str, password: &str) -> String {
    let r = server.get_with(path, &[("Authorization", &basic_auth(user, password))]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.content_type, "text/html; charset=utf-16");
    let page = decode_utf16(&r.body);
    scrape_password(&page).unwrap_or_else(|| panic!("no password in {page}"))
}

fn fetch(server: &Server, d: &Dynamic) -> String {
    fetch_challenge(server, &d.challenge_url_path, &d.username, &d.password)
}

fn refused(outcome: &CertRepOutcome) -> bool {
    matches!(
        outcome,
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadRequest,
            ..
        }
    )
}

#[test]
fn fetch_enroll_then_reuse_and_expiry_are_refused() {
    let server = Server::start_logging("");
    let ca = server.ca_certs();
    let dir = tempfile::tempdir().unwrap();
    let d = add_dynamic(&server, "jamf-dynamic", &[]);
    let r = server.get_with(
        &d.challenge_url_path,
        &[("Authorization", &basic_auth(&d.username, &d.password))],
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let page = decode_utf16(&r.body);
    assert!(page.contains("will expire within 60 minutes"), "{page}");
    assert!(page.contains("The thumbprint (hash value) for the CA certificate is: <B> "));
    let challenge = scrape_password(&page).unwrap();
    assert_eq!(challenge.len(), 32, "128 bits as hex: {challenge}");
    assert!(scepd_pki::der::writer::is_printable(&challenge));
    let first = Device::new("mac managementAttestation DYN-1");
    let cert = issued(&first.enroll_at(&server, &d.scep_path, &ca, Some(&challenge)));
    openssl_verify(dir.path(), &ca, &cert);
    // The same device repeating its request (same transaction) gets the same certificate.
    let again = issued(&first.enroll_at(&server, &d.scep_path, &ca, Some(&challenge)));
    assert_eq!(again, cert);
    // Another device cannot use the challenge again.
    let second = Device::new("mac managementAttestation DYN-2");
    assert!(refused(&second.enroll_at(
        &server,
        &d.scep_path,
        &ca,
        Some(&challenge)
    )));
    // A fresh challenge works; the static secret of another platform does not.
    assert!(refused(&second.enroll_at(
        &server,
        &d.scep_path,
        &ca,
        Some(&server.challenge)
    )));
    let fresh = fetch(&server, &d);
    assert_ne!(fresh, challenge);
    issued(&second.enroll_at(&server, &d.scep_path, &ca, Some(&fresh)));
    // Challenges never reach the log; hand-outs and refusals do.
    let log = server.log();
    for secret in [&challenge, &fresh, &d.password] {
        assert!(!log.contains(secret.as_str()), "secret in the log:\n{log}");
    }
    assert!(log.contains("handed out a one-time challenge"), "{log}");
    assert!(log.contains("already used"), "{log}");

    // Expiry: a 2-second TTL.
    let short = add_dynamic(&server, "short-ttl", &["--challenge-ttl", "2s"]);
    let c = fetch(&server, &short);
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let late = Device::new("late managementAttestation DYN-3");
    assert!(refused(&late.enroll_at(
        &server,
        &short.scep_path,
        &ca,
        Some(&c)
    )));
    assert!(server.log().contains("expired"));
}

#[test]
fn json_variant_ndes_path_and_the_password_cache() {
    let server = Server::start();
    let ca = server.ca_certs();
    let d = add_dynamic(
        &server,
        "ws1",
        &["--max-outstanding", "2", "--challenge-ttl", "10m"],
    );
    let auth = basic_auth(&d.username, &d.password);
    // JSON by Accept header and by ?format=json.
    let r = server.get_with(
        &d.challenge_url_path,
        &[("Authorization", &auth), ("Accept", "application/json")],
    );
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (200, "application/json")
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let c1 = v["challenge"].as_str().unwrap().to_owned();
    let expires = v["expires_at"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.len() == 20, "{expires}");
    assert_eq!(v.as_object().unwrap().len(), 2);
    // The NDES path picks the platform by user name, also written DOMAIN\user.
    let ndes_user = format!("CORP\\{}", d.username);
    let c2 = fetch_challenge(&server, "/certsrv/mscep_admin/", &ndes_user, &d.password);
    assert_ne!(c1, c2);
    // Two outstanding: the cache is full, as NDES says it, with a non-200 status.
    let r = server.get_with("/CertSrv/mscep_admin/", &[("Authorization", &auth)]);
    assert_eq!(r.status, 503);
    assert_eq!(r.content_type, "text/html; charset=utf-16");
    assert!(decode_utf16(&r.body).contains("The password cache is full."));
    assert!(r.header("retry-after").is_some());
    let r = server.get_with(
        &format!("{}?format=json", d.challenge_url_path),
        &[("Authorization", &auth)],
    );
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (503, "application/json")
    );
    assert!(String::from_utf8_lossy(&r.body).contains("The password cache is full."));
    // Using one frees a place.
    issued(&Device::new("a managementAttestation J-1").enroll_at(
        &server,
        &d.scep_path,
        &ca,
        Some(&c1),
    ));
    let r = server.get_with(
        &format!("{}?format=json", d.challenge_url_path),
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 200);
    // A static platform has no challenge URL; the wrong method is refused.
    let r = server.get_with(
        &format!("/scep/{}/challenge", server.platform_id),
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 401);
    let r = http_with(
        &server.addr,
        "POST",
        &d.challenge_url_path,
        &[("Authorization", &auth)],
        b"",
        None,
    );
    assert_eq!(r.status, 405);
}

#[test]
fn wrong_credentials_get_401_and_repeated_failures_are_rate_limited() {
    let server = Server::start_logging("");
    let d = add_dynamic(&server, "locked", &[]);
    let r = server.get(&d.challenge_url_path);
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate").unwrap().starts_with("Basic"),
        "{}",
        r.head
    );
    let bad = "WRONGPASSWORDWRONGPASSWORD";
    for user in [d.username.as_str(), "nobody"] {
        let r = server.get_with(
            &d.challenge_url_path,
            &[("Authorization", &basic_auth(user, bad))],
        );
        assert_eq!(r.status, 401);
        assert!(r.header("www-authenticate").is_some());
    }
    let r = server.get_with(
        "/certsrv/mscep_admin/",
        &[("Authorization", &basic_auth("nobody", bad))],
    );
    assert_eq!(r.status, 401);
    // Seven more failures reach the limit of ten; then even the right password gets 429.
    for _ in 0..7 {
        let r = server.get_with(
            &d.challenge_url_path,
            &[("Authorization", &basic_auth(&d.username, bad))],
        );
        assert_eq!(r.status, 401);
    }
    let r = server.get_with(
        &d.challenge_url_path,
        &[("Authorization", &basic_auth(&d.username, &d.password))],
    );
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    let log = server.log();
    assert!(
        log.contains("wrong credentials") && log.contains("locked out"),
        "{log}"
    );
    assert!(
        !log.contains(bad) && !log.contains(&d.password),
        "password in the log:\n{log}"
    );
}

/// Twenty devices enrolling at the same moment with one challenge, device `i` through
/// `addrs[i % addrs.len()]` (nodes of a cluster, or one server); their outcomes. The keys are
/// made first, so the race is only over the network and the store.
pub fn race_one_challenge(
    addrs: &[String],
    ca: &CaCerts,
    scep_path: &str,
    challenge: &str,
) -> Vec<CertRepOutcome> {
    let devices: Vec<Device> = (0..20)
        .map(|i| Device::new(&format!("racer managementAttestation R-{i}")))
        .collect();
    let barrier = Barrier::new(devices.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(i, device)| {
                let (barrier, addr) = (&barrier, &addrs[i % addrs.len()]);
                s.spawn(move || {
                    let req = device.pkcs_req(ca, Some(challenge));
                    barrier.wait();
                    let r = http(
                        addr,
                        "POST",
                        &format!("{scep_path}?operation=PKIOperation"),
                        &req.der,
                        Some("application/x-pki-message"),
                    );
                    assert_eq!(r.status, 200);
                    device.decode(ca, &req, &r.body, None)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn twenty_concurrent_enrollments_racing_one_challenge_yield_one_certificate() {
    let server = Server::start();
    let ca = server.ca_certs();
    let d = add_dynamic(&server, "race", &[]);
    let challenge = fetch(&server, &d);
    let outcomes = race_one_challenge(
        std::slice::from_ref(&server.addr),
        &ca,
        &d.scep_path,
        &challenge,
    );
    let successes = outcomes
        .iter()
        .filter(|o| matches!(o, CertRepOutcome::Success { .. }))
        .count();
    assert_eq!(successes, 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| refused(o)).count(), 19);
    let out = server.cli(&["cert", "list", "--platform", &d.platform_id, "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[test]
fn policy_refusal_burns_the_challenge_but_an_unauthenticated_failure_does_not() {
    let server = Server::start_with_config("[pki]\nmin_rsa_bits = 3072\n");
    let ca = server.ca_certs();
    let d = add_dynamic(&server, "burn", &[]);
    // A failure before the challenge is even looked at (single DES refused) keeps it usable.
    let kept = fetch(&server, &d);
    let des = Protection {
        cipher: ContentCipher::DesCbc,
        transport: KeyTransport::RsaPkcs1v15,
        digest: DigestAlg::Sha256,
    };
    let legacy = Device::with_key("des managementAttestation B-0", KeyAlgorithm::Rsa3072);
    let req = legacy.request(
        &ca,
        scepd_pki::scep::MessageType::PkcsReq,
        &legacy.csr(Some(&kept), &[]),
        des,
        None,
    );
    let r = server.post(&format!("{}?operation=PKIOperation", d.scep_path), &req.der);
    assert!(matches!(
        legacy.decode(&ca, &req, &r.body, None),
        CertRepOutcome::Failure {
            fail_info: FailInfo::BadAlg,
            ..
        }
    ));
    let good = Device::with_key("ok managementAttestation B-1", KeyAlgorithm::Rsa3072);
    issued(&good.enroll_at(&server, &d.scep_path, &ca, Some(&kept)));
    // An authentic request refused by policy (RSA-2048 < 3072) burns its challenge.
    let burnt = fetch(&server, &d);
    let small = Device::new("small managementAttestation B-2");
    match small.enroll_at(&server, &d.scep_path, &ca, Some(&burnt)) {
        CertRepOutcome::Failure { text, .. } => {
            assert!(text.unwrap().contains("below the minimum"))
        }
        other => panic!("{other:?}"),
    }
    let retry = Device::with_key("retry managementAttestation B-3", KeyAlgorithm::Rsa3072);
    assert!(refused(&retry.enroll_at(
        &server,
        &d.scep_path,
        &ca,
        Some(&burnt)
    )));
}

/// A consumed one-time challenge stays consumed across a `kill -9` and restart.
#[test]
fn consumed_challenge_stays_consumed_after_a_crash() {
    let mut server = Server::start();
    let ca = server.ca_certs();
    let d = add_dynamic(&server, "restart", &[]);
    let challenge = fetch(&server, &d);
    let first = Device::new("mac managementAttestation CRASH-1");
    issued(&first.enroll_at(&server, &d.scep_path, &ca, Some(&challenge)));
    server.kill9_and_restart();
    let ca = server.ca_certs();
    let second = Device::new("mac managementAttestation CRASH-2");
    assert!(refused(&second.enroll_at(
        &server,
        &d.scep_path,
        &ca,
        Some(&challenge)
    )));
    // A fresh challenge after the restart works.
    let fresh = fetch(&server, &d);
    issued(&second.enroll_at(&server, &d.scep_path, &ca, Some(&fresh)));
}
