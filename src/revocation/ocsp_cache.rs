//! Reuse of signed OCSP responses for requests without a nonce.
//!
//! Relying parties that gate logins on "this device is managed" ask about the same
//! certificates over and over, mostly without a nonce (Apple's and Windows' verifiers, most
//! HTTP client libraries). Each answer is a signature by the issuing CA (~0.3 ms with RSA-2048,
//! on the CPU slots enrollments use), so a busy relying party could crowd out enrollments.
//! RFC 5019 §2.2 lets a responder hand out a response produced earlier; we do so for at most
//! a minute, and never across a change that could alter it:
//!
//! - every entry carries the [`Stamp`] (store revocation generation and CA set) it was
//!   answered under; a lookup must present the current stamp, read from the store *before*
//!   the certificate states are read, so a revocation committed at any moment is either in
//!   the answer or makes the stamp differ. Revocation stays visible at once.
//! - only answers where every certificate is known (good or revoked) are kept: a flood of
//!   made-up serials cannot fill the cache, and "unknown" is never served from memory.
//! - the cache is bounded: only requests of at most [`MAX_REQUEST_BYTES`] are kept (a usual
//!   one asks about one certificate in ~80–120 bytes; the HTTP layer accepts up to 16 KiB),
//!   at most [`CAPACITY`] of them (a few MB); when full, expired entries go, and if that is
//!   not enough, the oldest quarter (so a relying party asking about more certificates than
//!   fit keeps most of its answers reused instead of the cache emptying every few thousand).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Entries kept at most: with requests of at most [`MAX_REQUEST_BYTES`] (a handful of CertIDs)
/// a response stays under ~2 KB, so under ~10 MB in all.
pub const CAPACITY: usize = 4096;

/// Longest request whose response is kept.
pub const MAX_REQUEST_BYTES: usize = 512;

/// Longest reuse of one response, in seconds: keeps thisUpdate within a minute of now for
/// clients that check its age.
const MAX_REUSE_SECS: i64 = 60;

/// Everything outside the request that an answer depends on, besides the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// The store's revocation generation (moves with every certificate or device change).
    pub generation: i64,
    /// The CA set's store version: a rotation changes the responders.
    pub ca_version: crate::ca::StoreVersion,
}

/// Signed responses by exact request bytes, valid under one [`Stamp`].
#[derive(Debug)]
pub struct OcspCache {
    reuse_secs: i64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    stamp: Option<Stamp>,
    entries: HashMap<Vec<u8>, Entry>,
    /// Insertion counter: the order in which entries were kept.
    inserted: u64,
}

#[derive(Debug)]
struct Entry {
    produced_at: i64,
    /// When it was kept, in [`Inner::inserted`] order.
    seq: u64,
    der: Vec<u8>,
}

