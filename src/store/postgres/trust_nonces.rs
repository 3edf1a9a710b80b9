//! Trust-check nonces: the shared key and the record of nonces already presented.

use zeroize::Zeroizing;

use super::PgStore;
use crate::store::error::Context;
use crate::store::{NONCE_KEY_LEN, StoreError};

const NONCE_KEY: &str = "trust-nonce-hmac";
/// Longest nonce id accepted (as on SQLite).
const MAX_NONCE_ID: usize = 64;

impl PgStore {
    /// See [`crate::store::Backend::trust_nonce_key`]: the first node's key wins.
    pub fn trust_nonce_key(
        &self,
        fresh: &[u8; NONCE_KEY_LEN],
        now: i64,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        const CTX: &str = "reading the trust nonce key";
        self.write(CTX, |tx| {
            tx.execute(
                "INSERT INTO cluster_secrets (name, secret, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
                &[&NONCE_KEY, &fresh.as_slice(), &now],
            )
            .context(CTX)?;
            let row = tx
                .query_one(
                    "SELECT secret FROM cluster_secrets WHERE name = $1",
                    &[&NONCE_KEY],
                )
                .context(CTX)?;
            Ok(Zeroizing::new(row.get::<_, Vec<u8>>(0)))
        })
    }

    /// See [`crate::store::Backend::use_trust_nonce`].
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
        const CTX: &str = "recording a used trust nonce";
        self.write(CTX, |tx| {
            tx.execute(
                "DELETE FROM used_trust_nonces WHERE expires_at <= $1",
                &[&now],
            )
            .context("pruning used trust nonces")?;
            let inserted = tx
                .execute(
                    "INSERT INTO used_trust_nonces (nonce_id, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (nonce_id) DO NOTHING",
                    &[&nonce_id, &expires_at],
                )
                .context(CTX)?;
            Ok(inserted == 1)
        })
    }
}
