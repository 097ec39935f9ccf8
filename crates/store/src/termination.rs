//! The end of a CA: the administrators' approvals, the termination's recorded
//! steps, revoked CA and service certificates, and the final OCSP responses.

use time::OffsetDateTime;
use uuid::Uuid;

use super::crl::CLIENT_AUTH_POLICY;
use super::entities::parse_uuid;
use super::status::{SerialStatus, StatusChange, status_of};
use super::{Store, StoreError, from_micros, on_pool, seq_from_sql, seq_to_sql, to_micros};
use sceau_core::revocation::Reason;

/// One CA administrator's approval of a CA's termination.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TerminationApproval {
    /// The principal's stable id (`oidc:<issuer>#<subject>` or `cert:<sha256>`).
    pub approver: String,
    /// How that principal authenticated for this approval.
    pub auth_method: String,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub approved_at: OffsetDateTime,
    pub journal_index: u64,
}

/// A termination as far as it went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TerminationRecord {
    pub ca_serial: String,
    pub purpose: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub certificates_revoked: Option<u64>,
    pub final_crl_number: Option<u64>,
    pub final_ocsp_responses: Option<u64>,
    pub arl_number: Option<u64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub key_destroyed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
}

/// One step of a termination, recorded when it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminationStep {
    CertificatesRevoked(u64),
    FinalCrl(u64),
    FinalOcspResponses(u64),
    Arl(u64),
    KeyDestroyed(OffsetDateTime),
    Completed(OffsetDateTime),
}

/// A seal certificate still valid (issued, not revoked), with its organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StillValid {
    pub serial: String,
    pub entity_id: Uuid,
}

/// The status of one certificate a CA issued, for its final OCSP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedStatus {
    pub serial: String,
    pub status: SerialStatus,
}

/// A final OCSP response, for one CertID hash algorithm (`sha1`, `sha256`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalOcspResponse {
    pub serial: String,
    pub hash_algorithm: &'static str,
    pub ca_serial: String,
    pub der: Vec<u8>,
    pub produced_at: OffsetDateTime,
}

const RECORD_COLUMNS: &str = "ca_serial, purpose, started_at, certificates_revoked, \
     final_crl_number, final_ocsp_responses, arl_number, key_destroyed_at, completed_at";

fn optional_seq(value: Option<i64>) -> Result<Option<u64>, StoreError> {
    value.map(seq_from_sql).transpose()
}

/// A `ca_termination_approvals` row as stored.
#[derive(sqlx::FromRow)]
struct StoredApproval {
    approver: String,
    auth_method: String,
    reason: String,
    approved_at: i64,
    journal_index: i64,
}

impl TryFrom<StoredApproval> for TerminationApproval {
    type Error = StoreError;

    fn try_from(row: StoredApproval) -> Result<Self, StoreError> {
        Ok(Self {
            approver: row.approver,
            auth_method: row.auth_method,
            reason: row.reason,
            approved_at: from_micros(row.approved_at)?,
            journal_index: seq_from_sql(row.journal_index)?,
        })
    }
}

/// A `ca_terminations` row as stored.
#[derive(sqlx::FromRow)]
struct StoredTermination {
    ca_serial: String,
    purpose: String,
    started_at: i64,
    certificates_revoked: Option<i64>,
    final_crl_number: Option<i64>,
    final_ocsp_responses: Option<i64>,
    arl_number: Option<i64>,
    key_destroyed_at: Option<i64>,
    completed_at: Option<i64>,
}

impl TryFrom<StoredTermination> for TerminationRecord {
    type Error = StoreError;

    fn try_from(row: StoredTermination) -> Result<Self, StoreError> {
        Ok(Self {
            ca_serial: row.ca_serial,
            purpose: row.purpose,
            started_at: from_micros(row.started_at)?,
            certificates_revoked: optional_seq(row.certificates_revoked)?,
            final_crl_number: optional_seq(row.final_crl_number)?,
            final_ocsp_responses: optional_seq(row.final_ocsp_responses)?,
            arl_number: optional_seq(row.arl_number)?,
            key_destroyed_at: row.key_destroyed_at.map(from_micros).transpose()?,
            completed_at: row.completed_at.map(from_micros).transpose()?,
        })
    }
}

