//! Connection slots under attack: one address cannot take every slot, request
//! bodies have a deadline and a minimum rate, idle keep-alive connections give their slot to
//! newcomers, and an open-files limit below `max_connections` lowers the cap (503 instead of
//! a stalled accept). Client addresses other than 127.0.0.1 are bound explicitly: Linux
//! routes all of 127.0.0.0/8 over `lo`.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use super::testkit::*;

fn local(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// The head of a POST PKIOperation that promises `length` body bytes.
fn slow_post_head(server: &Server, length: usize) -> String {
    format!(
        "POST {}?operation=PKIOperation HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-pki-message\r\nContent-Length: {length}\r\n\r\n",
        server.scep_path()
    )
}

/// Sends one body byte a second until the server answers or `within` passes; returns what it
/// sent back (read to the close) and when the answer started.
fn trickle_until_answered(s: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let t0 = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    while t0.elapsed() < within {
        // The server may have closed already; the read below tells.
        let _ = s.write_all(b"x");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let answered = t0.elapsed();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.read_to_end(&mut raw);
    (raw, answered)
}

/// A keep-alive GET /healthz on `s`; true when answered 200 (`ok\n`, read in full).
fn keep_alive_healthz(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 512];
    while !raw.ends_with(b"\r\n\r\nok\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    raw.starts_with(b"HTTP/1.1 200")
}

/// True once the server has closed `s` (EOF or reset) within `within`.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// True while the server holds `s` open without having answered or closed it (peeks, so
/// an answer stays readable).
fn still_waiting(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let waiting = matches!(s.peek(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    waiting
}

/// GET /healthz until it is answered 200 (the slot came back), for at most five seconds.
fn healthz_comes_back(server: &Server) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if server.get("/healthz").status == 200 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn one_address_cannot_take_every_slot() {
    // 1,100 slow POST bodies from 127.0.0.1 (the audit's 1,030, scaled to 200 slots). No body
    // deadline or rate here, so only the per-address cap stands between them and the slots.
    let _ = scepd::fd_limit::raise_soft_limit();
    let server = Server::start_with_config(
        "[limits]\nmax_connections = 200\nmax_connections_per_address = 50\n\
         request_body_timeout_secs = 600\nmin_body_rate_bytes_per_sec = 0\nidle_timeout_secs = 600\n",
    );
    let ca = server.ca_certs();
    let head = slow_post_head(&server, 100_000);
    let mut flood = Vec::new();
    for _ in 0..1_100 {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(b"0");
        flood.push(s);
    }
    // Another address is still served: GetCACaps and a whole enrollment.
    let other = local(2);
    let caps = http_from(
        other,
        &server.addr,
        "GET",
        &format!("{}?operation=GetCACaps", server.scep_path()),
        b"",
        None,
    );
    assert_eq!(caps.status, 200, "{}", String::from_utf8_lossy(&caps.body));
    let device = Device::new("second address");
    let req = device.pkcs_req(&ca, Some(&server.challenge));
    let r = http_from(
        other,
        &server.addr,
        "POST",
        &format!("{}?operation=PKIOperation", server.scep_path()),
        &req.der,
        Some("application/x-pki-message"),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    issued(&device.decode(&ca, &req, &r.body, None));
    // The flood holds at most its 50 slots. (Connections the kernel could not queue for
    // accept yet look open to the client until they are accepted, then refused: wait for them.)
    let t0 = Instant::now();
    let mut held = flood.iter().filter(|s| still_waiting(s)).count();
    while held > 50 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
        held = flood.iter().filter(|s| still_waiting(s)).count();
    }
    assert!((1..=50).contains(&held), "{held} slow bodies hold slots");
    // The first one refused was told why.
    let first_refused = flood.iter_mut().find(|s| !still_waiting(s)).unwrap();
    first_refused
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut refused = Vec::new();
    let _ = first_refused.read_to_end(&mut refused);
    let refused = String::from_utf8_lossy(&refused);
    assert!(
        refused.starts_with("HTTP/1.1 503") && refused.contains("Retry-After: 1\r\n"),
        "{refused}"
    );
    assert!(refused.ends_with("too many connections from this address: retry\n"));
    // Counted on the admin listener.
    let token = super::admin_paths::admin_token(&server);
    let bearer = format!("Bearer {token}");
    let m = http_with(
        &server.admin_addr,
        "GET",
        "/metrics",
        &[("Authorization", &bearer)],
        b"",
        None,
    );
    let text = String::from_utf8_lossy(&m.body);
    let refused_count: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("scepd_connections_refused_total{reason=\"per_address\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(refused_count >= 1_000, "{text}");
}

#[test]
fn a_trickled_body_is_cut_off_at_the_deadline_and_its_slot_freed() {
    // One slot, so the next request proves it came back.
    let server = Server::start_with_config(
        "[limits]\nmax_connections = 1\nrequest_body_timeout_secs = 3\nmin_body_rate_bytes_per_sec = 0\n",
    );
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.write_all(slow_post_head(&server, 1_000).as_bytes())
        .unwrap();
    // One byte a second never goes idle (60 s) and would take 1,000 s.
    let (raw, answered) = trickle_until_answered(&mut s, Duration::from_secs(30));
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "after {answered:?}: {text:?}"
    );
    assert!(text.contains("connection: close\r\n") || text.contains("Connection: close\r\n"));
    assert!(
        text.ends_with("request body not received in time\n"),
        "{text}"
    );
    assert!(healthz_comes_back(&server), "the slot was not freed");
}

#[test]
fn a_body_below_the_minimum_rate_is_cut_off_after_the_grace_period() {
    // A deadline far away: the rate (100 B/s after 5 s) is what stops one byte a second.
    let server = Server::start_with_config(
        "[limits]\nmax_connections = 1\nrequest_body_timeout_secs = 600\nmin_body_rate_bytes_per_sec = 100\n",
    );
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.write_all(slow_post_head(&server, 1_000).as_bytes())
        .unwrap();
    let (raw, answered) = trickle_until_answered(&mut s, Duration::from_secs(30));
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "after {answered:?}: {text:?}"
    );
    assert!(healthz_comes_back(&server), "the slot was not freed");
    // A body sent at once is not affected (400: it is no pkiMessage). The one slot may still
    // be held by the closing /healthz connection for a moment: a 503 is retried.
    let t0 = Instant::now();
    let status = loop {
        let status = server.pki_operation(&[0u8; 4096]).status;
        if status != 503 || t0.elapsed() > Duration::from_secs(5) {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, 400);
}

#[test]
fn idle_keep_alive_connections_make_room_for_newcomers() {
    // Eight slots, two per address: 127.0.0.3–6 each hold two finished keep-alive connections.
    let server = Server::start_with_config(
        "[limits]\nmax_connections = 8\nmax_connections_per_address = 2\n",
    );
    let mut held: Vec<TcpStream> = (0..8u8)
        .map(|i| {
            let mut s = connect_from(local(3 + i / 2), &server.addr);
            assert!(keep_alive_healthz(&mut s), "connection {i} served");
            // The server marks a connection idle a moment after the client has its answer:
            // space them out so they become idle in this order.
            std::thread::sleep(Duration::from_millis(100));
            s
        })
        .collect();
    // Every slot taken, all idle: a newcomer from another address is served, not refused, and
    // the longest-idle connection (the first) is the one closed for it.
    let r = http_from(local(2), &server.addr, "GET", "/healthz", b"", None);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        closed_by_server(&mut held[0], Duration::from_secs(5)),
        "the oldest idle connection was not closed"
    );
    // An address at its own cap makes room among its own idle connections only: 127.0.0.6's
    // older one goes, 127.0.0.3's remaining one stays.
    let r = http_from(local(6), &server.addr, "GET", "/healthz", b"", None);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(closed_by_server(&mut held[6], Duration::from_secs(5)));
    assert!(keep_alive_healthz(&mut held[1]), "127.0.0.3 kept its slot");
    assert!(
        keep_alive_healthz(&mut held[7]),
        "127.0.0.6 kept its newer slot"
    );
}

#[test]
fn an_open_files_limit_below_max_connections_lowers_the_cap() {
    let has_prlimit = std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_prlimit {
        eprintln!("skipped: no prlimit(1)");
        return;
    }
    // 400 open files fit (400 − 128 reserved) / 2 listeners − 64 in flight = 72 connections,
    // not the default 1,024.
    let server = Server::start_launched(
        "[limits]\nheader_timeout_secs = 60\n",
        &["prlimit", "--nofile=400:400"],
    );
    assert!(
        server
            .log()
            .contains("does not fit the open-files limit (RLIMIT_NOFILE): lowered"),
        "{}",
        server.log()
    );
    // 72 connections in the middle of their request headers (busy, not idle), from two
    // addresses (the per-address cap of 128 is lowered with it, to 72).
    let busy: Vec<TcpStream> = (0..72)
        .map(|i| {
            let mut s = connect_from(local(1 + u8::from(i >= 36)), &server.addr);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(busy.iter().all(still_waiting), "all 72 are being served");
    let r = http_from(local(3), &server.addr, "GET", "/healthz", b"", None);
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.body, b"too many connections: retry\n");
    drop(busy);
    assert!(healthz_comes_back(&server));
}
