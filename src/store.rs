//! sqlx: the only module that talks to the database. Pools and migrations for
//! SQLite and PostgreSQL, and one repository module per aggregate.
// SKELETON: replaced by the real implementation.

use crate::error::{ErrorKind, HasErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl HasErrorKind for StoreError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
}

/// The database, whichever backend the URL selected.
#[derive(Debug, Clone)]
pub struct Store {}

impl Store {
    pub async fn ping(&self) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("skeleton".to_owned()))
    }
}
