//! Which platform ids exist, remembered for a second so GetCACaps/GetCACert (the cheap, most
//! frequent operations) answer without a blocking-pool hop and an SQLite query per request.
//! Only existence is cached, and only positively: unknown ids always ask the store, and a
//! PKIOperation checks its platform's settings in its own read before signing
//! (`authority/remembered_platforms.rs`), so issuance decisions never use stale settings. A
//! platform removed by the CLI may keep answering the two GET operations for at most [`TTL`].
//! The read that fills this cache also leaves the platform with the authority, so an
//! enrollment right after it does not read it again.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long a looked-up platform id counts as existing.
pub const TTL: Duration = Duration::from_secs(1);

/// Recently seen platform ids.
#[derive(Debug, Default)]
pub struct PlatformCache {
    seen: RwLock<HashMap<String, Instant>>,
}

impl PlatformCache {
    /// True when `id` was found in the store less than [`TTL`] ago.
    pub fn known(&self, id: &str) -> bool {
        self.seen
            .read()
            .ok()
            .and_then(|m| m.get(id).copied())
            .is_some_and(|t| t.elapsed() < TTL)
    }

    /// Records that `id` exists now.
    pub fn remember(&self, id: &str) {
        if let Ok(mut m) = self.seen.write() {
            m.insert(id.to_owned(), Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_only_what_was_found() {
        let c = PlatformCache::default();
        assert!(!c.known("p1"));
        c.remember("p1");
        assert!(c.known("p1"));
        assert!(!c.known("p2"));
    }
}
