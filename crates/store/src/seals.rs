//! Seals by credential (an index of the journal's `seal.created` entries) and
//! the Idempotency-Key ledger of seal calls.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, from_micros, on_pool, seq_from_sql, seq_to_sql, to_micros};

/// One seal as the transparency listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SealRecord {
    pub journal_index: u64,
    pub credential_id: Uuid,
    pub principal: String,
    pub format: String,
    pub level: String,
    pub document_sha256: String,
    pub seal_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What a seal call's Idempotency-Key finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First use: the caller makes the seal, then completes or releases the key.
    New,
    /// A call with this key is still being made.
    Pending { request_sha256: String },
    /// Done: the answer to replay (when the request is the same).
    Done {
        request_sha256: String,
        media_type: String,
        response: Vec<u8>,
        journal_index: u64,
    },
}

const SEAL_COLUMNS: &str = "journal_index, credential_id, principal, format, level, \
                            document_sha256, seal_sha256, created_at";

/// A `seals` row as stored.
#[derive(sqlx::FromRow)]
struct StoredSeal {
    journal_index: i64,
    credential_id: String,
    principal: String,
    format: String,
    level: String,
    document_sha256: String,
    seal_sha256: String,
    created_at: i64,
}

impl TryFrom<StoredSeal> for SealRecord {
    type Error = StoreError;

    fn try_from(row: StoredSeal) -> Result<Self, StoreError> {
        Ok(Self {
            journal_index: seq_from_sql(row.journal_index)?,
            credential_id: super::entities::parse_uuid(&row.credential_id)?,
            principal: row.principal,
            format: row.format,
            level: row.level,
            document_sha256: row.document_sha256,
            seal_sha256: row.seal_sha256,
            created_at: from_micros(row.created_at)?,
        })
    }
}

/// A `seal_idempotency` row as a second call with the same key reads it.
#[derive(sqlx::FromRow)]
struct StoredClaim {
    request_sha256: String,
    state: String,
    media_type: Option<String>,
    response: Option<Vec<u8>>,
    journal_index: Option<i64>,
}

impl Store {
    pub async fn insert_seal_record(&self, seal: &SealRecord) -> Result<(), StoreError> {
        self.insert_seal_records(std::slice::from_ref(seal)).await
    }

    /// Indexes several seals in one transaction (a batch of hash seals).
    pub async fn insert_seal_records(&self, seals: &[SealRecord]) -> Result<(), StoreError> {
        let sql =
            format!("INSERT INTO seals ({SEAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for seal in seals {
                sqlx::query(&sql)
                    .bind(seq_to_sql(seal.journal_index)?)
                    .bind(seal.credential_id.to_string())
                    .bind(&seal.principal)
                    .bind(&seal.format)
                    .bind(&seal.level)
                    .bind(&seal.document_sha256)
                    .bind(&seal.seal_sha256)
                    .bind(to_micros(seal.created_at))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The seals made with `credential_id`, newest first, at most `limit`,
    /// before journal index `before` when given (paging).
    pub async fn seals_of(
        &self,
        credential_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<SealRecord>, StoreError> {
        let sql = format!(
            "SELECT {SEAL_COLUMNS} FROM seals WHERE credential_id = $1 AND journal_index < $2 \
             ORDER BY journal_index DESC LIMIT $3"
        );
        let before = match before {
            Some(index) => seq_to_sql(index)?,
            None => i64::MAX,
        };
        let args = [credential_id.into(), before.into(), i64::from(limit).into()];
        self.read_all::<StoredSeal, _>(&sql, &args).await
    }

    /// Takes `key` for `principal`, or says what it already holds.
    pub async fn claim_idempotency_key(
        &self,
        principal: &str,
        key: &str,
        request_sha256: &str,
        now: OffsetDateTime,
    ) -> Result<IdempotencyClaim, StoreError> {
        let insert = "INSERT INTO seal_idempotency (principal, idempotency_key, request_sha256, \
                      state, created_at) VALUES ($1, $2, $3, 'pending', $4) \
                      ON CONFLICT (principal, idempotency_key) DO NOTHING";
        let select = "SELECT request_sha256, state, media_type, response, journal_index \
                      FROM seal_idempotency WHERE principal = $1 AND idempotency_key = $2";
        on_pool!(self, |pool| {
            let inserted = sqlx::query(insert)
                .bind(principal)
                .bind(key)
                .bind(request_sha256)
                .bind(to_micros(now))
                .execute(pool)
                .await?
                .rows_affected();
            if inserted == 1 {
                return Ok(IdempotencyClaim::New);
            }
            let row: StoredClaim = sqlx::query_as(select)
                .bind(principal)
                .bind(key)
                .fetch_one(pool)
                .await?;
            if row.state != "done" {
                return Ok(IdempotencyClaim::Pending {
                    request_sha256: row.request_sha256,
                });
            }
            match (row.media_type, row.response, row.journal_index) {
                (Some(media_type), Some(response), Some(index)) => Ok(IdempotencyClaim::Done {
                    request_sha256: row.request_sha256,
                    media_type,
                    response,
                    journal_index: seq_from_sql(index)?,
                }),
                _ => Err(StoreError::Corrupt(format!(
                    "idempotency key {key:?} is done without its answer"
                ))),
            }
        })
    }

    /// Stores the answer of the call that claimed `key`.
    pub async fn complete_idempotency_key(
        &self,
        principal: &str,
        key: &str,
        media_type: &str,
        response: &[u8],
        journal_index: u64,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE seal_idempotency SET state = 'done', media_type = $1, response = $2, \
                   journal_index = $3 WHERE principal = $4 AND idempotency_key = $5";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(media_type)
                .bind(response)
                .bind(seq_to_sql(journal_index)?)
                .bind(principal)
                .bind(key)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Frees `key` after a call that made no seal, so a retry may try again.
    pub async fn release_idempotency_key(
        &self,
        principal: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        let sql = "DELETE FROM seal_idempotency WHERE principal = $1 AND idempotency_key = $2 \
                   AND state = 'pending'";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(principal)
                .bind(key)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
