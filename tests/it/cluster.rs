//! Three scepd processes on one PostgreSQL database, sharing one data dir for keys and
//! secrets: load spread round-robin, a node killed with -9 under load, a one-time
//! challenge raced from every node, revocation seen by every node's OCSP and CRL, trust
//! nonces across nodes, and a CA rotation staged through one node and seen by all.
//!
//! These always run on PostgreSQL (their own database in the test cluster), whichever backend
//! `SCEPD_TEST_STORE` selects for the rest of the suite.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scepd_pki::random::SystemRandom;
use scepd_pki::scep::client::{CertRepOutcome, decode_cert_rep};
use scepd_pki::x509::Certificate;

use super::dynamic::{add_dynamic, fetch_challenge, race_one_challenge};
use super::testkit::*;

const NO_RATE_LIMIT: &str = "[limits]\npki_operation_per_minute = 0\n";

fn three_nodes(toml: &str) -> Vec<Server> {
    let a = Server::start_on_postgres(toml);
    let b = a.join();
    let c = a.join();
    vec![a, b, c]
}

/// A pool of device keys (RSA key generation is the slow part of a test client).
fn devices(n: usize, tag: &str) -> Arc<Vec<Device>> {
    Arc::new(
        (0..n)
            .map(|i| Device::new(&format!("{tag} managementAttestation K{i}")))
            .collect(),
    )
}

/// Enrolls once through `addr`: `Some((serial hex, transactionID))` on SUCCESS, `None` when
/// the node gave no HTTP 200 (dead or failing).
fn enroll_via(
    addr: &str,
    path: &str,
    ca: &CaCerts,
    device: &Device,
    challenge: &str,
    txid: &str,
) -> Option<(String, String)> {
    let req = device.pkcs_req_as(ca, Some(challenge), txid);
    let reply = try_pki(addr, path, &req.der)?;
    let ra = Certificate::parse(&ca.ra).unwrap();
    let signer = Certificate::parse(&device.signer_der).unwrap();
    match decode_cert_rep(&reply, &ra, &req, &signer, &device.key, &SystemRandom).unwrap() {
        ok @ CertRepOutcome::Success { .. } => Some((serial_of(&issued(&ok)), txid.to_owned())),
        other => panic!("enrollment via {addr}: {other:?}"),
    }
}

/// Every received certificate is stored, no serial twice, no transaction with two.
fn check_received_against_store(server: &Server, received: &[(String, String)]) {
    let stored = super::test_store::certificate_rows(&server.data_path());
    let serials: HashSet<&str> = stored.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(serials.len(), stored.len(), "a serial was stored twice");
    let mut per_tx: HashMap<&str, usize> = HashMap::new();
    for (_, tx) in &stored {
        *per_tx.entry(tx.as_str()).or_default() += 1;
    }
    assert!(
        per_tx.values().all(|&n| n == 1),
        "a transaction has two certificates"
    );
    let got: HashSet<&str> = received.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(got.len(), received.len(), "a client got a serial twice");
    for (serial, tx) in received {
        assert!(
            serials.contains(serial.as_str()),
            "serial {serial} (transaction {tx}) received, not stored"
        );
    }
}