impl OcspCache {
    /// A cache reusing responses for half their validity, at most a minute; a validity under
    /// two seconds disables it.
    pub fn new(validity_secs: i64) -> Self {
        Self {
            reuse_secs: (validity_secs / 2).clamp(0, MAX_REUSE_SECS),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The response for exactly `request`, if one was produced under `stamp` less than the
    /// reuse time before `now`.
    pub fn get(&self, request: &[u8], stamp: &Stamp, now: i64) -> Option<Vec<u8>> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.stamp.as_ref() != Some(stamp) {
            return None;
        }
        let entry = inner.entries.get(request)?;
        if !self.fresh(entry, now) {
            return None;
        }
        Some(entry.der.clone())
    }

    /// Keeps `der`, the response to `request` produced at `now` under `stamp`. Entries of
    /// another stamp are dropped, unless `stamp` is the older one (an answer that started
    /// before a change and finished after it): then nothing is kept.
    pub fn put(&self, request: &[u8], stamp: Stamp, now: i64, der: &[u8]) {
        if self.reuse_secs == 0 || request.len() > MAX_REQUEST_BYTES {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner
            .stamp
            .as_ref()
            .is_some_and(|current| stamp.generation < current.generation)
        {
            return;
        }
        if inner.stamp.as_ref() != Some(&stamp) {
            inner.entries.clear();
            inner.stamp = Some(stamp);
        }
        if inner.entries.len() >= CAPACITY && !inner.entries.contains_key(request) {
            inner.entries.retain(|_, e| self.fresh(e, now));
            if inner.entries.len() >= CAPACITY {
                inner.evict_oldest(CAPACITY / 4);
            }
        }
        inner.inserted += 1;
        let seq = inner.inserted;
        inner.entries.insert(
            request.to_vec(),
            Entry {
                produced_at: now,
                seq,
                der: der.to_vec(),
            },
        );
    }

    fn fresh(&self, entry: &Entry, now: i64) -> bool {
        (entry.produced_at..entry.produced_at + self.reuse_secs).contains(&now)
    }
}

impl Inner {
    /// Drops the `count` entries kept longest ago: O(n), once per `count` insertions.
    fn evict_oldest(&mut self, count: usize) {
        if count == 0 || self.entries.is_empty() {
            return;
        }
        let mut seqs: Vec<u64> = self.entries.values().map(|e| e.seq).collect();
        let nth = count.min(seqs.len()) - 1;
        let (_, &mut newest_evicted, _) = seqs.select_nth_unstable(nth);
        self.entries.retain(|_, e| e.seq > newest_evicted);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::store::CaState;

    fn stamp(generation: i64) -> Stamp {
        Stamp {
            generation,
            ca_version: crate::ca::StoreVersion {
                authorities: vec![("int".into(), CaState::Active)],
                encryption: Vec::new(),
            },
        }
    }

    #[test]
    fn a_response_is_reused_for_the_same_request_under_the_same_stamp_only() {
        let cache = OcspCache::new(3600);
        cache.put(b"req", stamp(1), 100, b"resp");
        assert_eq!(cache.get(b"req", &stamp(1), 100).unwrap(), b"resp");
        assert_eq!(cache.get(b"req", &stamp(1), 159).unwrap(), b"resp");
        // A minute at most, never from the future, never for other bytes.
        assert!(cache.get(b"req", &stamp(1), 160).is_none());
        assert!(cache.get(b"req", &stamp(1), 99).is_none());
        assert!(cache.get(b"other", &stamp(1), 100).is_none());
        // A revocation (generation) or a CA change (version) makes it stale at once.
        assert!(cache.get(b"req", &stamp(2), 100).is_none());
        let mut rotated = stamp(1);
        rotated
            .ca_version
            .authorities
            .push(("int2".into(), CaState::Next));
        assert!(cache.get(b"req", &rotated, 100).is_none());
    }

    #[test]
    fn a_new_stamp_drops_the_old_entries() {
        let cache = OcspCache::new(3600);
        cache.put(b"a", stamp(1), 100, b"ra");
        cache.put(b"b", stamp(2), 100, b"rb");
        assert!(cache.get(b"a", &stamp(2), 100).is_none());
        // An answer computed under an older generation never comes back either, and does
        // not push out the newer ones.
        cache.put(b"a", stamp(1), 100, b"old");
        assert!(cache.get(b"a", &stamp(2), 100).is_none());
        assert_eq!(cache.get(b"b", &stamp(2), 100).unwrap(), b"rb");
    }

    #[test]
    fn large_requests_are_not_kept() {
        let cache = OcspCache::new(3600);
        let big = vec![0u8; MAX_REQUEST_BYTES + 1];
        cache.put(&big, stamp(1), 100, b"resp");
        assert!(cache.get(&big, &stamp(1), 100).is_none());
        let fits = vec![0u8; MAX_REQUEST_BYTES];
        cache.put(&fits, stamp(1), 100, b"resp");
        assert!(cache.get(&fits, &stamp(1), 100).is_some());
    }

    #[test]
    fn reuse_is_at_most_half_the_validity_and_off_for_tiny_validities() {
        let cache = OcspCache::new(20);
        cache.put(b"req", stamp(1), 100, b"resp");
        assert!(cache.get(b"req", &stamp(1), 109).is_some());
        assert!(cache.get(b"req", &stamp(1), 110).is_none());
        let off = OcspCache::new(1);
        off.put(b"req", stamp(1), 100, b"resp");
        assert!(off.get(b"req", &stamp(1), 100).is_none());
    }

    #[test]
    fn a_full_cache_drops_its_oldest_quarter() {
        let cache = OcspCache::new(3600);
        let total = CAPACITY as u32 + 10;
        for i in 0..total {
            cache.put(&i.to_be_bytes(), stamp(1), 100, b"r");
        }
        let len = cache.inner.lock().unwrap().entries.len();
        assert_eq!(len, CAPACITY - CAPACITY / 4 + 10);
        let kept = |i: u32| cache.get(&i.to_be_bytes(), &stamp(1), 100).is_some();
        // The oldest quarter went; everything newer, the newest included, is still reused.
        let first_kept = (CAPACITY / 4) as u32;
        assert!((0..first_kept).all(|i| !kept(i)));
        assert!((first_kept..total).all(kept));
        // Expired entries go first, before any fresh one.
        for i in total..total + (CAPACITY - len) as u32 {
            cache.put(&i.to_be_bytes(), stamp(1), 100, b"r");
        }
        assert_eq!(cache.inner.lock().unwrap().entries.len(), CAPACITY);
        cache.put(b"late", stamp(1), 100 + 60, b"r");
        assert_eq!(cache.inner.lock().unwrap().entries.len(), 1);
        assert!(cache.get(b"late", &stamp(1), 160).is_some());
    }
}
