//! Recording issued certificates, with replay detection, across nodes.
//!
//! One transaction per issuance: the replay check, the device (row held against a concurrent
//! state change), the one-time challenge (one conditional UPDATE: one winner), then the row.
//! Two nodes recording the same SCEP transaction at once both pass the replay check; the
//! partial unique index lets one insert, and the other looks again, finding the committed
//! certificate: a replay (same request), a conflict (another key) or, for a same-key new
//! request (a renewal reusing the transactionID), a current certificate to supersede.

use std::sync::atomic::{AtomicU64, Ordering};

use super::PgStore;
use super::certificates::{COLUMNS, match_transaction};
use super::dynamic_challenges::consume;
use super::sql::{foreign_key_violation, unique_violation};
use crate::store::checked_issuance::CheckedIssuance;
use crate::store::error::Context;
use crate::store::{Issuance, NewCertificate, PendingIssuance, StoreError, TransactionMatch};

/// How often a recording that lost a race for its transaction looks again.
const MAX_TRANSACTION_RETRIES: u32 = 4;

/// Issuances recorded since connect (each is one commit on this backend).
#[derive(Debug, Default)]
pub(super) struct Counters {
    issuances: AtomicU64,
}

impl PgStore {
    /// See [`crate::store::Backend::record_issuance`].
    pub fn record_issuance(&self, cert: &NewCertificate) -> Result<Issuance, StoreError> {
        self.record(&CheckedIssuance::new(cert, None)?)
    }

    /// See [`crate::store::Backend::record_issuance_consuming`].
    pub fn record_issuance_consuming(
        &self,
        cert: &NewCertificate,
        challenge_sha256: &[u8],
    ) -> Result<Issuance, StoreError> {
        self.record(&CheckedIssuance::new(cert, Some(challenge_sha256))?)
    }

    /// See [`crate::store::Backend::begin_issuance`]. The commit happens here, before this
    /// returns (PostgreSQL groups concurrent commits' WAL flushes itself); the pending
    /// issuance only hands over its outcome.
    pub fn begin_issuance(
        &self,
        cert: &NewCertificate,
        challenge_sha256: Option<&[u8]>,
    ) -> Result<PendingIssuance, StoreError> {
        let checked = CheckedIssuance::new(cert, challenge_sha256)?;
        let outcome = self.record(&checked);
        Ok(PendingIssuance::new(move || outcome))
    }

    /// See [`crate::store::Backend::issuance_commit_stats`]: one commit per issuance here.
    pub fn issuance_commit_stats(&self) -> (u64, u64) {
        let n = self.counters.issuances.load(Ordering::Relaxed);
        (n, n)
    }

    fn record(&self, pending: &CheckedIssuance) -> Result<Issuance, StoreError> {
        // Another node recorded this transaction between our check and our insert: look
        // again, now that its row is committed. Each retry follows somebody else's commit
        // for this transaction (same-key renewals raced from several nodes), so a few suffice.
        let mut retries = 0;
        let outcome = loop {
            match self.write("recording a certificate", |tx| record_in(tx, pending)) {
                Err(StoreError::Postgres { source, .. })
                    if unique_violation(&source) == Some("certificates_transaction")
                        && retries < MAX_TRANSACTION_RETRIES =>
                {
                    retries += 1;
                }
                other => break other,
            }
        };
        if matches!(outcome, Ok(Issuance::Recorded)) {
            self.counters.issuances.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }
}

fn record_in(
    tx: &mut super::sql::Tx<'_, '_>,
    pending: &CheckedIssuance,
) -> Result<Issuance, StoreError> {
    const CTX: &str = "recording a certificate";
    let CheckedIssuance {
        cert,
        challenge_sha256,
        serial_hex,
        sans,
    } = pending;
    let prior = match_transaction(
        tx,
        &cert.platform_id,
        &cert.transaction_id,
        &cert.request_sha256,
        &cert.public_key_sha256,
    )?;
    match prior {
        TransactionMatch::New => {}
        TransactionMatch::Replay(existing) => return Ok(Issuance::Replayed(existing)),
        // A same-key request supersedes the current certificate. Two nodes doing this at
        // once: the second UPDATE waits for the first commit, then the second INSERT meets
        // the unique index and `record` looks again.
        TransactionMatch::SameKey(current) => {
            tx.execute(
                "UPDATE certificates SET superseded_at = $3 WHERE issuer_id = $1 AND serial = $2",
                &[
                    &current.issuer_id,
                    &current.serial_hex(),
                    &cert.requested_at,
                ],
            )
            .context("superseding a certificate")?;
        }
        TransactionMatch::OtherKey => {
            return Err(StoreError::TransactionConflict {
                platform_id: cert.platform_id.clone(),
                transaction_id: cert.transaction_id.clone(),
            });
        }
    }
    if let Some(device_id) = &cert.device_id {
        super::devices::enroll_device(
            tx,
            &cert.platform_id,
            device_id,
            cert.user.as_deref(),
            cert.requested_at,
        )?;
    }
    if let Some(sha256) = challenge_sha256 {
        let named = Some((cert.issuer_id.as_str(), serial_hex.as_str()));
        if !consume(tx, &cert.platform_id, sha256, cert.requested_at, named)? {
            return Err(StoreError::ChallengeSpent);
        }
    }
    let duplicate = || StoreError::DuplicateSerial {
        issuer_id: cert.issuer_id.clone(),
        serial: serial_hex.clone(),
    };
    // No existence checks before the INSERT: its foreign keys check the platform and the
    // issuer (taking a key-share lock on the platform row, so a concurrent delete_platform
    // cannot orphan it) and its unique keys the serial, each mapped to our error below. One
    // statement instead of four on the enrollment path.
    let delivery = if cert.held { "held" } else { "released" };
    tx.execute(
        &format!(
            "INSERT INTO certificates ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'valid', NULL, NULL, $13, $14, \
              $15, NULL)"
        ),
        &[
            serial_hex,
            &cert.issuer_id,
            &cert.platform_id,
            &cert.transaction_id,
            &cert.public_key_sha256,
            &cert.subject,
            sans,
            &cert.device_id,
            &cert.not_before,
            &cert.not_after,
            &cert.der,
            &cert.requested_at,
            &delivery,
            &cert.signer_key_sha256,
            &cert.request_sha256,
        ],
    )
    .map_err(|e| {
        if unique_violation(&e) == Some("certificates_serial") {
            return duplicate();
        }
        match foreign_key_violation(&e) {
            Some("certificates_platform_id_fkey") => StoreError::NotFound {
                what: "platform",
                id: cert.platform_id.clone(),
            },
            Some("certificates_issuer_id_fkey") => StoreError::NotFound {
                what: "issuing authority",
                id: cert.issuer_id.clone(),
            },
            _ => StoreError::postgres(CTX, e),
        }
    })?;
    Ok(Issuance::Recorded)
}