/// A seal certificate's serial and organisation as stored.
#[derive(sqlx::FromRow)]
struct StoredStillValid {
    serial: String,
    entity_id: String,
}

impl TryFrom<StoredStillValid> for StillValid {
    type Error = StoreError;

    fn try_from(row: StoredStillValid) -> Result<Self, StoreError> {
        Ok(Self {
            serial: row.serial,
            entity_id: parse_uuid(&row.entity_id)?,
        })
    }
}

/// A serial with its revocation, if any, as the status query selects it.
#[derive(sqlx::FromRow)]
struct StoredStatus {
    serial: String,
    revoked_at: Option<i64>,
    reason_code: Option<i64>,
}

impl TryFrom<StoredStatus> for IssuedStatus {
    type Error = StoreError;

    fn try_from(row: StoredStatus) -> Result<Self, StoreError> {
        Ok(Self {
            serial: row.serial,
            status: status_of(true, row.revoked_at, row.reason_code)?,
        })
    }
}

impl Store {
    /// Records an approval. The same approver twice for one CA is a conflict.
    pub async fn add_termination_approval(
        &self,
        ca_serial: &str,
        approval: &TerminationApproval,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO ca_termination_approvals (ca_serial, approver, auth_method, \
                   reason, approved_at, journal_index) VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(ca_serial)
                .bind(&approval.approver)
                .bind(&approval.auth_method)
                .bind(&approval.reason)
                .bind(to_micros(approval.approved_at))
                .bind(seq_to_sql(approval.journal_index)?)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The approvals of the termination of `ca_serial`, oldest first.
    pub async fn termination_approvals(
        &self,
        ca_serial: &str,
    ) -> Result<Vec<TerminationApproval>, StoreError> {
        let sql = "SELECT approver, auth_method, reason, approved_at, journal_index \
                   FROM ca_termination_approvals WHERE ca_serial = $1 ORDER BY approved_at";
        self.read_all::<StoredApproval, _>(sql, &[ca_serial.into()])
            .await
    }

    /// Records that the termination of `ca_serial` started (once; a resumed
    /// termination keeps its first start).
    pub async fn begin_termination(
        &self,
        ca_serial: &str,
        purpose: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO ca_terminations (ca_serial, purpose, started_at) \
                   VALUES ($1, $2, $3) ON CONFLICT (ca_serial) DO NOTHING";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(ca_serial)
                .bind(purpose)
                .bind(to_micros(at))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The termination of `ca_serial`, if one started.
    pub async fn termination(
        &self,
        ca_serial: &str,
    ) -> Result<Option<TerminationRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM ca_terminations WHERE ca_serial = $1");
        self.read_optional::<StoredTermination, _>(&sql, &[ca_serial.into()])
            .await
    }

    /// The serials of the CA certificates whose termination started: their keys
    /// sign nothing more (the CRL publisher and the OCSP maintenance skip them).
    pub async fn terminating_ca_serials(&self) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT ca_serial FROM ca_terminations ORDER BY ca_serial";
        self.read_scalars(sql, &[]).await
    }

    pub async fn record_termination_step(
        &self,
        ca_serial: &str,
        step: TerminationStep,
    ) -> Result<(), StoreError> {
        let (column, value) = match step {
            TerminationStep::CertificatesRevoked(n) => ("certificates_revoked", seq_to_sql(n)?),
            TerminationStep::FinalCrl(n) => ("final_crl_number", seq_to_sql(n)?),
            TerminationStep::FinalOcspResponses(n) => ("final_ocsp_responses", seq_to_sql(n)?),
            TerminationStep::Arl(n) => ("arl_number", seq_to_sql(n)?),
            TerminationStep::KeyDestroyed(at) => ("key_destroyed_at", to_micros(at)),
            TerminationStep::Completed(at) => ("completed_at", to_micros(at)),
        };
        let sql = format!("UPDATE ca_terminations SET {column} = $1 WHERE ca_serial = $2");
        let args = [value.into(), ca_serial.into()];
        self.update_one(&sql, &args, "CA termination", ca_serial)
            .await
    }

