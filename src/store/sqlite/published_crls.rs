//! Published CRLs and leases: one CRL publisher at a time, every process serving its CRL.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::error::Context;
use crate::store::{StoreError, StoredCrl};

impl SqliteStore {
    /// See [`crate::store::Backend::claim_lease`].
    pub fn claim_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        self.write("claiming a lease", |tx| {
            let changed = tx
                .execute(
                    "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     expires_at = excluded.expires_at \
                     WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4",
                    params![name, holder, now.saturating_add(ttl_secs), now],
                )
                .context("claiming a lease")?;
            Ok(changed == 1)
        })
    }

    /// See [`crate::store::Backend::release_lease`].
    pub fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.write("releasing a lease", |tx| {
            tx.execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )
            .context("releasing a lease")?;
            Ok(())
        })
    }

    /// See [`crate::store::Backend::store_crl`].
    pub fn store_crl(
        &self,
        crl: &StoredCrl,
        lease: &str,
        holder: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write("publishing a CRL", |tx| {
            let held: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM leases \
                     WHERE name = ?1 AND holder = ?2 AND expires_at > ?3)",
                    params![lease, holder, now],
                    |r| r.get(0),
                )
                .context("publishing a CRL")?;
            if !held {
                return Ok(false);
            }
            let number = i64::try_from(crl.number).map_err(|_| StoreError::Invalid {
                field: "CRL number",
                reason: "above 2^63".into(),
            })?;
            let changed = tx
                .execute(
                    "INSERT INTO published_crls \
                     (issuer_id, number, this_update, next_update, generation, der) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (issuer_id) DO UPDATE SET number = excluded.number, \
                     this_update = excluded.this_update, next_update = excluded.next_update, \
                     generation = excluded.generation, der = excluded.der \
                     WHERE excluded.number > published_crls.number",
                    params![
                        crl.issuer_id,
                        number,
                        crl.this_update,
                        crl.next_update,
                        crl.generation,
                        crl.der
                    ],
                )
                .context("publishing a CRL")?;
            Ok(changed == 1)
        })
    }

    /// See [`crate::store::Backend::published_crl`].
    pub fn published_crl(
        &self,
        issuer_id: &str,
        newer_than: u64,
    ) -> Result<Option<StoredCrl>, StoreError> {
        let newer_than = i64::try_from(newer_than).unwrap_or(i64::MAX);
        self.read(|conn| {
            conn.query_row(
                "SELECT number, this_update, next_update, generation, der FROM published_crls \
                 WHERE issuer_id = ?1 AND number > ?2",
                params![issuer_id, newer_than],
                |r| {
                    Ok(StoredCrl {
                        issuer_id: issuer_id.to_owned(),
                        number: r.get::<_, i64>(0)?.max(0) as u64,
                        this_update: r.get(1)?,
                        next_update: r.get(2)?,
                        generation: r.get(3)?,
                        der: r.get(4)?,
                    })
                },
            )
            .optional()
            .context("reading the published CRL")
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::sqlite::testutil::seeded_store;

    pub(crate) fn crl(number: u64) -> StoredCrl {
        StoredCrl {
            issuer_id: "int".into(),
            number,
            this_update: 10,
            next_update: 20,
            generation: 3,
            der: vec![number as u8; 4],
        }
    }

    #[test]
    fn one_lease_holder_at_a_time_and_crl_numbers_only_grow() {
        let (_dir, store) = seeded_store();
        assert!(store.claim_lease("crl", "a", 100, 5).unwrap());
        assert!(
            !store.claim_lease("crl", "b", 104, 5).unwrap(),
            "a holds it"
        );
        assert!(store.claim_lease("crl", "a", 104, 5).unwrap(), "a renews");
        assert!(!store.store_crl(&crl(1), "crl", "b", 105).unwrap());
        assert!(store.store_crl(&crl(2), "crl", "a", 105).unwrap());
        assert!(!store.store_crl(&crl(1), "crl", "a", 105).unwrap(), "older");
        assert_eq!(store.published_crl("int", 0).unwrap().unwrap().number, 2);
        assert!(store.published_crl("int", 2).unwrap().is_none());
        // a stops renewing: b takes over once the lease has expired, and a can no longer store.
        assert!(store.claim_lease("crl", "b", 109, 5).unwrap());
        assert!(!store.store_crl(&crl(3), "crl", "a", 109).unwrap());
        assert!(store.store_crl(&crl(3), "crl", "b", 109).unwrap());
        assert_eq!(
            store.published_crl("int", 2).unwrap().unwrap().der,
            vec![3; 4]
        );
        // A clean shutdown gives the lease up: the next process need not wait for expiry.
        store.release_lease("crl", "a").unwrap();
        assert!(
            !store.claim_lease("crl", "c", 110, 5).unwrap(),
            "a no longer held it"
        );
        store.release_lease("crl", "b").unwrap();
        assert!(store.claim_lease("crl", "c", 110, 5).unwrap());
    }
}
