//! Recording issued certificates, with replay detection, across nodes.
//!
//! The common case, a first enrollment (a new device, or none named) without a one-time
//! challenge to consume, at full durability, goes to a group commit (`store/group_commit.rs`):
//! the committer writes every such enrollment queued meanwhile as one statement (devices,
//! their audit entries, certificates), which commits by itself. PostgreSQL's work per
//! enrollment is then a share of one statement and one commit, and the caller signs its
//! CertRep while the group commits. An enrollment the group statement could not take (its
//! device exists, so its state decides; a second one of a device in the same group; any
//! statement error, such as a unique key another node took first) is handed back to its caller,
//! which records it alone. A database that went away fails the whole group, as it would
//! fail each alone.
//!
//! Alone: one transaction per issuance: the device (row held against a concurrent state
//! change), the one-time challenge (one conditional UPDATE: one winner), then the row. The
//! first try inserts as for a new transaction; the partial unique index on current
//! certificates refuses it when the transaction already has one (a replay, a same-key renewal,
//! another key, or a node that recorded the same request a moment earlier), and the next try
//! looks first: a replay (same request), a conflict (another key) or a current certificate to
//! supersede.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use postgres::types::ToSql;

use super::PgStore;
use super::certificates::match_transaction;
use super::connection::Pool;
use super::dynamic_challenges::consume;
use super::sql::{foreign_key_violation, unique_violation};
use crate::store::checked_issuance::CheckedIssuance;
use crate::store::error::Context;
use crate::store::group_commit::GroupCommit;
use crate::store::types::Recording;
use crate::store::{Issuance, NewCertificate, PendingIssuance, StoreError, TransactionMatch};

/// How often a recording that lost a race for its transaction looks again.
const MAX_TRANSACTION_RETRIES: u32 = 4;

/// Commits and issuances recorded since connect.
#[derive(Debug, Default)]
pub(super) struct Counters {
    commits: AtomicU64,
    issuances: AtomicU64,
}

impl Counters {
    fn recorded(&self, issuances: u64) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.issuances.fetch_add(issuances, Ordering::Relaxed);
    }
}

/// What the group commit made of one queued issuance.
pub(super) enum Grouped {
    /// Committed with its group.
    Recorded,
    /// Not written: its caller records it alone.
    Alone,
}

/// The queue of first enrollments waiting for the next group commit.
pub(super) type Queue = GroupCommit<Arc<CheckedIssuance>, Grouped>;

/// A queue whose groups are committed on connections of `pool`.
pub(super) fn queue(pool: Pool, counters: Arc<Counters>) -> Queue {
    GroupCommit::new(Arc::new(move |group: &[Arc<CheckedIssuance>]| {
        commit_group(&pool, &counters, group)
    }))
}

impl PgStore {
    /// See [`crate::store::Backend::record_issuance`].
    pub fn record_issuance(&self, cert: &NewCertificate) -> Result<Issuance, StoreError> {
        self.begin_issuance(cert, None)?.wait()
    }

    /// See [`crate::store::Backend::record_issuance_consuming`].
    pub fn record_issuance_consuming(
        &self,
        cert: &NewCertificate,
        challenge_sha256: &[u8],
    ) -> Result<Issuance, StoreError> {
        self.begin_issuance(cert, Some(challenge_sha256))?.wait()
    }

    /// See [`crate::store::Backend::begin_issuance`]. A first enrollment is queued for the
    /// next group commit and this returns at once; anything else (a one-time challenge to
    /// consume, reduced durability: `SET LOCAL` needs a transaction) is recorded alone
    /// before this returns.
    pub fn begin_issuance(
        &self,
        cert: &NewCertificate,
        challenge_sha256: Option<&[u8]>,
    ) -> Result<PendingIssuance, StoreError> {
        let checked = CheckedIssuance::new(cert, challenge_sha256)?;
        if checked.challenge_sha256.is_some() || !self.full_durability.load(Ordering::Relaxed) {
            let outcome = self.record(&checked);
            return Ok(PendingIssuance::new(move || outcome));
        }
        let checked = Arc::new(checked);
        let ticket = self.issuances.submit(checked.clone())?;
        let store = self.clone();
        Ok(PendingIssuance::new(move || match ticket.wait()? {
            Grouped::Recorded => Ok(Issuance::Recorded),
            Grouped::Alone => store.record(&checked),
        }))
    }

    /// See [`crate::store::Backend::issuance_commit_stats`]: (commits that recorded
    /// certificates, certificates they recorded), a group counting once.
    pub fn issuance_commit_stats(&self) -> (u64, u64) {
        (
            self.counters.commits.load(Ordering::Relaxed),
            self.counters.issuances.load(Ordering::Relaxed),
        )
    }

