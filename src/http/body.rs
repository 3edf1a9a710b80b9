//! Reading a request body within limits: a size cap, an absolute deadline, and a minimum
//! average rate once a grace period is over. A client that trickles its body (one byte per
//! idle timeout keeps a connection "active" forever) loses its slot at the deadline.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;

/// Time every body gets before the minimum rate applies (slow starts, TCP slow start, a
/// client that sends headers and body separately).
pub const RATE_GRACE: Duration = Duration::from_secs(5);

/// How long a body may take.
#[derive(Debug, Clone, Copy)]
pub struct BodyTiming {
    /// The whole body must have arrived this long after it was first awaited.
    pub deadline: Duration,
    /// After `grace`, at least this many bytes per second on average since the start
    /// (0: no minimum).
    pub min_rate: u32,
    /// See [`RATE_GRACE`].
    pub grace: Duration,
}

impl BodyTiming {
    /// Time allowed in all for a body that has delivered `received` bytes so far: the grace
    /// period plus one second per `min_rate` bytes (the mod_reqtimeout rule), never more than
    /// the deadline.
    fn allowed(&self, received: u64) -> Duration {
        if self.min_rate == 0 {
            return self.deadline;
        }
        let rate = u64::from(self.min_rate);
        // Integer arithmetic: no float rounding, no panic on any input.
        let earned = Duration::from_secs(received / rate)
            + Duration::from_nanos((received % rate) * 1_000_000_000 / rate);
        self.grace.saturating_add(earned).min(self.deadline)
    }
}

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// More than the cap (declared or sent).
    #[error("request body too large")]
    TooLarge,
    /// Not complete by the deadline, or slower than the minimum rate.
    #[error("request body not received in time")]
    TimedOut,
    /// The connection failed while reading.
    #[error("could not read request body: {0}")]
    Read(String),
}

/// Reads `body` in full: at most `max` bytes, within `timing`.
pub async fn read<B>(body: B, max: usize, timing: BodyTiming) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let max64 = u64::try_from(max).unwrap_or(u64::MAX);
    // Content-Length over the cap: refuse before reading anything.
    if body.size_hint().lower() > max64 {
        return Err(BodyError::TooLarge);
    }
    let start = tokio::time::Instant::now();
    let mut body = body;
    let mut buf = BytesMut::new();
    let mut received: u64 = 0;
    loop {
        let left = timing.allowed(received).saturating_sub(start.elapsed());
        let frame = match tokio::time::timeout(left, body.frame()).await {
            Err(_) => return Err(BodyError::TimedOut),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(BodyError::Read(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        // Trailers carry nothing we use.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received = received.saturating_add(data.len() as u64);
        if received > max64 {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::Full;
    use hyper::body::Frame;
    use std::convert::Infallible;
    use std::future::Future;

    fn timing(deadline_ms: u64, min_rate: u32, grace_ms: u64) -> BodyTiming {
        BodyTiming {
            deadline: Duration::from_millis(deadline_ms),
            min_rate,
            grace: Duration::from_millis(grace_ms),
        }
    }

    /// A body sending `chunk` every `every`, `left` times.
    struct Trickle {
        chunk: &'static [u8],
        every: Duration,
        left: usize,
        sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    }

    fn trickle(chunk: &'static [u8], every: Duration, left: usize) -> Trickle {
        Trickle {
            chunk,
            every,
            left,
            sleep: Box::pin(tokio::time::sleep(every)),
        }
    }

    impl Body for Trickle {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.left == 0 {
                return std::task::Poll::Ready(None);
            }
            std::task::ready!(self.sleep.as_mut().poll(cx));
            let next = tokio::time::Instant::now() + self.every;
            self.sleep.as_mut().reset(next);
            self.left -= 1;
            std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(self.chunk)))))
        }
    }

    #[test]
    fn allowance_grows_with_the_bytes_and_stops_at_the_deadline() {
        let t = timing(30_000, 100, 5_000);
        assert_eq!(t.allowed(0), Duration::from_secs(5));
        assert_eq!(t.allowed(1_000), Duration::from_secs(15));
        assert_eq!(t.allowed(1_000_000), Duration::from_secs(30));
        assert_eq!(timing(30_000, 0, 5_000).allowed(0), Duration::from_secs(30));
    }

    #[tokio::test]
    async fn whole_bodies_are_read_and_the_cap_holds() {
        let t = timing(1_000, 100, 500);
        let b = read(Full::new(Bytes::from_static(b"abc")), 3, t)
            .await
            .unwrap();
        assert_eq!(&b[..], b"abc");
        assert!(matches!(
            read(Full::new(Bytes::from_static(b"abcd")), 3, t).await,
            Err(BodyError::TooLarge)
        ));
    }

    #[tokio::test]
    async fn a_trickling_body_meets_the_deadline_or_the_rate() {
        // 1 byte per 20 ms: fine with no rate and a long deadline.
        let ok = read(
            trickle(b"x", Duration::from_millis(20), 5),
            100,
            timing(5_000, 0, 0),
        );
        assert_eq!(ok.await.unwrap().len(), 5);
        // The absolute deadline cuts it off whatever the rate.
        let cut = read(
            trickle(b"x", Duration::from_millis(20), 50),
            100,
            timing(200, 0, 0),
        );
        assert!(matches!(cut.await, Err(BodyError::TimedOut)));
        // 50 B/s is below a 1000 B/s minimum once the grace period is over...
        let slow = read(
            trickle(b"x", Duration::from_millis(20), 50),
            100,
            timing(5_000, 1_000, 100),
        );
        assert!(matches!(slow.await, Err(BodyError::TimedOut)));
        // ...and 10 bytes per 20 ms (500 B/s) keeps above a 100 B/s one.
        let fast = read(
            trickle(b"0123456789", Duration::from_millis(20), 10),
            1_000,
            timing(5_000, 100, 100),
        );
        assert_eq!(fast.await.unwrap().len(), 100);
    }
}
