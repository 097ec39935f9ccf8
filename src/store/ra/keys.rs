//! The seal keys due for destruction, and their destruction recorded.

use super::*;

/// A seal key whose certificate is revoked or expired and that is still in the HSM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyToDestroy {
    pub credential_id: Uuid,
    pub key: KeyReference,
    /// The certificate's serial, once issued.
    pub serial: Option<String>,
    pub revoked: bool,
    pub not_after: Option<OffsetDateTime>,
}

impl Store {
    /// Seal keys to destroy at `now`: their credential or certificate is
    /// revoked, or the certificate has expired, and the key is not destroyed yet.
    pub async fn keys_to_destroy(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<KeyToDestroy>, StoreError> {
        let sql = "SELECT s.id, s.token_role, s.key_id, s.key_label, c.serial, \
                   (s.status = 'revoked' OR v.serial IS NOT NULL), c.not_after \
                   FROM seal_credentials s \
                   LEFT JOIN certificates c ON c.credential_id = s.id AND c.state = 'issued' \
                   LEFT JOIN revocations v ON v.serial = c.serial \
                   WHERE s.key_destroyed_at IS NULL \
                   AND (s.status = 'revoked' OR v.serial IS NOT NULL OR c.not_after <= $1) \
                   ORDER BY s.id";
        on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(to_micros(now))
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let not_after: Option<i64> = row.try_get(6)?;
                out.push(KeyToDestroy {
                    credential_id: parse_uuid(&row.try_get::<String, _>(0)?)?,
                    key: KeyReference::from_stored(
                        &row.try_get::<String, _>(1)?,
                        &row.try_get::<String, _>(2)?,
                        row.try_get(3)?,
                    )?,
                    serial: row.try_get(4)?,
                    revoked: row.try_get(5)?,
                    not_after: not_after.map(from_micros).transpose()?,
                });
            }
            Ok(out)
        })
    }

    /// Records that a credential's key is gone from the HSM; an expired (not
    /// revoked) credential reads `expired` from then on.
    pub async fn mark_key_destroyed(
        &self,
        credential_id: Uuid,
        expired: bool,
        journal_index: u64,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE seal_credentials SET key_destroyed_at = $1, \
                   key_destroyed_journal_index = $2, updated_at = $1, \
                   status = CASE WHEN $3 AND status <> 'revoked' THEN 'expired' ELSE status END \
                   WHERE id = $4 AND key_destroyed_at IS NULL";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(to_micros(now))
                .bind(seq_to_sql(journal_index)?)
                .bind(expired)
                .bind(credential_id.to_string())
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
