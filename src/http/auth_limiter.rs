//! Rate limiting of failed HTTP Basic logins per client address (the challenge URL).
//!
//! After [`MAX_FAILURES`] wrong logins within [`WINDOW`], a client gets 429 until the window
//! that began with its first failure ends. A success clears the client's record. The table
//! is bounded: expired entries are pruned, and once [`MAX_TRACKED`] clients are tracked new
//! ones are still checked for credentials but not counted (the limiter protects against
//! guessing, which 128-bit passwords already defeat; it must never grow without bound).
//! Behind a reverse proxy every client shares the proxy's address: the limit then applies to
//! all of them together.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong logins tolerated per client per window.
pub const MAX_FAILURES: u32 = 10;
/// The counting window.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Most clients tracked at once.
pub const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    first: Instant,
    failures: u32,
}

/// Failed-login counters per client address.
#[derive(Debug, Default)]
pub struct AuthLimiter {
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

impl AuthLimiter {
    /// `Some(retry_after)` while `client` is locked out.
    pub fn blocked(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().ok()?;
        let e = entries.get(&client)?;
        let end = e.first + WINDOW;
        (e.failures >= MAX_FAILURES && now < end).then(|| end - now)
    }

    /// Counts a failed login; returns the failures in the current window.
    pub fn failed(&self, client: IpAddr, now: Instant) -> u32 {
        let Ok(mut entries) = self.entries.lock() else {
            return 0;
        };
        if entries.len() >= MAX_TRACKED && !entries.contains_key(&client) {
            entries.retain(|_, e| now < e.first + WINDOW);
            if entries.len() >= MAX_TRACKED {
                return 0;
            }
        }
        let e = entries.entry(client).or_insert(Entry {
            first: now,
            failures: 0,
        });
        if now >= e.first + WINDOW {
            *e = Entry {
                first: now,
                failures: 0,
            };
        }
        e.failures = e.failures.saturating_add(1);
        e.failures
    }

    /// Clears `client`'s failures after a successful login.
    pub fn succeeded(&self, client: IpAddr) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&client);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn locks_out_after_the_limit_until_the_window_ends() {
        let l = AuthLimiter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for i in 1..=MAX_FAILURES {
            assert!(l.blocked(ip, t0).is_none());
            assert_eq!(l.failed(ip, t0), i);
        }
        assert_eq!(l.blocked(ip, t0), Some(WINDOW));
        assert!(l.blocked(other, t0).is_none());
        assert!(l.blocked(ip, t0 + WINDOW).is_none());
        assert_eq!(l.failed(ip, t0 + WINDOW), 1, "a new window starts");
        l.succeeded(ip);
        assert!(l.blocked(ip, t0 + WINDOW).is_none());
    }
}
