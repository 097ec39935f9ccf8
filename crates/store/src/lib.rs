//! sceau-store: sqlx, the only crate that talks to the database. Pools and
//! migrations for SQLite and PostgreSQL, and one repository module per
//! aggregate, each turning its raw rows into the domain types it owns.
//!
//! Both backends run the same SQL text (`$1`-style parameters work on both); the
//! [`on_pool!`] macro expands a query once per backend so each gets its own types.
//! The service re-exports this crate as `sceau::store`.
#![forbid(unsafe_code)]

use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use time::OffsetDateTime;

use sceau_core::error::{ErrorKind, HasErrorKind};
pub use settings::{DatabaseBackend, DatabaseSettings, UnknownBackend};

pub mod auth;
pub mod ca;
pub mod certificates;
pub mod crl;
pub mod entities;
pub mod identity;
pub mod journal;
pub mod notices;
pub mod portal;
pub mod ra;
mod rows;
pub mod seals;
pub mod serials;
mod settings;
pub mod status;
pub mod termination;
pub mod tsa;

/// How long a SQLite connection waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a caller waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything that can go wrong in the database layer, saying what happened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL is not usable: {0}")]
    BadUrl(String),
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("refers to a row that does not exist: {0}")]
    MissingReference(String),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("database holds a value this version cannot read: {0}")]
    Corrupt(String),
    #[error("database query failed: {0}")]
    Query(#[source] sqlx::Error),
}

impl HasErrorKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::MissingReference(_) => ErrorKind::Unprocessable,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::BadUrl(_)
            | Self::CreateDir { .. }
            | Self::Migration(_)
            | Self::Corrupt(_)
            | Self::Query(_) => ErrorKind::Internal,
        }
    }
}

/// A row read as it is stored, with nothing to check, cannot fail.
impl From<std::convert::Infallible> for StoreError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Conflict(db.message().to_owned())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                Self::MissingReference(db.message().to_owned())
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => Self::Unavailable(error),
            other => Self::Query(other),
        }
    }
}

/// A connection pool for whichever backend the URL selected.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Runs the same code against whichever pool the store holds: `on_pool!(store, |pool| expr)`.
/// The body is expanded once per backend, so row types and executors are concrete.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store.pool() {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// The database, whichever backend the URL selected.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// `database.status_lease_ms`: see [`Store::status_lease`].
    status_lease: Duration,
}

impl Store {
    /// Opens the pool with durable settings on every connection, then applies migrations.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        let backend = settings
            .backend()
            .map_err(|e| StoreError::BadUrl(format!("setting database.url: {e}")))?;
        let url = settings.url.expose_secret();
        let max = settings.max_connections.max(1);
        let pool = match backend {
            DatabaseBackend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|e| StoreError::BadUrl(e.to_string()))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // FULL: a commit is on disk when it returns, WAL or not.
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                let file = options.get_filename();
                if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
                    && file.as_os_str() != ":memory:"
                {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                        path: dir.to_owned(),
                        source,
                    })?;
                }
                // No ping before each acquire: sqlx runs each SQLite connection
                // on its own thread, so the ping was a second thread round trip
                // for every query (the OCSP status read on every request most
                // of all). A local file connection does not go stale as a
                // network one does, and a failing query still reports its error.
                let pool = SqlitePoolOptions::new()
                    .max_connections(max)
                    .test_before_acquire(false)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(StoreError::Unavailable)?;
                sqlx::migrate!("migrations/sqlite").run(&pool).await?;
                Pool::Sqlite(pool)
            }
            DatabaseBackend::Postgres => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|e| StoreError::BadUrl(redact(&e.to_string())))?
                    // Sent in the start-up packet, so every pooled connection has it.
                    .options([("synchronous_commit", "on")]);
                let pool = PgPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(StoreError::Unavailable)?;
                // The PostgreSQL migrator takes an advisory lock: instances may start together.
                sqlx::migrate!("migrations/postgres").run(&pool).await?;
                Pool::Postgres(pool)
            }
        };
        Ok(Store {
            pool,
            status_lease: Duration::from_millis(settings.status_lease_ms),
        })
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn backend(&self) -> DatabaseBackend {
        match self.pool {
            Pool::Sqlite(_) => DatabaseBackend::Sqlite,
            Pool::Postgres(_) => DatabaseBackend::Postgres,
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .map_err(StoreError::Unavailable)?;
        });
        Ok(())
    }

    /// Closes every connection; waits for checked-out ones to come back.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }

    /// The durability setting of each pooled connection, read on `count` connections held
    /// at the same time (so they are distinct): `PRAGMA synchronous` on SQLite (2 = FULL),
    /// `SHOW synchronous_commit` on PostgreSQL.
    pub async fn durability_settings(&self, count: usize) -> Result<Vec<String>, StoreError> {
        let mut values = Vec::with_capacity(count);
        on_pool!(self, |pool| {
            let mut held = Vec::with_capacity(count);
            for _ in 0..count {
                held.push(pool.acquire().await.map_err(StoreError::Unavailable)?);
            }
            let statement = match self.backend() {
                DatabaseBackend::Sqlite => "PRAGMA synchronous",
                DatabaseBackend::Postgres => "SHOW synchronous_commit",
            };
            for connection in &mut held {
                let value = match self.backend() {
                    DatabaseBackend::Sqlite => sqlx::query_scalar::<_, i64>(statement)
                        .fetch_one(&mut **connection)
                        .await?
                        .to_string(),
                    DatabaseBackend::Postgres => {
                        sqlx::query_scalar::<_, String>(statement)
                            .fetch_one(&mut **connection)
                            .await?
                    }
                };
                values.push(value);
            }
        });
        Ok(values)
    }
}

/// Removes a password from a URL-ish error text before it can reach a log.
fn redact(text: &str) -> String {
    match (text.find("://"), text.find('@')) {
        (Some(start), Some(at)) if at > start => {
            format!("{}://[REDACTED]{}", &text[..start], &text[at..])
        }
        _ => text.to_owned(),
    }
}

/// An insert whose unique constraint says "already there": `Ok(false)` when
/// the row existed, `Ok(true)` when it was written.
pub(crate) fn inserted_unless_taken(insert: Result<(), StoreError>) -> Result<bool, StoreError> {
    match insert {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Times are stored as microseconds since the Unix epoch, the same on both backends.
pub(crate) fn to_micros(time: OffsetDateTime) -> i64 {
    // i64 microseconds reach year 294247: the cast cannot truncate a real date.
    (time.unix_timestamp_nanos() / 1_000) as i64
}

pub(crate) fn from_micros(micros: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {micros}: {e}")))
}

/// Sequence numbers are u64 in Rust and BIGINT in SQL.
pub(crate) fn seq_to_sql(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("index {seq} is out of range")))
}

/// A stored CRLReason code, as the one type that carries it.
pub(crate) fn reason_from_sql(
    code: Option<i64>,
) -> Result<Option<sceau_core::revocation::Reason>, StoreError> {
    Ok(code
        .map(sceau_core::revocation::Reason::from_code)
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
        .flatten())
}

/// A CRLReason as its column stores it.
pub(crate) fn reason_to_sql(reason: Option<sceau_core::revocation::Reason>) -> Option<i64> {
    reason.map(|reason| i64::from(reason.code()))
}

pub(crate) fn seq_from_sql(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative index {seq}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_credentials() {
        assert_eq!(
            redact("postgres://user:secret@host/db"),
            "postgres://[REDACTED]@host/db"
        );
    }

    #[test]
    fn micros_round_trip() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(from_micros(to_micros(t)).unwrap(), t);
    }
}
