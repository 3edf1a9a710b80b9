//! Revocation bookkeeping: revoked lists for CRLs, CRL numbers, the change generation, audit.

use rusqlite::{OptionalExtension, params};

use super::error::Context;
use super::serial::{canonical_serial, format_serial, parse_hex};
use super::{CertificateState, RevokedCertificate, SqliteStore, StoreError};

impl SqliteStore {
    /// Revoked, unexpired certificates of an issuer (expired ones may leave the CRL, RFC 5280 §3.3).
    pub fn revoked_certificates(
        &self,
        issuer_id: &str,
        now: i64,
    ) -> Result<Vec<RevokedCertificate>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT serial, revoked_at, revocation_reason FROM certificates \
                     WHERE issuer_id = ?1 AND status = 'revoked' AND not_after >= ?2 ORDER BY revoked_at, serial",
                )
                .context("listing revoked certificates")?;
            let rows = stmt
                .query_map(params![issuer_id, now], |r| {
                    let serial: String = r.get(0)?;
                    Ok((
                        serial,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })
                .context("listing revoked certificates")?;
            let mut out = Vec::new();
            for row in rows {
                let (serial, at, reason) = row.context("listing revoked certificates")?;
                let serial = parse_hex(&serial).ok_or(StoreError::Corrupt {
                    table: "certificates",
                    reason: "serial is not hex".into(),
                })?;
                out.push(RevokedCertificate {
                    serial,
                    revoked_at: at.unwrap_or(0),
                    reason,
                });
            }
            Ok(out)
        })
    }

    /// Allocates the next CRL number of an issuer (monotonic, persisted).
    pub fn next_crl_number(&self, issuer_id: &str) -> Result<u64, StoreError> {
        self.write("allocating a CRL number", |tx| {
            tx.execute(
                "INSERT INTO crl_numbers (issuer_id, last_number) VALUES (?1, 1) \
                 ON CONFLICT (issuer_id) DO UPDATE SET last_number = last_number + 1",
                params![issuer_id],
            )
            .context("allocating a CRL number")?;
            let n: i64 = tx
                .query_row(
                    "SELECT last_number FROM crl_numbers WHERE issuer_id = ?1",
                    params![issuer_id],
                    |r| r.get(0),
                )
                .context("allocating a CRL number")?;
            Ok(n as u64)
        })
    }

    /// The revocation generation: changes whenever a certificate or device status changes.
    pub fn revocation_generation(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT value FROM revocation_generation WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .context("reading the revocation generation")
        })
    }

    /// The status of one certificate by issuer and serial.
    pub fn certificate_state(
        &self,
        issuer_id: &str,
        serial: &[u8],
    ) -> Result<Option<CertificateState>, StoreError> {
        let Some(serial) = canonical_serial(serial).map(format_serial) else {
            return Ok(None);
        };
        self.read(|conn| {
            conn.query_row(
                "SELECT status, revoked_at, revocation_reason, not_after, platform_id, device_id \
                 FROM certificates WHERE issuer_id = ?1 AND serial = ?2",
                params![issuer_id, serial],
                |r| {
                    Ok(CertificateState {
                        status: r.get(0)?,
                        revoked_at: r.get(1)?,
                        reason: r.get(2)?,
                        not_after: r.get(3)?,
                        platform_id: r.get(4)?,
                        device_id: r.get(5)?,
                    })
                },
            )
            .optional()
            .context("reading a certificate's status")
        })
    }

    /// Revokes one certificate with a reason and an audit event; bumps the generation.
    /// Already revoked: unchanged (the first time and reason stay).
    pub fn revoke_one(
        &self,
        issuer_id: &str,
        serial: &[u8],
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let serial_hex =
            canonical_serial(serial)
                .map(format_serial)
                .ok_or_else(|| StoreError::NotFound {
                    what: "certificate",
                    id: format_serial(serial),
                })?;
        self.write("revoking a certificate", |tx| {
            let exists: Option<String> = tx
                .query_row("SELECT status FROM certificates WHERE issuer_id = ?1 AND serial = ?2", params![issuer_id, serial_hex], |r| r.get(0))
                .optional()
                .context("revoking a certificate")?;
            match exists.as_deref() {
                None => Err(StoreError::NotFound { what: "certificate", id: serial_hex.clone() }),
                Some("revoked") => Ok(false),
                Some(_) => {
                    tx.execute(
                        "UPDATE certificates SET status = 'revoked', revoked_at = ?3, revocation_reason = ?4 WHERE issuer_id = ?1 AND serial = ?2",
                        params![issuer_id, serial_hex, now, reason],
                    )
                    .context("revoking a certificate")?;
                    super::devices::bump_generation(tx)?;
                    let detail = serde_json::json!({"reason": reason}).to_string();
                    super::devices::audit(tx, now, actor, "certificate.revoked", &serial_hex, &detail)?;
                    Ok(true)
                }
            }
        })
    }

    /// Certificates whose serial (lowercase hex) is `serial_hex`, across issuers.
    pub fn find_serial(&self, serial_hex: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let norm = serial_hex
            .trim_start_matches('0')
            .to_ascii_lowercase()
            .replace(':', "");
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT issuer_id, serial FROM certificates WHERE ltrim(serial, '0') = ?1",
                )
                .context("finding a serial")?;
            let rows = stmt
                .query_map(params![norm], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .context("finding a serial")?;
            let mut out = Vec::new();
            for row in rows {
                let (issuer, s) = row.context("finding a serial")?;
                out.push((issuer, parse_hex(&s).unwrap_or_default()));
            }
            Ok(out)
        })
    }
}
