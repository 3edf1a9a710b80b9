//! The PostgreSQL store as a [`Backend`]: each verb is the inherent method of the same name.

use zeroize::Zeroizing;

use super::PgStore;
use crate::store::{
    AdminToken, AuditEvent, Backend, CaRecord, CaRole, CertificateFilter, CertificateState,
    ChallengeIssue, Device, DeviceState, DeviceTransition, Issuance, IssuedCertificate,
    NONCE_KEY_LEN, NewCertificate, OneTimeState, PendingIssuance, Platform, RevokedCertificate,
    StoreError, StoredCrl,
};

impl Backend for PgStore {
    fn insert_authorities(&self, records: &[CaRecord]) -> Result<(), StoreError> {
        PgStore::insert_authorities(self, records)
    }

    fn authorities(&self) -> Result<Vec<CaRecord>, StoreError> {
        PgStore::authorities(self)
    }

    fn active_authority(&self, role: CaRole) -> Result<Option<CaRecord>, StoreError> {
        PgStore::active_authority(self, role)
    }

    fn is_initialized(&self) -> Result<bool, StoreError> {
        PgStore::is_initialized(self)
    }

    fn add_encryption_certificate(
        &self,
        cert: &crate::store::EncryptionCertificate,
    ) -> Result<bool, StoreError> {
        PgStore::add_encryption_certificate(self, cert)
    }

    fn encryption_certificates(
        &self,
    ) -> Result<Vec<crate::store::EncryptionCertificate>, StoreError> {
        PgStore::encryption_certificates(self)
    }

    fn insert_platform(&self, platform: &Platform) -> Result<(), StoreError> {
        PgStore::insert_platform(self, platform)
    }

    fn platform(&self, id: &str) -> Result<Option<Platform>, StoreError> {
        PgStore::platform(self, id)
    }

    fn platform_by_name(&self, name: &str) -> Result<Option<Platform>, StoreError> {
        PgStore::platform_by_name(self, name)
    }

    fn dynamic_platform_by_username(&self, username: &str) -> Result<Option<Platform>, StoreError> {
        PgStore::dynamic_platform_by_username(self, username)
    }

    fn list_platforms(&self) -> Result<Vec<Platform>, StoreError> {
        PgStore::list_platforms(self)
    }

    fn device(&self, platform_id: &str, device_id: &str) -> Result<Option<Device>, StoreError> {
        PgStore::device(self, platform_id, device_id)
    }

    fn list_devices(
        &self,
        platform_id: Option<&str>,
        device_id: Option<&str>,
        state: Option<DeviceState>,
    ) -> Result<Vec<Device>, StoreError> {
        PgStore::list_devices(self, platform_id, device_id, state)
    }

    fn transition_device(&self, t: &DeviceTransition<'_>) -> Result<(Device, usize), StoreError> {
        PgStore::transition_device(self, t)
    }

    fn device_id_pattern(&self, platform_id: &str) -> Result<Option<String>, StoreError> {
        PgStore::device_id_pattern(self, platform_id)
    }

    fn set_device_id_pattern(
        &self,
        platform_id: &str,
        pattern: Option<&str>,
    ) -> Result<(), StoreError> {
        PgStore::set_device_id_pattern(self, platform_id, pattern)
    }

    fn certificate_by_transaction(
        &self,
        platform_id: &str,
        transaction_id: &str,
    ) -> Result<Option<IssuedCertificate>, StoreError> {
        PgStore::certificate_by_transaction(self, platform_id, transaction_id)
    }

    fn enrollment_lookup(
        &self,
        platform_id: &str,
        transaction_id: &str,
        request_sha256: &[u8],
        public_key_sha256: &[u8],
        device_id: Option<&str>,
    ) -> Result<crate::store::EnrollmentLookup, StoreError> {
        PgStore::enrollment_lookup(
            self,
            platform_id,
            transaction_id,
            request_sha256,
            public_key_sha256,
            device_id,
        )
    }

