//! The public HTTP listener: connection handling, limits, graceful shutdown, one response
//! shape for errors. SCEP routing lives in [`scep`].

pub mod limits;
pub mod revocation;
pub mod router;
pub mod scep;
pub mod trust;

use std::convert::Infallible;
use std::future::Future;
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
    /// Request body cap in bytes.
    pub max_body_bytes: usize,
    /// Header read timeout.
    pub header_timeout: Duration,
    /// Most connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// A connection with no I/O for this long is closed.
    pub idle_timeout: Duration,
    /// Per-client-address limit on PKIOperation.
    pub pki_rate: limits::RateLimiter,
    /// Per-client-address limit on `/trust/v1/*`.
    pub trust_rate: limits::RateLimiter,
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

/// Serves connections until `shutdown` resolves, then waits (bounded) for in-flight requests.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(app.max_connections));
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
                    tracing::warn!(%peer, max = app.max_connections, "connection limit reached");
                    tokio::spawn(refuse_busy(stream));
                    continue;
                };
                let header_timeout = app.header_timeout;
                let idle_timeout = app.idle_timeout;
                let conn_app = app.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let app = conn_app.clone();
                    async move { Ok::<_, Infallible>(router::route(app, req, peer).await) }
                });
                let (io, activity) = limits::IdleIo::new(stream);
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new(io), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    tokio::select! {
                        r = conn => if let Err(e) = r {
                            tracing::debug!(error = %e, "connection ended with error");
                        },
                        () = activity.idle_for(idle_timeout) => {
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
