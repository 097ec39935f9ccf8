//! The RA's reads: organisations, persons, requests and their history,
//! evidence documents, revocations and certificates near their end.

use super::rows::{PersonRow, StoredEvidence, StoredRequest, StoredRevocation};
use super::*;
use crate::store::entities::EntityRow;
use crate::store::rows::read;

impl Store {
    /// Who holds a role in an organisation: (issuer, subject, role), in order.
    pub async fn role_holders(
        &self,
        entity_id: Uuid,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let sql = "SELECT issuer, subject, role FROM role_assignments WHERE entity_id = $1 \
                   ORDER BY issuer, subject, role";
        on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(entity_id.to_string())
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
            }
            Ok(out)
        })
    }

    /// The organisation registered under a SIREN, if any.
    pub async fn entity_by_siren(&self, siren: &str) -> Result<Option<Entity>, StoreError> {
        let sql = format!("SELECT {ENTITY_COLUMNS} FROM entities WHERE siren = $1");
        on_pool!(self, |pool| {
            match sqlx::query(&sql).bind(siren).fetch_optional(pool).await? {
                Some(row) => Ok(Some(read::<EntityRow, _, _>(&row)?)),
                None => Ok(None),
            }
        })
    }

    pub async fn persons_of(&self, entity_id: Uuid) -> Result<Vec<Person>, StoreError> {
        let sql = format!(
            "SELECT {PERSON_COLUMNS} FROM persons WHERE entity_id = $1 ORDER BY created_at, id"
        );
        on_pool!(self, |pool| {
            let rows = sqlx::query(&sql)
                .bind(entity_id.to_string())
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(read::<PersonRow, _, _>(row)?);
            }
            Ok(out)
        })
    }

    pub async fn person(&self, id: Uuid) -> Result<Person, StoreError> {
        let sql = format!("SELECT {PERSON_COLUMNS} FROM persons WHERE id = $1");
        on_pool!(self, |pool| {
            let row = sqlx::query(&sql)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound {
                    what: "person",
                    id: id.to_string(),
                })?;
            Ok(read::<PersonRow, _, _>(&row)?)
        })
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
        on_pool!(self, |pool| {
            match sqlx::query(&sql)
                .bind(sha256)
                .bind(to_micros(now))
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Ok(Some(read::<PersonRow, _, _>(&row)?)),
                None => Ok(None),
            }
        })
    }

    pub async fn registration_request(&self, id: Uuid) -> Result<RequestRow, StoreError> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM registration_requests WHERE id = $1");
        on_pool!(self, |pool| {
            let row = sqlx::query(&sql)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound {
                    what: "request",
                    id: id.to_string(),
                })?;
            Ok(read::<StoredRequest, _, _>(&row)?)
        })
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
        on_pool!(self, |pool| {
            let rows = sqlx::query(&sql)
                .bind(match scope {
                    RequestScope::Entity(entity) => entity.to_string(),
                    _ => String::new(),
                })
                .bind(state.unwrap_or_default())
                .bind(before.map(|b| b.to_string()).unwrap_or_default())
                .bind(i64::from(limit))
                .bind(match scope {
                    RequestScope::CreatedBy(principal) => principal,
                    _ => "",
                })
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(read::<StoredRequest, _, _>(row)?);
            }
            Ok(out)
        })
    }

    /// Renewal requests of a certificate.
    pub async fn renewals_of(&self, serial: &str) -> Result<Vec<RequestRow>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM registration_requests WHERE renews_serial = $1 \
             ORDER BY created_at, id"
        );
        on_pool!(self, |pool| {
            let rows = sqlx::query(&sql).bind(serial).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(read::<StoredRequest, _, _>(row)?);
            }
            Ok(out)
        })
    }

    pub async fn request_events(&self, id: Uuid) -> Result<Vec<RequestEvent>, StoreError> {
        let sql = "SELECT action, from_state, to_state, actor, message, journal_index, at \
                   FROM request_events WHERE request_id = $1 ORDER BY seq";
        on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(id.to_string())
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let index: Option<i64> = row.try_get(5)?;
                out.push(RequestEvent {
                    action: row.try_get(0)?,
                    from_state: row.try_get(1)?,
                    to_state: row.try_get(2)?,
                    actor: row.try_get(3)?,
                    message: row.try_get(4)?,
                    journal_index: index.map(seq_from_sql).transpose()?,
                    at: from_micros(row.try_get(6)?)?,
                });
            }
            Ok(out)
        })
    }

    pub async fn evidence_documents(
        &self,
        request_id: Uuid,
    ) -> Result<Vec<EvidenceRow>, StoreError> {
        let sql = format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence_documents WHERE request_id = $1 \
             ORDER BY uploaded_at, id"
        );
        on_pool!(self, |pool| {
            let rows = sqlx::query(&sql)
                .bind(request_id.to_string())
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(read::<StoredEvidence, _, _>(row)?);
            }
            Ok(out)
        })
    }

    pub async fn evidence_document(&self, id: Uuid) -> Result<EvidenceRow, StoreError> {
        let sql = format!("SELECT {EVIDENCE_COLUMNS} FROM evidence_documents WHERE id = $1");
        on_pool!(self, |pool| {
            let row = sqlx::query(&sql)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound {
                    what: "document",
                    id: id.to_string(),
                })?;
            Ok(read::<StoredEvidence, _, _>(&row)?)
        })
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
        on_pool!(self, |pool| {
            let rows = sqlx::query(&sql)
                .bind(to_micros(now))
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(read::<StoredEvidence, _, _>(row)?);
            }
            Ok(out)
        })
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
        on_pool!(self, |pool| {
            match sqlx::query(&sql).bind(serial).fetch_optional(pool).await? {
                Some(row) => Ok(Some(read::<StoredRevocation, _, _>(&row)?)),
                None => Ok(None),
            }
        })
    }

    /// When the certificate was accepted by its RCCS, if it was.
    pub async fn certificate_accepted_at(
        &self,
        serial: &str,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let sql = "SELECT accepted_at FROM certificates WHERE serial = $1";
        on_pool!(self, |pool| {
            let row = sqlx::query(sql)
                .bind(serial)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound {
                    what: "certificate",
                    id: serial.to_owned(),
                })?;
            let at: Option<i64> = row.try_get(0)?;
            at.map(from_micros).transpose()
        })
    }

    /// Accepted, unrevoked certificates expiring after `now` and by `horizon`,
    /// with the reminders already sent for each.
    pub async fn expiring_certificates(
        &self,
        now: OffsetDateTime,
        horizon: OffsetDateTime,
    ) -> Result<Vec<ExpiringCertificate>, StoreError> {
        let sql = "SELECT c.serial, c.entity_id, c.policy_id, c.request_id, c.not_after, \
                   r.days_before FROM certificates c \
                   LEFT JOIN renewal_reminders r ON r.serial = c.serial \
                   WHERE c.state = 'issued' AND c.accepted_at IS NOT NULL \
                   AND c.not_after > $1 AND c.not_after <= $2 \
                   AND NOT EXISTS (SELECT 1 FROM revocations v WHERE v.serial = c.serial) \
                   ORDER BY c.not_after, c.serial";
        on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(to_micros(now))
                .bind(to_micros(horizon))
                .fetch_all(pool)
                .await?;
            let mut out: Vec<ExpiringCertificate> = Vec::new();
            for row in &rows {
                let serial: String = row.try_get(0)?;
                let reminded: Option<i64> = row.try_get(5)?;
                let reminded = reminded
                    .map(|d| u32::try_from(d).map_err(|_| StoreError::Corrupt(format!("days {d}"))))
                    .transpose()?;
                match out.last_mut() {
                    Some(last) if last.serial == serial => last.reminded.extend(reminded),
                    _ => out.push(ExpiringCertificate {
                        serial,
                        entity_id: parse_uuid(&row.try_get::<String, _>(1)?)?,
                        policy_id: row.try_get(2)?,
                        request_id: parse_uuid(&row.try_get::<String, _>(3)?)?,
                        not_after: from_micros(row.try_get(4)?)?,
                        reminded: reminded.into_iter().collect(),
                    }),
                }
            }
            Ok(out)
        })
    }
}