    fn match_transaction(
        &self,
        platform_id: &str,
        transaction_id: &str,
        request_sha256: &[u8],
        public_key_sha256: &[u8],
    ) -> Result<crate::store::TransactionMatch, StoreError> {
        PgStore::match_transaction(
            self,
            platform_id,
            transaction_id,
            request_sha256,
            public_key_sha256,
        )
    }

    fn certificate_by_serial(
        &self,
        issuer_id: &str,
        serial: &[u8],
    ) -> Result<Option<IssuedCertificate>, StoreError> {
        PgStore::certificate_by_serial(self, issuer_id, serial)
    }

    fn list_certificates(
        &self,
        filter: &CertificateFilter,
    ) -> Result<Vec<IssuedCertificate>, StoreError> {
        PgStore::list_certificates(self, filter)
    }

    fn revoke_certificate(
        &self,
        issuer_id: &str,
        serial: &[u8],
        revoked_at: i64,
        reason: Option<&str>,
    ) -> Result<IssuedCertificate, StoreError> {
        PgStore::revoke_certificate(self, issuer_id, serial, revoked_at, reason)
    }

    fn release_certificate(
        &self,
        issuer_id: &str,
        serial: &[u8],
    ) -> Result<Option<IssuedCertificate>, StoreError> {
        PgStore::release_certificate(self, issuer_id, serial)
    }

    fn withdraw_certificate(
        &self,
        issuer_id: &str,
        serial: &[u8],
        now: i64,
    ) -> Result<IssuedCertificate, StoreError> {
        PgStore::withdraw_certificate(self, issuer_id, serial, now)
    }

    fn record_issuance(&self, cert: &NewCertificate) -> Result<Issuance, StoreError> {
        PgStore::record_issuance(self, cert)
    }

    fn record_issuance_consuming(
        &self,
        cert: &NewCertificate,
        challenge_sha256: &[u8],
    ) -> Result<Issuance, StoreError> {
        PgStore::record_issuance_consuming(self, cert, challenge_sha256)
    }

    fn begin_issuance(
        &self,
        cert: &NewCertificate,
        challenge_sha256: Option<&[u8]>,
    ) -> Result<PendingIssuance, StoreError> {
        PgStore::begin_issuance(self, cert, challenge_sha256)
    }

    fn issuance_commit_stats(&self) -> (u64, u64) {
        PgStore::issuance_commit_stats(self)
    }

    fn revoked_certificates(
        &self,
        issuer_id: &str,
        now: i64,
    ) -> Result<Vec<RevokedCertificate>, StoreError> {
        PgStore::revoked_certificates(self, issuer_id, now)
    }

    fn next_crl_number(&self, issuer_id: &str) -> Result<u64, StoreError> {
        PgStore::next_crl_number(self, issuer_id)
    }

    fn revocation_generation(&self) -> Result<i64, StoreError> {
        PgStore::revocation_generation(self)
    }

