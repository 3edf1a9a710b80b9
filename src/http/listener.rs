//! The accept loop shared by the public and admin listeners: slots and idle hand-over
//! ([`conn_tracker`](super::conn_tracker)), header and idle timeouts, optional TLS, refusals
//! (503), graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::Handler;
use super::conn_tracker::{Admission, ConnHook, ConnTracker, Refusal, Slot, address_key};
use super::limits::{IdleIo, TrackedBody};
use crate::metrics::Metrics;

/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a newcomer waits for the idle connection it displaced to close (an idle HTTP/1
/// connection closes at once; this only bounds the rare one that just got a request).
const HANDOVER_WAIT: Duration = Duration::from_secs(2);

/// Refused connections answered at once (503 written, then up to two seconds to drain the
/// request). Beyond it a refused connection gets its 503 only if the socket takes it without
/// waiting, and is closed: refusals never hold more descriptors than this.
pub const MAX_REFUSING: usize = 32;

/// Per-listener connection limits.
#[derive(Clone)]
pub struct ConnLimits {
    /// Time a client may take to send its request headers.
    pub header_timeout: Duration,
    /// A connection with no I/O for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections served at once; when all are busy more are answered 503 and closed,
    /// otherwise the longest-idle connection makes room.
    pub max_connections: usize,
    /// Most connections served at once for one client address (IPv6: one /64).
    pub max_connections_per_address: usize,
    /// Where refusals and idle closes are counted.
    pub metrics: Arc<Metrics>,
}

/// What every connection task of a listener shares.
struct Listener<H> {
    handler: Arc<H>,
    bounds: ConnLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    tracker: Arc<ConnTracker>,
    refusing: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
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
    let tracker = ConnTracker::new(bounds.max_connections, bounds.max_connections_per_address);
    let (stop_tx, stop) = watch::channel(false);
    let ctx = Arc::new(Listener {
        handler,
        bounds,
        tls,
        tracker: tracker.clone(),
        refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
        stop,
    });
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
                ctx.accepted(stream, peer);
            }
            () = &mut shutdown => {
                tracing::info!("shutting down: no new connections");
                break;
            }
        }
    }
    drop(listener);
    // Every connection closes once its request in flight (if any) is answered.
    let _ = stop_tx.send(true);
    if !tracker.drained(Duration::from_secs(10)).await {
        tracing::warn!("in-flight requests did not finish within 10 s");
    }
}

impl<H: Handler> Listener<H> {
    /// Admits, hands over or refuses a new connection; never waits.
    fn accepted(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        match self.tracker.admit(address_key(peer.ip())) {
            Admission::Admitted(slot) => {
                tokio::spawn(self.clone().connection(stream, peer, slot));
            }
            Admission::Handover(handover) => {
                self.bounds.metrics.idle_connection_closed();
                tracing::debug!(%peer, "slots full: closing the longest-idle connection");
                let ctx = self.clone();
                tokio::spawn(async move {
                    match handover.wait(HANDOVER_WAIT).await {
                        Some(slot) => ctx.connection(stream, peer, slot).await,
                        None => ctx.refuse(stream, peer, Refusal::Busy),
                    }
                });
            }
            Admission::Refused(why) => self.refuse(stream, peer, why),
        }
    }

    /// Answers 503 and closes, within bounded descriptors (see [`MAX_REFUSING`]).
    fn refuse(&self, stream: TcpStream, peer: SocketAddr, why: Refusal) {
        self.bounds
            .metrics
            .connection_refused(why == Refusal::PerAddress);
        match self.refusing.clone().try_acquire_owned() {
            Ok(permit) => {
                // Logged only while refusals are answered in full, so a flood cannot flood
                // the log as well.
                match why {
                    Refusal::Busy => {
                        tracing::warn!(%peer, max = self.bounds.max_connections, "connection limit reached")
                    }
                    Refusal::PerAddress => {
                        tracing::warn!(%peer, max = self.bounds.max_connections_per_address, "per-address connection limit reached")
                    }
                }
                tokio::spawn(async move {
                    refuse_busy(stream, why).await;
                    drop(permit);
                });
            }
            Err(_) => {
                let _ = stream.try_write(refusal_message(why));
            }
        }
    }

    /// Serves one connection in `slot`, then frees the slot or hands it to a newcomer.
    async fn connection(self: Arc<Self>, stream: TcpStream, peer: SocketAddr, slot: Slot) {
        let hook = self.tracker.register(&slot);
        let (io, activity) = IdleIo::new(stream, hook.clone());
        let service_handler = self.handler.clone();
        let service_hook = hook.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let (h, hook) = (service_handler.clone(), service_hook.clone());
            async move {
                hook.busy();
                let response = h.handle(req, peer).await;
                Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, hook)))
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.bounds.header_timeout);
        let mut stop = self.stop.clone();
        let served = async {
            let Some(acceptor) = &self.tls else {
                let conn = builder.serve_connection(TokioIo::new(io), service);
                return drive(conn, &hook, self.stop.clone()).await;
            };
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(io));
            tokio::select! {
                r = handshake => match r {
                    Ok(Ok(tls_stream)) => {
                        let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
                        drive(conn, &hook, self.stop.clone()).await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        Ok(())
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        Ok(())
                    }
                },
                // Displaced, or the listener stops, before the handshake got anywhere.
                () = hook.close_requested() => Ok(()),
                () = stopping(&mut stop) => Ok(()),
            }
        };
        tokio::select! {
            r = served => if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with error");
            },
            () = activity.idle_for(self.bounds.idle_timeout) => {
                tracing::debug!(%peer, "idle timeout: connection closed");
            }
        }
        hook.finish();
        hook.hand_over(slot);
    }
}

/// Drives an HTTP connection; when its slot is wanted elsewhere or the listener stops, starts
/// hyper's graceful shutdown (an idle connection closes at once, a busy one after its answer).
async fn drive<C>(conn: C, hook: &ConnHook, mut stop: watch::Receiver<bool>) -> Result<(), C::Error>
where
    C: GracefulConnection,
{
    tokio::pin!(conn);
    let mut asked = false;
    loop {
        tokio::select! {
            // Requests to close first: an idle connection must close before hyper reads a
            // request that arrived meanwhile (it would then finish that request first).
            biased;
            () = hook.close_requested(), if !asked => {
                asked = true;
                conn.as_mut().graceful_shutdown();
            }
            () = stopping(&mut stop), if !asked => {
                asked = true;
                conn.as_mut().graceful_shutdown();
            }
            r = conn.as_mut() => return r,
        }
    }
}

/// Resolves once the listener stops (or is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// The bare 503 for a refused connection.
fn refusal_message(why: Refusal) -> &'static [u8] {
    match why {
        Refusal::Busy => b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 28\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many connections: retry\n",
        Refusal::PerAddress => b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 46\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many connections from this address: retry\n",
    }
}

/// Answers a refused connection with a bare 503 and closes it, all within two seconds.
/// The request is drained after our FIN so the close does not turn into a reset that could
/// discard the answer before the client reads it.
async fn refuse_busy(mut stream: TcpStream, why: Refusal) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream.write_all(refusal_message(why)).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_declare_their_length() {
        for why in [Refusal::Busy, Refusal::PerAddress] {
            let msg = std::str::from_utf8(refusal_message(why)).unwrap_or_default();
            let (head, body) = msg.split_once("\r\n\r\n").unwrap_or_default();
            assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        }
    }
}
