//! Rows read by their column names: each table's raw row (`sqlx::FromRow`,
//! the columns as stored) is checked into its one domain type by `TryFrom`,
//! so no reader counts column positions.

use sqlx::FromRow;

use super::StoreError;

/// `row` read into its raw form by column name, then into its domain type.
pub(crate) fn read<'r, Raw, T, R>(row: &'r R) -> Result<T, StoreError>
where
    R: sqlx::Row,
    Raw: FromRow<'r, R>,
    T: TryFrom<Raw, Error = StoreError>,
{
    T::try_from(Raw::from_row(row)?)
}
