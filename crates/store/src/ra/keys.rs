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

/// A seal key due for destruction as the query selects it.
#[derive(sqlx::FromRow)]
struct StoredKeyToDestroy {
    id: String,
    token_role: String,
    key_id: String,
    key_label: String,
    serial: Option<String>,
    revoked: bool,
    not_after: Option<i64>,
}

impl TryFrom<StoredKeyToDestroy> for KeyToDestroy {
    type Error = StoreError;

    fn try_from(row: StoredKeyToDestroy) -> Result<Self, StoreError> {
        Ok(Self {
            credential_id: parse_uuid(&row.id)?,
            key: KeyReference::from_stored(&row.token_role, &row.key_id, row.key_label)?,
            serial: row.serial,
            revoked: row.revoked,
            not_after: row.not_after.map(from_micros).transpose()?,
        })
    }
}

impl Store {
    /// Seal keys to destroy at `now`: their credential or certificate is
    /// revoked, or the certificate has expired, and the key is not destroyed yet.
    pub async fn keys_to_destroy(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<KeyToDestroy>, StoreError> {
        let sql = "SELECT s.id AS id, s.token_role AS token_role, s.key_id AS key_id, \
                   s.key_label AS key_label, c.serial AS serial, \
                   (s.status = 'revoked' OR v.serial IS NOT NULL) AS revoked, \
                   c.not_after AS not_after \
                   FROM seal_credentials s \
                   LEFT JOIN certificates c ON c.credential_id = s.id AND c.state = 'issued' \
                   LEFT JOIN revocations v ON v.serial = c.serial \
                   WHERE s.key_destroyed_at IS NULL \
                   AND (s.status = 'revoked' OR v.serial IS NOT NULL OR c.not_after <= $1) \
                   ORDER BY s.id";
        self.read_all::<StoredKeyToDestroy, _>(sql, &[to_micros(now).into()])
            .await
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
