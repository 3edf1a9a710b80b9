//! scep-load: drives any SCEP server (scepd, micromdm scepserver, ...) with pre-generated,
//! distinct PKCSReqs at given concurrencies and verifies every CertRep.
//!
//! ```text
//! cargo build --release --example scep-load
//! target/release/examples/scep-load http://127.0.0.1:8080/scep/<platform> \
//!     --challenge <secret> --concurrency 1,2,8,32 --count 2000 --duration 10 --pid <server pid>
//! target/release/examples/scep-load <url> --get GetCACert --concurrency 32 --duration 5
//! ```
//!
//! For each concurrency: build `--count` requests (own key-pair pool, transactionID, subject,
//! CSR, senderNonce; AES/3DES/DES envelope to the RA from GetCACert), open one keep-alive
//! connection per worker thread, release all workers at once, stop at `--count` or
//! `--duration`, then verify every reply (RA signature, transactionID, recipientNonce echo,
//! fresh senderNonce, status, decryption with the device key, issued certificate carries the
//! device key and chains to a GetCACert certificate) and count duplicate serials. Printed per
//! level: enrollments/s (verified successes / wall time), p50/p90/p99 latency, failures by kind,
//! duplicates, and with `--pid` the server's CPU seconds and peak RSS during that level.
//! A `RESULT` tab-separated line per level is meant for scripts (benches/compare.sh).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod drive;
mod http;
mod lenient;
mod pool;
mod procstat;

use std::collections::HashSet;
use std::time::Duration;

use clap::Parser;
use scepd_pki::algorithms::DigestAlg;
use scepd_pki::keys::KeyAlgorithm;
use scepd_pki::scep::client::Protection;

#[derive(Parser)]
#[command(about = "Load generator for SCEP servers (PKIOperation enrollments or GET operations)")]
struct Args {
    /// SCEP URL without query, e.g. http://127.0.0.1:8080/scep/<platform> or http://127.0.0.1:8080/scep
    url: String,
    /// Concurrencies to run, in order (one keep-alive connection per worker).
    #[arg(long, short, value_delimiter = ',', default_value = "1,2,8,32")]
    concurrency: Vec<usize>,
    /// Requests per concurrency level (each a distinct PKCSReq).
    #[arg(long, short = 'n', default_value_t = 500)]
    count: usize,
    /// Wall-time bound per level, seconds.
    #[arg(long, short, default_value_t = 10.0)]
    duration: f64,
    /// challengePassword to put in the CSRs.
    #[arg(long)]
    challenge: Option<String>,
    /// Content cipher: aes128, aes192, aes256, 3des, des.
    #[arg(long, default_value = "aes128")]
    cipher: String,
    /// Key transport to the RA: v15 or oaep.
    #[arg(long, default_value = "v15")]
    transport: String,
    /// Signature digest: sha256, sha384, sha512.
    #[arg(long, default_value = "sha256")]
    digest: String,
    /// Requester RSA key size: 2048, 3072 or 4096.
    #[arg(long, default_value_t = 2048)]
    key_bits: u32,
    /// Distinct requester keys (key generation is slow; requests cycle through them).
    #[arg(long, default_value_t = 16)]
    keys: usize,
    /// Send PKIOperation with GET (base64 in the query) instead of POST.
    #[arg(long)]
    get_pki: bool,
    /// Instead of enrolling, measure a GET operation (GetCACert or GetCACaps) in req/s.
    #[arg(long)]
    get: Option<String>,
    /// Server PID(s), comma-separated: report their CPU seconds (summed) and peak RSS (the
    /// largest) per level.
    #[arg(long, value_delimiter = ',')]
    pid: Vec<u32>,
    /// Further nodes serving the same CA and path (host:port, comma-separated): workers open
    /// their connections round-robin over the URL's address and these, as a load balancer
    /// spreads connections.
    #[arg(long, value_delimiter = ',')]
    also: Vec<String>,
    /// Label for RESULT lines.
    #[arg(long, default_value = "server")]
    label: String,
    /// Threads for generating and verifying requests (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("scep-load: {e}");
        std::process::exit(1);
    }
}

/// Counters over one level: the server's, the load tool's own, and the machine's idle share
/// (what the cores did besides the server: this tool, kernel threads, nothing).
struct LevelUse {
    cpu_secs: Option<f64>,
    peak_rss_mib: Option<f64>,
    tool_cpu_secs: Option<f64>,
    idle_pct: Option<f64>,
}

