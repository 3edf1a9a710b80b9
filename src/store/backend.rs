//! The one interface of the store: every domain operation either backend (SQLite, the
//! embedded default; PostgreSQL for several nodes) provides, with the same transaction
//! boundaries (each verb is one transaction; the unique keys carry the invariants) so that
//! callers never know which one they talk to. Verbs block (disk or network I/O, lock waits):
//! async callers run them on a blocking thread.

use zeroize::Zeroizing;

use super::{
    AdminToken, AuditEvent, CaRecord, CaRole, CertificateFilter, CertificateState, ChallengeIssue,
    Device, DeviceState, DeviceTransition, EncryptionCertificate, EnrollmentLookup, Issuance,
    IssuedCertificate, NONCE_KEY_LEN, NewCertificate, OneTimeState, PendingIssuance, Platform,
    RevokedCertificate, StoreError, StoredCrl, TransactionMatch,
};

/// A store backend. See the module docs; [`super::Store`] is how callers hold one.
pub trait Backend: Send + Sync + std::fmt::Debug {
    // CA records

    /// Adds CA records atomically: all or none (used by PKI bootstrap and rollover). Records
    /// may name issuers earlier or later in the same batch. Fails with
    /// [`StoreError::Conflict`] on a taken id or a second active authority of one role, and
    /// [`StoreError::NotFound`] when an issuer is neither stored nor in the batch.
    fn insert_authorities(&self, records: &[CaRecord]) -> Result<(), StoreError>;

    /// All CA records, oldest first (ties in insertion order).
    fn authorities(&self) -> Result<Vec<CaRecord>, StoreError>;

    /// The active authority of `role`, if any (there is at most one).
    fn active_authority(&self, role: CaRole) -> Result<Option<CaRecord>, StoreError>;

    /// Records `cert` as its RA's encryption certificate. `Ok(false)`: the RA already has one
    /// (another node added it first) and nothing was stored; the caller discards its key.
    /// [`StoreError::NotFound`] when the RA is not an RA authority of this store.
    fn add_encryption_certificate(&self, cert: &EncryptionCertificate) -> Result<bool, StoreError>;

    /// Every RA's encryption certificate, oldest first.
    fn encryption_certificates(&self) -> Result<Vec<EncryptionCertificate>, StoreError>;

    /// True once PKI bootstrap has stored an active intermediate.
    fn is_initialized(&self) -> Result<bool, StoreError>;

    // Platforms

    /// Adds a platform. Fails with [`StoreError::Conflict`] if the id or name is taken, and
    /// [`StoreError::Invalid`] if a static secret hash is not 32 bytes.
    fn insert_platform(&self, platform: &Platform) -> Result<(), StoreError>;

    /// The platform with this id, if any.
    fn platform(&self, id: &str) -> Result<Option<Platform>, StoreError>;

    /// The platform with this name, if any.
    fn platform_by_name(&self, name: &str) -> Result<Option<Platform>, StoreError>;

    /// The dynamic platform whose challenge URL user name is `username`, if any.
    fn dynamic_platform_by_username(&self, username: &str) -> Result<Option<Platform>, StoreError>;

    /// All platforms, oldest first (ties by name).
    fn list_platforms(&self) -> Result<Vec<Platform>, StoreError>;

    /// Replaces a static platform's secret hash.
    fn update_static_secret(&self, platform_id: &str, secret_hash: &[u8])
    -> Result<(), StoreError>;

    /// Deletes a platform that has issued nothing (certificates keep their platform for audit:
    /// a platform with certificates is a [`StoreError::Conflict`]).
    fn delete_platform(&self, platform_id: &str) -> Result<(), StoreError>;

    /// The per-platform device id pattern, if set.
    fn device_id_pattern(&self, platform_id: &str) -> Result<Option<String>, StoreError>;

    /// Sets (or clears) the per-platform device id pattern.
    fn set_device_id_pattern(
        &self,
        platform_id: &str,
        pattern: Option<&str>,
    ) -> Result<(), StoreError>;

    // Devices

    /// One device.
    fn device(&self, platform_id: &str, device_id: &str) -> Result<Option<Device>, StoreError>;

    /// Devices, optionally of one platform, with one device id, or in one state.
    fn list_devices(
        &self,
        platform_id: Option<&str>,
        device_id: Option<&str>,
        state: Option<DeviceState>,
    ) -> Result<Vec<Device>, StoreError>;

