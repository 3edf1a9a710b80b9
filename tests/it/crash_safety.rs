//! Crash safety: `kill -9` the server again and again while several clients enroll; clients
//! that got no answer retry the very same request (same transactionID) against the restarted
//! server. Afterwards the database passes `PRAGMA integrity_check`, every certificate a client
//! received is in the store, no serial appears twice, and no transaction has two certificates.
//!
//! A one-time challenge consumed before a kill -9 stays consumed: `dynamic.rs`
//! (`consumed_challenge_stays_consumed_after_a_crash`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scepd_pki::random::SystemRandom;
use scepd_pki::scep::client::{CertRepOutcome, decode_cert_rep};
use scepd_pki::x509::Certificate;

use super::testkit::*;

#[test]
fn kill_9_under_concurrent_enrollment_loses_and_duplicates_nothing() {
    const ROUNDS: usize = 5;
    const CLIENTS: usize = 4;
    let mut server = Server::start();
    let ca = server.ca_certs();
    let path = server.scep_path();
    let challenge = server.challenge.clone();
    let addr = Arc::new(Mutex::new(server.addr.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    // serial → transactionID of every certificate a client received.
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let retried = Arc::new(Mutex::new(0usize));
    let ra = ca.ra.clone();
    let mut threads = Vec::new();
    for c in 0..CLIENTS {
        let (addr, stop, received, retried) = (
            addr.clone(),
            stop.clone(),
            received.clone(),
            retried.clone(),
        );
        let (path, challenge, ra) = (path.clone(), challenge.clone(), ra.clone());
        threads.push(std::thread::spawn(move || {
            let ra = Certificate::parse(&ra).unwrap();
            let ca = CaCerts {
                ra: ra.raw.to_vec(),
                intermediate: vec![],
                root: vec![],
            };
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let device = Device::new(&format!("crash managementAttestation C{c}-{n}"));
                let req = device.pkcs_req(&ca, Some(&challenge));
                let signer = Certificate::parse(&device.signer_der).unwrap();
                // Retry the same request until the (restarted) server answers.
                let t0 = Instant::now();
                let reply = loop {
                    let a = addr.lock().unwrap().clone();
                    if let Some(r) = try_pki(&a, &path, &req.der) {
                        break Some(r);
                    }
                    if stop.load(Ordering::Relaxed) && t0.elapsed() > Duration::from_secs(30) {
                        break None;
                    }
                    *retried.lock().unwrap() += 1;
                    std::thread::sleep(Duration::from_millis(100));
                };
                let Some(reply) = reply else { break };
                match decode_cert_rep(&reply, &ra, &req, &signer, &device.key, &SystemRandom) {
                    Ok(ok @ CertRepOutcome::Success { .. }) => {
                        received.lock().unwrap().push((
                            serial_of(&issued(&ok)),
                            req.transaction_id.as_str().to_owned(),
                        ));
                    }
                    other => panic!("client {c}: {other:?}"),
                }
            }
        }));
    }
    for round in 0..ROUNDS {
        std::thread::sleep(Duration::from_millis(800 + 150 * round as u64));
        server.kill9_and_restart();
        *addr.lock().unwrap() = server.addr.clone();
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    // One last kill, then inspect the file exactly as a crash left it.
    server.kill9_and_restart();
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
    let received = received.lock().unwrap();
    for (serial, tx) in received.iter() {
        assert!(
            serials.contains(serial.as_str()),
            "client got serial {serial} (transaction {tx}) that is not in the store"
        );
    }
    let received_serials: HashSet<&str> = received.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        received_serials.len(),
        received.len(),
        "a client got a serial twice"
    );
    assert!(
        received.len() >= 2 * CLIENTS,
        "too little load: {} enrollments",
        received.len()
    );
    eprintln!(
        "crash safety: {ROUNDS} kills, {} certificates received, {} stored, {} retries",
        received.len(),
        stored.len(),
        retried.lock().unwrap()
    );
}