/// Summed CPU seconds of `pids`; `None` unless every one could be read.
fn cpu_of(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter()
        .map(|p| procstat::sample(*p).map(|s| s.cpu_secs))
        .sum()
}

fn measure<T>(pids: &[u32], f: impl FnOnce() -> T) -> (T, LevelUse) {
    let before = cpu_of(pids);
    for &p in pids {
        if !procstat::reset_peak(p) {
            eprintln!("note: cannot reset VmHWM of {p}; peak RSS is since process start");
        }
    }
    let tool_before = procstat::sample(std::process::id());
    let machine_before = procstat::machine();
    let t = f();
    let machine_after = procstat::machine();
    let tool_after = procstat::sample(std::process::id());
    let after = cpu_of(pids);
    let cpu_secs = before.zip(after).map(|(b, a)| a - b);
    let tool_cpu_secs = tool_before
        .zip(tool_after)
        .map(|(b, a)| a.cpu_secs - b.cpu_secs);
    let idle_pct = machine_before.zip(machine_after).and_then(|(b, a)| {
        let total = a.total.checked_sub(b.total)?;
        let idle = a.idle.checked_sub(b.idle)?;
        (total > 0).then(|| 100.0 * idle as f64 / total as f64)
    });
    let peak_rss_mib = pids
        .iter()
        .filter_map(|p| procstat::peak_rss_kib(*p))
        .max()
        .map(|k| k as f64 / 1024.0);
    (
        t,
        LevelUse {
            cpu_secs,
            peak_rss_mib,
            tool_cpu_secs,
            idle_pct,
        },
    )
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map(|x| format!("{x:.prec$}"))
        .unwrap_or_else(|| "-".into())
}

fn run(args: &Args) -> Result<(), String> {
    let url = http::Url::parse(&args.url)?;
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let limit = Duration::from_secs_f64(args.duration);
    let addrs: Vec<String> = std::iter::once(url.addr.clone())
        .chain(args.also.iter().cloned())
        .collect();
    if let Some(op) = &args.get {
        return run_get(args, &url, &addrs, op, limit);
    }
    let ca = pool::CaInfo::fetch(&url)?;
    println!(
        "GetCACert: {} certificate(s), RA = #{}; GetCACaps: {}",
        ca.certs.len(),
        ca.ra,
        ca.caps.split_whitespace().collect::<Vec<_>>().join(",")
    );
    let key_alg = match args.key_bits {
        2048 => KeyAlgorithm::Rsa2048,
        3072 => KeyAlgorithm::Rsa3072,
        4096 => KeyAlgorithm::Rsa4096,
        b => return Err(format!("unsupported key size {b}")),
    };
    let protection = Protection {
        cipher: pool::cipher(&args.cipher)?,
        transport: pool::transport(&args.transport)?,
        digest: pool::digest(&args.digest)?,
    };
    if protection.digest == DigestAlg::Sha1 {
        return Err("SHA-1 signing is not available".into());
    }
    let opts = pool::Options {
        protection,
        challenge: args.challenge.as_deref(),
        use_get: args.get_pki,
    };
    let t = std::time::Instant::now();
    let devices = pool::devices(args.keys.max(1), key_alg, threads);
    println!(
        "generated {} RSA-{} device keys in {:.1} s",
        devices.len(),
        args.key_bits,
        t.elapsed().as_secs_f64()
    );
    let mut rid = [0u8; 4];
    aws_lc_rs::rand::fill(&mut rid).map_err(|_| "rng")?;
    let run_id = scepd_pki::hex(&rid);
    let mut seen = HashSet::new();
    println!(
        "{:>5} {:>7} {:>7} {:>9} {:>8} {:>8} {:>8} {:>5} {:>8} {:>9} {:>7} {:>6}  failures",
        "conc",
        "ok",
        "failed",
        "enroll/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "dups",
        "cpu s",
        "rss MiB",
        "tool s",
        "idle %"
    );
    for &c in &args.concurrency {
        let c = c.max(1);
        let t = std::time::Instant::now();
        let pool = pool::requests(
            &url,
            &ca,
            &devices,
            opts,
            &format!("{run_id}-c{c}"),
            args.count,
            threads,
        )?;
        let gen_secs = t.elapsed().as_secs_f64();
        let bodies: Vec<&[u8]> = pool.iter().map(|p| p.http.as_slice()).collect();
        let (run, used) = measure(&args.pid, || drive::drive(&addrs, &bodies, c, limit, false));
        let run = run?;
        let t = std::time::Instant::now();
        let v = drive::verify(&run, &pool, &devices, &ca, &mut seen, threads);
        let verify_secs = t.elapsed().as_secs_f64();
        let mut lat: Vec<Duration> = run.done.iter().map(|(_, l, _)| *l).collect();
        lat.sort();
        let failed: usize = v.failures.values().sum();
        let rate = v.ok as f64 / run.elapsed.as_secs_f64();
        let kinds = v
            .failures
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .chain(
                v.deviations
                    .iter()
                    .map(|(k, n)| format!("(verified, deviation) {k}: {n}")),
            )
            .collect::<Vec<_>>()
            .join("; ");
        let (p50, p90, p99) = (
            drive::percentile(&lat, 50.0),
            drive::percentile(&lat, 90.0),
            drive::percentile(&lat, 99.0),
        );
        println!(
            "{c:>5} {:>7} {failed:>7} {rate:>9.1} {p50:>8.1} {p90:>8.1} {p99:>8.1} {:>5} {:>8} {:>9} {:>7} {:>6}  {}",
            v.ok,
            v.duplicate_serials,
            opt(used.cpu_secs, 2),
            opt(used.peak_rss_mib, 1),
            opt(used.tool_cpu_secs, 2),
            opt(used.idle_pct, 1),
            if kinds.is_empty() { "-" } else { &kinds }
        );
        // New fields go at the end: scripts read the earlier ones by position.
        println!(
            "RESULT\t{}\tenroll\t{c}\t{}\t{failed}\t{rate:.1}\t{p50:.1}\t{p90:.1}\t{p99:.1}\t{}\t{}\t{}\t{:.2}\t{}\t{}\t{}",
            args.label,
            v.ok,
            v.duplicate_serials,
            opt(used.cpu_secs, 2),
            opt(used.peak_rss_mib, 1),
            run.elapsed.as_secs_f64(),
            if kinds.is_empty() { "-" } else { &kinds },
            opt(used.tool_cpu_secs, 2),
            opt(used.idle_pct, 1)
        );
        eprintln!(
            "  (c={c}: generated {} requests in {gen_secs:.1} s, ran {:.2} s, verified in {verify_secs:.1} s)",
            pool.len(),
            run.elapsed.as_secs_f64()
        );
    }
    Ok(())
}