    /// Seal certificates of the issuing CA that are issued and not revoked.
    pub async fn still_valid_seal_certificates(&self) -> Result<Vec<StillValid>, StoreError> {
        let sql = "SELECT c.serial AS serial, c.entity_id AS entity_id FROM certificates c \
                   LEFT JOIN revocations r ON r.serial = c.serial \
                   WHERE c.state = 'issued' AND c.policy_id <> $1 AND r.serial IS NULL \
                   ORDER BY c.serial";
        self.read_all::<StoredStillValid, _>(sql, &[CLIENT_AUTH_POLICY.into()])
            .await
    }

    /// The issuing CA's service certificates (OCSP responder, TSU), active or
    /// not, that are not revoked.
    pub async fn unrevoked_service_certificates(&self) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT a.serial FROM ca_certificates a \
                   LEFT JOIN ca_revocations r ON r.serial = a.serial \
                   WHERE a.purpose IN ('ocsp', 'tsa') AND r.serial IS NULL ORDER BY a.serial";
        self.read_scalars(sql, &[]).await
    }

    /// Revokes CA or service certificates: `issuer` is the purpose of the CA
    /// whose CRL lists them (`root` for a sub-CA, `issuing` for its services).
    /// Already revoked ones are left as they were.
    pub async fn revoke_ca_certificates(
        &self,
        serials: &[String],
        issuer: &str,
        reason_code: Option<Reason>,
        at: OffsetDateTime,
    ) -> Result<StatusChange, StoreError> {
        let sql = "INSERT INTO ca_revocations (serial, issuer, reason_code, revoked_at) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (serial) DO NOTHING";
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for serial in serials {
                sqlx::query(sql)
                    .bind(serial)
                    .bind(issuer)
                    .bind(super::reason_to_sql(reason_code))
                    .bind(to_micros(at))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        // Done only once no instance can answer OCSP "good" for them.
        Ok(self.status_changed())
    }

    /// Every certificate the issuing CA issued (seal certificates in state
    /// `issued`, and its service certificates) with its status.
    pub async fn issuing_ca_statuses(&self) -> Result<Vec<IssuedStatus>, StoreError> {
        let sql = "SELECT c.serial AS serial, r.revoked_at AS revoked_at, r.reason_code AS reason_code FROM certificates c \
                   LEFT JOIN revocations r ON r.serial = c.serial \
                   WHERE c.state = 'issued' AND c.policy_id <> $1 \
                   UNION ALL \
                   SELECT a.serial, v.revoked_at, v.reason_code FROM ca_certificates a \
                   LEFT JOIN ca_revocations v ON v.serial = a.serial \
                   WHERE a.purpose IN ('ocsp', 'tsa') ORDER BY 1";
        self.read_all::<StoredStatus, _>(sql, &[CLIENT_AUTH_POLICY.into()])
            .await
    }

    /// Stores final OCSP responses, all or none (a resumed termination replaces them).
    pub async fn insert_final_ocsp_responses(
        &self,
        responses: &[FinalOcspResponse],
    ) -> Result<StatusChange, StoreError> {
        let delete = "DELETE FROM final_ocsp_responses WHERE serial = $1 AND hash_algorithm = $2";
        let insert = "INSERT INTO final_ocsp_responses (serial, hash_algorithm, ca_serial, der, \
                      produced_at) VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for response in responses {
                sqlx::query(delete)
                    .bind(&response.serial)
                    .bind(response.hash_algorithm)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(insert)
                    .bind(&response.serial)
                    .bind(response.hash_algorithm)
                    .bind(&response.ca_serial)
                    .bind(&response.der)
                    .bind(to_micros(response.produced_at))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        // Done only once every instance answers with them.
        Ok(self.status_changed())
    }

    /// The final OCSP response for `serial` with a CertID hashed by `hash_algorithm`.
    pub async fn final_ocsp_response(
        &self,
        serial: &str,
        hash_algorithm: &str,
    ) -> Result<Option<(Vec<u8>, OffsetDateTime)>, StoreError> {
        let sql = "SELECT der, produced_at FROM final_ocsp_responses \
                   WHERE serial = $1 AND hash_algorithm = $2";
        let row: Option<(Vec<u8>, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(serial)
                .bind(hash_algorithm)
                .fetch_optional(pool)
                .await?
        });
        row.map(|(der, produced_at)| Ok((der, from_micros(produced_at)?)))
            .transpose()
    }
}
