//! The notification outbox: notices written durably, the ones due for (another)
//! delivery attempt, and what each attempt gave.

use time::OffsetDateTime;
use uuid::Uuid;

use super::entities::parse_uuid;
use super::{Store, StoreError, from_micros, on_pool, to_micros};

/// Where a notice's secret goes in its body when it is sent.
pub const SECRET_PLACEHOLDER: &str = "{{sceau:secret}}";

/// What a notice's sealed secret is bound to: its recipient, so a sealed
/// secret moved to another notice does not open.
pub fn secret_context(recipient: &str) -> Vec<u8> {
    format!("sceau notice secret for {recipient}").into_bytes()
}

/// A notice to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice {
    /// e.g. `request.acknowledged`, `certificate.revoked`.
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    /// With [`SECRET_PLACEHOLDER`] where `sealed_secret` goes.
    pub body: String,
    /// A secret for the body, encrypted in the HSM: never stored in clear.
    pub sealed_secret: Option<Vec<u8>>,
}

/// A notice in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub id: Uuid,
    /// The Message-ID every delivery of this notice carries (without `<>`).
    pub message_id: String,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at: OffsetDateTime,
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub sent_at: Option<OffsetDateTime>,
    /// Erased once the notice is sent.
    pub sealed_secret: Option<Vec<u8>>,
}

const COLUMNS: &str = "id, message_id, kind, recipient, subject, body, created_at, attempts, \
                       next_attempt_at, last_error, sent_at, sealed_secret";

/// A `notices` row as stored.
#[derive(sqlx::FromRow)]
struct StoredNotice {
    id: String,
    message_id: String,
    kind: String,
    recipient: String,
    subject: String,
    body: String,
    created_at: i64,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    sent_at: Option<i64>,
    sealed_secret: Option<Vec<u8>>,
}

impl TryFrom<StoredNotice> for Notice {
    type Error = StoreError;

    fn try_from(row: StoredNotice) -> Result<Self, StoreError> {
        Ok(Self {
            id: parse_uuid(&row.id)?,
            message_id: row.message_id,
            kind: row.kind,
            recipient: row.recipient,
            subject: row.subject,
            body: row.body,
            created_at: from_micros(row.created_at)?,
            attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            next_attempt_at: from_micros(row.next_attempt_at)?,
            last_error: row.last_error,
            sent_at: row.sent_at.map(from_micros).transpose()?,
            sealed_secret: row.sealed_secret,
        })
    }
}

impl Store {
    /// Writes a notice, due at once. Its Message-ID is fixed here, so every
    /// delivery (a resend after a crash too) carries the same one.
    pub async fn enqueue_notice(
        &self,
        notice: &NewNotice,
        message_id_domain: &str,
        now: OffsetDateTime,
    ) -> Result<Notice, StoreError> {
        let id = Uuid::new_v4();
        let stored = Notice {
            id,
            message_id: format!("{}@{message_id_domain}", id.simple()),
            kind: notice.kind.clone(),
            recipient: notice.recipient.clone(),
            subject: notice.subject.clone(),
            body: notice.body.clone(),
            created_at: from_micros(to_micros(now))?,
            attempts: 0,
            next_attempt_at: from_micros(to_micros(now))?,
            last_error: None,
            sent_at: None,
            sealed_secret: notice.sealed_secret.clone(),
        };
        let sql = format!(
            "INSERT INTO notices ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $7, NULL, NULL, $8)"
        );
        on_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(id.to_string())
                .bind(&stored.message_id)
                .bind(&stored.kind)
                .bind(&stored.recipient)
                .bind(&stored.subject)
                .bind(&stored.body)
                .bind(to_micros(now))
                .bind(&stored.sealed_secret)
                .execute(pool)
                .await?;
        });
        Ok(stored)
    }

    /// Unsent notices due by `now`, oldest first.
    pub async fn due_notices(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Notice>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM notices WHERE sent_at IS NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, created_at LIMIT $2"
        );
        self.read_all::<StoredNotice, _>(&sql, &[to_micros(now).into(), (i64::from(limit)).into()])
            .await
    }

    /// Every notice, oldest first.
    pub async fn notices(&self) -> Result<Vec<Notice>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM notices ORDER BY created_at, id");
        self.read_all::<StoredNotice, _>(&sql, &[]).await
    }

    pub async fn mark_notice_sent(&self, id: Uuid, now: OffsetDateTime) -> Result<(), StoreError> {
        let sql = "UPDATE notices SET sent_at = $1, attempts = attempts + 1, last_error = NULL, \
                   sealed_secret = NULL WHERE id = $2 AND sent_at IS NULL";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(to_micros(now))
                .bind(id.to_string())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records a failed attempt and when to try again.
    pub async fn notice_failed(
        &self,
        id: Uuid,
        error: &str,
        next_attempt_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE notices SET attempts = attempts + 1, last_error = $1, \
                   next_attempt_at = $2 WHERE id = $3 AND sent_at IS NULL";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(error)
                .bind(to_micros(next_attempt_at))
                .bind(id.to_string())
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
