//! Revocation verbs: CRL contents and numbers, OCSP status, single revocations.

use super::PgStore;
use super::admin::audit;
use super::devices::bump_generation;
use crate::store::error::Context;
use crate::store::serial::{canonical_serial, format_serial, parse_hex};
use crate::store::{CertStatus, CertificateState, RevokedCertificate, StoreError};

fn corrupt_serial() -> StoreError {
    StoreError::Corrupt {
        table: "certificates",
        reason: "serial is not hex".into(),
    }
}

impl PgStore {
    /// See [`crate::store::Backend::revoked_certificates`].
    pub fn revoked_certificates(
        &self,
        issuer_id: &str,
        now: i64,
    ) -> Result<Vec<RevokedCertificate>, StoreError> {
        self.read(|c| {
            c.query(
                "SELECT serial, revoked_at, revocation_reason FROM certificates \
                 WHERE issuer_id = $1 AND status = 'revoked' AND not_after >= $2 \
                 ORDER BY revoked_at, serial",
                &[&issuer_id, &now],
            )
            .context("listing revoked certificates")?
            .iter()
            .map(|r| {
                Ok(RevokedCertificate {
                    serial: parse_hex(r.get(0)).ok_or_else(corrupt_serial)?,
                    revoked_at: r.get::<_, Option<i64>>(1).unwrap_or(0),
                    reason: r.get(2),
                })
            })
            .collect()
        })
    }

    /// See [`crate::store::Backend::next_crl_number`]: one upsert, so numbers stay unique and
    /// increasing whichever node publishes.
    pub fn next_crl_number(&self, issuer_id: &str) -> Result<u64, StoreError> {
        self.write("allocating a CRL number", |tx| {
            let n: i64 = tx
                .query_one(
                    "INSERT INTO crl_numbers (issuer_id, last_number) VALUES ($1, 1) \
                     ON CONFLICT (issuer_id) DO UPDATE SET last_number = crl_numbers.last_number + 1 \
                     RETURNING last_number",
                    &[&issuer_id],
                )
                .context("allocating a CRL number")?
                .get(0);
            u64::try_from(n).map_err(|_| StoreError::Corrupt {
                table: "crl_numbers",
                reason: format!("negative CRL number {n}"),
            })
        })
    }

    /// See [`crate::store::Backend::revocation_generation`].
    pub fn revocation_generation(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(
                c.query_one("SELECT value FROM revocation_generation WHERE id = 1", &[])
                    .context("reading the revocation generation")?
                    .get(0),
            )
        })
    }

    /// See [`crate::store::Backend::certificate_state`].
    pub fn certificate_state(
        &self,
        issuer_id: &str,
        serial: &[u8],
    ) -> Result<Option<CertificateState>, StoreError> {
        let Some(serial) = canonical_serial(serial).map(format_serial) else {
            return Ok(None);
        };
        self.read(|c| {
            let Some(r) = c
                .query_opt(
                    "SELECT status, revoked_at, revocation_reason, not_after, platform_id, device_id \
                     FROM certificates WHERE issuer_id = $1 AND serial = $2",
                    &[&issuer_id, &serial],
                )
                .context("reading a certificate's status")?
            else {
                return Ok(None);
            };
            let status: String = r.get(0);
            Ok(Some(CertificateState {
                status: CertStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                    table: "certificates",
                    reason: format!("status {status:?}"),
                })?,
                revoked_at: r.get(1),
                reason: r.get(2),
                not_after: r.get(3),
                platform_id: r.get(4),
                device_id: r.get(5),
            }))
        })
    }

    /// See [`crate::store::Backend::revoke_one`].
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
        const CTX: &str = "revoking a certificate";
        self.write(CTX, |tx| {
            let status: Option<String> = tx
                .query_opt(
                    "SELECT status FROM certificates WHERE issuer_id = $1 AND serial = $2 FOR UPDATE",
                    &[&issuer_id, &serial_hex],
                )
                .context(CTX)?
                .map(|r| r.get(0));
            match status.as_deref() {
                None => Err(StoreError::NotFound {
                    what: "certificate",
                    id: serial_hex.clone(),
                }),
                Some("revoked") => Ok(false),
                Some(_) => {
                    tx.execute(
                        "UPDATE certificates SET status = 'revoked', revoked_at = $3, revocation_reason = $4 \
                         WHERE issuer_id = $1 AND serial = $2",
                        &[&issuer_id, &serial_hex, &now, &reason],
                    )
                    .context(CTX)?;
                    bump_generation(tx)?;
                    let detail = serde_json::json!({"reason": reason}).to_string();
                    audit(tx, now, actor, "certificate.revoked", &serial_hex, &detail)?;
                    Ok(true)
                }
            }
        })
    }

    /// See [`crate::store::Backend::find_serial`].
    pub fn find_serial(&self, serial_hex: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let norm = serial_hex
            .trim_start_matches('0')
            .to_ascii_lowercase()
            .replace(':', "");
        self.read(|c| {
            Ok(c.query(
                "SELECT issuer_id, serial FROM certificates WHERE ltrim(serial, '0') = $1",
                &[&norm],
            )
            .context("finding a serial")?
            .iter()
            .map(|r| (r.get(0), parse_hex(r.get(1)).unwrap_or_default()))
            .collect())
        })
    }
}
