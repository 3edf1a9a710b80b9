//! Recording issued certificates, with replay detection, across nodes.
//!
//! A first enrollment without a one-time challenge is one statement (device, audit entry,
//! certificate), which commits by itself: one round trip. Everything else:
//! one transaction per issuance: the device (row held against a concurrent state change),
//! the one-time challenge (one conditional UPDATE: one winner), then the row. The first try
//! inserts as for a new transaction; the partial unique index on current certificates refuses
//! it when the transaction already has one (a replay, a same-key renewal, another key, or a
//! node that recorded the same request a moment earlier), and the next try looks first:
//! a replay (same request), a conflict (another key) or a current certificate to supersede.

use std::sync::atomic::{AtomicU64, Ordering};

use postgres::types::ToSql;

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
        let mut retries = 0;
        // The common case in one statement: a first enrollment (a new device, or none named)
        // without a one-time challenge to consume, at full durability (`SET LOCAL` needs a
        // transaction). Anything else, and a device that already exists (its state decides),
        // takes the transaction below; this statement then wrote nothing.
        if pending.challenge_sha256.is_none() && self.full_durability.load(Ordering::Relaxed) {
            match self.autocommit(|c| record_first_enrollment(c, pending)) {
                Ok(true) => {
                    self.counters.issuances.fetch_add(1, Ordering::Relaxed);
                    return Ok(Issuance::Recorded);
                }
                Ok(false) => {}
                // The transaction has a current certificate: look, as on a retry below.
                Err(StoreError::Postgres { source, .. })
                    if unique_violation(&source) == Some("certificates_transaction") =>
                {
                    retries = 1;
                }
                Err(e) => return Err(e),
            }
        }
        // Optimistic first: a new transaction (nearly every enrollment; the caller has
        // already looked for replays before signing) needs no look at its transaction's
        // certificates, because the unique index on current certificates refuses the insert
        // whenever there is something to look at: a replay, a same-key request to supersede,
        // another key. Then it runs again with the look, inside the transaction. Each retry
        // follows somebody else's commit for this transaction (same-key renewals raced from
        // several nodes), so a few suffice. One statement less per enrollment.
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
    let CheckedIssuance {
        cert,
        challenge_sha256,
        serial_hex,
        sans: _,
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
    // No existence checks before the INSERT: its foreign keys check the platform and the
    // issuer (taking a key-share lock on the platform row, so a concurrent delete_platform
    // cannot orphan it) and its unique keys the serial, each mapped to our error below. One
    // statement instead of four on the enrollment path.
    tx.execute(
        &format!(
            "INSERT INTO certificates ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'valid', NULL, NULL, $13, $14, \
              $15, NULL)"
        ),
        &certificate_params(pending),
    )
    .map_err(|e| insertion_error(e, pending))?;
    Ok(Issuance::Recorded)
}

/// The certificate row's values as `$1`…`$15`, in the order both inserts ([`record_in`],
/// [`record_first_enrollment`]) name them: one list, so the two cannot drift apart.
fn certificate_params(pending: &CheckedIssuance) -> [&(dyn ToSql + Sync); 15] {
    let cert = &pending.cert;
    // Promoted to 'static, so the array can borrow it.
    let delivery: &'static &'static str = if cert.held { &"held" } else { &"released" };
    [
        &pending.serial_hex,
        &cert.issuer_id,
        &cert.platform_id,
        &cert.transaction_id,
        &cert.public_key_sha256,
        &cert.subject,
        &pending.sans,
        &cert.device_id,
        &cert.not_before,
        &cert.not_after,
        &cert.der,
        &cert.requested_at,
        delivery,
        &cert.signer_key_sha256,
        &cert.request_sha256,
    ]
}

/// Our error for a failed certificate insert: a serial taken, a platform or issuer that does
/// not exist; anything else (the transaction's unique index among it, which `record`
/// matches) stays a database error.
fn insertion_error(e: postgres::Error, pending: &CheckedIssuance) -> StoreError {
    let cert = &pending.cert;
    if unique_violation(&e) == Some("certificates_serial") {
        return StoreError::DuplicateSerial {
            issuer_id: cert.issuer_id.clone(),
            serial: pending.serial_hex.clone(),
        };
    }
    match foreign_key_violation(&e) {
        Some("certificates_platform_id_fkey" | "devices_platform_id_fkey") => {
            StoreError::NotFound {
                what: "platform",
                id: cert.platform_id.clone(),
            }
        }
        Some("certificates_issuer_id_fkey") => StoreError::NotFound {
            what: "issuing authority",
            id: cert.issuer_id.clone(),
        },
        _ => StoreError::postgres("recording a certificate", e),
    }
}

/// The device registration (when the device is new), its audit entry and the certificate,
/// as one statement that commits by itself. Returns false, having written nothing, when the
/// named device already exists: the transaction path checks its state under a row lock.
/// A concurrent first enrollment of the same device waits here for the other's commit, then
/// finds the device and writes nothing either. Same rows as [`record_in`] writes.
fn record_first_enrollment(
    c: &mut super::sql::Sql<'_, postgres::Client>,
    pending: &CheckedIssuance,
) -> Result<bool, StoreError> {
    // $1…$15 the certificate row, $16 the device's user.
    let mut params = certificate_params(pending).to_vec();
    params.push(&pending.cert.user);
    // Every parameter is cast: in INSERT … SELECT nothing else gives PostgreSQL their types.
    let row = c
        .query_one(
            "WITH device AS ( \
                 INSERT INTO devices (platform_id, device_id, \"user\", state, created_at, updated_at) \
                 SELECT $3::text, $8::text, $16::text, 'active', $12::int8, $12::int8 \
                 WHERE $8::text IS NOT NULL \
                 ON CONFLICT (platform_id, device_id) DO NOTHING \
                 RETURNING device_id \
             ), registered AS ( \
                 INSERT INTO audit_events (at, actor, action, subject, detail) \
                 SELECT $12::int8, 'scep', 'device.registered', $3::text || '/' || device_id, '{}' \
                 FROM device \
             ), certificate AS ( \
                 INSERT INTO certificates (serial, issuer_id, platform_id, transaction_id, \
                     public_key_sha256, subject, sans, device_id, not_before, not_after, der, \
                     requested_at, status, delivery, signer_key_sha256, request_sha256) \
                 SELECT $1::text, $2::text, $3::text, $4::text, $5::bytea, $6::text, $7::text, \
                     $8::text, $9::int8, $10::int8, $11::bytea, $12::int8, 'valid', $13::text, \
                     $14::bytea, $15::bytea \
                 WHERE $8::text IS NULL OR EXISTS (SELECT 1 FROM device) \
                 RETURNING 1 \
             ) \
             SELECT EXISTS (SELECT 1 FROM certificate)",
            &params,
        )
        .map_err(|e| insertion_error(e, pending))?;
    row.try_get(0).context("recording a certificate")
}