    /// Records `pending` alone, in a transaction.
    fn record(&self, pending: &CheckedIssuance) -> Result<Issuance, StoreError> {
        let mut retries = 0;
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
            self.counters.recorded(1);
        }
        outcome
    }
}

/// Commits `group` as one statement; each entry it did not record is [`Grouped::Alone`]:
/// whatever made the statement refuse it, the entry's own recording meets it again and
/// reports it with its own context. Only a database that went away fails every entry at once
/// (HTTP 503 for each, as alone; the client's retry is a replay if the commit happened).
fn commit_group(
    pool: &Pool,
    counters: &Counters,
    group: &[Arc<CheckedIssuance>],
) -> Vec<Result<Grouped, StoreError>> {
    // A device's second enrollment in the group would find the device the first one
    // creates: it is recorded alone, after this commit, against that device's state.
    let mut devices = HashSet::new();
    let in_statement: Vec<bool> = group
        .iter()
        .map(|p| match &p.cert.device_id {
            Some(device) => devices.insert((p.cert.platform_id.as_str(), device.as_str())),
            None => true,
        })
        .collect();
    let members: Vec<&CheckedIssuance> = group
        .iter()
        .zip(&in_statement)
        .filter_map(|(p, &member)| member.then_some(&**p))
        .collect();
    let recorded = match super::sql::autocommit(pool, |c| record_first_enrollments(c, &members)) {
        Ok(recorded) => recorded,
        Err(StoreError::Unavailable(why)) => {
            return group
                .iter()
                .map(|_| Err(StoreError::Unavailable(why.clone())))
                .collect();
        }
        Err(e) => {
            tracing::debug!(
                entries = members.len(),
                error = %crate::logging::with_sources(&e),
                "group commit refused: its entries are recorded alone"
            );
            HashSet::new()
        }
    };
    if !recorded.is_empty() {
        counters.recorded(recorded.len() as u64);
    }
    group
        .iter()
        .zip(in_statement)
        .map(|(p, member)| {
            let key = (p.cert.issuer_id.clone(), p.serial_hex.clone());
            Ok(match member && recorded.contains(&key) {
                true => Grouped::Recorded,
                false => Grouped::Alone,
            })
        })
        .collect()
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
    let rows = CertificateRows::of(&[pending]);
    tx.execute(
        &format!("WITH input AS ({INPUT}) {INSERT_CERTIFICATES}"),
        &rows.params(),
    )
    .map_err(|e| insertion_error(e, pending))?;
    Ok(Issuance::Recorded)
}

/// The rows of [`CertificateRows::params`] as a table `input`: `unnest` turns the columns
/// back into rows.
const INPUT: &str = "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
     $5::bytea[], $6::text[], $7::text[], $8::text[], $9::int8[], $10::int8[], $11::bytea[], \
     $12::int8[], $13::text[], $14::bytea[], $15::bytea[], $16::text[]) \
     AS i(serial, issuer_id, platform_id, transaction_id, public_key_sha256, subject, sans, \
     device_id, not_before, not_after, der, requested_at, delivery, signer_key_sha256, \
     request_sha256, device_user)";

/// Inserts `input` as current, valid certificates (no check here: the schema's keys check
/// the platform, the issuer, the serial and the transaction).
const INSERT_CERTIFICATES: &str = "INSERT INTO certificates (serial, issuer_id, platform_id, \
     transaction_id, public_key_sha256, subject, sans, device_id, not_before, not_after, der, \
     requested_at, status, delivery, signer_key_sha256, request_sha256) \
     SELECT serial, issuer_id, platform_id, transaction_id, public_key_sha256, subject, sans, \
     device_id, not_before, not_after, der, requested_at, 'valid', delivery, signer_key_sha256, \
     request_sha256 \
     FROM input i";

/// Certificate rows to insert, a column each: one list of columns for both inserts
/// ([`record_in`], [`record_first_enrollments`]), so they cannot drift apart.
struct CertificateRows<'a> {
    serial: Vec<&'a str>,
    issuer_id: Vec<&'a str>,
    platform_id: Vec<&'a str>,
    transaction_id: Vec<&'a str>,
    public_key_sha256: Vec<&'a [u8]>,
    subject: Vec<&'a str>,
    sans: Vec<&'a str>,
    device_id: Vec<Option<&'a str>>,
    not_before: Vec<i64>,
    not_after: Vec<i64>,
    der: Vec<&'a [u8]>,
    requested_at: Vec<i64>,
    delivery: Vec<&'static str>,
    signer_key_sha256: Vec<&'a [u8]>,
    request_sha256: Vec<&'a [u8]>,
    /// Not a certificate column: the user of a device the statement registers.
    user: Vec<Option<&'a str>>,
}

