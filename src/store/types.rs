//! Domain records the store reads and writes. Times are `i64` unix seconds.

use super::StoreError;
use super::serial::format_serial;

pub use super::challenge_config::ChallengeConfig;

/// Length of a SHA-256 digest, the only hash the store accepts.
pub const SHA256_LEN: usize = 32;

/// An enrollment platform: an MDM or fleet with its own challenge settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Stable identifier chosen by the caller.
    pub id: String,
    /// Human name, unique across platforms.
    pub name: String,
    /// How requests from this platform prove they may enroll.
    pub challenge: ChallengeConfig,
    /// Whether single DES is accepted for this platform (RFC 8894 forbids it; off by default).
    pub allow_des: bool,
    /// Creation time.
    pub created_at: i64,
    /// The device-id pattern (a regex over the subject and SANs), if one is set: read with
    /// the platform so an enrollment needs no second lookup; changed only through
    /// [`Backend::set_device_id_pattern`](super::Backend::set_device_id_pattern).
    pub device_id_pattern: Option<String>,
}

/// What a CA certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaRole {
    /// Self-signed trust anchor.
    Root,
    /// Issues device certificates.
    Intermediate,
    /// Registration authority: signs and decrypts SCEP messages.
    Ra,
}

impl CaRole {
    /// Name used in the database and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Intermediate => "intermediate",
            Self::Ra => "ra",
        }
    }

    /// Inverse of [`CaRole::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Root, Self::Intermediate, Self::Ra]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Lifecycle of a CA certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaState {
    /// In use. At most one active authority per role.
    Active,
    /// Prepared for rollover, published but not yet used to sign.
    Next,
    /// No longer signs; kept for chains, CRLs and lookups.
    Retired,
}

impl CaState {
    /// Name used in the database and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Next => "next",
            Self::Retired => "retired",
        }
    }

    /// Inverse of [`CaState::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Next, Self::Retired]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A CA, intermediate or RA certificate with a reference to its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaRecord {
    /// Stable identifier chosen by the caller.
    pub id: String,
    /// Root, intermediate or RA.
    pub role: CaRole,
    /// Active, next or retired.
    pub state: CaState,
    /// Subject DN for display.
    pub subject: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Keystore file name; opaque to the store.
    pub key_ref: String,
    /// Id of the issuing authority; `None` for a self-signed root.
    pub issuer_id: Option<String>,
    /// Validity start.
    pub not_before: i64,
    /// Validity end.
    pub not_after: i64,
    /// Creation time.
    pub created_at: i64,
}

/// An RA's encryption-only certificate (keyUsage keyEncipherment), for clients that choose
/// their recipient by key usage. It belongs to one RA and shares its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionCertificate {
    /// The RA authority it belongs to.
    pub ra_id: String,
    /// Subject DN for display.
    pub subject: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Keystore file name; opaque to the store.
    pub key_ref: String,
    /// Validity start.
    pub not_before: i64,
    /// Validity end.
    pub not_after: i64,
    /// Creation time.
    pub created_at: i64,
}

/// Revocation status of an issued certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertStatus {
    /// Not revoked (it may still have expired: compare `not_after`).
    Valid,
    /// Revoked.
    Revoked,
}

impl CertStatus {
    /// Name used in the database and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Revoked => "revoked",
        }
    }

    /// Inverse of [`CertStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Valid, Self::Revoked]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Whether a recorded certificate may be handed out (see migration 0007).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Recorded, waiting for a delegated validator's confirmation: never handed out.
    Held,
    /// May be handed out (replays, CertPoll) while it is valid.
    Released,
    /// Revoked before anybody received it: a retry of its transaction is issued afresh.
    Withdrawn,
}

