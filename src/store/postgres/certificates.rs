//! Certificate verbs: lookups, listing, revocation, delivery.

use postgres::Row;
use postgres::types::ToSql;

use super::PgStore;
use super::devices::bump_generation;
use crate::store::error::Context;
use crate::store::serial::{canonical_serial, format_serial, parse_hex};
use crate::store::{
    CertStatus, CertificateFacts, CertificateFilter, Delivery, DeviceState, EnrollmentLookup,
    IssuedCertificate, StoreError, TransactionMatch, WITHDRAWN_REASON,
};

pub(super) const COLUMNS: &str = "serial, issuer_id, platform_id, transaction_id, \
    public_key_sha256, subject, sans, device_id, not_before, not_after, der, requested_at, \
    status, revoked_at, revocation_reason, delivery, signer_key_sha256, request_sha256, \
    superseded_at";

pub(super) fn from_row(row: &Row) -> Result<IssuedCertificate, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "certificates",
        reason,
    };
    let serial: String = row.get(0);
    let sans: String = row.get(6);
    let status: String = row.get(12);
    let delivery: String = row.get(15);
    Ok(IssuedCertificate {
        facts: CertificateFacts {
            serial: parse_hex(&serial)
                .ok_or_else(|| corrupt(format!("serial {serial:?} is not hex")))?,
            issuer_id: row.get(1),
            platform_id: row.get(2),
            transaction_id: row.get(3),
            public_key_sha256: row.get(4),
            subject: row.get(5),
            sans: serde_json::from_str(&sans).map_err(|e| corrupt(format!("sans: {e}")))?,
            device_id: row.get(7),
            not_before: row.get(8),
            not_after: row.get(9),
            der: row.get(10),
            requested_at: row.get(11),
        },
        status: CertStatus::parse(&status).ok_or_else(|| corrupt(format!("status {status:?}")))?,
        revoked_at: row.get(13),
        revocation_reason: row.get(14),
        delivery: Delivery::parse(&delivery)
            .ok_or_else(|| corrupt(format!("delivery {delivery:?}")))?,
        signer_key_sha256: row.get(16),
        request_sha256: row.get(17),
        superseded_at: row.get(18),
    })
}

/// `filter` is a fixed SQL fragment; values are bound from `args`.
fn find(
    c: &mut super::sql::Sql<'_, impl postgres::GenericClient>,
    filter: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Option<IssuedCertificate>, StoreError> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM certificates WHERE {filter}"),
        args,
    )
    .context("reading a certificate")?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// The current (live, not superseded) certificate of (platform, transaction).
pub(super) fn by_transaction(
    c: &mut super::sql::Sql<'_, impl postgres::GenericClient>,
    platform_id: &str,
    transaction_id: &str,
) -> Result<Option<IssuedCertificate>, StoreError> {
    find(
        c,
        "platform_id = $1 AND transaction_id = $2 AND delivery <> 'withdrawn' \
         AND superseded_at IS NULL",
        &[&platform_id, &transaction_id],
    )
}

/// The query for what [`TransactionMatch::classify`] needs ($1 platform, $2 transaction,
/// $3 request fingerprint). Each branch's condition matches one partial index's.
fn live_rows() -> String {
    format!(
        "SELECT {COLUMNS} FROM certificates WHERE platform_id = $1 \
           AND transaction_id = $2 AND delivery <> 'withdrawn' AND superseded_at IS NULL \
         UNION ALL \
         SELECT {COLUMNS} FROM certificates WHERE platform_id = $1 \
           AND transaction_id = $2 AND superseded_at IS NOT NULL \
           AND delivery <> 'withdrawn' AND request_sha256 = $3"
    )
}

/// What [`TransactionMatch::classify`] needs: the current certificate of (platform,
/// transaction) and a superseded live one that answered `request_sha256`.
pub(super) fn match_transaction(
    c: &mut super::sql::Sql<'_, impl postgres::GenericClient>,
    platform_id: &str,
    transaction_id: &str,
    request_sha256: &[u8],
    public_key_sha256: &[u8],
) -> Result<TransactionMatch, StoreError> {
    let live = c
        .query(
            &live_rows(),
            &[&platform_id, &transaction_id, &request_sha256],
        )
        .context("reading a transaction's certificates")?
        .iter()
        .map(from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TransactionMatch::classify(
        live,
        request_sha256,
        public_key_sha256,
    ))
}

