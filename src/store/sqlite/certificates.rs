//! Issued certificate lookups, listing and revocation. Recording is in `issuance.rs`.

use super::error::Context;
use super::serial::{canonical_serial, format_serial, parse_hex};
use super::{
    CertStatus, CertificateFacts, CertificateFilter, Delivery, IssuedCertificate, SqliteStore,
    StoreError, TransactionMatch, WITHDRAWN_REASON,
};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, Type, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// Columns in the order [`from_row`] reads them.
pub(super) const COLUMNS: &str = "serial, issuer_id, platform_id, transaction_id, \
    public_key_sha256, subject, sans, device_id, not_before, not_after, der, requested_at, \
    status, revoked_at, revocation_reason, delivery, signer_key_sha256, request_sha256, \
    superseded_at";

impl ToSql for CertStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for Delivery {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        Self::parse(s).ok_or_else(|| FromSqlError::Other(format!("unknown delivery '{s}'").into()))
    }
}

impl FromSql for CertStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        Self::parse(s).ok_or_else(|| FromSqlError::Other(format!("unknown status '{s}'").into()))
    }
}

fn conversion(
    idx: usize,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, e.into())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<IssuedCertificate> {
    let serial: String = row.get(0)?;
    let sans: String = row.get(6)?;
    Ok(IssuedCertificate {
        facts: CertificateFacts {
            serial: parse_hex(&serial).ok_or_else(|| conversion(0, "serial is not hex"))?,
            issuer_id: row.get(1)?,
            platform_id: row.get(2)?,
            transaction_id: row.get(3)?,
            public_key_sha256: row.get(4)?,
            subject: row.get(5)?,
            sans: serde_json::from_str(&sans).map_err(|e| conversion(6, e))?,
            device_id: row.get(7)?,
            not_before: row.get(8)?,
            not_after: row.get(9)?,
            der: row.get(10)?,
            requested_at: row.get(11)?,
        },
        status: row.get(12)?,
        revoked_at: row.get(13)?,
        revocation_reason: row.get(14)?,
        delivery: row.get(15)?,
        signer_key_sha256: row.get(16)?,
        request_sha256: row.get(17)?,
        superseded_at: row.get(18)?,
    })
}

/// `filter` is a fixed SQL fragment; values are bound from `args`.
fn find(
    conn: &Connection,
    filter: &str,
    args: &[&dyn ToSql],
) -> Result<Option<IssuedCertificate>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM certificates WHERE {filter}"
    ))
    .and_then(|mut stmt| stmt.query_row(args, from_row).optional())
    .context("reading a certificate")
}

/// The current (live, not superseded) certificate of (platform, transaction), on an open
/// connection or transaction.
pub(super) fn by_transaction(
    conn: &Connection,
    platform_id: &str,
    transaction_id: &str,
) -> Result<Option<IssuedCertificate>, StoreError> {
    // The condition matches the partial unique index's, so the index serves it.
    find(
        conn,
        "platform_id = ?1 AND transaction_id = ?2 AND delivery <> 'withdrawn' \
         AND superseded_at IS NULL",
        &[&platform_id, &transaction_id],
    )
}

