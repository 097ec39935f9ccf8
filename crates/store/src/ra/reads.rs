//! The RA's reads: organisations, persons, requests and their history,
//! evidence documents, revocations and certificates near their end.

use super::rows::{PersonRow, StoredEvidence, StoredRequest, StoredRequestEvent, StoredRevocation};
use super::*;
use crate::entities::EntityRow;

impl Store {
    /// Who holds a role in an organisation: (issuer, subject, role), in order.
    pub async fn role_holders(
        &self,
        entity_id: Uuid,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let sql = "SELECT issuer, subject, role FROM role_assignments WHERE entity_id = $1 \
                   ORDER BY issuer, subject, role";
        self.read_all::<(String, String, String), _>(sql, &[entity_id.into()])
            .await
    }

    /// The organisation registered under a SIREN, if any.
    pub async fn entity_by_siren(&self, siren: &str) -> Result<Option<Entity>, StoreError> {
        let sql = format!("SELECT {ENTITY_COLUMNS} FROM entities WHERE siren = $1");
        self.read_optional::<EntityRow, _>(&sql, &[siren.into()])
            .await
    }

    pub async fn persons_of(&self, entity_id: Uuid) -> Result<Vec<Person>, StoreError> {
        let sql = format!(
            "SELECT {PERSON_COLUMNS} FROM persons WHERE entity_id = $1 ORDER BY created_at, id"
        );
        self.read_all::<PersonRow, _>(&sql, &[entity_id.into()])
            .await
    }

    pub async fn person(&self, id: Uuid) -> Result<Person, StoreError> {
        let sql = format!("SELECT {PERSON_COLUMNS} FROM persons WHERE id = $1");
        self.read_by_id::<PersonRow, _>(&sql, id, "person").await
    }

    /// The person an unexpired enrolment link belongs to.
    pub async fn person_by_enrolment(
        &self,
        sha256: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Person>, StoreError> {
        let sql = format!(
            "SELECT {PERSON_COLUMNS} FROM persons \
             WHERE enrolment_sha256 = $1 AND enrolment_expires_at > $2"
        );
        self.read_optional::<PersonRow, _>(&sql, &[sha256.into(), to_micros(now).into()])
            .await
    }

    pub async fn registration_request(&self, id: Uuid) -> Result<RequestRow, StoreError> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM registration_requests WHERE id = $1");
        self.read_by_id::<StoredRequest, _>(&sql, id, "request")
            .await
    }

    /// Up to `limit` requests (of `entity_id`, in `state`, when given), newest
    /// first; after `before` (a request's id) when paging on.
    pub async fn registration_requests(
        &self,
        scope: RequestScope<'_>,
        state: Option<&str>,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<RequestRow>, StoreError> {
        // Keyset paging on (created_at, id), both descending, so a page
        // does not shift when requests are added meanwhile.
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM registration_requests \
             WHERE ($1 = '' OR entity_id = $1) AND ($5 = '' OR created_by = $5) \
             AND ($2 = '' OR state = $2) \
             AND ($3 = '' OR (created_at, id) < \
                  (SELECT created_at, id FROM registration_requests WHERE id = $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let args = [
            match scope {
                RequestScope::Entity(entity) => entity.to_string(),
                _ => String::new(),
            }
            .into(),
            state.unwrap_or_default().into(),
            before.map(|b| b.to_string()).unwrap_or_default().into(),
            i64::from(limit).into(),
            match scope {
                RequestScope::CreatedBy(principal) => principal,
                _ => "",
            }
            .into(),
        ];
        self.read_all::<StoredRequest, _>(&sql, &args).await
    }

    /// Renewal requests of a certificate.
    pub async fn renewals_of(&self, serial: &str) -> Result<Vec<RequestRow>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM registration_requests WHERE renews_serial = $1 \
             ORDER BY created_at, id"
        );
        self.read_all::<StoredRequest, _>(&sql, &[serial.into()])
            .await
    }

    pub async fn request_events(&self, id: Uuid) -> Result<Vec<RequestEvent>, StoreError> {
        let sql = "SELECT action, from_state, to_state, actor, message, journal_index, at \
                   FROM request_events WHERE request_id = $1 ORDER BY seq";
        self.read_all::<StoredRequestEvent, _>(sql, &[id.into()])
            .await
    }

    pub async fn evidence_documents(
        &self,
        request_id: Uuid,
    ) -> Result<Vec<EvidenceRow>, StoreError> {
        let sql = format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence_documents WHERE request_id = $1 \
             ORDER BY uploaded_at, id"
        );
        self.read_all::<StoredEvidence, _>(&sql, &[request_id.into()])
            .await
    }