#[test]
fn round_robin_load_over_three_nodes_loses_and_duplicates_nothing() {
    const CLIENTS: usize = 6;
    const PER_CLIENT: usize = 500;
    let nodes = three_nodes(NO_RATE_LIMIT);
    let ca = Arc::new(nodes[0].ca_certs());
    for n in &nodes[1..] {
        assert_eq!(n.ca_certs().ra, ca.ra, "every node serves the same RA");
    }
    let addrs: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.addr.clone()).collect());
    let path = Arc::new(nodes[0].scep_path());
    let challenge = Arc::new(nodes[0].challenge.clone());
    let keys = devices(CLIENTS, "load");
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let failures = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addrs, path, challenge, keys, received, failures, ca) = (
                addrs.clone(),
                path.clone(),
                challenge.clone(),
                keys.clone(),
                received.clone(),
                failures.clone(),
                ca.clone(),
            );
            std::thread::spawn(move || {
                for k in 0..PER_CLIENT {
                    let addr = &addrs[(c + k) % addrs.len()];
                    let txid = format!("LOAD-{c}-{k}");
                    match enroll_via(addr, &path, &ca, &keys[c], &challenge, &txid) {
                        Some(got) => received.lock().unwrap().push(got),
                        None => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let received = received.lock().unwrap();
    eprintln!(
        "cluster load: {} enrollments over 3 nodes in {:.1} s",
        received.len(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0, "failed enrollments");
    assert_eq!(received.len(), CLIENTS * PER_CLIENT);
    check_received_against_store(&nodes[0], &received);
}

#[test]
fn a_node_killed_under_load_loses_nothing_a_client_received() {
    const CLIENTS: usize = 4;
    let mut nodes = three_nodes(NO_RATE_LIMIT);
    let ca = Arc::new(nodes[0].ca_certs());
    let addrs: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.addr.clone()).collect());
    let path = Arc::new(nodes[0].scep_path());
    let challenge = Arc::new(nodes[0].challenge.clone());
    let keys = devices(CLIENTS, "kill");
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let moved = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addrs, path, challenge, keys, received, stop, moved, ca) = (
                addrs.clone(),
                path.clone(),
                challenge.clone(),
                keys.clone(),
                received.clone(),
                stop.clone(),
                moved.clone(),
                ca.clone(),
            );
            std::thread::spawn(move || {
                let mut k = 0;
                while !stop.load(Ordering::Relaxed) {
                    k += 1;
                    let txid = format!("KILL-{c}-{k}");
                    // A node that does not answer: the same request goes to the next one, as
                    // a load balancer retries; a certificate committed by the dead node is
                    // then answered as a replay.
                    let mut attempt = 0;
                    let got = loop {
                        let addr = &addrs[(c + k + attempt) % addrs.len()];
                        if let Some(got) = enroll_via(addr, &path, &ca, &keys[c], &challenge, &txid)
                        {
                            break got;
                        }
                        attempt += 1;
                        moved.fetch_add(1, Ordering::Relaxed);
                        assert!(attempt < 30, "no node answered transaction {txid}");
                        std::thread::sleep(Duration::from_millis(50));
                    };
                    received.lock().unwrap().push(got);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let victim = nodes.pop().unwrap();
    let before = received.lock().unwrap().len();
    drop(victim); // SIGKILL, as Server's drop does.
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let received = received.lock().unwrap();
    eprintln!(
        "cluster kill -9: {before} enrollments before the kill, {} in all, {} requests moved to another node",
        received.len(),
        moved.load(Ordering::Relaxed)
    );
    assert!(
        received.len() > before + 10,
        "the surviving nodes kept serving"
    );
    check_received_against_store(&nodes[0], &received);
}

#[test]
fn one_dynamic_challenge_raced_from_three_nodes_issues_one_certificate() {
    let nodes = three_nodes(NO_RATE_LIMIT);
    let ca = nodes[0].ca_certs();
    let d = add_dynamic(&nodes[0], "race", &[]);
    // Fetched from node B, used on all three.
    let challenge = fetch_challenge(&nodes[1], &d.challenge_url_path, &d.username, &d.password);
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let outcomes = race_one_challenge(&addrs, &ca, &d.scep_path, &challenge);
    let successes = outcomes
        .iter()
        .filter(|o| matches!(o, CertRepOutcome::Success { .. }))
        .count();
    assert_eq!(successes, 1, "{outcomes:?}");
    let list = nodes[2].cli_json(&["cert", "list", "--platform", &d.platform_id, "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

/// OCSP status of `cert` asked of `server` with `openssl ocsp`: "good", "revoked", ….
fn ocsp_status(server: &Server, cert: &str, issuer: &str) -> String {
    let (_, out) = openssl(&[
        "ocsp",
        "-issuer",
        issuer,
        "-cert",
        cert,
        "-url",
        &format!("http://{}/ocsp", server.addr),
        "-noverify",
        "-no_nonce",
    ]);
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{cert}: ")).map(str::to_owned))
        .unwrap_or(out)
}

#[test]
fn deactivation_on_one_node_reaches_ocsp_and_crl_on_every_node() {
    let nodes = three_nodes("");
    let ca = nodes[0].ca_certs();
    let device = Device::new("revoked-everywhere managementAttestation D-1");
    let cert = issued(&device.enroll(
        &nodes[0],
        &ca,
        Some(&nodes[0].challenge),
        DEFAULT_PROTECTION,
    ));
    let serial = serial_of(&cert);
    let dir = tempfile::tempdir().unwrap();
    let cert_pem = dir.path().join("device.pem");
    let issuer_pem = dir.path().join("issuer.pem");
    write_pem(&cert_pem, "CERTIFICATE", &cert);
    write_pem(&issuer_pem, "CERTIFICATE", &ca.intermediate);
    let (cert_p, issuer_p) = (cert_pem.to_str().unwrap(), issuer_pem.to_str().unwrap());
    for n in &nodes {
        assert_eq!(ocsp_status(n, cert_p, issuer_p), "good");
    }
    let devices = nodes[2].cli_json(&["device", "list", "--json"]);
    let device_id = devices[0]["device_id"].as_str().unwrap().to_owned();
    assert_eq!(device_id, "D-1", "{devices}");
    // Deactivated through node A's admin API.
    let token = super::admin_paths::admin_token(&nodes[0]);
    let r = http_with(
        &nodes[0].admin_addr,
        "POST",
        &format!(
            "/admin/v1/devices/{}/{}/deactivate",
            nodes[0].platform_id,
            device_id
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                })
                .collect::<String>()
        ),
        &[("Authorization", &format!("Bearer {token}"))],
        b"{}",
        Some("application/json"),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let t0 = Instant::now();
    for n in &nodes[1..] {
        assert_eq!(ocsp_status(n, cert_p, issuer_p), "revoked");
    }
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "OCSP on B and C within 1 s"
    );
    // Every node serves one CRL sequence that lists it: same number everywhere once settled.
    let crl_path = parsed_crl_path(&cert);
    let numbers: Vec<u64> = nodes
        .iter()
        .map(|n| crl_number_once_listed(n, &crl_path, &serial, Duration::from_secs(10)))
        .collect();
    eprintln!(
        "CRL numbers per node once revoked: {numbers:?} after {:?}",
        t0.elapsed()
    );
    assert!(
        numbers.windows(2).all(|w| w[0] == w[1]),
        "one CRL for every node: {numbers:?}"
    );
}

/// Fetches the CRL at `path` from `node` until it lists `serial` (hex, as `openssl crl`
/// prints it), checked by `openssl crl`; its CRL number. Fails after `within`.
fn crl_number_once_listed(node: &Server, path: &str, serial: &str, within: Duration) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crl.der");
    let deadline = Instant::now() + within;
    loop {
        let r = node.get(path);
        assert_eq!(r.status, 200);
        std::fs::write(&file, &r.body).unwrap();
        let (ok, text) = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            file.to_str().unwrap(),
            "-noout",
            "-text",
        ]);
        assert!(ok, "{text}");
        if text
            .to_ascii_lowercase()
            .contains(&format!("serial number: {serial}"))
        {
            return text
                .lines()
                .skip_while(|l| !l.contains("X509v3 CRL Number"))
                .nth(1)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the CRL of {} did not list {serial} within {within:?}",
            node.addr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The HTTP path of the CRL distribution point in `cert`.
fn parsed_crl_path(cert: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("c.pem");
    write_pem(&pem, "CERTIFICATE", cert);
    let (ok, text) = openssl(&[
        "x509",
        "-in",
        pem.to_str().unwrap(),
        "-noout",
        "-ext",
        "crlDistributionPoints",
    ]);
    assert!(ok, "{text}");
    let url = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("URI:"))
        .unwrap()
        .to_owned();
    let rest = url.split_once("://").unwrap().1;
    format!("/{}", rest.split_once('/').unwrap().1)
}

#[test]
fn trust_nonce_from_one_node_verifies_on_another_and_is_refused_on_the_third() {
    let nodes = three_nodes("");
    let nonce = {
        let r = nodes[0].post("/trust/v1/challenge", b"");
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["nonce"].as_str().unwrap().to_owned()
    };
    let verify = |n: &Server| {
        let body = serde_json::json!({
            "certificate": "AAAA",
            "nonce": nonce,
            "signature": "AAAA",
            "algorithm": "rsa-pkcs1-sha256",
        });
        let r = n.post("/trust/v1/verify", body.to_string().as_bytes());
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["reason"].as_str().unwrap().to_owned()
    };
    // Accepted by B (the bogus certificate is what fails), then used up for C.
    assert_eq!(verify(&nodes[1]), "certificate does not parse");
    assert_eq!(verify(&nodes[2]), "unknown, used or expired nonce");
}

/// Platform settings changed through one node hold on every node from the next request on:
/// a node starts an enrollment from the platform as it last read it, and its read before
/// signing tells it whether that is still the platform.
#[test]
fn a_secret_rotated_through_one_node_is_refused_at_once_by_every_node() {
    let nodes = three_nodes(NO_RATE_LIMIT);
    let ca = nodes[0].ca_certs();
    let old = nodes[0].challenge.clone();
    // Every node enrolls once, so each remembers the platform with the old secret.
    for (i, n) in nodes.iter().enumerate() {
        let d = Device::new(&format!("before managementAttestation SEC-{i}"));
        issued(&d.enroll(n, &ca, Some(&old), DEFAULT_PROTECTION));
    }
    let admin = super::admin::token(&nodes[1], "ops", "admin", &[]);
    let (status, rotated, _) = super::admin::call(
        &nodes[1],
        "POST",
        &format!("/admin/v1/platforms/{}/rotate-secret", nodes[1].platform_id),
        Some(&admin),
        None,
    );
    assert_eq!(status, 200);
    let new = rotated["challenge"].as_str().unwrap();
    for (i, n) in nodes.iter().enumerate() {
        let d = Device::new(&format!("after managementAttestation SEC-{i}"));
        assert!(
            matches!(
                d.enroll(n, &ca, Some(&old), DEFAULT_PROTECTION),
                CertRepOutcome::Failure { .. }
            ),
            "node {i} accepted the rotated-out secret"
        );
        issued(&d.enroll(n, &ca, Some(new), DEFAULT_PROTECTION));
    }
}

#[test]
fn a_rotation_through_one_node_reaches_every_node_and_a_node_without_the_key_is_not_ready() {
    let nodes = three_nodes("");
    // A fourth node with a copy of the data dir taken now: it will lack the staged key.
    let stale = nodes[0].join_with_copy();
    let before = nodes[0].ca_certs();
    let readyz = |n: &Server| http(&n.admin_addr, "GET", "/readyz", b"", None).status;
    assert_eq!(readyz(&stale), 200);
    let v = nodes[0].cli_json(&["ca", "rotate", "--json"]);
    let id = v["id"].as_str().unwrap().to_owned();
    let caps = |n: &Server| {
        String::from_utf8(
            n.get(&format!("{}?operation=GetCACaps", n.scep_path()))
                .body,
        )
        .unwrap()
    };
    let until = |what: &str, f: &dyn Fn() -> bool| {
        let end = Instant::now() + Duration::from_secs(3);
        while !f() {
            assert!(Instant::now() < end, "{what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    for n in &nodes {
        until("every node announces the staged CA", &|| {
            caps(n).contains("GetNextCACert")
        });
    }
    assert!(nodes[1].cli(&["ca", "activate", &id]).status.success());
    let t0 = Instant::now();
    for n in &nodes {
        until("every node serves the new chain", &|| {
            n.ca_certs().intermediate != before.intermediate
        });
    }
    eprintln!(
        "rotation: every node serves the new chain {:?} after activation",
        t0.elapsed()
    );
    let after = nodes[2].ca_certs();
    let device = Device::new("rotated managementAttestation ROT-1");
    let cert = issued(&device.enroll(
        &nodes[2],
        &after,
        Some(&nodes[2].challenge),
        DEFAULT_PROTECTION,
    ));
    let parsed = Certificate::parse(&cert).unwrap();
    let new_int = Certificate::parse(&after.intermediate).unwrap();
    assert_eq!(
        parsed.issuer, new_int.subject,
        "issued by the activated intermediate"
    );
    // The node whose data dir lacks the new key keeps the old set, and says it is not ready.
    until("the node without the new key is not ready", &|| {
        readyz(&stale) == 503
    });
    assert!(
        stale.log().contains("CA/CRL refresh failed"),
        "{}",
        stale.log()
    );
}

#[test]
fn when_the_crl_publisher_dies_another_node_takes_over() {
    let mut nodes = three_nodes("");
    // The test kills the holder with kill9, not by dropping it: node A owns the shared data
    // dir and database, which must outlive it.
    let ca = nodes[0].ca_certs();
    let device = Device::new("takeover managementAttestation T-1");
    let cert = issued(&device.enroll(
        &nodes[0],
        &ca,
        Some(&nodes[0].challenge),
        DEFAULT_PROTECTION,
    ));
    let serial = serial_of(&cert);
    let crl_path = parsed_crl_path(&cert);
    assert_eq!(nodes[1].get(&crl_path).status, 200, "a CRL is published");
    // Which node holds the publisher lease (holder = host:pid:random)?
    let db = super::test_store::database_of(&nodes[0].data_path());
    let holder: String = super::test_store::cluster()
        .connect(&db)
        .query_one(
            "SELECT holder FROM leases WHERE name = 'crl-publisher'",
            &[],
        )
        .unwrap()
        .get(0);
    let pid: u32 = holder.split(':').nth(1).unwrap().parse().unwrap();
    let at = nodes
        .iter()
        .position(|n| n.pid() == pid)
        .expect("a node holds it");
    nodes[at].kill9(); // The lease is not released: it expires.
    let survivors: Vec<&Server> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .map(|(_, n)| n)
        .collect();
    let out = survivors[0].cli(&["cert", "revoke", &serial, "--reason", "keyCompromise"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t0 = Instant::now();
    for n in survivors {
        crl_number_once_listed(n, &crl_path, &serial, Duration::from_secs(8));
    }
    eprintln!(
        "CRL publisher takeover: revocation listed on both survivors after {:?}",
        t0.elapsed()
    );
}

#[test]
fn a_clean_shutdown_gives_the_crl_publisher_lease_up() {
    let mut node = Server::start_on_postgres("");
    let db = super::test_store::database_of(&node.data_path());
    let holders = || -> Vec<String> {
        super::test_store::cluster()
            .connect(&db)
            .query(
                "SELECT holder FROM leases WHERE name = 'crl-publisher'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let pid = node.pid();
    let held = holders();
    assert!(
        held.iter()
            .any(|h| h.split(':').nth(1) == Some(&pid.to_string())),
        "the only node published the first CRLs: {held:?}"
    );
    assert_eq!(node.terminate(), Some(0), "SIGTERM: a clean exit");
    assert!(
        holders().is_empty(),
        "the lease was given up: {:?}",
        holders()
    );
}