impl<'a> CertificateRows<'a> {
    fn of(issuances: &[&'a CheckedIssuance]) -> Self {
        let column = |f: &dyn Fn(&'a CheckedIssuance) -> &'a str| -> Vec<&'a str> {
            issuances.iter().map(|p| f(p)).collect()
        };
        let bytes = |f: &dyn Fn(&'a CheckedIssuance) -> &'a [u8]| -> Vec<&'a [u8]> {
            issuances.iter().map(|p| f(p)).collect()
        };
        let time = |f: &dyn Fn(&CheckedIssuance) -> i64| -> Vec<i64> {
            issuances.iter().map(|p| f(p)).collect()
        };
        Self {
            serial: column(&|p| &p.serial_hex),
            issuer_id: column(&|p| &p.cert.issuer_id),
            platform_id: column(&|p| &p.cert.platform_id),
            transaction_id: column(&|p| &p.cert.transaction_id),
            public_key_sha256: bytes(&|p| &p.cert.public_key_sha256),
            subject: column(&|p| &p.cert.subject),
            sans: column(&|p| &p.sans),
            device_id: issuances
                .iter()
                .map(|p| p.cert.device_id.as_deref())
                .collect(),
            not_before: time(&|p| p.cert.not_before),
            not_after: time(&|p| p.cert.not_after),
            der: bytes(&|p| &p.cert.der),
            requested_at: time(&|p| p.cert.requested_at),
            delivery: issuances
                .iter()
                .map(|p| if p.cert.held { "held" } else { "released" })
                .collect(),
            signer_key_sha256: bytes(&|p| &p.cert.signer_key_sha256),
            request_sha256: bytes(&|p| &p.cert.request_sha256),
            user: issuances.iter().map(|p| p.cert.user.as_deref()).collect(),
        }
    }

    /// `$1`…`$16` of [`INPUT`].
    fn params(&self) -> [&(dyn ToSql + Sync); 16] {
        [
            &self.serial,
            &self.issuer_id,
            &self.platform_id,
            &self.transaction_id,
            &self.public_key_sha256,
            &self.subject,
            &self.sans,
            &self.device_id,
            &self.not_before,
            &self.not_after,
            &self.der,
            &self.requested_at,
            &self.delivery,
            &self.signer_key_sha256,
            &self.request_sha256,
            &self.user,
        ]
    }
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

/// First enrollments as one statement that commits by itself: for each, the device (when
/// one is named and new), its audit entry and the certificate; a certificate whose named
/// device already existed is not written (its state decides: the caller records it alone).
/// Returns the (issuer, serial) of each certificate written. All or nothing: a unique or
/// foreign key any entry breaks fails the statement. A concurrent first enrollment of the
/// same device on another node waits here for the other's commit, then finds the device.
/// Same rows as [`record_in`] writes; `members` name each device at most once.
fn record_first_enrollments(
    c: &mut super::sql::Sql<'_, postgres::Client>,
    members: &[&CheckedIssuance],
) -> Result<HashSet<(String, String)>, StoreError> {
    let input = CertificateRows::of(members);
    let rows = c
        .query(
            &format!(
                "WITH input AS ({INPUT}), device AS ( \
                     INSERT INTO devices (platform_id, device_id, \"user\", state, created_at, \
                         updated_at) \
                     SELECT platform_id, device_id, device_user, 'active', requested_at, \
                         requested_at \
                     FROM input WHERE device_id IS NOT NULL \
                     ON CONFLICT (platform_id, device_id) DO NOTHING \
                     RETURNING platform_id, device_id \
                 ), registered AS ( \
                     INSERT INTO audit_events (at, actor, action, subject, detail) \
                     SELECT i.requested_at, 'scep', 'device.registered', \
                         d.platform_id || '/' || d.device_id, '{{}}' \
                     FROM device d JOIN input i USING (platform_id, device_id) \
                 ) \
                 {INSERT_CERTIFICATES} \
                 WHERE i.device_id IS NULL OR EXISTS ( \
                     SELECT 1 FROM device d \
                     WHERE d.platform_id = i.platform_id AND d.device_id = i.device_id) \
                 RETURNING issuer_id, serial"
            ),
            &input.params(),
        )
        .context("recording certificates")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, postgres::Error>>()
        .context("recording certificates")
}