    pub async fn evidence_document(&self, id: Uuid) -> Result<EvidenceRow, StoreError> {
        let sql = format!("SELECT {EVIDENCE_COLUMNS} FROM evidence_documents WHERE id = $1");
        self.read_by_id::<StoredEvidence, _>(&sql, id, "document")
            .await
    }

    /// Documents kept past their retention date and not yet purged.
    pub async fn evidence_due_for_purge(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<EvidenceRow>, StoreError> {
        let sql = format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence_documents \
             WHERE retain_until <= $1 AND purged_at IS NULL ORDER BY retain_until, id"
        );
        self.read_all::<StoredEvidence, _>(&sql, &[to_micros(now).into()])
            .await
    }

    /// Erases a document's content and wrapped key; its record and SHA-256 stay.
    pub async fn purge_evidence(
        &self,
        id: Uuid,
        journal_index: u64,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE evidence_documents SET ciphertext = NULL, wrapped_key = NULL, \
                   purged_at = $1, journal_index = $2 WHERE id = $3 AND purged_at IS NULL";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(to_micros(now))
                .bind(seq_to_sql(journal_index)?)
                .bind(id.to_string())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn revocation(&self, serial: &str) -> Result<Option<Revocation>, StoreError> {
        let sql = format!("SELECT {REVOCATION_COLUMNS} FROM revocations WHERE serial = $1");
        self.read_optional::<StoredRevocation, _>(&sql, &[serial.into()])
            .await
    }

    /// When the certificate was accepted by its RCCS, if it was.
    pub async fn certificate_accepted_at(
        &self,
        serial: &str,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let sql = "SELECT accepted_at FROM certificates WHERE serial = $1";
        let at: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar(sql)
                .bind(serial)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound {
                    what: "certificate",
                    id: serial.to_owned(),
                })?
        });
        at.map(from_micros).transpose()
    }

    /// Accepted, unrevoked certificates expiring after `now` and by `horizon`,
    /// with the reminders already sent for each.
    pub async fn expiring_certificates(
        &self,
        now: OffsetDateTime,
        horizon: OffsetDateTime,
    ) -> Result<Vec<ExpiringCertificate>, StoreError> {
        let sql = "SELECT c.serial AS serial, c.entity_id AS entity_id, \
                   c.policy_id AS policy_id, c.request_id AS request_id, \
                   c.not_after AS not_after, r.days_before AS days_before FROM certificates c \
                   LEFT JOIN renewal_reminders r ON r.serial = c.serial \
                   WHERE c.state = 'issued' AND c.accepted_at IS NOT NULL \
                   AND c.not_after > $1 AND c.not_after <= $2 \
                   AND NOT EXISTS (SELECT 1 FROM revocations v WHERE v.serial = c.serial) \
                   ORDER BY c.not_after, c.serial";
        let rows: Vec<StoredExpiring> = self
            .read_all::<StoredExpiring, StoredExpiring>(
                sql,
                &[to_micros(now).into(), to_micros(horizon).into()],
            )
            .await?;
        let mut out: Vec<ExpiringCertificate> = Vec::new();
        for row in rows {
            let reminded = row
                .days_before
                .map(|d| u32::try_from(d).map_err(|_| StoreError::Corrupt(format!("days {d}"))))
                .transpose()?;
            match out.last_mut() {
                Some(last) if last.serial == row.serial => last.reminded.extend(reminded),
                _ => out.push(ExpiringCertificate {
                    serial: row.serial,
                    entity_id: parse_uuid(&row.entity_id)?,
                    policy_id: row.policy_id,
                    request_id: parse_uuid(&row.request_id)?,
                    not_after: from_micros(row.not_after)?,
                    reminded: reminded.into_iter().collect(),
                }),
            }
        }
        Ok(out)
    }
}

/// A certificate near its expiry with one reminder sent (or none), as the
/// query selects it: one row per reminder.
#[derive(sqlx::FromRow)]
struct StoredExpiring {
    serial: String,
    entity_id: String,
    policy_id: String,
    request_id: String,
    not_after: i64,
    days_before: Option<i64>,
}
