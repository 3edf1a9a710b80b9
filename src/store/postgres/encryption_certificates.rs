//! RA encryption certificates (`[pki] encryption_ra`): one per RA, following its lifecycle.
//! Nodes that add one for the same RA at once: the primary key keeps the first.

use postgres::Row;

use super::PgStore;
use super::sql::exists;
use crate::store::error::Context;
use crate::store::{EncryptionCertificate, StoreError};

const COLUMNS: &str = "ra_id, subject, cert_der, key_ref, not_before, not_after, created_at";

fn from_row(row: &Row) -> EncryptionCertificate {
    EncryptionCertificate {
        ra_id: row.get(0),
        subject: row.get(1),
        cert_der: row.get(2),
        key_ref: row.get(3),
        not_before: row.get(4),
        not_after: row.get(5),
        created_at: row.get(6),
    }
}

impl PgStore {
    /// See [`crate::store::Backend::add_encryption_certificate`].
    pub fn add_encryption_certificate(
        &self,
        cert: &EncryptionCertificate,
    ) -> Result<bool, StoreError> {
        const CTX: &str = "adding an RA encryption certificate";
        self.write(CTX, |tx| {
            if !exists(
                tx,
                "SELECT 1 FROM authorities WHERE id = $1 AND role = 'ra'",
                &cert.ra_id,
                CTX,
            )? {
                return Err(StoreError::NotFound {
                    what: "RA",
                    id: cert.ra_id.clone(),
                });
            }
            let added = tx
                .execute(
                    &format!(
                        "INSERT INTO ra_encryption_certificates ({COLUMNS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ra_id) DO NOTHING"
                    ),
                    &[
                        &cert.ra_id,
                        &cert.subject,
                        &cert.cert_der,
                        &cert.key_ref,
                        &cert.not_before,
                        &cert.not_after,
                        &cert.created_at,
                    ],
                )
                .context(CTX)?;
            Ok(added == 1)
        })
    }

    /// See [`crate::store::Backend::encryption_certificates`].
    pub fn encryption_certificates(&self) -> Result<Vec<EncryptionCertificate>, StoreError> {
        self.read(|c| {
            Ok(c.query(
                &format!(
                    "SELECT {COLUMNS} FROM ra_encryption_certificates ORDER BY created_at, ra_id"
                ),
                &[],
            )
            .context("listing RA encryption certificates")?
            .iter()
            .map(from_row)
            .collect())
        })
    }
}