    fn claim_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        PgStore::claim_lease(self, name, holder, now, ttl_secs)
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        PgStore::release_lease(self, name, holder)
    }

    fn store_crl(
        &self,
        crl: &StoredCrl,
        lease: &str,
        holder: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        PgStore::store_crl(self, crl, lease, holder, now)
    }

    fn published_crl(
        &self,
        issuer_id: &str,
        newer_than: u64,
    ) -> Result<Option<StoredCrl>, StoreError> {
        PgStore::published_crl(self, issuer_id, newer_than)
    }

    fn certificate_state(
        &self,
        issuer_id: &str,
        serial: &[u8],
    ) -> Result<Option<CertificateState>, StoreError> {
        PgStore::certificate_state(self, issuer_id, serial)
    }

    fn revoke_one(
        &self,
        issuer_id: &str,
        serial: &[u8],
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        PgStore::revoke_one(self, issuer_id, serial, reason, actor, now)
    }

    fn find_serial(&self, serial_hex: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        PgStore::find_serial(self, serial_hex)
    }

    fn stage_authorities(
        &self,
        records: &[CaRecord],
        activate_at: Option<i64>,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        PgStore::stage_authorities(self, records, activate_at, actor, now)
    }

    fn activate_authorities(&self, ids: &[&str], actor: &str, now: i64) -> Result<(), StoreError> {
        PgStore::activate_authorities(self, ids, actor, now)
    }

    fn due_activations(&self, now: i64) -> Result<Vec<String>, StoreError> {
        PgStore::due_activations(self, now)
    }

    fn staged_authority(&self, role: CaRole) -> Result<Option<CaRecord>, StoreError> {
        PgStore::staged_authority(self, role)
    }

    fn add_dynamic_challenge(
        &self,
        platform_id: &str,
        sha256: &[u8],
        now: i64,
        expires_at: i64,
        max_outstanding: u32,
    ) -> Result<ChallengeIssue, StoreError> {
        PgStore::add_dynamic_challenge(self, platform_id, sha256, now, expires_at, max_outstanding)
    }

    fn dynamic_challenge_state(
        &self,
        platform_id: &str,
        sha256: &[u8],
        now: i64,
    ) -> Result<OneTimeState, StoreError> {
        PgStore::dynamic_challenge_state(self, platform_id, sha256, now)
    }

    fn burn_dynamic_challenge(
        &self,
        platform_id: &str,
        sha256: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        PgStore::burn_dynamic_challenge(self, platform_id, sha256, now)
    }

    fn outstanding_dynamic_challenges(
        &self,
        platform_id: &str,
        now: i64,
    ) -> Result<u32, StoreError> {
        PgStore::outstanding_dynamic_challenges(self, platform_id, now)
    }

    fn insert_admin_token(&self, t: &AdminToken, token_hash: &[u8]) -> Result<(), StoreError> {
        PgStore::insert_admin_token(self, t, token_hash)
    }

    fn admin_token_by_hash(&self, token_hash: &[u8]) -> Result<Option<AdminToken>, StoreError> {
        PgStore::admin_token_by_hash(self, token_hash)
    }

    fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        PgStore::list_admin_tokens(self)
    }

    fn revoke_admin_token(&self, name: &str, now: i64) -> Result<(), StoreError> {
        PgStore::revoke_admin_token(self, name, now)
    }

    fn append_audit(
        &self,
        at: i64,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        PgStore::append_audit(self, at, actor, action, subject, detail)
    }

    fn audit_events(&self, since: i64, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        PgStore::audit_events(self, since, limit)
    }

    fn update_static_secret(
        &self,
        platform_id: &str,
        secret_hash: &[u8],
    ) -> Result<(), StoreError> {
        PgStore::update_static_secret(self, platform_id, secret_hash)
    }

    fn delete_platform(&self, platform_id: &str) -> Result<(), StoreError> {
        PgStore::delete_platform(self, platform_id)
    }

    fn trust_nonce_key(
        &self,
        fresh: &[u8; NONCE_KEY_LEN],
        now: i64,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        PgStore::trust_nonce_key(self, fresh, now)
    }

    fn use_trust_nonce(
        &self,
        nonce_id: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        PgStore::use_trust_nonce(self, nonce_id, expires_at, now)
    }

    fn ready(&self) -> Result<(), StoreError> {
        PgStore::ready(self)
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        PgStore::schema_version(self)
    }

    fn set_full_durability(&self, full: bool) -> Result<(), StoreError> {
        PgStore::set_full_durability(self, full)
    }

    fn defer_checkpoints(&self) -> Result<(), StoreError> {
        PgStore::defer_checkpoints(self)
    }

    fn checkpoint(&self) -> Result<Option<(u32, u32)>, StoreError> {
        PgStore::checkpoint(self)
    }
}