fn run_get(
    args: &Args,
    url: &http::Url,
    addrs: &[String],
    op: &str,
    limit: Duration,
) -> Result<(), String> {
    let req = url.get(&format!("operation={op}"));
    println!(
        "{:>5} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "conc", "ok", "failed", "req/s", "p50 ms", "p90 ms", "p99 ms", "cpu s", "rss MiB"
    );
    for &c in &args.concurrency {
        let c = c.max(1);
        let (run, used) = measure(&args.pid, || {
            drive::drive(addrs, &[req.as_slice()], c, limit, true)
        });
        let run = run?;
        let ok = run
            .done
            .iter()
            .filter(|(_, _, r)| matches!(r, drive::Raw::Body(_)))
            .count();
        let failed = run.done.len() - ok;
        let mut lat: Vec<Duration> = run.done.iter().map(|(_, l, _)| *l).collect();
        lat.sort();
        let rate = ok as f64 / run.elapsed.as_secs_f64();
        let (p50, p90, p99) = (
            drive::percentile(&lat, 50.0),
            drive::percentile(&lat, 90.0),
            drive::percentile(&lat, 99.0),
        );
        println!(
            "{c:>5} {ok:>9} {failed:>7} {rate:>9.0} {p50:>8.2} {p90:>8.2} {p99:>8.2} {:>8} {:>9}",
            opt(used.cpu_secs, 2),
            opt(used.peak_rss_mib, 1)
        );
        println!(
            "RESULT\t{}\t{op}\t{c}\t{ok}\t{failed}\t{rate:.0}\t{p50:.2}\t{p90:.2}\t{p99:.2}\t0\t{}\t{}\t{:.2}\t-",
            args.label,
            opt(used.cpu_secs, 2),
            opt(used.peak_rss_mib, 1),
            run.elapsed.as_secs_f64()
        );
    }
    Ok(())
}
