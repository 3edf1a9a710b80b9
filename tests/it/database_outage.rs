//! PostgreSQL going away under load and coming back: scepd keeps running, answers
//! clean 503s (never a panic, never a certificate delivered but not stored), `/readyz` says
//! 503 while the database is down and 200 again by itself once it is back, and enrollment
//! resumes without restarting scepd. The server reaches its database through the `[store]`
//! section of its config file with a `password_file`, as an operator would configure it.
//!
//! Runs on a PostgreSQL cluster of its own (the test stops and starts it), whichever backend
//! `SCEPD_TEST_STORE` selects for the rest of the suite.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scepd_pki::random::SystemRandom;
use scepd_pki::scep::client::{CertRepOutcome, decode_cert_rep};
use scepd_pki::x509::Certificate;

use super::test_store::Cluster;
use super::testkit::*;

fn readyz(server: &Server) -> u16 {
    http(&server.admin_addr, "GET", "/readyz", b"", None).status
}

fn wait_for_readyz(server: &Server, status: u16, within: Duration) -> Duration {
    let t0 = Instant::now();
    while readyz(server) != status {
        assert!(
            t0.elapsed() < within,
            "/readyz did not become {status} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    t0.elapsed()
}

#[test]
fn a_database_restart_under_load_needs_no_restart_of_scepd() {
    let mut db = Cluster::start_new();
    db.create_database("outage");
    let secrets = tempfile::tempdir().unwrap();
    let password_file = super::test_store::password_file(secrets.path(), &db.password);
    let mut server = Server::start_with_own_store(&format!(
        "[limits]\npki_operation_per_minute = 0\n\n[store]\nbackend = \"postgres\"\n\
         url = \"{}\"\npassword_file = \"{}\"\npool_size = 4\nconnect_timeout_secs = 2\n",
        db.url("outage"),
        password_file.display()
    ));
    assert!(
        !server.log().contains(&db.password),
        "the password is never logged"
    );
    let ca = Arc::new(server.ca_certs());
    assert_eq!(readyz(&server), 200);

    // Load: two clients enrolling without pause; every 200 must be a SUCCESS, and anything
    // else must be an HTTP 503 (counted), never a dropped connection.
    let stop = Arc::new(AtomicBool::new(false));
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let refused = Arc::new(AtomicUsize::new(0));
    let unclean: Arc<Mutex<Vec<String>>> = Arc::default();
    let path = Arc::new(server.scep_path());
    let challenge = Arc::new(server.challenge.clone());
    let addr = Arc::new(server.addr.clone());
    let clients: Vec<_> = (0..2)
        .map(|c| {
            let (stop, received, refused, unclean, path, challenge, addr, ca) = (
                stop.clone(),
                received.clone(),
                refused.clone(),
                unclean.clone(),
                path.clone(),
                challenge.clone(),
                addr.clone(),
                ca.clone(),
            );
            std::thread::spawn(move || {
                let device = Device::new(&format!("outage managementAttestation O-{c}"));
                let ra = Certificate::parse(&ca.ra).unwrap();
                let signer = Certificate::parse(&device.signer_der).unwrap();
                let mut k = 0;
                while !stop.load(Ordering::Relaxed) {
                    k += 1;
                    let req = device.pkcs_req_as(&ca, Some(&challenge), &format!("OUT-{c}-{k}"));
                    let r = http(
                        &addr,
                        "POST",
                        &format!("{path}?operation=PKIOperation"),
                        &req.der,
                        Some("application/x-pki-message"),
                    );
                    match r.status {
                        200 => {
                            match decode_cert_rep(
                                &r.body,
                                &ra,
                                &req,
                                &signer,
                                &device.key,
                                &SystemRandom,
                            )
                            .unwrap()
                            {
                                ok @ CertRepOutcome::Success { .. } => {
                                    received.lock().unwrap().push(serial_of(&issued(&ok)))
                                }
                                other => panic!("a 200 that is not a certificate: {other:?}"),
                            }
                        }
                        503 => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        other => {
                            unclean.lock().unwrap().push(format!(
                                "HTTP {other}: {}",
                                String::from_utf8_lossy(&r.body).trim()
                            ));
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let before = received.lock().unwrap().len();

    db.stop();
    let noticed = wait_for_readyz(&server, 503, Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(2));
    assert!(server.alive(), "scepd survives the database going away");
    let during = received.lock().unwrap().len();

    db.start_again();
    let recovered = wait_for_readyz(&server, 200, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let received = received.lock().unwrap();
    eprintln!(
        "database outage: {before} enrollments before, {} in all, {} refused with 503; \
         /readyz 503 after {noticed:?}, 200 again {recovered:?} after the restart",
        received.len(),
        refused.load(Ordering::Relaxed)
    );
    let unclean = unclean.lock().unwrap();
    assert!(
        unclean.is_empty(),
        "answers other than a certificate or a 503: {unclean:?}\nserver log:\n{}",
        server
            .log()
            .lines()
            .filter(|l| l.contains("ERROR"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(before > 0, "no load before the outage");
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "the outage was never seen"
    );
    assert!(
        received.len() > during,
        "enrollment resumed after the database came back"
    );
    assert!(server.alive(), "the same scepd process throughout");

    // Every certificate a client received is in the database.
    let stored: std::collections::HashSet<String> = db
        .connect("outage")
        .query("SELECT serial FROM certificates", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for serial in received.iter() {
        assert!(
            stored.contains(serial),
            "serial {serial} received, not stored"
        );
    }
    let _ = server.terminate();
}
