//! Prometheus metrics (text exposition format 0.0.4), served on the admin listener.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the PKIOperation latency histogram, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics {
    enrollments: Mutex<BTreeMap<(String, &'static str, &'static str), u64>>,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    ocsp_requests: AtomicU64,
    ocsp_reused: AtomicU64,
    crl_requests: AtomicU64,
    challenge_fetches: AtomicU64,
    trust_checks: AtomicU64,
    refused_busy: AtomicU64,
    refused_per_address: AtomicU64,
    idle_closed: AtomicU64,
    body_timeouts: AtomicU64,
    ca_not_after: Mutex<BTreeMap<(String, String), i64>>,
}

impl Metrics {
    /// Counts one PKIOperation by platform, outcome (`success`, `failure`, `bad_request`) and failInfo.
    pub fn enrollment(
        &self,
        platform: &str,
        outcome: &'static str,
        fail_info: &'static str,
        took: Duration,
    ) {
        if let Ok(mut m) = self.enrollments.lock() {
            *m.entry((platform.to_owned(), outcome, fail_info))
                .or_default() += 1;
        }
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// Counts an OCSP request.
    pub fn ocsp(&self) {
        self.ocsp_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an OCSP response served from the cache of earlier responses.
    pub fn ocsp_reused(&self) {
        self.ocsp_reused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a CRL download.
    pub fn crl(&self) {
        self.crl_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a dynamic challenge fetch.
    pub fn challenge_fetch(&self) {
        self.challenge_fetches.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a trust check.
    pub fn trust_check(&self) {
        self.trust_checks.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection refused with 503 (either listener): every slot busy, or
    /// (`per_address`) the client's address at its cap.
    pub fn connection_refused(&self, per_address: bool) {
        let counter = if per_address {
            &self.refused_per_address
        } else {
            &self.refused_busy
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an idle connection closed to make room for a new one.
    pub fn idle_connection_closed(&self) {
        self.idle_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request body cut off by its deadline or minimum rate (408).
    pub fn body_timeout(&self) {
        self.body_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a CA certificate's expiry.
    pub fn ca_expiry(&self, role: &str, id: &str, not_after: i64) {
        if let Ok(mut m) = self.ca_not_after.lock() {
            m.insert((role.to_owned(), id.to_owned()), not_after);
        }
    }

    /// Exposition text for the store's group commit: commits and the issuances in them.
    pub fn render_store(commits: u64, issuances: u64) -> String {
        format!(
            "# HELP scepd_store_issuance_commits_total Transactions (fsyncs) that recorded issuances.\n\
             # TYPE scepd_store_issuance_commits_total counter\n\
             scepd_store_issuance_commits_total {commits}\n\
             # HELP scepd_store_issuances_committed_total Issuances recorded; divided by commits: the mean group size.\n\
             # TYPE scepd_store_issuances_committed_total counter\n\
             scepd_store_issuances_committed_total {issuances}\n"
        )
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let esc = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        out.push_str("# HELP scepd_pki_operations_total PKIOperation requests by platform, outcome and failInfo.\n# TYPE scepd_pki_operations_total counter\n");
        if let Ok(m) = self.enrollments.lock() {
            for ((p, o, f), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "scepd_pki_operations_total{{platform=\"{}\",outcome=\"{o}\",fail_info=\"{f}\"}} {n}",
                    esc(p)
                );
            }
        }
        out.push_str("# HELP scepd_pki_operation_seconds PKIOperation latency.\n# TYPE scepd_pki_operation_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "scepd_pki_operation_seconds_bucket{{le=\"{b}\"}} {}",
                self.latency_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "scepd_pki_operation_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "scepd_pki_operation_seconds_sum {}",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "scepd_pki_operation_seconds_count {count}");
        for (name, help, v) in [
            (
                "scepd_ocsp_requests_total",
                "OCSP requests answered.",
                &self.ocsp_requests,
            ),
            (
                "scepd_ocsp_responses_reused_total",
                "OCSP responses served from the cache of earlier responses (nonce-less requests).",
                &self.ocsp_reused,
            ),
            (
                "scepd_crl_requests_total",
                "CRL downloads.",
                &self.crl_requests,
            ),
            (
                "scepd_challenge_fetches_total",
                "Dynamic challenges handed out.",
                &self.challenge_fetches,
            ),
            (
                "scepd_trust_checks_total",
                "Device-trust verifications.",
                &self.trust_checks,
            ),
            (
                "scepd_idle_connections_closed_total",
                "Idle keep-alive or silent connections closed to make room for a new one.",
                &self.idle_closed,
            ),
            (
                "scepd_request_body_timeouts_total",
                "Request bodies not received within the deadline or minimum rate (408).",
                &self.body_timeouts,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP scepd_connections_refused_total Connections answered 503 and closed: every slot busy, or the client address at its cap.\n# TYPE scepd_connections_refused_total counter\n");
        for (reason, v) in [
            ("busy", &self.refused_busy),
            ("per_address", &self.refused_per_address),
        ] {
            let _ = writeln!(
                out,
                "scepd_connections_refused_total{{reason=\"{reason}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP scepd_ca_not_after_seconds CA certificate expiry (unix time).\n# TYPE scepd_ca_not_after_seconds gauge\n");
        if let Ok(m) = self.ca_not_after.lock() {
            for ((role, id), t) in m.iter() {
                let _ = writeln!(
                    out,
                    "scepd_ca_not_after_seconds{{role=\"{}\",id=\"{}\"}} {t}",
                    esc(role),
                    esc(id)
                );
            }
        }
        out
    }
}