impl Delivery {
    /// Name used in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Released => "released",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// Inverse of [`Delivery::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Held, Self::Released, Self::Withdrawn]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// What every certificate row holds, whether about to be recorded ([`NewCertificate`]) or
/// read back ([`IssuedCertificate`]); both read through to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// Serial, big-endian unsigned magnitude. On recording, leading zero octets are ignored
    /// and it must be positive and fit a DER INTEGER of at most 20 octets (RFC 5280
    /// §4.1.2.2); read back, it has none.
    pub serial: Vec<u8>,
    /// Id of the issuing authority.
    pub issuer_id: String,
    /// Platform the request came through.
    pub platform_id: String,
    /// SCEP transactionID.
    pub transaction_id: String,
    /// SHA-256 of the subject public key info, 32 bytes.
    pub public_key_sha256: Vec<u8>,
    /// Subject DN for display.
    pub subject: String,
    /// Subject alternative names for display.
    pub sans: Vec<String>,
    /// Device the certificate belongs to, if known.
    pub device_id: Option<String>,
    /// Validity start.
    pub not_before: i64,
    /// Validity end.
    pub not_after: i64,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// When the request was received.
    pub requested_at: i64,
}

/// A certificate to record, as produced by issuance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCertificate {
    /// The row's common part.
    pub facts: CertificateFacts,
    /// The device's user, when known (kept on the device record).
    pub user: Option<String>,
    /// SHA-256 of the request signer's SubjectPublicKeyInfo, 32 bytes (CertPoll must come
    /// from the same key).
    pub signer_key_sha256: Vec<u8>,
    /// The request's fingerprint, 32 bytes ([`scepd_pki::scep::Request::fingerprint`]): a
    /// later request of the same transaction is a replay of this one only if it matches.
    pub request_sha256: Vec<u8>,
    /// Record it [`Delivery::Held`] (a delegated validator must confirm it first) rather than
    /// [`Delivery::Released`].
    pub held: bool,
}

/// A recorded certificate with its revocation status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// The row's common part.
    pub facts: CertificateFacts,
    /// Valid or revoked.
    pub status: CertStatus,
    /// Revocation time, when revoked.
    pub revoked_at: Option<i64>,
    /// Revocation reason as given by the caller, when revoked.
    pub revocation_reason: Option<String>,
    /// Whether it may be handed out.
    pub delivery: Delivery,
    /// SHA-256 of the request signer's SubjectPublicKeyInfo; `None` for certificates
    /// recorded before schema 7.
    pub signer_key_sha256: Option<Vec<u8>>,
    /// The fingerprint of the request it answered; `None` for certificates recorded before
    /// SQLite schema 10 / PostgreSQL schema 3 (no request is a replay of those).
    pub request_sha256: Option<Vec<u8>>,
    /// When a later request of the same transaction (the same key: a renewal) was issued a
    /// certificate; the transaction's current certificate is the live one without this.
    pub superseded_at: Option<i64>,
}

impl std::ops::Deref for NewCertificate {
    type Target = CertificateFacts;
    fn deref(&self) -> &CertificateFacts {
        &self.facts
    }
}

impl std::ops::Deref for IssuedCertificate {
    type Target = CertificateFacts;
    fn deref(&self) -> &CertificateFacts {
        &self.facts
    }
}

impl IssuedCertificate {
    /// The serial in the store's display format (lowercase hex).
    pub fn serial_hex(&self) -> String {
        format_serial(&self.serial)
    }
}

/// Outcome of [`Store::record_issuance`](super::Backend::record_issuance).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per enrollment; the contract names the variant unboxed"
)]
pub enum Issuance {
    /// The certificate was stored; the caller should send it.
    Recorded,
    /// The same request was already answered: send this certificate instead.
    Replayed(IssuedCertificate),
}

/// How a request relates to the certificates already issued for its SCEP transaction
/// ([`Backend::match_transaction`](super::Backend::match_transaction)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per enrollment; boxing would only add an allocation"
)]
pub enum TransactionMatch {
    /// Nothing live was issued for this transaction.
    New,
    /// The same request (fingerprint) was answered with this live certificate: send it again.
    Replay(IssuedCertificate),
    /// The transaction's current certificate certifies the same key, but this is another
    /// request (a same-key renewal, a resubmission): it is authorised and issued afresh, and
    /// its certificate supersedes this one.
    SameKey(IssuedCertificate),
    /// The transaction's current certificate certifies another key.
    OtherKey,
}

/// What an enrollment reads before it signs
/// ([`Backend::enrollment_lookup`](super::Backend::enrollment_lookup)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentLookup {
    /// How the request relates to its transaction's certificates.
    pub transaction: TransactionMatch,
    /// The named device's state, when that device is registered.
    pub device_state: Option<DeviceState>,
    /// The platform as it is now (`None`: it was deleted), so a caller that began with a
    /// remembered copy learns in the same read whether that copy is still right.
    pub platform: Option<Platform>,
}