/// [`match_transaction`], the device's state and the platform in one round trip: the
/// transaction's rows (as there) each carry the device's state and the platform in the last
/// columns, and a row of NULLs carries them when the transaction has none.
pub(super) fn enrollment_lookup(
    c: &mut super::sql::Sql<'_, impl postgres::GenericClient>,
    platform_id: &str,
    transaction_id: &str,
    request_sha256: &[u8],
    public_key_sha256: &[u8],
    device_id: Option<&str>,
) -> Result<EnrollmentLookup, StoreError> {
    let rows = c
        .query(
            &format!(
                "SELECT t.*, (SELECT state FROM devices WHERE platform_id = $1 \
                   AND device_id = $4::text), p.* \
                 FROM (SELECT 1) AS one LEFT JOIN ({}) AS t ON true \
                 LEFT JOIN (SELECT {} FROM platforms WHERE id = $1) AS p ON true",
                live_rows(),
                super::platforms::COLUMNS,
            ),
            &[&platform_id, &transaction_id, &request_sha256, &device_id],
        )
        .context("reading a transaction's certificates, its device and platform")?;
    let device_column = COLUMNS.split(',').count();
    let platform_column = device_column + 1;
    let mut device_state = None;
    let mut platform = None;
    let mut live = Vec::with_capacity(rows.len());
    for row in &rows {
        let state: Option<String> = row.try_get(device_column).context("reading a device")?;
        // An unknown state can only come from a newer scepd: the most closed one (devices.rs).
        device_state = state.map(|s| DeviceState::parse(&s).unwrap_or(DeviceState::Deleted));
        let found: Option<String> = row.try_get(platform_column).context("reading a platform")?;
        if found.is_some() && platform.is_none() {
            platform = Some(super::platforms::decode_at(row, platform_column)?);
        }
        let serial: Option<String> = row.try_get(0).context("reading a certificate")?;
        if serial.is_some() {
            live.push(from_row(row)?);
        }
    }
    Ok(EnrollmentLookup {
        transaction: TransactionMatch::classify(live, request_sha256, public_key_sha256),
        device_state,
        platform,
    })
}

/// The certificate of (issuer, serial as stored hex); `lock` is "" or a row lock clause.
pub(super) fn by_serial(
    c: &mut super::sql::Sql<'_, impl postgres::GenericClient>,
    issuer_id: &str,
    serial_hex: &str,
    lock: &str,
) -> Result<Option<IssuedCertificate>, StoreError> {
    find(
        c,
        &format!("issuer_id = $1 AND serial = $2 {lock}"),
        &[&issuer_id, &serial_hex],
    )
}

impl PgStore {
    /// See [`crate::store::Backend::certificate_by_transaction`].
    pub fn certificate_by_transaction(
        &self,
        platform_id: &str,
        transaction_id: &str,
    ) -> Result<Option<IssuedCertificate>, StoreError> {
        self.read(|c| by_transaction(c, platform_id, transaction_id))
    }

    /// See [`crate::store::Backend::enrollment_lookup`].
    pub fn enrollment_lookup(
        &self,
        platform_id: &str,
        transaction_id: &str,
        request_sha256: &[u8],
        public_key_sha256: &[u8],
        device_id: Option<&str>,
    ) -> Result<EnrollmentLookup, StoreError> {
        self.read(|c| {
            enrollment_lookup(
                c,
                platform_id,
                transaction_id,
                request_sha256,
                public_key_sha256,
                device_id,
            )
        })
    }

    /// See [`crate::store::Backend::match_transaction`].
    pub fn match_transaction(
        &self,
        platform_id: &str,
        transaction_id: &str,
        request_sha256: &[u8],
        public_key_sha256: &[u8],
    ) -> Result<TransactionMatch, StoreError> {
        self.read(|c| {
            match_transaction(
                c,
                platform_id,
                transaction_id,
                request_sha256,
                public_key_sha256,
            )
        })
    }

    /// See [`crate::store::Backend::certificate_by_serial`].
    pub fn certificate_by_serial(
        &self,
        issuer_id: &str,
        serial: &[u8],
    ) -> Result<Option<IssuedCertificate>, StoreError> {
        let Some(serial) = canonical_serial(serial) else {
            return Ok(None);
        };
        self.read(|c| by_serial(c, issuer_id, &format_serial(serial), ""))
    }

