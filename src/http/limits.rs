//! Connection and request limits of the public listener: a cap on concurrent connections, an
//! idle timeout per connection (no byte read or written for that long closes it: slow-body and
//! keep-alive slowloris), and per-client-address rate limits (token buckets).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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

/// A stream that records when it last moved a byte.
pub struct IdleIo<S> {
    inner: S,
    activity: Activity,
}

impl<S> IdleIo<S> {
    /// Wraps `inner`; the returned [`Activity`] watches it.
    pub fn new(inner: S) -> (Self, Activity) {
        let activity = Activity::new();
        (
            Self {
                inner,
                activity: activity.clone(),
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
