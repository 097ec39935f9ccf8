//! The register of the serial numbers sceau's CAs have used, whatever the
//! certificate's kind: a serial is written here before it is signed into
//! anything, and never given back.

use time::OffsetDateTime;

use super::{Store, StoreError, inserted_unless_taken, on_pool, to_micros};

impl Store {
    /// Takes `serial` (lowercase hex of its content octets) for a certificate
    /// of `kind`. `Ok(false)` when the serial was already taken.
    pub async fn reserve_serial(
        &self,
        serial: &str,
        kind: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let sql = "INSERT INTO serial_reservations (serial, kind, reserved_at) VALUES ($1, $2, $3)";
        let inserted: Result<(), StoreError> = async {
            on_pool!(self, |pool| {
                sqlx::query(sql)
                    .bind(serial)
                    .bind(kind)
                    .bind(to_micros(now))
                    .execute(pool)
                    .await?;
            });
            Ok(())
        }
        .await;
        inserted_unless_taken(inserted)
    }
}