impl TransactionMatch {
    /// Classifies `live`, the transaction's live certificates that are current or answered
    /// this request (at most one of each), for a request with these hashes. The one rule
    /// both backends apply, before signing and again inside the recording transaction.
    pub(crate) fn classify(
        live: Vec<IssuedCertificate>,
        request_sha256: &[u8],
        public_key_sha256: &[u8],
    ) -> Self {
        let (answered, current): (Vec<_>, Vec<_>) = live
            .into_iter()
            .partition(|c| c.request_sha256.as_deref() == Some(request_sha256));
        // The fingerprint covers the CSR, so a match certifies the same key.
        if let Some(cert) = answered.into_iter().next() {
            return Self::Replay(cert);
        }
        match current.into_iter().find(|c| c.superseded_at.is_none()) {
            None => Self::New,
            Some(c) if c.public_key_sha256 == public_key_sha256 => Self::SameKey(c),
            Some(_) => Self::OtherKey,
        }
    }

    /// What recording `cert` does about it, in both backends: send the replayed certificate,
    /// or insert after superseding the current one (a same-key request); another key is
    /// [`StoreError::TransactionConflict`].
    pub(crate) fn recording(self, cert: &NewCertificate) -> Result<Recording, StoreError> {
        match self {
            Self::New => Ok(Recording::Insert { supersede: None }),
            Self::Replay(existing) => Ok(Recording::Replay(existing)),
            Self::SameKey(current) => Ok(Recording::Insert {
                supersede: Some(current),
            }),
            Self::OtherKey => Err(StoreError::TransactionConflict {
                platform_id: cert.platform_id.clone(),
                transaction_id: cert.transaction_id.clone(),
            }),
        }
    }
}

/// See [`TransactionMatch::recording`].
#[allow(
    clippy::large_enum_variant,
    reason = "once per enrollment, consumed at once"
)]
pub(crate) enum Recording {
    /// Send this certificate; store nothing.
    Replay(IssuedCertificate),
    /// Insert the new certificate, first marking this one superseded.
    Insert {
        /// The transaction's current certificate, for a same-key request.
        supersede: Option<IssuedCertificate>,
    },
}

/// Which certificates [`Store::list_certificates`](super::Backend::list_certificates) returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateFilter {
    /// Only this platform.
    pub platform_id: Option<String>,
    /// Only this status.
    pub status: Option<CertStatus>,
    /// Only this device (on any platform unless `platform_id` is set too).
    pub device_id: Option<String>,
    /// At most this many (newest first).
    pub limit: Option<u32>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn enum_names_round_trip() {
        for r in [CaRole::Root, CaRole::Intermediate, CaRole::Ra] {
            assert_eq!(CaRole::parse(r.as_str()), Some(r));
        }
        for s in [CaState::Active, CaState::Next, CaState::Retired] {
            assert_eq!(CaState::parse(s.as_str()), Some(s));
        }
        for s in [CertStatus::Valid, CertStatus::Revoked] {
            assert_eq!(CertStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(CaRole::parse("Root"), None);
    }
}

/// Lifecycle state of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceState {
    /// Enrolls; its certificates are good.
    Active,
    /// Temporarily barred from enrolling; certificates unaffected.
    Suspended,
    /// Lost or compromised: certificates revoked, no enrollment until reactivated.
    Deactivated,
    /// Removed for good: certificates revoked, never enrolls again.
    Deleted,
}

impl DeviceState {
    /// Stored and displayed form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deactivated => "deactivated",
            Self::Deleted => "deleted",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "deactivated" => Self::Deactivated,
            "deleted" => Self::Deleted,
            _ => return None,
        })
    }
}

/// A device of a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Platform id.
    pub platform_id: String,
    /// Device id (from the certificate subject or SANs).
    pub device_id: String,
    /// User, when known.
    pub user: Option<String>,
    /// Lifecycle state.
    pub state: DeviceState,
    /// First enrollment.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// A state change to apply atomically.
