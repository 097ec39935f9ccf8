//! Seal certificates: the serial reserved before signing (unique by constraint),
//! the issued certificate, and for CA-managed keys the seal credential it binds.

use time::OffsetDateTime;
use uuid::Uuid;

use super::entities::{CredentialStatus, KeyReference, parse_uuid};
use super::{Store, StoreError, from_micros, on_pool, seq_from_sql, to_micros};

/// What is known of a certificate before the CA signs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateReservation {
    /// Hex of the serial number's content octets.
    pub serial: String,
    pub policy_id: String,
    pub request_id: Uuid,
    pub entity_id: Uuid,
    pub credential_id: Option<Uuid>,
    /// RFC 4514 form, for people reading the database.
    pub subject: String,
    /// Hex SHA-256 of the DER SubjectPublicKeyInfo.
    pub spki_sha256: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Why a reservation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReservationError {
    #[error("the serial number {0} is already taken")]
    SerialTaken(String),
    #[error("the public key (SHA-256 {0}) is already certified")]
    KeyCertified(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The CA-managed key an issued certificate binds, recorded as a seal credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    pub id: Uuid,
    pub entity_id: Uuid,
    pub key: KeyReference,
}

/// An issued certificate as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    pub serial: String,
    pub policy_id: String,
    pub request_id: Uuid,
    pub entity_id: Uuid,
    pub credential_id: Option<Uuid>,
    pub subject: String,
    pub spki_sha256: String,
    pub der: Vec<u8>,
    pub sha256: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub issued_at: OffsetDateTime,
    pub journal_index: u64,
}

const ISSUED_COLUMNS: &str = "serial, policy_id, request_id, entity_id, credential_id, subject, \
    spki_sha256, der, sha256, not_before, not_after, issued_at, journal_index";

/// A `certificates` row as stored (an issued one).
#[derive(sqlx::FromRow)]
struct StoredCertificate {
    serial: String,
    policy_id: String,
    request_id: String,
    entity_id: String,
    credential_id: Option<String>,
    subject: String,
    spki_sha256: String,
    der: Vec<u8>,
    sha256: String,
    not_before: i64,
    not_after: i64,
    issued_at: i64,
    journal_index: i64,
}

impl TryFrom<StoredCertificate> for IssuedCertificate {
    type Error = StoreError;

    fn try_from(row: StoredCertificate) -> Result<Self, StoreError> {
        Ok(Self {
            serial: row.serial,
            policy_id: row.policy_id,
            request_id: parse_uuid(&row.request_id)?,
            entity_id: parse_uuid(&row.entity_id)?,
            credential_id: row.credential_id.as_deref().map(parse_uuid).transpose()?,
            subject: row.subject,
            spki_sha256: row.spki_sha256,
            der: row.der,
            sha256: row.sha256,
            not_before: from_micros(row.not_before)?,
            not_after: from_micros(row.not_after)?,
            issued_at: from_micros(row.issued_at)?,
            journal_index: seq_from_sql(row.journal_index)?,
        })
    }
}

