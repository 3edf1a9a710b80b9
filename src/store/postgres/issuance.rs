//! Recording issued certificates, with replay detection, across nodes.
//!
//! One transaction per issuance: the device (row held against a concurrent state change),
//! the one-time challenge (one conditional UPDATE: one winner), then the row. The first try
//! inserts as for a new transaction; the partial unique index on current certificates refuses
//! it when the transaction already has one (a replay, a same-key renewal, another key, or a
//! node that recorded the same request a moment earlier), and the next try looks first:
//! a replay (same request), a conflict (another key) or a current certificate to supersede.

use std::sync::atomic::{AtomicU64, Ordering};

use super::PgStore;
use super::certificates::{COLUMNS, match_transaction};
use super::dynamic_challenges::consume;
use super::sql::{foreign_key_violation, unique_violation};
use crate::store::checked_issuance::CheckedIssuance;
use crate::store::error::Context;
use crate::store::types::Recording;
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
        // Optimistic first: a new transaction (nearly every enrollment; the caller has
        // already looked for replays before signing) needs no look at its transaction's
        // certificates, because the unique index on current certificates refuses the insert
        // whenever there is something to look at: a replay, a same-key request to supersede,
        // another key. Then it runs again with the look, inside the transaction. Each retry
        // follows somebody else's commit for this transaction (same-key renewals raced from
        // several nodes), so a few suffice. One statement less per enrollment.
        let mut retries = 0;
        let outcome = loop {
            let look = retries > 0;
            match self.write("recording a certificate", |tx| record_in(tx, pending, look)) {
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

/// Records `pending` in `tx`; with `look`, first classifies the transaction's certificates
/// (replay, supersede, conflict); without, inserts as for a new transaction and lets the
/// unique index object.
fn record_in(
    tx: &mut super::sql::Tx<'_, '_>,
    pending: &CheckedIssuance,
    look: bool,
) -> Result<Issuance, StoreError> {
    const CTX: &str = "recording a certificate";
    let CheckedIssuance {
        cert,
        challenge_sha256,
        serial_hex,
        sans,
    } = pending;
    let prior = match look {
        true => match_transaction(
            tx,
            &cert.platform_id,
            &cert.transaction_id,
            &cert.request_sha256,
            &cert.public_key_sha256,
        )?,
        false => TransactionMatch::New,
    };
    match prior.recording(cert)? {
        Recording::Replay(existing) => return Ok(Issuance::Replayed(existing)),
        // A same-key request supersedes the current certificate. Two nodes doing this at
        // once: the second UPDATE waits for the first commit, then the second INSERT meets
        // the unique index and `record` looks again.
        Recording::Insert {
            supersede: Some(current),
        } => {
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
        Recording::Insert { supersede: None } => {}
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
