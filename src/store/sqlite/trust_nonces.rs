//! Trust-check nonces: the shared key they are authenticated with, and the record of nonces
//! already presented (so each is accepted once, on any node).

use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::error::Context;
use super::{NONCE_KEY_LEN, SqliteStore, StoreError};

const NONCE_KEY: &str = "trust-nonce-hmac";
/// Longest nonce id accepted (ids are hashes or short random values).
const MAX_NONCE_ID: usize = 64;

impl SqliteStore {
    /// The key trust nonces are authenticated with, created with `fresh` on first use.
    /// Every caller (every node) gets the same key: the first insert wins and all read it back.
    pub fn trust_nonce_key(
        &self,
        fresh: &[u8; NONCE_KEY_LEN],
        now: i64,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let read = |c: &rusqlite::Connection| {
            c.prepare_cached("SELECT secret FROM cluster_secrets WHERE name = ?1")
                .and_then(|mut s| {
                    s.query_row([NONCE_KEY], |r| r.get::<_, Vec<u8>>(0))
                        .optional()
                })
                .context("reading the trust nonce key")
        };
        if let Some(k) = self.read(read)? {
            return Ok(Zeroizing::new(k));
        }
        let key = self.write("creating the trust nonce key", |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO cluster_secrets (name, secret, created_at) VALUES (?1, ?2, ?3)",
                params![NONCE_KEY, fresh.as_slice(), now],
            )
            .context("creating the trust nonce key")?;
            read(tx)
        })?;
        key.map(Zeroizing::new).ok_or(StoreError::Corrupt {
            table: "cluster_secrets",
            reason: "trust nonce key missing after insert".into(),
        })
    }

    /// Records that the nonce `nonce_id` (valid until `expires_at`) was presented; false when
    /// it already was. Expired records are pruned in the same transaction.
    pub fn use_trust_nonce(
        &self,
        nonce_id: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        if nonce_id.is_empty() || nonce_id.len() > MAX_NONCE_ID {
            return Err(StoreError::Invalid {
                field: "nonce id",
                reason: format!("{} octets", nonce_id.len()),
            });
        }
        self.write("recording a used trust nonce", |tx| {
            tx.prepare_cached("DELETE FROM used_trust_nonces WHERE expires_at <= ?1")
                .and_then(|mut s| s.execute([now]))
                .context("pruning used trust nonces")?;
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO used_trust_nonces (nonce_id, expires_at) VALUES (?1, ?2)",
                )
                .and_then(|mut s| s.execute(params![nonce_id, expires_at]))
                .context("recording a used trust nonce")?;
            Ok(inserted == 1)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn the_first_key_wins_and_nonces_are_used_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let a = SqliteStore::open(&path).unwrap();
        let b = SqliteStore::open(&path).unwrap();
        let ka = a.trust_nonce_key(&[1; NONCE_KEY_LEN], 10).unwrap();
        let kb = b.trust_nonce_key(&[2; NONCE_KEY_LEN], 11).unwrap();
        assert_eq!(*ka, vec![1; NONCE_KEY_LEN]);
        assert_eq!(ka, kb, "two nodes share one key");

        assert!(a.use_trust_nonce(b"n1", 100, 50).unwrap());
        assert!(
            !b.use_trust_nonce(b"n1", 100, 51).unwrap(),
            "used on another node"
        );
        assert!(b.use_trust_nonce(b"n2", 100, 51).unwrap());
        // Once expired, the record is pruned (the nonce itself is refused by its expiry).
        assert!(a.use_trust_nonce(b"n3", 300, 200).unwrap());
        assert!(a.use_trust_nonce(b"n1", 400, 200).unwrap());
        assert!(a.use_trust_nonce(b"", 1, 0).is_err());
    }
}
