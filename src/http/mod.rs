//! The public HTTP listener: connection handling, limits, graceful shutdown, one response
//! shape for errors. SCEP routing lives in [`scep`].

pub mod auth_limiter;
pub mod challenge_url;
pub mod limits;
pub mod platform_cache;
pub mod revocation;
pub mod router;
pub mod scep;
pub mod trust;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::authority::Authority;
use crate::error::HttpFailure;

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
    /// Most connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// A connection with no I/O for this long is closed.
    pub idle_timeout: Duration,
    /// Per-client-address limit on PKIOperation.
    pub pki_rate: limits::RateLimiter,
    /// Per-client-address limit on `/trust/v1/*`.
    pub trust_rate: limits::RateLimiter,
    /// Per-address limit on OCSP responses that need a signature.
    pub ocsp_sign_rate: limits::RateLimiter,
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
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
            pki_rate: limits::RateLimiter::new(config.pki_operation_per_minute),
            trust_rate: limits::RateLimiter::new(config.trust_per_minute),
            ocsp_sign_rate: limits::RateLimiter::new(config.ocsp_signed_per_minute),
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
    response(
        f.status(),
        "text/plain; charset=utf-8",
        format!("{}\n", f.client_text()),
    )
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

/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-listener connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Time a client may take to send its request headers.
    pub header_timeout: Duration,
    /// A connection with no I/O for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
}

/// Serves connections until `shutdown` resolves, then waits (bounded) for in-flight requests.
/// With `tls`, every connection is a TLS server connection.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    bounds: ConnLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(bounds.max_connections));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, max = bounds.max_connections, "connection limit reached");
                    tokio::spawn(refuse_busy(stream));
                    continue;
                };
                let service_handler = handler.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let h = service_handler.clone();
                    async move { Ok::<_, Infallible>(h.handle(req, peer).await) }
                });
                let builder = {
                    let mut b = http1::Builder::new();
                    b.timer(TokioTimer::new()).header_read_timeout(bounds.header_timeout);
                    b
                };
                let watcher = graceful.watcher();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let (io, activity) = limits::IdleIo::new(stream);
                    let served = async {
                        match tls {
                            None => watcher.watch(builder.serve_connection(TokioIo::new(io), service)).await,
                            Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                                Ok(Ok(tls_stream)) => watcher.watch(builder.serve_connection(TokioIo::new(tls_stream), service)).await,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    Ok(())
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    Ok(())
                                }
                            },
                        }
                    };
                    tokio::select! {
                        r = served => if let Err(e) = r {
                            tracing::debug!(error = %e, "connection ended with error");
                        },
                        () = activity.idle_for(bounds.idle_timeout) => {
                            tracing::debug!(%peer, "idle timeout: connection closed");
                        }
                    }
                    drop(permit);
                });
            }
            () = &mut shutdown => {
                tracing::info!("shutting down: no new connections");
                break;
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within 10 s");
    }
}

/// Answers a connection over the limit with a bare 503 and closes it, all within two seconds.
/// The request is drained after our FIN so the close does not turn into a reset that could
/// discard the answer before the client reads it.
async fn refuse_busy(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let msg = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 28\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many connections: retry\n";
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream.write_all(msg).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}
