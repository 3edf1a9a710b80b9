//! Persistent store: domain verbs over a backend.
//!
//! Callers see verbs ([`Backend::record_issuance`], [`Backend::insert_platform`], ...) and
//! domain types, never SQL. The store keeps data consistent (uniqueness, atomicity, replay
//! detection) but decides no policy: whether a platform may enroll, whether a key is
//! acceptable, when a CA rolls over are the callers' business.
//!
//! Layout: this module holds what every backend shares — the [`Backend`] trait (the one
//! interface), the domain types, errors, serial formatting and the challenge settings'
//! column encoding; `sqlite/` is the embedded backend (one file under the data dir). A
//! `postgres/` the backend for several nodes on one PostgreSQL database. A
//! [`Store`] owns one backend and derefs to it, so `store.platform(id)` reads the same
//! whichever backend is configured.

mod backend;
mod challenge_config;
mod checked_issuance;
mod error;
mod group_commit;
pub mod postgres;
mod serial;
mod sqlite;
mod types;

pub use backend::Backend;
pub use challenge_config::{DynamicSettings, IntuneSettings, WebhookSettings};
pub use error::StoreError;
pub use serial::{MAX_SERIAL_OCTETS, format_serial};
pub use sqlite::{BUSY_TIMEOUT, CHECKPOINT_BACKSTOP_PAGES, SCHEMA_VERSION, SqliteStore};
pub use types::*;

use std::path::Path;

/// The persistent store: one backend behind the [`Backend`] verbs. Cheap to share behind an
/// `Arc`; every verb takes `&self`.
#[derive(Debug)]
pub struct Store(Box<dyn Backend>);

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` (see [`SqliteStore::open`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Ok(Self(Box::new(SqliteStore::open(path)?)))
    }

    /// Connects to PostgreSQL and migrates (see [`postgres::PgStore::connect`]).
    pub fn connect_postgres(settings: &postgres::PgSettings) -> Result<Self, StoreError> {
        Ok(Self(Box::new(postgres::PgStore::connect(settings)?)))
    }

    /// A private in-memory SQLite database, for tests and tools.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Ok(Self(Box::new(SqliteStore::open_in_memory()?)))
    }
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}