#[derive(Debug, Clone)]
pub struct DeviceTransition<'a> {
    /// Platform id.
    pub platform_id: &'a str,
    /// Device id.
    pub device_id: &'a str,
    /// States the change is allowed from (compare-and-set).
    pub from: &'a [DeviceState],
    /// The new state.
    pub to: DeviceState,
    /// Revoke every unexpired valid certificate of the device with this reason.
    pub revoke_reason: Option<&'a str>,
    /// Who asked (for the audit trail).
    pub actor: &'a str,
    /// When.
    pub now: i64,
}

/// One revoked certificate, for CRLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCertificate {
    /// Serial magnitude.
    pub serial: Vec<u8>,
    /// Revocation time.
    pub revoked_at: i64,
    /// Reason as stored.
    pub reason: Option<String>,
}

/// A signed CRL as published for every node.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCrl {
    /// The issuer it is for.
    pub issuer_id: String,
    /// Its cRLNumber.
    pub number: u64,
    /// thisUpdate.
    pub this_update: i64,
    /// nextUpdate.
    pub next_update: i64,
    /// The revocation generation it reflects.
    pub generation: i64,
    /// The DER.
    pub der: Vec<u8>,
}

impl std::fmt::Debug for StoredCrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCrl")
            .field("issuer_id", &self.issuer_id)
            .field("number", &self.number)
            .field("generation", &self.generation)
            .field("der_len", &self.der.len())
            .finish_non_exhaustive()
    }
}

/// An admin token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    /// Unique name (the audit trail's "who").
    pub name: String,
    /// `admin` or `read`.
    pub scope: String,
    /// Creation time.
    pub created_at: i64,
    /// Expiry, if any.
    pub expires_at: Option<i64>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    /// Sequence number.
    pub id: i64,
    /// Unix time.
    pub at: i64,
    /// Who: a token name, `cli`, or `scep`.
    pub actor: String,
    /// What, e.g. `device.deactivated`.
    pub action: String,
    /// On what.
    pub subject: String,
    /// JSON details.
    pub detail: String,
}

/// Rows this long past their expiry are deleted when new challenges are handed out.
pub const RETENTION_SECS: i64 = 7 * 86_400;

/// Outcome of [`Backend::add_dynamic_challenge`](super::Backend::add_dynamic_challenge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeIssue {
    /// Stored; the caller may hand the challenge out.
    Added,
    /// The platform already has `max_outstanding` unexpired, unused challenges.
    CacheFull,
}

/// What the store knows about a one-time challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTimeState {
    /// Unused and unexpired.
    Outstanding {
        /// Expiry, unix seconds.
        expires_at: i64,
    },
    /// Already used (or burnt).
    Consumed,
    /// Unused but past its expiry.
    Expired,
    /// Never handed out by this platform.
    Unknown,
}

/// Status of one certificate, for OCSP and trust checks (no DER read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateState {
    /// Valid or revoked.
    pub status: CertStatus,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// Revocation reason as stored.
    pub reason: Option<String>,
    /// Validity end.
    pub not_after: i64,
    /// Platform.
    pub platform_id: String,
    /// Device, if known.
    pub device_id: Option<String>,
}

/// Why certificates withdrawn before delivery are revoked (RFC 5280 §5.3.1).
pub const WITHDRAWN_REASON: &str = "privilegeWithdrawn";

/// Length of the nonce key.
pub const NONCE_KEY_LEN: usize = 32;

/// An issuance handed to the store whose commit may still be under way (the SQLite backend
/// queues it for a group commit and returns at once, so the caller can finish its reply while
/// the disk flushes). Nothing about it may reach the client before [`PendingIssuance::wait`]
/// has returned `Ok`: only then is the row durable. Dropping it does not cancel the write.
#[must_use = "the issuance's outcome (replay, refusal, durability) is only known from wait()"]
pub struct PendingIssuance(Box<dyn FnOnce() -> Result<Issuance, StoreError> + Send>);

impl std::fmt::Debug for PendingIssuance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingIssuance")
    }
}

impl PendingIssuance {
    /// A pending issuance whose outcome `wait` blocks for (a backend's commit ticket).
    pub fn new(wait: impl FnOnce() -> Result<Issuance, StoreError> + Send + 'static) -> Self {
        Self(Box::new(wait))
    }

    /// Waits until the commit holding this issuance is durable (or failed) and returns what
    /// the store made of it.
    pub fn wait(self) -> Result<Issuance, StoreError> {
        (self.0)()
    }
}