    /// See [`crate::store::Backend::list_certificates`].
    pub fn list_certificates(
        &self,
        filter: &CertificateFilter,
    ) -> Result<Vec<IssuedCertificate>, StoreError> {
        let status = filter.status.map(|s| s.as_str());
        let limit = filter.limit.map(i64::from);
        self.read(|c| {
            c.query(
                &format!(
                    "SELECT {COLUMNS} FROM certificates WHERE ($1::text IS NULL OR platform_id = $1) \
                     AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR device_id = $3) \
                     ORDER BY id DESC LIMIT $4"
                ),
                &[&filter.platform_id, &status, &filter.device_id, &limit],
            )
            .context("listing certificates")?
            .iter()
            .map(from_row)
            .collect()
        })
    }

    /// See [`crate::store::Backend::revoke_certificate`].
    pub fn revoke_certificate(
        &self,
        issuer_id: &str,
        serial: &[u8],
        revoked_at: i64,
        reason: Option<&str>,
    ) -> Result<IssuedCertificate, StoreError> {
        let not_found = || StoreError::NotFound {
            what: "certificate",
            id: format_serial(serial),
        };
        let serial_hex = canonical_serial(serial)
            .map(format_serial)
            .ok_or_else(not_found)?;
        self.write("revoking a certificate", |tx| {
            let changed = tx
                .execute(
                    "UPDATE certificates SET status = 'revoked', revoked_at = $3, \
                     revocation_reason = $4 WHERE issuer_id = $1 AND serial = $2 AND status = 'valid'",
                    &[&issuer_id, &serial_hex, &revoked_at, &reason],
                )
                .context("revoking a certificate")?;
            if changed > 0 {
                bump_generation(tx)?;
            }
            by_serial(tx, issuer_id, &serial_hex, "")?.ok_or_else(not_found)
        })
    }

    /// See [`crate::store::Backend::release_certificate`].
    pub fn release_certificate(
        &self,
        issuer_id: &str,
        serial: &[u8],
    ) -> Result<Option<IssuedCertificate>, StoreError> {
        let Some(serial_hex) = canonical_serial(serial).map(format_serial) else {
            return Ok(None);
        };
        self.write("releasing a certificate", |tx| {
            tx.execute(
                "UPDATE certificates SET delivery = 'released' WHERE issuer_id = $1 \
                 AND serial = $2 AND delivery = 'held' AND status = 'valid'",
                &[&issuer_id, &serial_hex],
            )
            .context("releasing a certificate")?;
            Ok(by_serial(tx, issuer_id, &serial_hex, "")?
                .filter(|c| c.status == CertStatus::Valid && c.delivery == Delivery::Released))
        })
    }

    /// See [`crate::store::Backend::withdraw_certificate`].
    pub fn withdraw_certificate(
        &self,
        issuer_id: &str,
        serial: &[u8],
        now: i64,
    ) -> Result<IssuedCertificate, StoreError> {
        let not_found = || StoreError::NotFound {
            what: "certificate",
            id: format_serial(serial),
        };
        let serial_hex = canonical_serial(serial)
            .map(format_serial)
            .ok_or_else(not_found)?;
        self.write("withdrawing a certificate", |tx| {
            // The row lock orders this against a concurrent release on another node.
            let current =
                by_serial(tx, issuer_id, &serial_hex, "FOR UPDATE")?.ok_or_else(not_found)?;
            if current.delivery == Delivery::Released {
                return Err(StoreError::Conflict(format!(
                    "certificate {serial_hex} was already released for delivery"
                )));
            }
            tx.execute(
                "UPDATE certificates SET delivery = 'withdrawn', status = 'revoked', \
                 revoked_at = coalesce(revoked_at, $3), \
                 revocation_reason = coalesce(revocation_reason, $4) \
                 WHERE issuer_id = $1 AND serial = $2",
                &[&issuer_id, &serial_hex, &now, &WITHDRAWN_REASON],
            )
            .context("withdrawing a certificate")?;
            super::dynamic_challenges::give_back(tx, issuer_id, &serial_hex)?;
            bump_generation(tx)?;
            by_serial(tx, issuer_id, &serial_hex, "")?.ok_or_else(not_found)
        })
    }
}
