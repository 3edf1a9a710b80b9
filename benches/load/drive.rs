//! Driving the server: one thread and one keep-alive connection per unit of concurrency, all
//! released together, bounded by request count and wall time. Replies are kept and verified
//! after the clock stops, so the tool's own RSA work does not compete with the server's.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use scepd_pki::random::SystemRandom;
use scepd_pki::scep::client::{CertRepOutcome, ClientError, decode_cert_rep};
use scepd_pki::x509::Certificate;

use crate::http::{Conn, Reply};
use crate::lenient;
use crate::pool::{CaInfo, Device, Prepared};

/// The outcome of one request before verification.
pub enum Raw {
    /// HTTP 200 with this body.
    Body(Vec<u8>),
    /// Something else (kind text).
    Failed(String),
}

/// One run at one concurrency.
pub struct Run {
    /// Per request index: latency and raw result.
    pub done: Vec<(usize, Duration, Raw)>,
    /// Wall time from release to the last reply.
    pub elapsed: Duration,
}

/// Sends `reqs[i].0` (request bytes) at `concurrency`, until all are sent or `limit` passes;
/// worker `k` connects to `addrs[k % addrs.len()]`.
pub fn drive(
    addrs: &[String],
    reqs: &[&[u8]],
    concurrency: usize,
    limit: Duration,
    repeat: bool,
) -> Result<Run, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let mut conns = Vec::with_capacity(concurrency);
    for k in 0..concurrency {
        let addr = &addrs[k % addrs.len()];
        conns.push(Conn::open(addr).map_err(|e| format!("connect {addr}: {e}"))?);
    }
    let (done, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = conns
            .into_iter()
            .map(|mut conn| {
                let (next, barrier) = (next.clone(), barrier.clone());
                s.spawn(move || {
                    barrier.wait();
                    let deadline = Instant::now() + limit;
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let idx = if repeat { i % reqs.len() } else { i };
                        if (!repeat && i >= reqs.len()) || Instant::now() >= deadline {
                            break;
                        }
                        let t = Instant::now();
                        let r = conn.send(reqs[idx]);
                        let lat = t.elapsed();
                        let raw = match r {
                            Ok(Reply {
                                status: 200, body, ..
                            }) => Raw::Body(if repeat { Vec::new() } else { body }),
                            Ok(Reply { status, .. }) => Raw::Failed(format!("http {status}")),
                            Err(e) => Raw::Failed(format!("io: {}", e.kind())),
                        };
                        out.push((i, lat, raw));
                    }
                    out
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let done: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect();
        (done, start.elapsed())
    });
    Ok(Run { done, elapsed })
}

/// Verification results of one run.
#[derive(Default)]
pub struct Verified {
    /// Successful, fully verified enrollments.
    pub ok: usize,
    /// Failures by kind.
    pub failures: BTreeMap<String, usize>,
    /// Serials seen more than once (also across earlier runs against this server).
    pub duplicate_serials: usize,
    /// Protocol deviations in otherwise verified replies, by kind.
    pub deviations: BTreeMap<String, usize>,
}

/// Verifies every reply: CertRep signature by the RA, transactionID, nonces, status, decryption,
/// the issued certificate carries our key and chains (by name and signature) to a GetCACert
/// certificate. `seen` collects serials (issuer + serial) across runs.
pub fn verify(
    run: &Run,
    pool: &[Prepared],
    devices: &[Device],
    ca: &CaInfo,
    seen: &mut HashSet<Vec<u8>>,
    threads: usize,
) -> Verified {
    let checks = crate::pool::parallel(run.done.len(), threads, |k| {
        let (i, _, raw) = &run.done[k];
        match raw {
            Raw::Failed(kind) => Err(kind.clone()),
            Raw::Body(body) => check_one(body, &pool[*i], devices, ca),
        }
    });
    let mut v = Verified::default();
    for c in checks {
        match c {
            Ok((serial, deviation)) => {
                v.ok += 1;
                if let Some(d) = deviation {
                    *v.deviations.entry(d.into()).or_default() += 1;
                }
                if !seen.insert(serial) {
                    v.duplicate_serials += 1;
                }
            }
            Err(kind) => *v.failures.entry(kind).or_default() += 1,
        }
    }
    v
}

/// Returns issuer ‖ serial of the verified issued certificate and a protocol deviation, if
/// one was tolerated, or a failure kind.
fn check_one(
    body: &[u8],
    p: &Prepared,
    devices: &[Device],
    ca: &CaInfo,
) -> Result<(Vec<u8>, Option<&'static str>), String> {
    let ra = Certificate::parse(&ca.certs[ca.ra]).map_err(|_| "RA unparsable")?;
    let d = &devices[p.device];
    let signer = Certificate::parse(&d.signer).map_err(|_| "signer unparsable")?;
    let mut deviation = None;
    let outcome = match decode_cert_rep(body, &ra, &p.client, &signer, &d.key, &SystemRandom) {
        Ok(o) => o,
        // micromdm scepserver 2.1.0 copies the request's senderNonce into its own senderNonce
        // (RFC 8894 §3.2.1.5 wants a fresh one): note it, and verify the rest of the reply.
        Err(ClientError::InvalidReply(r)) if r == "senderNonce is not fresh" => {
            deviation = Some("senderNonce echoed, not fresh");
            lenient::decode_echoed_nonce(body, &ra, &p.client, &signer, &d.key)
                .map_err(|e| format!("bad CertRep: {e}"))?
        }
        Err(e) => return Err(format!("bad CertRep: {e}")),
    };
    let certs = match outcome {
        CertRepOutcome::Success { certificates, .. } => certificates,
        CertRepOutcome::Failure { fail_info, .. } => {
            return Err(format!("FAILURE {}", fail_info.name()));
        }
        CertRepOutcome::Pending => return Err("PENDING".into()),
    };
    let spki = scepd_pki::keys::Signer::public_key_der(&d.key);
    let issued = certs
        .iter()
        .filter_map(|c| Certificate::parse(c).ok())
        .find(|c| c.spki == spki)
        .ok_or("no certificate for our key")?;
    let chained = ca.certs.iter().any(|c| {
        Certificate::parse(c)
            .is_ok_and(|i| i.subject == issued.issuer && issued.verify_signed_by(i.spki).is_ok())
    });
    if !chained {
        return Err("issued certificate does not chain to GetCACert".into());
    }
    let mut id = issued.issuer.to_vec();
    id.extend_from_slice(issued.serial_magnitude());
    Ok((id, deviation))
}

/// Latency percentile (nearest rank) in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}
