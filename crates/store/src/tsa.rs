//! The time-stamps the TSA issued: one row per TSTInfo serial number.

use time::OffsetDateTime;

use super::{Store, StoreError, on_pool, to_micros};

/// What is kept of one time-stamp token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedTimestamp {
    /// Hex of the TSTInfo serial number.
    pub serial: String,
    /// Hex of the serial of the TSU certificate that signed it.
    pub tsu_serial: String,
    pub policy: String,
    /// The messageImprint's hash algorithm OID and hex digest.
    pub hash_algorithm: String,
    pub hashed_message: String,
    pub gen_time: OffsetDateTime,
}

impl Store {
    /// Records a time-stamp; a serial already used is a conflict.
    pub async fn record_timestamp(&self, stamp: &RecordedTimestamp) -> Result<(), StoreError> {
        let sql = "INSERT INTO timestamps (serial, tsu_serial, policy, hash_algorithm, \
                   hashed_message, gen_time) VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(&stamp.serial)
                .bind(&stamp.tsu_serial)
                .bind(&stamp.policy)
                .bind(&stamp.hash_algorithm)
                .bind(&stamp.hashed_message)
                .bind(to_micros(stamp.gen_time))
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
