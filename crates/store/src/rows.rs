//! Rows read by their column names: each table's raw row (`sqlx::FromRow`,
//! the columns as stored) is checked into its one domain type by `TryFrom`,
//! so no reader counts column positions; the ways of reading (one row by id,
//! an optional row, every row, one column) and the update that must find its
//! row are written once for every table and both backends.

use sqlx::FromRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::{Store, StoreError, on_pool};

/// A raw row both backends can read by column name.
pub(crate) trait RawRow:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> RawRow for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// A column value both backends can decode.
pub(crate) trait Scalar:
    for<'r> sqlx::Decode<'r, sqlx::Sqlite>
    + sqlx::Type<sqlx::Sqlite>
    + for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
    + Send
    + Unpin
{
}

impl<T> Scalar for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + Send
        + Unpin
{
}

/// One value bound to a `$n` placeholder of a statement.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    Bool(bool),
    Bytes(Vec<u8>),
}

impl From<&[u8]> for Arg {
    fn from(bytes: &[u8]) -> Self {
        Self::Bytes(bytes.to_vec())
    }
}

impl From<Uuid> for Arg {
    fn from(id: Uuid) -> Self {
        Self::Text(id.to_string())
    }
}

impl From<&str> for Arg {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Arg {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<bool> for Arg {
    fn from(flag: bool) -> Self {
        Self::Bool(flag)
    }
}

impl From<i64> for Arg {
    fn from(number: i64) -> Self {
        Self::Int(number)
    }
}

/// Binds `args` to `$1`, `$2`, … in order, whichever the backend.
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Text(text) => query.bind(text.as_str()),
                Arg::Int(number) => query.bind(*number),
                Arg::Bool(flag) => query.bind(*flag),
                Arg::Bytes(bytes) => query.bind(bytes.as_slice()),
            };
        }
        query
    }};
}

impl Store {
    /// Every row `sql` selects with `args`, each checked into its domain type.
    pub(crate) async fn read_all<Raw, T>(
        &self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<T>, StoreError>
    where
        Raw: RawRow,
        T: TryFrom<Raw>,
        StoreError: From<T::Error>,
    {
        let raws: Vec<Raw> = on_pool!(self, |pool| {
            bind_all!(sqlx::query_as::<_, Raw>(sql), args)
                .fetch_all(pool)
                .await?
        });
        Ok(raws
            .into_iter()
            .map(T::try_from)
            .collect::<Result<_, _>>()?)
    }

    /// Runs `sql` with `args`; the number of rows it changed.
    pub(crate) async fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |pool| {
            bind_all!(sqlx::query(sql), args)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// The one column `sql` selects with `args`, every row.
    pub(crate) async fn read_scalars<T>(
        &self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<T>, StoreError>
    where
        T: Scalar,
    {
        Ok(on_pool!(self, |pool| {
            bind_all!(sqlx::query_scalar::<_, T>(sql), args)
                .fetch_all(pool)
                .await?
        }))
    }

    /// The row `sql` selects with `args`, if there is one.
    pub(crate) async fn read_optional<Raw, T>(
        &self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Option<T>, StoreError>
    where
        Raw: RawRow,
        T: TryFrom<Raw>,
        StoreError: From<T::Error>,
    {
        let raw: Option<Raw> = on_pool!(self, |pool| {
            bind_all!(sqlx::query_as::<_, Raw>(sql), args)
                .fetch_optional(pool)
                .await?
        });
        Ok(raw.map(T::try_from).transpose()?)
    }

    /// Runs the update `sql` with `args`, which must change the one row of
    /// the `what` called `id`: that it is not found otherwise.
    pub(crate) async fn update_one(
        &self,
        sql: &str,
        args: &[Arg],
        what: &'static str,
        id: &str,
    ) -> Result<(), StoreError> {
        let updated = on_pool!(self, |pool| {
            bind_all!(sqlx::query(sql), args)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::NotFound {
                what,
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// The row `sql` selects by `$1 = id`, or that the `what` is not found.
    pub(crate) async fn read_by_id<Raw, T>(
        &self,
        sql: &str,
        id: Uuid,
        what: &'static str,
    ) -> Result<T, StoreError>
    where
        Raw: RawRow,
        T: TryFrom<Raw>,
        StoreError: From<T::Error>,
    {
        self.read_optional::<Raw, T>(sql, &[Arg::from(id)])
            .await?
            .ok_or(StoreError::NotFound {
                what,
                id: id.to_string(),
            })
    }
}
