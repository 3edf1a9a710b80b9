//! The public HTTP listener: connection handling, limits, graceful shutdown, one response
//! shape for errors. SCEP routing lives in [`scep`].

pub mod auth_limiter;
pub mod body;
pub mod challenge_url;
pub mod conn_tracker;
pub mod error;
pub mod limits;
pub mod listener;
pub mod platform_cache;
pub mod revocation;
pub mod router;
pub mod scep;
pub mod trust;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::authority::Authority;
use crate::http::error::HttpFailure;

pub use listener::{ConnLimits, serve};

/// Shared state of the public listener.
pub struct App {
    /// SCEP operations.
    pub authority: Authority,
    /// Device-trust checks.
    pub trust: crate::trust::TrustCheck,
    /// Prometheus counters.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Request body cap in bytes.
    pub max_body_bytes: usize,
    /// Header read timeout.
    pub header_timeout: Duration,
    /// Failed challenge-URL logins per client.
    pub auth_limiter: auth_limiter::AuthLimiter,
    /// Platform ids recently found in the store.
    pub platforms: platform_cache::PlatformCache,
    /// Most connections served at once; idle ones make room, beyond that 503.
    pub max_connections: usize,
    /// Most connections served at once for one client address.
    pub max_connections_per_address: usize,
    /// A connection with no I/O for this long is closed.
    pub idle_timeout: Duration,
    /// Deadline and minimum rate for request bodies.
    pub body_timing: body::BodyTiming,
    /// Per-client-address limit on PKIOperation.
    pub pki_rate: limits::RateLimiter,
    /// Per-client-address limit on `/trust/v1/*`.
    pub trust_rate: limits::RateLimiter,
    /// Per-address limit on OCSP responses that need a signature.
    pub ocsp_sign_rate: limits::RateLimiter,
    /// The platform served at NDES's `/certsrv/mscep/mscep.dll`, if configured.
    pub ndes_platform: Option<String>,
}

impl App {
    /// The listener's state: limits and timeouts from `config`, fresh per-address limiters
    /// and caches.
    pub fn new(
        config: &crate::config::Config,
        authority: Authority,
        trust: crate::trust::TrustCheck,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            authority,
            trust,
            metrics,
            max_body_bytes: config.max_body_bytes,
            header_timeout: Duration::from_secs(config.header_timeout_secs),
            auth_limiter: auth_limiter::AuthLimiter::default(),
            platforms: platform_cache::PlatformCache::default(),
            max_connections: config.max_connections,
            max_connections_per_address: config.max_connections_per_address,
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
            body_timing: body::BodyTiming {
                deadline: Duration::from_secs(config.request_body_timeout_secs),
                min_rate: config.min_body_rate_bytes_per_sec,
                grace: body::RATE_GRACE,
            },
            pki_rate: limits::RateLimiter::new(config.pki_operation_per_minute),
            trust_rate: limits::RateLimiter::new(config.trust_per_minute),
            ocsp_sign_rate: limits::RateLimiter::new(config.ocsp_signed_per_minute),
            ndes_platform: config.ndes_platform.clone(),
        }
    }
}

impl App {
    /// The connection limits of a listener serving this app.
    pub fn conn_limits(&self) -> ConnLimits {
        ConnLimits {
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            metrics: self.metrics.clone(),
        }
    }

    /// Reads a request body of at most `max` bytes within the body deadline and minimum rate.
    pub async fn read_body(&self, body: Incoming, max: usize) -> Result<Bytes, HttpFailure> {
        match body::read(body, max, self.body_timing).await {
            Ok(b) => Ok(b),
            Err(body::BodyError::TooLarge) => Err(HttpFailure::TooLarge),
            Err(body::BodyError::TimedOut) => {
                self.metrics.body_timeout();
                Err(HttpFailure::RequestTimeout)
            }
            Err(e) => Err(HttpFailure::BadRequest(e.to_string())),
        }
    }
}

/// A response with a body.
pub type HttpResponse = Response<Full<Bytes>>;

/// Builds a response; header values here are static and valid.
pub fn response(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> HttpResponse {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

/// The response for an HTTP-level failure: plain text, one line.
pub fn failure_response(f: &HttpFailure) -> HttpResponse {
    if let HttpFailure::Internal(detail) = f {
        tracing::error!(%detail, "internal error");
    }
    let mut r = response(
        f.status(),
        "text/plain; charset=utf-8",
        format!("{}\n", f.client_text()),
    );
    if matches!(f, HttpFailure::RequestTimeout) {
        close_after(&mut r);
    }
    r
}

/// Marks a response as the last on its connection (the rest of an unread body is not read).
pub fn close_after(r: &mut HttpResponse) {
    r.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
}

/// Something that answers requests on a listener.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = HttpResponse> + Send;
}

impl Handler for App {
    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = HttpResponse> + Send {
        router::route(self, req, peer)
    }
}
