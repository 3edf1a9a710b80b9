//! `[limits]` against the running server: per-client rate limits on PKIOperation and the trust
//! API (429) and on signed OCSP responses (tryLater), the concurrent-connection cap (503, slots
//! come back), and the header and idle timeouts that close slowloris connections. Per-address
//! caps, body deadlines and idle hand-over: connection_limits.rs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::testkit::*;

/// Reads until the server closes the connection; returns what it sent and how long it took.
fn read_until_closed(s: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    s.set_read_timeout(Some(within)).unwrap();
    let t0 = Instant::now();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    (raw, t0.elapsed())
}

#[test]
fn rate_limits_answer_429_per_client_and_leave_other_operations_alone() {
    let server =
        Server::start_with_config("[limits]\npki_operation_per_minute = 5\ntrust_per_minute = 3\n");
    let path = server.scep_path();
    for i in 0..5 {
        let r = server.pki_operation(b"not a pkiMessage");
        assert_eq!(r.status, 400, "request {i} is within the rate");
    }
    let r = server.pki_operation(b"not a pkiMessage");
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "too many requests from this address: slow down\n"
    );
    // GET PKIOperation counts too; GetCACaps and GetCACert do not.
    let r = server.get(&format!("{path}?operation=PKIOperation&message=AAAA"));
    assert_eq!(r.status, 429);
    assert_eq!(
        server.get(&format!("{path}?operation=GetCACaps")).status,
        200
    );
    for _ in 0..3 {
        assert_eq!(server.post("/trust/v1/challenge", b"").status, 200);
    }
    assert_eq!(server.post("/trust/v1/challenge", b"").status, 429);
}

#[test]
fn ocsp_signatures_are_limited_per_client_and_reused_responses_are_not() {
    const TRY_LATER: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x03];
    let server = Server::start_with_config("[limits]\nocsp_signed_per_minute = 2\n");
    let ca = server.ca_certs();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let device = Device::new("ocsp limit");
    let cert = issued(&device.enroll(&server, &ca, Some(&server.challenge), DEFAULT_PROTECTION));
    let (cert_pem, int) = (d.join("leaf.pem"), d.join("int.pem"));
    write_pem(&cert_pem, "CERTIFICATE", &cert);
    write_pem(&int, "CERTIFICATE", &ca.intermediate);
    let request = |name: &str, what: &[&str]| {
        let out = d.join(name);
        let mut args = vec!["ocsp", "-issuer", int.to_str().unwrap()];
        args.extend_from_slice(what);
        args.extend_from_slice(&["-reqout", out.to_str().unwrap()]);
        let (ok, text) = openssl(&args);
        assert!(ok, "{text}");
        std::fs::read(out).unwrap()
    };
    // A relying party polling a known certificate without a nonce, and someone asking about
    // made-up serials with nonces (never reusable).
    let known = request(
        "known.der",
        &["-cert", cert_pem.to_str().unwrap(), "-no_nonce"],
    );
    let made_up = request("made-up.der", &["-serial", "0x0badc0de"]);
    let ask = |der: &[u8]| {
        let r = http(
            &server.addr,
            "POST",
            "/ocsp",
            der,
            Some("application/ocsp-request"),
        );
        assert_eq!(r.status, 200);
        r.body
    };
    let first = ask(&known); // signed: 1 of 2
    assert_ne!(first, TRY_LATER);
    for _ in 0..5 {
        assert_eq!(ask(&known), first, "reused, not counted");
    }
    assert_ne!(ask(&made_up), TRY_LATER); // signed: 2 of 2
    assert_eq!(ask(&made_up), TRY_LATER, "over the signing rate");
    assert_eq!(ask(&known), first, "reused answers still flow");
}

#[test]
fn connection_cap_answers_503_and_frees_slots() {
    let server = Server::start_with_config("[limits]\nmax_connections = 4\n");
    // Four busy connections from four addresses hold every slot: a request on each proves it
    // is served, the start of a second one makes it busy (idle connections would make room:
    // tests/it/connection_limits.rs).
    let mut held = Vec::new();
    for i in 0..4u8 {
        let mut s = connect_from(std::net::IpAddr::from([127, 0, 0, 11 + i]), &server.addr);
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 256];
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        s.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
        held.push(s);
    }
    // Let the server read those first bytes before the newcomer arrives.
    std::thread::sleep(Duration::from_millis(200));
    let r = server.get("/healthz");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Retry-After").as_deref(), Some("1"));
    assert_eq!(r.body, b"too many connections: retry\n");
    drop(held);
    // Slots come back once those clients leave.
    let t0 = Instant::now();
    loop {
        if server.get("/healthz").status == 200 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "slots not released");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn slow_headers_and_idle_connections_are_closed() {
    let server =
        Server::start_with_config("[limits]\nheader_timeout_secs = 2\nidle_timeout_secs = 2\n");
    // Slowloris on headers: half a request line, then nothing.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost:").unwrap();
    let (_, took) = read_until_closed(&mut s, Duration::from_secs(20));
    assert!(
        took < Duration::from_secs(10),
        "slow headers kept open {took:?}"
    );
    // Slow body: headers promise 1000 octets, three arrive.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "POST {}?operation=PKIOperation HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc",
        server.scep_path()
    );
    s.write_all(head.as_bytes()).unwrap();
    let (_, took) = read_until_closed(&mut s, Duration::from_secs(20));
    assert!(
        took < Duration::from_secs(10),
        "slow body kept open {took:?}"
    );
    // An idle keep-alive connection after a complete request.
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (raw, took) = read_until_closed(&mut s, Duration::from_secs(20));
    assert!(raw.starts_with(b"HTTP/1.1 200"));
    assert!(
        took < Duration::from_secs(10),
        "idle connection kept open {took:?}"
    );
    // Still serving.
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn one_cpu_slot_serves_concurrent_enrollments() {
    // With a single slot every enrollment queues for it, and each one hands the slot on while
    // its commit flushes; none may wait for another forever.
    let server = Server::start_logging("[limits]\ncpu_slots = 1\n");
    let ca = server.ca_certs();
    let certs: Vec<Vec<u8>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..6)
            .map(|i| {
                let (server, ca) = (&server, &ca);
                s.spawn(move || {
                    let device = Device::new(&format!("one slot {i}"));
                    issued(&device.enroll(server, ca, Some(&server.challenge), DEFAULT_PROTECTION))
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(certs.len(), 6);
    // Also: a text log that is not a terminal carries no colour escape codes.
    let log = server.log();
    assert!(
        log.contains("CPU-bound tasks run at once cpu_slots=1"),
        "the configured slot count is logged at start-up, uncoloured: {log}"
    );
}
