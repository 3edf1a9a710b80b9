//! Trust-check nonces cannot be exhausted. A flood that stays under every per-address limit
//! (100,000 nonces from 18 loopback addresses in 2.4 s) must not make `/trust/v1/challenge`
//! answer 503 to everybody: nonces are stateless (HMAC over expiry and a random value), so a
//! flood costs the flooder its rate limit and nobody else anything; they stay single-use and
//! unforgeable.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;

use super::testkit::*;

/// Flooding addresses and requests from each (18 × 5,600 > the 100,000 nonces the old store
/// held; the default limit of 6,000 a minute lets each address have all of its requests).
const ADDRESSES: u8 = 18;
const PER_ADDRESS: usize = 5_600;
/// Requests written before their answers are read (HTTP/1.1 pipelining).
const BATCH: usize = 200;

/// Sends `n` pipelined `POST /trust/v1/challenge` from `source`; returns the statuses.
async fn flood(server: SocketAddr, source: [u8; 4], n: usize) -> Vec<u16> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    let stream = socket.connect(server).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let request = b"POST /trust/v1/challenge HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
    let mut statuses = Vec::with_capacity(n);
    while statuses.len() < n {
        let batch = BATCH.min(n - statuses.len());
        write.write_all(&request.repeat(batch)).await.unwrap();
        for _ in 0..batch {
            let mut line = String::new();
            read.read_line(&mut line).await.unwrap();
            let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
            let mut length = 0usize;
            loop {
                let mut h = String::new();
                read.read_line(&mut h).await.unwrap();
                if h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; length];
            read.read_exact(&mut body).await.unwrap();
            statuses.push(status);
        }
    }
    statuses
}

fn nonce_of(r: &HttpReply) -> String {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["nonce"].as_str().unwrap().to_owned()
}

#[test]
fn a_nonce_flood_from_many_addresses_leaves_nonces_for_everybody() {
    let mut server = Server::start();
    let addr: SocketAddr = server.addr.parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let statuses: Vec<u16> = rt.block_on(async {
        let tasks: Vec<_> = (0..ADDRESSES)
            .map(|i| tokio::spawn(flood(addr, [127, 0, 0, 10 + i], PER_ADDRESS)))
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(
                tokio::time::timeout(std::time::Duration::from_secs(240), t)
                    .await
                    .expect("flood bounded in time")
                    .unwrap(),
            );
        }
        all
    });
    let granted = statuses.iter().filter(|s| **s == 200).count();
    let busy = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(
        busy, 0,
        "{granted} nonces granted, then {busy} answered 503"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "only nonces or rate limiting"
    );
    assert!(granted > 100_000, "the flood got {granted} nonces");

    // A fresh address still gets a nonce: nothing was used up.
    let r = rt.block_on(async { flood(addr, [127, 0, 0, 200], 1).await });
    assert_eq!(r, vec![200]);
    assert!(server.alive());
}

#[test]
fn forged_and_reused_nonces_are_refused() {
    let server = Server::start();
    let nonce = nonce_of(&server.post("/trust/v1/challenge", b""));
    assert_eq!(nonce.len(), 112, "expiry, random value and HMAC tag in hex");
    let verify = |nonce: &str| {
        let body = serde_json::json!({
            "certificate": "AAAA",
            "nonce": nonce,
            "signature": "AAAA",
            "algorithm": "rsa-pkcs1-sha256",
        });
        let r = server.post("/trust/v1/verify", body.to_string().as_bytes());
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["managed"], false);
        v["reason"].as_str().unwrap().to_owned()
    };
    // Another expiry or random value under the old tag, or a shortened nonce: not ours.
    for i in [0usize, 20, 111] {
        let mut forged = nonce.clone().into_bytes();
        forged[i] = if forged[i] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            verify(std::str::from_utf8(&forged).unwrap()),
            "unknown, used or expired nonce"
        );
    }
    assert_eq!(verify(&nonce[..110]), "unknown, used or expired nonce");
    assert_eq!(verify("not hex at all"), "unknown, used or expired nonce");
    // The genuine nonce is accepted once (the bogus certificate is refused after that), then
    // never again.
    assert_eq!(verify(&nonce), "certificate does not parse");
    assert_eq!(verify(&nonce), "unknown, used or expired nonce");
}
