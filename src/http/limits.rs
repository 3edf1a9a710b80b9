//! Connection and request limits of the public listener: an idle timeout per connection (no
//! byte read or written for that long closes it: slowloris on a silent connection), the I/O
//! side of the idle tracking of [`conn_tracker`](super::conn_tracker), and per-client-address
//! rate limits (token buckets). Slot caps live in `conn_tracker`, body deadlines in `body`.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::conn_tracker::ConnHook;

/// Most client addresses tracked per limiter; beyond it, full (idle) buckets are forgotten, and
/// if that is not enough the new address is limited (fail closed, bounded memory).
const MAX_TRACKED: usize = 100_000;

/// A per-address token bucket: `per_minute` requests per minute, bursts up to `per_minute`.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter; `per_minute == 0` disables it.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`; false when the client is over its rate.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let cap = f64::from(self.per_minute);
        let Ok(mut map) = self.buckets.lock() else {
            return false;
        };
        let refill = |tokens: f64, last: Instant| {
            (tokens + now.saturating_duration_since(last).as_secs_f64() * cap / 60.0).min(cap)
        };
        if !map.contains_key(&ip) && map.len() >= MAX_TRACKED {
            map.retain(|_, (t, last)| refill(*t, *last) < cap);
            if map.len() >= MAX_TRACKED {
                return false;
            }
        }
        let (tokens, last) = map.entry(ip).or_insert((cap, now));
        *tokens = refill(*tokens, *last);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Milliseconds since `epoch`, for the activity clock.
fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Last I/O activity of one connection.
#[derive(Clone)]
pub struct Activity {
    epoch: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        self.last_ms
            .store(millis_since(self.epoch), Ordering::Relaxed);
    }

    /// Resolves once the connection has seen no I/O for `idle`.
    pub async fn idle_for(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet = self.epoch.elapsed().saturating_sub(last);
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    }
}

/// A stream that records when it last moved a byte, and tells the connection's hook whether
/// request bytes arrived (busy) or a read found nothing waiting (idle once answered).
pub struct IdleIo<S> {
    inner: S,
    activity: Activity,
    hook: ConnHook,
}

impl<S> IdleIo<S> {
    /// Wraps `inner`; the returned [`Activity`] watches it.
    pub fn new(inner: S, hook: ConnHook) -> (Self, Activity) {
        let activity = Activity::new();
        (
            Self {
                inner,
                activity: activity.clone(),
                hook,
            },
            activity,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
            self.hook.busy();
        } else if r.is_pending() {
            self.hook.read_pending();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A response body that tells the connection's hook when hyper is done with it (written in
/// full, or dropped unsent).
pub struct TrackedBody {
    inner: Full<Bytes>,
    hook: ConnHook,
}

impl TrackedBody {
    /// Wraps a response body of the connection `hook` follows.
    pub fn new(inner: Full<Bytes>, hook: ConnHook) -> Self {
        Self { inner, hook }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.hook.answered();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refills() {
        let l = RateLimiter::new(60);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(l.allow_at(ip, t0));
        }
        assert!(!l.allow_at(ip, t0));
        // One token per second comes back.
        assert!(l.allow_at(ip, t0 + Duration::from_millis(1001)));
        assert!(!l.allow_at(ip, t0 + Duration::from_millis(1002)));
        // Other clients are unaffected.
        assert!(l.allow_at("192.0.2.2".parse().unwrap(), t0));
        assert!(RateLimiter::new(0).allow_at(ip, t0));
    }
}
