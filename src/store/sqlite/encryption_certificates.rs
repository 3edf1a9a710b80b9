//! RA encryption certificates (`[pki] encryption_ra`): one per RA, following its lifecycle.

use super::error::Context;
use super::{EncryptionCertificate, SqliteStore, StoreError};
use rusqlite::{OptionalExtension, Row, params};

const COLUMNS: &str = "ra_id, subject, cert_der, key_ref, not_before, not_after, created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<EncryptionCertificate> {
    Ok(EncryptionCertificate {
        ra_id: row.get(0)?,
        subject: row.get(1)?,
        cert_der: row.get(2)?,
        key_ref: row.get(3)?,
        not_before: row.get(4)?,
        not_after: row.get(5)?,
        created_at: row.get(6)?,
    })
}

impl SqliteStore {
    /// See [`crate::store::Backend::add_encryption_certificate`].
    pub fn add_encryption_certificate(
        &self,
        cert: &EncryptionCertificate,
    ) -> Result<bool, StoreError> {
        const CTX: &str = "adding an RA encryption certificate";
        self.write(CTX, |tx| {
            let is_ra = tx
                .query_row(
                    "SELECT 1 FROM authorities WHERE id = ?1 AND role = 'ra'",
                    [&cert.ra_id],
                    |_| Ok(()),
                )
                .optional()
                .context(CTX)?
                .is_some();
            if !is_ra {
                return Err(StoreError::NotFound {
                    what: "RA",
                    id: cert.ra_id.clone(),
                });
            }
            let added = tx
                .execute(
                    &format!(
                        "INSERT INTO ra_encryption_certificates ({COLUMNS}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (ra_id) DO NOTHING"
                    ),
                    params![
                        cert.ra_id,
                        cert.subject,
                        cert.cert_der,
                        cert.key_ref,
                        cert.not_before,
                        cert.not_after,
                        cert.created_at
                    ],
                )
                .context(CTX)?;
            Ok(added == 1)
        })
    }

    /// See [`crate::store::Backend::encryption_certificates`].
    pub fn encryption_certificates(&self) -> Result<Vec<EncryptionCertificate>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM ra_encryption_certificates ORDER BY created_at, rowid"
                ))
                .context("listing RA encryption certificates")?;
            stmt.query_map([], from_row)
                .and_then(Iterator::collect)
                .context("listing RA encryption certificates")
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::super::testutil::seeded_store;
    use super::*;

    pub(crate) fn enc(ra_id: &str, key_ref: &str) -> EncryptionCertificate {
        EncryptionCertificate {
            ra_id: ra_id.into(),
            subject: "CN=enc".into(),
            cert_der: vec![0x30, 0x00],
            key_ref: key_ref.into(),
            not_before: 1,
            not_after: 2,
            created_at: 1,
        }
    }

    #[test]
    fn one_encryption_certificate_per_ra_the_first_wins() {
        let (_dir, store) = seeded_store();
        assert!(store.encryption_certificates().unwrap().is_empty());
        assert!(
            store
                .add_encryption_certificate(&enc("ra", "enc-1"))
                .unwrap()
        );
        // A second node's attempt for the same RA stores nothing.
        assert!(
            !store
                .add_encryption_certificate(&enc("ra", "enc-2"))
                .unwrap()
        );
        assert_eq!(
            store.encryption_certificates().unwrap(),
            [enc("ra", "enc-1")]
        );
        // Only RAs have one.
        for not_ra in ["int", "root", "nope"] {
            assert!(matches!(
                store.add_encryption_certificate(&enc(not_ra, "enc-3")),
                Err(StoreError::NotFound { .. })
            ));
        }
    }
}
