//! The store's error type.
//!
//! Display texts carry a short context only; the underlying SQLite error, when there is one, is
//! available through [`std::error::Error::source`] for logs.

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The device exists and is not active (suspended, deactivated or deleted).
    #[error("device is {state}")]
    DeviceNotActive {
        /// The device's state.
        state: &'static str,
    },
    /// A device state change was asked from a state that does not allow it.
    #[error("device is {state}")]
    WrongDeviceState {
        /// The device's current state.
        state: &'static str,
    },
    /// SQLite failed; `context` says what the store was doing.
    #[error("database error while {context}")]
    Database {
        /// What the store was doing, e.g. "recording a certificate".
        context: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// PostgreSQL failed; `context` says what the store was doing.
    #[error("database error while {context}")]
    Postgres {
        /// What the store was doing.
        context: &'static str,
        /// The PostgreSQL error.
        #[source]
        source: postgres::Error,
    },

    /// No database connection could be had (database down, unreachable, wrong credentials):
    /// the reason, without the URL or any password.
    #[error("database unavailable: {0}")]
    Unavailable(String),

    /// A numbered PostgreSQL migration failed; nothing of it was applied.
    #[error("database migration {version} failed")]
    PgMigration {
        /// The migration number (its file's prefix).
        version: u32,
        /// The PostgreSQL error.
        #[source]
        source: postgres::Error,
    },

    /// The database file could not be opened or set up.
    #[error("cannot open database {path}: {reason}")]
    Open {
        /// The path given to [`Store::open`](super::Store::open).
        path: String,
        /// What failed.
        reason: String,
        /// The SQLite error, if any.
        #[source]
        source: Option<rusqlite::Error>,
    },

    /// The database was written by a newer scepd; this build refuses to touch it.
    #[error(
        "database schema version {found} is newer than this scepd supports ({supported}); \
         upgrade scepd or restore a matching backup"
    )]
    SchemaTooNew {
        /// `PRAGMA user_version` found in the file.
        found: u32,
        /// The newest schema version this build knows.
        supported: u32,
    },

    /// A numbered migration failed; nothing of it was applied.
    #[error("database migration {version} failed")]
    Migration {
        /// The migration number (its file's prefix).
        version: u32,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// The write would break a uniqueness rule (name taken, id taken, second active CA, ...).
    #[error("conflict: {0}")]
    Conflict(String),

    /// The SCEP transaction already produced a certificate for a different public key.
    #[error(
        "transaction {transaction_id} on platform {platform_id} was already used with a \
         different public key"
    )]
    TransactionConflict {
        /// Platform of the transaction.
        platform_id: String,
        /// The SCEP transactionID.
        transaction_id: String,
    },

    /// The one-time challenge to consume is no longer outstanding (used, expired, unknown).
    #[error("one-time challenge already used, expired or unknown")]
    ChallengeSpent,

    /// The issuer already issued a certificate with this serial.
    #[error("serial {serial} was already issued by authority {issuer_id}")]
    DuplicateSerial {
        /// Issuing authority id.
        issuer_id: String,
        /// Serial as lowercase hex.
        serial: String,
    },

    /// A referenced record does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// Kind of record, e.g. "platform".
        what: &'static str,
        /// The id that was looked up.
        id: String,
    },

    /// An input value is malformed (not a policy decision: the value cannot be stored as given).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// A stored row cannot be understood (e.g. an unknown challenge kind).
    #[error("corrupt data in {table}: {reason}")]
    Corrupt {
        /// Table the row came from.
        table: &'static str,
        /// What was wrong.
        reason: String,
    },

    /// The group commit this write was part of failed (the transaction could not start or
    /// commit): nothing of the group was stored. Carries the underlying error as text.
    #[error("database error while committing a group of writes: {0}")]
    GroupCommit(String),

    /// A thread panicked while holding the connection inside a transaction that could not be
    /// rolled back; the store refuses further writes.
    #[error("database connection unusable after a panic in another thread")]
    Poisoned,
}

/// Attaches a short context to a SQLite error.
pub(super) trait Context<T> {
    /// Maps the error into [`StoreError::Database`] with `context`.
    fn context(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, rusqlite::Error> {
    fn context(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { context, source })
    }
}

impl<T> Context<T> for Result<T, postgres::Error> {
    fn context(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::postgres(context, source))
    }
}

impl StoreError {
    /// A PostgreSQL error: [`StoreError::Unavailable`] when the database went away (the
    /// request may be retried), else [`StoreError::Postgres`]. Every PostgreSQL error of the
    /// store goes through here.
    pub(crate) fn postgres(context: &'static str, source: postgres::Error) -> Self {
        if connection_lost(&source) {
            Self::Unavailable(format!("{context}: {source}"))
        } else {
            Self::Postgres { context, source }
        }
    }
}

/// True for errors that say the database went away rather than refused the statement: a
/// closed connection, SQLSTATE class 08 (connection exception), 57P01–57P03 (shutdown, crash
/// recovery, cannot connect now). The request may succeed on a retry once it is back.
fn connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03")
        }
        // No SQLSTATE: an I/O error on the socket (the server vanished mid-statement).
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}