impl Store {
    /// Whether a certificate (issued or being issued) already binds this key.
    pub async fn is_key_certified(&self, spki_sha256: &str) -> Result<bool, StoreError> {
        let sql = "SELECT COUNT(*) FROM certificates WHERE spki_sha256 = $1";
        let count: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(sql)
                .bind(spki_sha256)
                .fetch_one(pool)
                .await?
        });
        Ok(count > 0)
    }

    /// Takes the serial number (and the key) before the CA signs anything.
    pub async fn reserve_certificate(
        &self,
        reservation: &CertificateReservation,
        now: OffsetDateTime,
    ) -> Result<(), ReservationError> {
        let sql = "INSERT INTO certificates (serial, state, policy_id, request_id, entity_id, \
                   credential_id, subject, spki_sha256, not_before, not_after, reserved_at) \
                   VALUES ($1, 'reserved', $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        let inserted: Result<(), StoreError> = async {
            on_pool!(self, |pool| {
                sqlx::query(sql)
                    .bind(&reservation.serial)
                    .bind(&reservation.policy_id)
                    .bind(reservation.request_id.to_string())
                    .bind(reservation.entity_id.to_string())
                    .bind(reservation.credential_id.map(|id| id.to_string()))
                    .bind(&reservation.subject)
                    .bind(&reservation.spki_sha256)
                    .bind(to_micros(reservation.not_before))
                    .bind(to_micros(reservation.not_after))
                    .bind(to_micros(now))
                    .execute(pool)
                    .await?;
            });
            Ok(())
        }
        .await;
        match inserted {
            Err(StoreError::Conflict(_)) => {
                if self.is_key_certified(&reservation.spki_sha256).await? {
                    Err(ReservationError::KeyCertified(
                        reservation.spki_sha256.clone(),
                    ))
                } else {
                    Err(ReservationError::SerialTaken(reservation.serial.clone()))
                }
            }
            other => Ok(other?),
        }
    }

    /// Gives a reservation back when nothing was signed under it.
    pub async fn release_reservation(&self, serial: &str) -> Result<(), StoreError> {
        let sql = "DELETE FROM certificates WHERE serial = $1 AND state = 'reserved'";
        on_pool!(self, |pool| {
            sqlx::query(sql).bind(serial).execute(pool).await?;
        });
        Ok(())
    }

    /// Stores the signed, journaled certificate and, for a CA-managed key, its seal
    /// credential (pending until the RCCS accepts it), in one transaction.
    pub async fn complete_certificate(
        &self,
        serial: &str,
        der: &[u8],
        sha256: &str,
        journal_index: u64,
        credential: Option<&NewCredential>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let update = "UPDATE certificates SET state = 'issued', der = $1, sha256 = $2, \
                      issued_at = $3, journal_index = $4 WHERE serial = $5 AND state = 'reserved'";
        let insert = "INSERT INTO seal_credentials (id, entity_id, token_role, key_id, key_label, \
                      certificate, status, created_at, updated_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";
        let index = i64::try_from(journal_index)
            .map_err(|_| StoreError::Corrupt(format!("journal index {journal_index}")))?;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(update)
                .bind(der)
                .bind(sha256)
                .bind(to_micros(now))
                .bind(index)
                .bind(serial)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated != 1 {
                return Err(StoreError::NotFound {
                    what: "certificate reservation",
                    id: serial.to_owned(),
                });
            }
            if let Some(credential) = credential {
                sqlx::query(insert)
                    .bind(credential.id.to_string())
                    .bind(credential.entity_id.to_string())
                    .bind(credential.key.token_role.name())
                    .bind(hex::encode(&credential.key.key_id))
                    .bind(&credential.key.key_label)
                    .bind(der)
                    .bind(CredentialStatus::Pending.as_str())
                    .bind(to_micros(now))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// An issued certificate by serial (hex).
    pub async fn issued_certificate(&self, serial: &str) -> Result<IssuedCertificate, StoreError> {
        let sql = format!(
            "SELECT {ISSUED_COLUMNS} FROM certificates WHERE serial = $1 AND state = 'issued'"
        );
        self.read_optional::<StoredCertificate, _>(&sql, &[serial.into()])
            .await?
            .ok_or(StoreError::NotFound {
                what: "certificate",
                id: serial.to_owned(),
            })
    }

    /// The certificate issued for a CA-managed seal credential.
    pub async fn certificate_of_credential(
        &self,
        credential_id: Uuid,
    ) -> Result<Option<IssuedCertificate>, StoreError> {
        let sql = format!(
            "SELECT {ISSUED_COLUMNS} FROM certificates WHERE credential_id = $1 \
             AND state = 'issued' ORDER BY issued_at DESC LIMIT 1"
        );
        self.read_optional::<StoredCertificate, _>(&sql, &[credential_id.into()])
            .await
    }

    /// How many certificates are in each state: (reserved, issued).
    pub async fn certificate_counts(&self) -> Result<(u64, u64), StoreError> {
        let sql = "SELECT (SELECT COUNT(*) FROM certificates WHERE state = 'reserved'), \
                   (SELECT COUNT(*) FROM certificates WHERE state = 'issued')";
        let (reserved, issued): (i64, i64) =
            on_pool!(self, |pool| { sqlx::query_as(sql).fetch_one(pool).await? });
        Ok((
            u64::try_from(reserved).unwrap_or_default(),
            u64::try_from(issued).unwrap_or_default(),
        ))
    }

    /// Every issued serial (hex), for audits and tests.
    pub async fn issued_serials(&self) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT serial FROM certificates WHERE state = 'issued' ORDER BY serial";
        self.read_scalars(sql, &[]).await
    }
}