    /// Applies a state change atomically: checks the current state is in `t.from`, updates it,
    /// revokes the device's unexpired valid certificates when asked, writes the audit event.
    /// Returns the device after the change and how many certificates were revoked.
    fn transition_device(&self, t: &DeviceTransition<'_>) -> Result<(Device, usize), StoreError>;

    // Certificates

    /// The current certificate of this SCEP transaction on this platform, if any (CertPoll's
    /// answer): live, and not superseded by a later same-key request's. Withdrawn ones
    /// (revoked before delivery) are not returned, so the transaction may be answered afresh.
    fn certificate_by_transaction(
        &self,
        platform_id: &str,
        transaction_id: &str,
    ) -> Result<Option<IssuedCertificate>, StoreError>;

    /// How a request (its fingerprint and certified key) relates to what this transaction
    /// was already issued: a replay, a same-key new request, another key, or nothing.
    /// Recording applies the same rule again atomically.
    fn match_transaction(
        &self,
        platform_id: &str,
        transaction_id: &str,
        request_sha256: &[u8],
        public_key_sha256: &[u8],
    ) -> Result<TransactionMatch, StoreError>;

    /// [`Self::match_transaction`], the state of the request's device (`device_id`) and the
    /// platform as it is now, read together before signing. Early answers only: recording
    /// checks the transaction and the device again atomically. A backend where each read
    /// costs a round trip answers all three in one.
    fn enrollment_lookup(
        &self,
        platform_id: &str,
        transaction_id: &str,
        request_sha256: &[u8],
        public_key_sha256: &[u8],
        device_id: Option<&str>,
    ) -> Result<EnrollmentLookup, StoreError> {
        let transaction = self.match_transaction(
            platform_id,
            transaction_id,
            request_sha256,
            public_key_sha256,
        )?;
        let device_state = match device_id {
            Some(id) => self.device(platform_id, id)?.map(|d| d.state),
            None => None,
        };
        Ok(EnrollmentLookup {
            transaction,
            device_state,
            platform: self.platform(platform_id)?,
        })
    }

    /// The certificate `issuer_id` issued with `serial` (leading zero octets ignored), if any.
    /// A serial that could never have been recorded (zero, too long) is simply not found.
    fn certificate_by_serial(
        &self,
        issuer_id: &str,
        serial: &[u8],
    ) -> Result<Option<IssuedCertificate>, StoreError>;

    /// Certificates matching `filter`, most recently recorded first.
    fn list_certificates(
        &self,
        filter: &CertificateFilter,
    ) -> Result<Vec<IssuedCertificate>, StoreError>;

    /// Marks a certificate revoked and returns it. Revoking an already revoked certificate
    /// changes nothing: the first time and reason stay, as CRLs must keep them. `reason` is
    /// stored as given. Unknown certificate: [`StoreError::NotFound`]. A change moves the
    /// revocation generation.
    fn revoke_certificate(
        &self,
        issuer_id: &str,
        serial: &[u8],
        revoked_at: i64,
        reason: Option<&str>,
    ) -> Result<IssuedCertificate, StoreError>;

    /// Releases a [`Delivery::Held`] certificate once its delegated validator confirmed it.
    /// Returns it, or `None` when it can no longer be delivered: revoked meanwhile (by an
    /// operator or a device deactivation), withdrawn, or not on record.
    fn release_certificate(
        &self,
        issuer_id: &str,
        serial: &[u8],
    ) -> Result<Option<IssuedCertificate>, StoreError>;

    /// Revokes a certificate that nobody received ([`WITHDRAWN_REASON`]) and marks it
    /// [`Delivery::Withdrawn`], in one transaction: a retry of its SCEP transaction is then
    /// issued afresh instead of being answered with it, and the one-time challenge it
    /// consumed, if any, is given back (it authorised nothing that was delivered).
    /// A certificate already released is left alone and reported as
    /// [`StoreError::Conflict`]: somebody may hold it. Unknown: [`StoreError::NotFound`].
    fn withdraw_certificate(
        &self,
        issuer_id: &str,
        serial: &[u8],
        now: i64,
    ) -> Result<IssuedCertificate, StoreError>;

    // Issuance

    /// Records an issued certificate, or recognises a replay, in one immediate transaction.
    ///
    /// If (platform, transaction) already has a certificate for the same public key, returns
    /// [`Issuance::Replayed`] with it and stores nothing: the caller must send that one and
    /// discard the certificate it just signed. A different key under the same transaction is
    /// [`StoreError::TransactionConflict`]; a serial the issuer already used is
    /// [`StoreError::DuplicateSerial`]; an unknown platform or issuer is
    /// [`StoreError::NotFound`]; a zero or over-long serial or a public key hash that is not
    /// 32 bytes is [`StoreError::Invalid`]. The serial is stored without leading zero octets.
    fn record_issuance(&self, cert: &NewCertificate) -> Result<Issuance, StoreError>;

    /// Like [`Backend::record_issuance`], and in the same transaction consumes the one-time
    /// challenge of `cert.platform_id` whose SHA-256 is `challenge_sha256`, naming the
    /// certificate. If the challenge is not outstanding at `cert.requested_at` (used by a
    /// concurrent request, expired, unknown) nothing is stored and the result is
    /// [`StoreError::ChallengeSpent`]; so N concurrent enrollments with one challenge record
    /// exactly one certificate. A replay of an already answered transaction returns
    /// [`Issuance::Replayed`] and consumes nothing.
    fn record_issuance_consuming(
        &self,
        cert: &NewCertificate,
        challenge_sha256: &[u8],
    ) -> Result<Issuance, StoreError>;

    /// Queues the recording of `cert` (consuming the one-time challenge `challenge_sha256`
    /// if given) for the next group commit and returns at once, so the caller can finish its
    /// reply while the disk flushes; [`PendingIssuance::wait`] gives the result described at
    /// [`Backend::record_issuance`] and [`Backend::record_issuance_consuming`]. Invalid input fails
    /// here, before anything is queued.
    fn begin_issuance(
        &self,
        cert: &NewCertificate,
        challenge_sha256: Option<&[u8]>,
    ) -> Result<PendingIssuance, StoreError>;

    /// (commits, issuances) recorded through group commit since the store was opened; their
    /// ratio is the mean number of issuances per fsync.
    fn issuance_commit_stats(&self) -> (u64, u64);

    // Revocation (CRL, OCSP)

    /// Revoked, unexpired certificates of an issuer (expired ones may leave the CRL, RFC 5280 §3.3).
    fn revoked_certificates(
        &self,
        issuer_id: &str,
        now: i64,
    ) -> Result<Vec<RevokedCertificate>, StoreError>;

    /// Allocates the next CRL number of an issuer (monotonic, persisted).
    fn next_crl_number(&self, issuer_id: &str) -> Result<u64, StoreError>;

    /// The revocation generation: changes whenever a certificate or device status changes.
    fn revocation_generation(&self) -> Result<i64, StoreError>;

    /// Takes or renews lease `name` for `holder` until `now + ttl_secs`. True when `holder`
    /// holds it now: it was free, expired, or already `holder`'s. One holder at a time on one
    /// database, whichever node asks.
    fn claim_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<bool, StoreError>;

    /// Gives lease `name` up if `holder` holds it (a clean shutdown: another process need not
    /// wait for it to expire).
    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// Stores `crl` as its issuer's published CRL if `holder` holds lease `lease` at `now`
    /// and `crl` is newer (higher number) than the stored one. False when it was not stored.
    fn store_crl(
        &self,
        crl: &StoredCrl,
        lease: &str,
        holder: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// The published CRL of an issuer, if its number is above `newer_than` (0: any).
    fn published_crl(
        &self,
        issuer_id: &str,
        newer_than: u64,
    ) -> Result<Option<StoredCrl>, StoreError>;

    /// The status of one certificate by issuer and serial.
    fn certificate_state(
        &self,
        issuer_id: &str,
        serial: &[u8],
    ) -> Result<Option<CertificateState>, StoreError>;

    /// Revokes one certificate with a reason and an audit event; bumps the generation.
    /// Already revoked: unchanged (the first time and reason stay).
    fn revoke_one(
        &self,
        issuer_id: &str,
        serial: &[u8],
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Certificates whose serial (lowercase hex) is `serial_hex`, across issuers.
    fn find_serial(&self, serial_hex: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    // CA rotation

    /// Stages `records` (state `next`) in one transaction, with an optional automatic
    /// activation time. Refuses when a `next` authority of the same role is already staged.
    fn stage_authorities(
        &self,
        records: &[CaRecord],
        activate_at: Option<i64>,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Activates staged authorities: in one transaction each one's role's active authority
    /// becomes `retired` and it becomes `active`. Unknown or not-staged ids are refused.
    fn activate_authorities(&self, ids: &[&str], actor: &str, now: i64) -> Result<(), StoreError>;

    /// Staged authorities whose automatic activation time has come.
    fn due_activations(&self, now: i64) -> Result<Vec<String>, StoreError>;

    /// Staged authorities of a role.
    fn staged_authority(&self, role: CaRole) -> Result<Option<CaRecord>, StoreError>;

    // One-time (dynamic) challenges

    /// Stores the SHA-256 of a new one-time challenge of `platform_id`, valid until
    /// `expires_at`, unless the platform already has `max_outstanding` outstanding ones
    /// ([`ChallengeIssue::CacheFull`]). Counting and inserting are one transaction, so
    /// concurrent callers cannot overshoot. Also deletes rows expired for longer than
    /// [`RETENTION_SECS`]. A hash seen before is [`StoreError::Conflict`].
    fn add_dynamic_challenge(
        &self,
        platform_id: &str,
        sha256: &[u8],
        now: i64,
        expires_at: i64,
        max_outstanding: u32,
    ) -> Result<ChallengeIssue, StoreError>;

    /// The state of the challenge with this SHA-256 on `platform_id` at `now`. Read only:
    /// whether it is still unused when the certificate is recorded is decided there.
    fn dynamic_challenge_state(
        &self,
        platform_id: &str,
        sha256: &[u8],
        now: i64,
    ) -> Result<OneTimeState, StoreError>;

    /// Uses up an outstanding challenge without a certificate (an authentic request that
    /// policy refused). Returns whether it was outstanding.
    fn burn_dynamic_challenge(
        &self,
        platform_id: &str,
        sha256: &[u8],
        now: i64,
    ) -> Result<bool, StoreError>;

    /// How many challenges of `platform_id` are outstanding at `now`.
    fn outstanding_dynamic_challenges(
        &self,
        platform_id: &str,
        now: i64,
    ) -> Result<u32, StoreError>;

    // Admin tokens, audit trail, platform secrets

    /// Stores a new token (name unique → [`StoreError::Conflict`]).
    fn insert_admin_token(&self, t: &AdminToken, token_hash: &[u8]) -> Result<(), StoreError>;

    /// The token with this hash, if any (revoked and expired ones included: the caller decides).
    fn admin_token_by_hash(&self, token_hash: &[u8]) -> Result<Option<AdminToken>, StoreError>;

    /// All tokens.
    fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError>;

    /// Revokes a token by name.
    fn revoke_admin_token(&self, name: &str, now: i64) -> Result<(), StoreError>;

    /// Appends an audit event (admin actions not covered by another verb).
    fn append_audit(
        &self,
        at: i64,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), StoreError>;

    /// Audit events at or after `since`, oldest first, at most `limit`.
    fn audit_events(&self, since: i64, limit: u32) -> Result<Vec<AuditEvent>, StoreError>;

    // Trust-check nonces

    /// The key trust nonces are authenticated with, created with `fresh` on first use.
    /// Every caller (every node) gets the same key: the first insert wins and all read it back.
    fn trust_nonce_key(
        &self,
        fresh: &[u8; NONCE_KEY_LEN],
        now: i64,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError>;

    /// Records that the nonce `nonce_id` (valid until `expires_at`) was presented; false when
    /// it already was. Expired records are pruned in the same transaction.
    fn use_trust_nonce(
        &self,
        nonce_id: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError>;

    // Readiness

    /// Whether the store can commit now: `Err` with the reason when the latest commit failed
    /// and a probe write still fails, or when an idle store's probe fails. Blocking (it may
    /// write and fsync).
    fn ready(&self) -> Result<(), StoreError>;

    // Durability and maintenance

    /// The schema version of the open database (equals [`SCHEMA_VERSION`] after open).
    fn schema_version(&self) -> Result<u32, StoreError>;

    /// Chooses the commit durability: `true` (the default at open) fsyncs the WAL at every
    /// commit (`synchronous=FULL`: nothing a client received is lost on power failure);
    /// `false` (`synchronous=NORMAL`) survives process crashes but may lose the last commits
    /// on power loss, for a several-fold higher issuance rate on slow disks.
    fn set_full_durability(&self, full: bool) -> Result<(), StoreError>;

    /// Keeps the writer from checkpointing the WAL inside its commits: the caller promises to
    /// call [`Backend::checkpoint`] regularly (the server does, on a timer), so that no request
    /// waits for a checkpoint. The writer still checkpoints if the WAL reaches
    /// [`CHECKPOINT_BACKSTOP_PAGES`] (the timer's passive checkpoints kept failing or could not
    /// catch up), so the WAL cannot grow without bound. Other processes on the file keep
    /// SQLite's automatic checkpoints.
    fn defer_checkpoints(&self) -> Result<(), StoreError>;

    /// Copies committed WAL pages into the database file without blocking writers or readers
    /// (a passive checkpoint, on its own connection). Returns the WAL's size in pages and how
    /// many of them are now checkpointed, or `None` when another connection (e.g. a CLI
    /// command) was checkpointing at that moment; `(0, 0)` for in-memory databases.
    fn checkpoint(&self) -> Result<Option<(u32, u32)>, StoreError>;
}
