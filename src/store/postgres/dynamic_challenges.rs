//! One-time (dynamic) challenge verbs. A challenge is consumed by one conditional UPDATE of
//! its row, so of several nodes racing the same challenge exactly one changes the row; the
//! others see it consumed (PostgreSQL re-checks the condition after waiting for the winner).

use super::PgStore;
use crate::store::error::Context;
use crate::store::{ChallengeIssue, OneTimeState, RETENTION_SECS, SHA256_LEN, StoreError};

fn check_hash(sha256: &[u8]) -> Result<(), StoreError> {
    if sha256.len() == SHA256_LEN {
        return Ok(());
    }
    Err(StoreError::Invalid {
        field: "challenge hash",
        reason: format!(
            "expected {SHA256_LEN} bytes (SHA-256), got {}",
            sha256.len()
        ),
    })
}

/// Marks an outstanding challenge consumed at `now`, naming the certificate if there is one.
/// Returns whether a row changed: `false` means it was used, expired or unknown. Runs on the
/// caller's transaction.
pub(super) fn consume(
    tx: &mut super::sql::Tx<'_, '_>,
    platform_id: &str,
    sha256: &[u8],
    now: i64,
    certificate: Option<(&str, &str)>,
) -> Result<bool, StoreError> {
    let (issuer, serial) = certificate.unzip();
    let changed = tx
        .execute(
            "UPDATE dynamic_challenges SET consumed_at = $3, issuer_id = $4, \
             certificate_serial = $5 WHERE platform_id = $1 AND challenge_sha256 = $2 \
             AND consumed_at IS NULL AND expires_at > $3",
            &[&platform_id, &sha256, &now, &issuer, &serial],
        )
        .context("consuming a challenge")?;
    Ok(changed == 1)
}

/// Gives back the challenge consumed by a certificate withdrawn before delivery (see the
/// SQLite backend's `give_back`).
pub(super) fn give_back(
    tx: &mut super::sql::Tx<'_, '_>,
    issuer_id: &str,
    serial_hex: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE dynamic_challenges SET consumed_at = NULL, issuer_id = NULL, \
         certificate_serial = NULL WHERE issuer_id = $1 AND certificate_serial = $2",
        &[&issuer_id, &serial_hex],
    )
    .context("giving back a challenge")?;
    Ok(())
}

const OUTSTANDING: &str = "SELECT count(*) FROM dynamic_challenges WHERE platform_id = $1 \
    AND consumed_at IS NULL AND expires_at > $2";

impl PgStore {
    /// See [`crate::store::Backend::add_dynamic_challenge`]. The platform row is locked first,
    /// so nodes handing out challenges of one platform at once cannot overshoot its cache.
    pub fn add_dynamic_challenge(
        &self,
        platform_id: &str,
        sha256: &[u8],
        now: i64,
        expires_at: i64,
        max_outstanding: u32,
    ) -> Result<ChallengeIssue, StoreError> {
        check_hash(sha256)?;
        const CTX: &str = "adding a challenge";
        self.write(CTX, |tx| {
            if tx
                .query_opt(
                    "SELECT 1 FROM platforms WHERE id = $1 FOR UPDATE",
                    &[&platform_id],
                )
                .context(CTX)?
                .is_none()
            {
                return Err(StoreError::NotFound {
                    what: "platform",
                    id: platform_id.to_owned(),
                });
            }
            tx.execute(
                "DELETE FROM dynamic_challenges WHERE expires_at < $1",
                &[&(now - RETENTION_SECS)],
            )
            .context("pruning challenges")?;
            let outstanding: i64 = tx
                .query_one(OUTSTANDING, &[&platform_id, &now])
                .context("counting challenges")?
                .get(0);
            if outstanding >= i64::from(max_outstanding) {
                return Ok(ChallengeIssue::CacheFull);
            }
            let inserted = tx
                .execute(
                    "INSERT INTO dynamic_challenges (platform_id, challenge_sha256, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT (challenge_sha256) DO NOTHING",
                    &[&platform_id, &sha256, &now, &expires_at],
                )
                .context(CTX)?;
            if inserted == 0 {
                return Err(StoreError::Conflict("challenge already exists".into()));
            }
            Ok(ChallengeIssue::Added)
        })
    }

    /// See [`crate::store::Backend::dynamic_challenge_state`].
    pub fn dynamic_challenge_state(
        &self,
        platform_id: &str,
        sha256: &[u8],
        now: i64,
    ) -> Result<OneTimeState, StoreError> {
        self.read(|c| {
            let row = c
                .query_opt(
                    "SELECT expires_at, consumed_at FROM dynamic_challenges \
                     WHERE platform_id = $1 AND challenge_sha256 = $2",
                    &[&platform_id, &sha256],
                )
                .context("reading a challenge")?;
            Ok(
                match row.map(|r| (r.get::<_, i64>(0), r.get::<_, Option<i64>>(1))) {
                    None => OneTimeState::Unknown,
                    Some((_, Some(_))) => OneTimeState::Consumed,
                    Some((expires_at, None)) if expires_at > now => {
                        OneTimeState::Outstanding { expires_at }
                    }
                    Some(_) => OneTimeState::Expired,
                },
            )
        })
    }

    /// See [`crate::store::Backend::burn_dynamic_challenge`].
    pub fn burn_dynamic_challenge(
        &self,
        platform_id: &str,
        sha256: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        check_hash(sha256)?;
        self.write("burning a challenge", |tx| {
            consume(tx, platform_id, sha256, now, None)
        })
    }

    /// See [`crate::store::Backend::outstanding_dynamic_challenges`].
    pub fn outstanding_dynamic_challenges(
        &self,
        platform_id: &str,
        now: i64,
    ) -> Result<u32, StoreError> {
        self.read(|c| {
            let n: i64 = c
                .query_one(OUTSTANDING, &[&platform_id, &now])
                .context("counting challenges")?
                .get(0);
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
    }
}