/// What [`TransactionMatch::classify`] needs: the current certificate of (platform,
/// transaction) and a superseded live one that answered `request_sha256`. Each branch's
/// condition matches one partial index's.
pub(super) fn match_transaction(
    conn: &Connection,
    platform_id: &str,
    transaction_id: &str,
    request_sha256: &[u8],
    public_key_sha256: &[u8],
) -> Result<TransactionMatch, StoreError> {
    let live = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM certificates WHERE platform_id = ?1 AND transaction_id = ?2 \
               AND delivery <> 'withdrawn' AND superseded_at IS NULL \
             UNION ALL \
             SELECT {COLUMNS} FROM certificates WHERE platform_id = ?1 AND transaction_id = ?2 \
               AND superseded_at IS NOT NULL AND delivery <> 'withdrawn' AND request_sha256 = ?3"
        ))
        .and_then(|mut stmt| {
            stmt.query_map(
                params![platform_id, transaction_id, request_sha256],
                from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .context("reading a transaction's certificates")?;
    Ok(TransactionMatch::classify(
        live,
        request_sha256,
        public_key_sha256,
    ))
}

/// Marks `(issuer, serial)` superseded at `at`: a later same-key request of its transaction
/// is being recorded.
pub(super) fn supersede(
    conn: &Connection,
    issuer_id: &str,
    serial_hex: &str,
    at: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE certificates SET superseded_at = ?3 WHERE issuer_id = ?1 AND serial = ?2",
    )
    .and_then(|mut stmt| stmt.execute(params![issuer_id, serial_hex, at]))
    .context("superseding a certificate")?;
    Ok(())
}

/// The certificate of (issuer, serial as stored hex), on an open connection or transaction.
pub(super) fn by_serial(
    conn: &Connection,
    issuer_id: &str,
    serial_hex: &str,
) -> Result<Option<IssuedCertificate>, StoreError> {
    find(
        conn,
        "issuer_id = ?1 AND serial = ?2",
        &[&issuer_id, &serial_hex],
    )
}

impl SqliteStore {
    /// See [`crate::store::Backend::certificate_by_transaction`].
    pub fn certificate_by_transaction(
        &self,
        platform_id: &str,
        transaction_id: &str,
    ) -> Result<Option<IssuedCertificate>, StoreError> {
        self.read(|conn| by_transaction(conn, platform_id, transaction_id))
    }

    /// See [`crate::store::Backend::match_transaction`].
    pub fn match_transaction(
        &self,
        platform_id: &str,
        transaction_id: &str,
        request_sha256: &[u8],
        public_key_sha256: &[u8],
    ) -> Result<TransactionMatch, StoreError> {
        self.read(|conn| {
            match_transaction(
                conn,
                platform_id,
                transaction_id,
                request_sha256,
                public_key_sha256,
            )
        })
    }

    /// The certificate `issuer_id` issued with `serial` (leading zero octets ignored), if any.
    /// A serial that could never have been recorded (zero, too long) is simply not found.
    pub fn certificate_by_serial(
        &self,
        issuer_id: &str,
        serial: &[u8],
    ) -> Result<Option<IssuedCertificate>, StoreError> {
        let Some(serial) = canonical_serial(serial) else {
            return Ok(None);
        };
        self.read(|conn| by_serial(conn, issuer_id, &format_serial(serial)))
    }

    /// Certificates matching `filter`, most recently recorded first.
    pub fn list_certificates(
        &self,
        filter: &CertificateFilter,
    ) -> Result<Vec<IssuedCertificate>, StoreError> {
        // Only fixed fragments go into the SQL; values are bound.
        let mut sql = format!("SELECT {COLUMNS} FROM certificates WHERE 1 = 1");
        let mut args: Vec<&dyn ToSql> = Vec::new();
        if let Some(platform_id) = &filter.platform_id {
            sql.push_str(" AND platform_id = ?");
            args.push(platform_id);
        }
        if let Some(status) = &filter.status {
            sql.push_str(" AND status = ?");
            args.push(status);
        }
        if let Some(device_id) = &filter.device_id {
            sql.push_str(" AND device_id = ?");
            args.push(device_id);
        }
        let limit = filter.limit.map_or(-1, i64::from);
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(&limit);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql).context("listing certificates")?;
            stmt.query_map(args.as_slice(), from_row)
                .and_then(Iterator::collect)
                .context("listing certificates")
        })
    }

    /// Marks a certificate revoked and returns it. Revoking an already revoked certificate
    /// changes nothing: the first time and reason stay, as CRLs must keep them. `reason` is
    /// stored as given. Unknown certificate: [`StoreError::NotFound`]. A change moves the
    /// revocation generation.
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
                    "UPDATE certificates SET status = 'revoked', revoked_at = ?3, \
                     revocation_reason = ?4 WHERE issuer_id = ?1 AND serial = ?2 AND status = 'valid'",
                    params![issuer_id, serial_hex, revoked_at, reason],
                )
                .context("revoking a certificate")?;
            // CRL publishers (in any process) and reused OCSP responses follow the generation.
            if changed > 0 {
                super::devices::bump_generation(tx)?;
            }
            by_serial(tx, issuer_id, &serial_hex)?.ok_or_else(not_found)
        })
    }

    /// Releases a [`Delivery::Held`] certificate once its delegated validator confirmed it.
    /// Returns it, or `None` when it can no longer be delivered: revoked meanwhile (by an
    /// operator or a device deactivation), withdrawn, or not on record.
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
                "UPDATE certificates SET delivery = 'released' WHERE issuer_id = ?1 \
                 AND serial = ?2 AND delivery = 'held' AND status = 'valid'",
                params![issuer_id, serial_hex],
            )
            .context("releasing a certificate")?;
            Ok(by_serial(tx, issuer_id, &serial_hex)?
                .filter(|c| c.status == CertStatus::Valid && c.delivery == Delivery::Released))
        })
    }

    /// Revokes a certificate that nobody received ([`WITHDRAWN_REASON`]) and marks it
    /// [`Delivery::Withdrawn`], in one transaction: a retry of its SCEP transaction is then
    /// issued afresh instead of being answered with it, and the one-time challenge it
    /// consumed, if any, is given back (it authorised nothing that was delivered).
    /// A certificate already released is left alone and reported as
    /// [`StoreError::Conflict`]: somebody may hold it. Unknown: [`StoreError::NotFound`].
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
            let current = by_serial(tx, issuer_id, &serial_hex)?.ok_or_else(not_found)?;
            if current.delivery == Delivery::Released {
                return Err(StoreError::Conflict(format!(
                    "certificate {serial_hex} was already released for delivery"
                )));
            }
            tx.execute(
                "UPDATE certificates SET delivery = 'withdrawn', status = 'revoked', \
                 revoked_at = coalesce(revoked_at, ?3), \
                 revocation_reason = coalesce(revocation_reason, ?4) \
                 WHERE issuer_id = ?1 AND serial = ?2",
                params![issuer_id, serial_hex, now, WITHDRAWN_REASON],
            )
            .context("withdrawing a certificate")?;
            super::dynamic_challenges::give_back(tx, issuer_id, &serial_hex)?;
            super::devices::bump_generation(tx)?;
            by_serial(tx, issuer_id, &serial_hex)?.ok_or_else(not_found)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::super::NewCertificate;
    use super::super::testutil::{new_cert, platform, seeded_store};
    use super::*;

    #[test]
    fn recorded_certificate_reads_back_by_transaction_and_serial() {
        let (_dir, store) = seeded_store();
        let new = new_cert(&[0x00, 0x0a, 0xff], "tx1", 1);
        store.record_issuance(&new).unwrap();
        let got = store
            .certificate_by_transaction("p1", "tx1")
            .unwrap()
            .unwrap();
        assert_eq!(
            (got.serial.as_slice(), got.serial_hex().as_str()),
            (&[0x0a, 0xff][..], "0aff")
        );
        assert_eq!(
            (&got.sans, &got.der, got.status),
            (&new.sans, &new.der, CertStatus::Valid)
        );
        assert_eq!(
            (got.revoked_at, got.device_id.as_deref()),
            (None, Some("dev-1"))
        );
        for serial in [&[0x0a, 0xff][..], &[0, 0, 0x0a, 0xff]] {
            let by_serial = store.certificate_by_serial("int", serial).unwrap().unwrap();
            assert_eq!(by_serial.transaction_id, "tx1");
        }
        assert_eq!(
            store.certificate_by_serial("ra", &[0x0a, 0xff]).unwrap(),
            None
        );
        assert_eq!(store.certificate_by_serial("int", &[0; 3]).unwrap(), None);
        assert_eq!(store.certificate_by_transaction("p1", "tx2").unwrap(), None);
    }

    #[test]
    fn serial_is_stored_as_lowercase_hex_text() {
        let (_dir, store) = seeded_store();
        store
            .record_issuance(&new_cert(&[0x00, 0xAB, 0x0C], "tx", 1))
            .unwrap();
        let conn = store.lock().unwrap();
        let sql = "SELECT serial, sans FROM certificates";
        let stored: (String, String) = conn
            .query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(stored.0, "ab0c");
        assert_eq!(stored.1, r#"["DNS:device.example","URI:urn:x"]"#);
    }

    #[test]
    fn list_filters_by_platform_and_status_newest_first_with_limit() {
        let (_dir, store) = seeded_store();
        store.insert_platform(&platform("p2", "Other", 11)).unwrap();
        for (serial, platform) in [(1u8, "p1"), (2, "p2"), (3, "p1"), (4, "p1")] {
            let mut c = new_cert(&[serial], &format!("tx{serial}"), 1);
            c.facts.platform_id = platform.into();
            c.facts.device_id = Some(format!("dev-{}", serial % 2));
            store.record_issuance(&c).unwrap();
        }
        store
            .revoke_certificate("int", &[3], 500, Some("keyCompromise"))
            .unwrap();
        let serials = |f: CertificateFilter| -> Vec<String> {
            store
                .list_certificates(&f)
                .unwrap()
                .iter()
                .map(|c| c.serial_hex())
                .collect()
        };
        assert_eq!(
            serials(CertificateFilter::default()),
            ["04", "03", "02", "01"]
        );
        let p1 = CertificateFilter {
            platform_id: Some("p1".into()),
            ..Default::default()
        };
        assert_eq!(serials(p1.clone()), ["04", "03", "01"]);
        assert_eq!(
            serials(CertificateFilter {
                limit: Some(2),
                ..p1.clone()
            }),
            ["04", "03"]
        );
        let valid = CertificateFilter {
            status: Some(CertStatus::Valid),
            ..p1
        };
        assert_eq!(serials(valid), ["04", "01"]);
        let revoked = CertificateFilter {
            status: Some(CertStatus::Revoked),
            ..Default::default()
        };
        assert_eq!(serials(revoked), ["03"]);
        let device = |platform: Option<&str>, limit| CertificateFilter {
            platform_id: platform.map(Into::into),
            device_id: Some("dev-1".into()),
            limit,
            ..Default::default()
        };
        assert_eq!(serials(device(None, None)), ["03", "01"]);
        assert_eq!(serials(device(Some("p2"), None)), Vec::<String>::new());
        // The limit applies to the device's certificates, not before filtering by device.
        assert_eq!(serials(device(None, Some(1))), ["03"]);
    }

    #[test]
    fn held_certificates_are_released_or_withdrawn_and_a_withdrawn_one_frees_its_transaction() {
        let (_dir, store) = seeded_store();
        store
            .add_dynamic_challenge("p1", &[9; 32], 50, 500, 10)
            .unwrap();
        let held = NewCertificate {
            held: true,
            ..new_cert(&[7], "tx", 1)
        };
        store.record_issuance_consuming(&held, &[9; 32]).unwrap();
        let got = store
            .certificate_by_transaction("p1", "tx")
            .unwrap()
            .unwrap();
        assert_eq!(
            (got.delivery, got.status),
            (Delivery::Held, CertStatus::Valid)
        );
        assert_eq!(got.signer_key_sha256, Some(vec![1; 32]));
        // Withdrawn: revoked, not live for its transaction, its challenge given back.
        let generation = store.revocation_generation().unwrap();
        let w = store.withdraw_certificate("int", &[7], 300).unwrap();
        assert_eq!(
            (w.delivery, w.status, w.revocation_reason.as_deref()),
            (
                Delivery::Withdrawn,
                CertStatus::Revoked,
                Some(WITHDRAWN_REASON)
            )
        );
        assert_ne!(store.revocation_generation().unwrap(), generation);
        assert_eq!(store.certificate_by_transaction("p1", "tx").unwrap(), None);
        assert_eq!(store.release_certificate("int", &[7]).unwrap(), None);
        // The same transaction is recorded afresh, consuming the given-back challenge.
        let again = NewCertificate {
            held: true,
            ..new_cert(&[8], "tx", 1)
        };
        assert_eq!(
            store.record_issuance_consuming(&again, &[9; 32]).unwrap(),
            super::super::Issuance::Recorded
        );
        let released = store.release_certificate("int", &[8]).unwrap().unwrap();
        assert_eq!(released.delivery, Delivery::Released);
        // A released certificate is never withdrawn (somebody may hold it).
        assert!(matches!(
            store.withdraw_certificate("int", &[8], 400),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            store
                .certificate_by_transaction("p1", "tx")
                .unwrap()
                .unwrap()
                .serial,
            [8]
        );
    }

    #[test]
    fn a_held_certificate_revoked_meanwhile_is_not_released() {
        let (_dir, store) = seeded_store();
        let held = NewCertificate {
            held: true,
            ..new_cert(&[7], "tx", 1)
        };
        store.record_issuance(&held).unwrap();
        store
            .revoke_certificate("int", &[7], 200, Some("cessationOfOperation"))
            .unwrap();
        assert_eq!(store.release_certificate("int", &[7]).unwrap(), None);
        let w = store.withdraw_certificate("int", &[7], 300).unwrap();
        assert_eq!(w.revocation_reason.as_deref(), Some("cessationOfOperation"));
        assert_eq!(w.revoked_at, Some(200), "the first revocation stays");
    }

    #[test]
    fn revocation_keeps_the_first_time_and_reason() {
        let (_dir, store) = seeded_store();
        store.record_issuance(&new_cert(&[5], "tx", 1)).unwrap();
        let generation = store.revocation_generation().unwrap();
        let first = store
            .revoke_certificate("int", &[5], 500, Some("superseded"))
            .unwrap();
        let moved = store.revocation_generation().unwrap();
        assert_ne!(moved, generation, "CRLs and cached OCSP must notice");
        assert_eq!(
            (first.status, first.revoked_at),
            (CertStatus::Revoked, Some(500))
        );
        assert_eq!(first.revocation_reason.as_deref(), Some("superseded"));
        let again = store.revoke_certificate("int", &[0, 5], 900, None).unwrap();
        assert_eq!(again, first);
        assert_eq!(store.revocation_generation().unwrap(), moved);
        let err = store
            .revoke_certificate("int", &[6], 900, None)
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    }
}
