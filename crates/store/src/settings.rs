//! The database settings: which backend the URL selects, the pool's size and
//! the status lease every instance of one database shares.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A `database.url` that names no backend sceau has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must start with sqlite: or postgres://")]
pub struct UnknownBackend;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` (the embedded default) or `postgres://…`.
    /// Wrapped because a PostgreSQL URL may carry a password.
    pub url: SecretString,
    pub max_connections: u32,
    /// How long, in milliseconds, an instance may go on answering OCSP from
    /// the certificate statuses it has read, without reading them again, once
    /// it last saw that none had changed (`store::status`). A call that changes
    /// a status (a revocation) returns only this long after its commit, so no
    /// instance answers from what it read before. It must be the same on every
    /// instance of one database. 0 reads the statuses on every request.
    pub status_lease_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://var/sceau.db"),
            max_connections: 8,
            status_lease_ms: 100,
        }
    }
}

/// The database backend a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseBackend {
    Sqlite,
    Postgres,
}

impl DatabaseSettings {
    pub fn backend(&self) -> Result<DatabaseBackend, UnknownBackend> {
        let url = self.url.expose_secret();
        if url.starts_with("sqlite:") {
            Ok(DatabaseBackend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseBackend::Postgres)
        } else {
            Err(UnknownBackend)
        }
    }
}
