//! The PostgreSQL backend: several scepd nodes sharing one database.
//!
//! Connections come from an r2d2 pool of the blocking `postgres` client (tokio-postgres
//! underneath). Each verb is one transaction, as on SQLite; the invariants the nodes share
//! (one live certificate per SCEP transaction, unique serials per issuer, one active CA per
//! role, a one-time challenge consumed once) are unique keys of the schema, so they hold
//! whichever node writes. A broken connection (database restart) is discarded by the pool
//! and replaced on the next checkout; the request that met it fails with a store error.
//!
//! Schema: numbered SQL files in `migrations/`, applied in one transaction under a
//! transaction-level advisory lock, so nodes starting at the same moment apply them once: the
//! others wait for the lock, then find nothing to do. The version is kept in `scepd_schema`.
//!
//! Every [`crate::store::Backend`] verb is implemented here. Chosen with `[store] backend =
//! "postgres"` or `--store-url` (`configured_store::open`).

mod admin;
mod authorities;
mod backend;
mod certificates;
mod connection;
mod devices;
mod dynamic_challenges;
mod encryption_certificates;
mod issuance;
mod maintenance;
mod platforms;
mod published_crls;
mod revocation;
mod rotation;
mod sql;
mod trust_nonces;

pub use connection::{PgSettings, PgTls};

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use connection::Pool;

use super::StoreError;
use super::error::Context;

/// Migrations in order; migration `n` (1-based) is `MIGRATIONS[n - 1]`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_schema.sql"),
    include_str!("migrations/0002_published_crls.sql"),
    include_str!("migrations/0003_request_fingerprint.sql"),
    include_str!("migrations/0004_ra_encryption_certificates.sql"),
];

/// The PostgreSQL schema version this build creates and understands.
pub const SCHEMA_VERSION: u32 = 4;

const _: () = assert!(MIGRATIONS.len() == SCHEMA_VERSION as usize);

/// Key of the advisory lock migrations hold ("scepd" in ASCII): one node migrates at a time.
const MIGRATION_LOCK: i64 = 0x0073_6365_7064;

/// The PostgreSQL store. A clone shares its pool, counters and issuance queue (a pending
/// issuance keeps one to finish its recording).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool,
    counters: Arc<issuance::Counters>,
    /// `synchronous_commit` stays on unless [`PgStore::set_full_durability`] says otherwise.
    full_durability: Arc<AtomicBool>,
    /// First enrollments waiting for the next group commit (`issuance.rs`).
    issuances: Arc<issuance::Queue>,
}

impl PgStore {
    /// Connects (the pool opens its first connection now, so a wrong URL, password or
    /// certificate fails here, not at the first request) and applies pending migrations.
    pub fn connect(settings: &PgSettings) -> Result<Self, StoreError> {
        let pool = Pool::new(settings)?;
        let counters = Arc::<issuance::Counters>::default();
        let store = Self {
            issuances: Arc::new(issuance::queue(pool.clone(), counters.clone())),
            pool,
            counters,
            full_durability: Arc::new(AtomicBool::new(true)),
        };
        store.with_client(|c| migrate(&mut c.client))?;
        Ok(store)
    }

    /// The schema version of the database (equals [`SCHEMA_VERSION`] after connect).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.with_client(|c| read_version(&mut c.client))
    }

    /// Most connections the pool opens.
    fn pool_size(&self) -> u32 {
        self.pool.max_size()
    }

    /// Runs `f` on a pooled connection.
    fn with_client<T>(
        &self,
        f: impl FnOnce(&mut connection::PgConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.pool.with_client(f)
    }
}

/// Applies pending migrations under the advisory lock, all in one transaction (PostgreSQL's
/// DDL is transactional: a failed migration leaves nothing behind).
fn migrate(client: &mut postgres::Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().context("starting migrations")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .context("waiting for the migration lock")?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS scepd_schema (
             id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
             version INTEGER NOT NULL
         )",
    )
    .context("creating the schema version table")?;
    let found = read_version(&mut tx)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in (1..=SCHEMA_VERSION).zip(MIGRATIONS).skip(found as usize) {
        tx.batch_execute(sql)
            .map_err(|e| StoreError::PgMigration { version, source: e })?;
        let v = i32::try_from(version).map_err(|_| StoreError::Corrupt {
            table: "scepd_schema",
            reason: "version out of range".into(),
        })?;
        tx.execute(
            "INSERT INTO scepd_schema (id, version) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            &[&v],
        )
        .map_err(|e| StoreError::PgMigration { version, source: e })?;
    }
    tx.commit().context("committing migrations")
}

fn read_version(tx: &mut impl postgres::GenericClient) -> Result<u32, StoreError> {
    let exists: bool = tx
        .query_one("SELECT to_regclass('scepd_schema') IS NOT NULL", &[])
        .context("reading the schema version")?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = tx
        .query_opt("SELECT version FROM scepd_schema WHERE id = 1", &[])
        .context("reading the schema version")?;
    let v: i32 = row.map_or(0, |r| r.get(0));
    u32::try_from(v).map_err(|_| StoreError::Corrupt {
        table: "scepd_schema",
        reason: format!("negative schema version {v}"),
    })
}

#[cfg(test)]
mod test_cluster;
#[cfg(test)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod migration_tests {
    use super::*;

    #[test]
    fn nodes_starting_together_migrate_once_and_agree_on_the_version() {
        let db = tests::fresh_database();
        let settings = db.settings();
        let nodes: Vec<_> = (0..4)
            .map(|_| {
                let s = settings.clone();
                std::thread::spawn(move || PgStore::connect(&s).map(|st| st.schema_version()))
            })
            .collect();
        for n in nodes {
            assert_eq!(n.join().unwrap().unwrap().unwrap(), SCHEMA_VERSION);
        }
        let store = PgStore::connect(&settings).unwrap();
        let tables: i64 = store
            .with_client(|c| {
                Ok(c.client.query_one(
                    "SELECT count(*) FROM information_schema.tables WHERE table_name = 'certificates'",
                    &[],
                )
                .context("counting")?
                .get(0))
            })
            .unwrap();
        assert_eq!(tables, 1);
    }

    #[test]
    fn a_newer_schema_is_refused_and_bad_credentials_fail_at_connect() {
        let db = tests::fresh_database();
        let store = PgStore::connect(&db.settings()).unwrap();
        store
            .with_client(|c| {
                c.client
                    .execute("UPDATE scepd_schema SET version = version + 1", &[])
                    .context("bumping")
            })
            .unwrap();
        match PgStore::connect(&db.settings()) {
            Err(StoreError::SchemaTooNew { found, supported }) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
        let mut wrong = db.settings();
        wrong.password = Some(zeroize::Zeroizing::new("not-the-password".into()));
        let err = PgStore::connect(&wrong).unwrap_err().to_string();
        assert!(!err.contains("not-the-password"), "{err}");
    }
}
