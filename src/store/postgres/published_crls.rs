//! Published CRLs and leases: one CRL publisher at a time, every node serving its CRL.

use super::PgStore;
use crate::store::error::Context;
use crate::store::{StoreError, StoredCrl};

impl PgStore {
    /// See [`crate::store::Backend::claim_lease`]: one upsert, so two nodes asking at once
    /// cannot both win (the row lock orders them; the second sees the first as holder).
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
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     expires_at = excluded.expires_at \
                     WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
                    &[&name, &holder, &now.saturating_add(ttl_secs), &now],
                )
                .context("claiming a lease")?;
            Ok(changed == 1)
        })
    }

    /// See [`crate::store::Backend::release_lease`].
    pub fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.write("releasing a lease", |tx| {
            tx.execute(
                "DELETE FROM leases WHERE name = $1 AND holder = $2",
                &[&name, &holder],
            )
            .context("releasing a lease")?;
            Ok(())
        })
    }

    /// See [`crate::store::Backend::store_crl`]. The lease row is locked for the transaction,
    /// so a takeover cannot slip between the check and the write.
    pub fn store_crl(
        &self,
        crl: &StoredCrl,
        lease: &str,
        holder: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let number = i64::try_from(crl.number).map_err(|_| StoreError::Invalid {
            field: "CRL number",
            reason: "above 2^63".into(),
        })?;
        self.write("publishing a CRL", |tx| {
            let held = tx
                .query_opt(
                    "SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND expires_at > $3 \
                     FOR UPDATE",
                    &[&lease, &holder, &now],
                )
                .context("publishing a CRL")?
                .is_some();
            if !held {
                return Ok(false);
            }
            let changed = tx
                .execute(
                    "INSERT INTO published_crls \
                     (issuer_id, number, this_update, next_update, generation, der) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (issuer_id) DO UPDATE SET number = excluded.number, \
                     this_update = excluded.this_update, next_update = excluded.next_update, \
                     generation = excluded.generation, der = excluded.der \
                     WHERE excluded.number > published_crls.number",
                    &[
                        &crl.issuer_id,
                        &number,
                        &crl.this_update,
                        &crl.next_update,
                        &crl.generation,
                        &crl.der,
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
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT number, this_update, next_update, generation, der FROM published_crls \
                 WHERE issuer_id = $1 AND number > $2",
                &[&issuer_id, &newer_than],
            )
            .context("reading the published CRL")?
            .map(|r| StoredCrl {
                issuer_id: issuer_id.to_owned(),
                number: r.get::<_, i64>(0).max(0) as u64,
                this_update: r.get(1),
                next_update: r.get(2),
                generation: r.get(3),
                der: r.get(4),
            }))
        })
    }
}
