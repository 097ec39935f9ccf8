//! An RA change written: each effect inside one transaction, on either backend.

use super::*;
use crate::status::StatusChange;

/// Writes one effect inside the open transaction `$tx` (a macro: the
/// transaction types differ per backend).
macro_rules! write_effect {
    ($tx:expr, $effect:expr, $domain:expr, $now:expr) => {{
        let now: OffsetDateTime = $now;
        match $effect {
            Effect::InsertEntity(entity) => {
                let sql = format!(
                    "INSERT INTO entities ({ENTITY_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                );
                sqlx::query(&sql)
                    .bind(entity.id.to_string())
                    .bind(&entity.legal_name)
                    .bind(&entity.organization_identifier)
                    .bind(&entity.country)
                    .bind(&entity.siren)
                    .bind(&entity.siret)
                    .bind(&entity.legal_form)
                    .bind(&entity.street)
                    .bind(&entity.postal_code)
                    .bind(&entity.city)
                    .bind(to_micros(entity.created_at))
                    .execute(&mut *$tx)
                    .await?;
            }
            Effect::InsertPerson(person, enrolment) => {
                let sql = "INSERT INTO persons (id, entity_id, role, given_name, family_name, \
                           email, phone, language, oidc_issuer, oidc_subject, enrolment_sha256, \
                           enrolment_expires_at, created_at) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
                sqlx::query(sql)
                    .bind(person.id.to_string())
                    .bind(person.entity_id.to_string())
                    .bind(person.role.name())
                    .bind(&person.given_name)
                    .bind(&person.family_name)
                    .bind(&person.email)
                    .bind(&person.phone)
                    .bind(&person.language)
                    .bind(person.identity.as_ref().map(|(i, _)| i.clone()))
                    .bind(person.identity.as_ref().map(|(_, s)| s.clone()))
                    .bind(enrolment.as_ref().map(|e| e.sha256.clone()))
                    .bind(enrolment.as_ref().map(|e| to_micros(e.expires_at)))
                    .bind(to_micros(person.created_at))
                    .execute(&mut *$tx)
                    .await?;
            }
            Effect::BindPerson {
                person_id,
                issuer,
                subject,
            } => {
                // The link is spent: it binds once.
                let updated = sqlx::query(
                    "UPDATE persons SET oidc_issuer = $1, oidc_subject = $2, \
                     enrolment_sha256 = NULL, enrolment_expires_at = NULL \
                     WHERE id = $3 AND oidc_subject IS NULL",
                )
                .bind(issuer)
                .bind(subject)
                .bind(person_id.to_string())
                .execute(&mut *$tx)
                .await?
                .rows_affected();
                if updated != 1 {
                    return Err(StoreError::Conflict(format!(
                        "person {person_id} is already bound to an identity"
                    )));
                }
            }
            Effect::GrantRole {
                issuer,
                subject,
                role,
                entity_id,
            } => {
                grant_role!($tx, issuer, subject, role.name(), *entity_id, now);
            }
            Effect::WithdrawRoles {
                issuer,
                subject,
                entity_id,
            } => {
                sqlx::query(
                    "DELETE FROM role_assignments \
                     WHERE issuer = $1 AND subject = $2 AND entity_id = $3",
                )
                .bind(issuer)
                .bind(subject)
                .bind(entity_id.to_string())
                .execute(&mut *$tx)
                .await?;
            }
            Effect::UpdateEntity(entity) => {
                sqlx::query(
                    "UPDATE entities SET legal_name = $1, siret = $2, legal_form = $3, \
                     street = $4, postal_code = $5, city = $6 WHERE id = $7",
                )
                .bind(&entity.legal_name)
                .bind(&entity.siret)
                .bind(&entity.legal_form)
                .bind(&entity.street)
                .bind(&entity.postal_code)
                .bind(&entity.city)
                .bind(entity.id.to_string())
                .execute(&mut *$tx)
                .await?;
            }
            Effect::RenewEnrolment {
                person_id,
                enrolment,
            } => {
                let updated = sqlx::query(
                    "UPDATE persons SET enrolment_sha256 = $1, enrolment_expires_at = $2 \
                     WHERE id = $3 AND oidc_subject IS NULL",
                )
                .bind(&enrolment.sha256)
                .bind(to_micros(enrolment.expires_at))
                .bind(person_id.to_string())
                .execute(&mut *$tx)
                .await?
                .rows_affected();
                if updated != 1 {
                    return Err(StoreError::Conflict(format!(
                        "person {person_id} is already bound to an identity"
                    )));
                }
            }
            Effect::InsertRequest(row) => {
                let sql = format!(
                    "INSERT INTO registration_requests ({REQUEST_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                );
                sqlx::query(&sql)
                    .bind(row.id.to_string())
                    .bind(row.entity_id.to_string())
                    .bind(&row.kind)
                    .bind(&row.policy_id)
                    .bind(&row.state)
                    .bind(row.version)
                    .bind(&row.file)
                    .bind(&row.renews_serial)
                    .bind(&row.certificate_serial)
                    .bind(row.credential_id.map(|c| c.to_string()))
                    .bind(&row.created_by)
                    .bind(to_micros(row.created_at))
                    .bind(to_micros(row.updated_at))
                    .execute(&mut *$tx)
                    .await?;
            }
            Effect::UpdateRequest {
                row,
                expected_version,
            } => {
                let updated = sqlx::query(
                    "UPDATE registration_requests SET state = $1, version = $2, file = $3, \
                     certificate_serial = $4, credential_id = $5, updated_at = $6 \
                     WHERE id = $7 AND version = $8",
                )
                .bind(&row.state)
                .bind(row.version)
                .bind(&row.file)
                .bind(&row.certificate_serial)
                .bind(row.credential_id.map(|c| c.to_string()))
                .bind(to_micros(row.updated_at))
                .bind(row.id.to_string())
                .bind(*expected_version)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
                if updated != 1 {
                    return Err(StoreError::Conflict(format!(
                        "request {} changed meanwhile; read it again",
                        row.id
                    )));
                }
            }
            Effect::AppendEvent { request_id, event } => {
                let next: i64 = sqlx::query_scalar(
                    "SELECT COALESCE(MAX(seq), -1) + 1 FROM request_events WHERE request_id = $1",
                )
                .bind(request_id.to_string())
                .fetch_one(&mut *$tx)
                .await?;
                sqlx::query(
                    "INSERT INTO request_events (request_id, seq, action, from_state, to_state, \
                     actor, message, journal_index, at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(request_id.to_string())
                .bind(next)
                .bind(&event.action)
                .bind(&event.from_state)
                .bind(&event.to_state)
                .bind(&event.actor)
                .bind(&event.message)
                .bind(event.journal_index.map(seq_to_sql).transpose()?)
                .bind(to_micros(event.at))
                .execute(&mut *$tx)
                .await?;
            }
            Effect::InsertDocument(doc) => {
                let sql = format!(
                    "INSERT INTO evidence_documents ({EVIDENCE_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                );
                sqlx::query(&sql)
                    .bind(doc.id.to_string())
                    .bind(doc.request_id.to_string())
                    .bind(&doc.kind)
                    .bind(&doc.media_type)
                    .bind(seq_to_sql(doc.size)?)
                    .bind(&doc.sha256)
                    .bind(&doc.kek_label)
                    .bind(&doc.wrapped_key)
                    .bind(&doc.ciphertext)
                    .bind(&doc.uploaded_by)
                    .bind(to_micros(doc.uploaded_at))
                    .bind(to_micros(doc.retain_until))
                    .bind(doc.purged_at.map(to_micros))
                    .bind(doc.journal_index.map(seq_to_sql).transpose()?)
                    .execute(&mut *$tx)
                    .await?;
            }
            Effect::CredentialStatus(id, status) => {
                sqlx::query(
                    "UPDATE seal_credentials SET status = $1, updated_at = $2 WHERE id = $3",
                )
                .bind(status.as_str())
                .bind(to_micros(now))
                .bind(id.to_string())
                .execute(&mut *$tx)
                .await?;
            }
            Effect::CertificateAccepted(serial) => {
                sqlx::query(
                    "UPDATE certificates SET accepted_at = $1 \
                     WHERE serial = $2 AND accepted_at IS NULL",
                )
                .bind(to_micros(now))
                .bind(serial)
                .execute(&mut *$tx)
                .await?;
            }
            Effect::Revoke(revocation) => {
                let sql = format!(
                    "INSERT INTO revocations ({REVOCATION_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                );
                sqlx::query(&sql)
                    .bind(&revocation.serial)
                    .bind(&revocation.reason)
                    .bind(crate::reason_to_sql(revocation.reason_code))
                    .bind(to_micros(revocation.revoked_at))
                    .bind(&revocation.requested_by)
                    .bind(&revocation.requester_role)
                    .bind(&revocation.comment)
                    .bind(seq_to_sql(revocation.journal_index)?)
                    .bind(revocation.invalidity_date.map(to_micros))
                    .execute(&mut *$tx)
                    .await?;
                sqlx::query(
                    "UPDATE seal_credentials SET status = 'revoked', updated_at = $1 \
                     WHERE id = (SELECT credential_id FROM certificates WHERE serial = $2)",
                )
                .bind(to_micros(now))
                .bind(&revocation.serial)
                .execute(&mut *$tx)
                .await?;
                // A client certificate activates through its registrations:
                // they end with it.
                sqlx::query(
                    "UPDATE activation_credentials SET status = 'revoked', revoked_at = $1 \
                     WHERE status = 'active' AND kind = 'client_certificate' \
                     AND certificate_sha256 = (SELECT sha256 FROM certificates WHERE serial = $2)",
                )
                .bind(to_micros(revocation.revoked_at))
                .bind(&revocation.serial)
                .execute(&mut *$tx)
                .await?;
            }
            Effect::Reminded {
                serial,
                days_before,
            } => {
                sqlx::query(
                    "INSERT INTO renewal_reminders (serial, days_before, sent_at) \
                     VALUES ($1, $2, $3)",
                )
                .bind(serial)
                .bind(i64::from(*days_before))
                .bind(to_micros(now))
                .execute(&mut *$tx)
                .await?;
            }
            Effect::Notice(notice) => {
                let id = Uuid::new_v4();
                sqlx::query(
                    "INSERT INTO notices (id, message_id, kind, recipient, subject, body, \
                     created_at, attempts, next_attempt_at, last_error, sent_at, sealed_secret) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $7, NULL, NULL, $8)",
                )
                .bind(id.to_string())
                .bind(format!("{}@{}", id.simple(), $domain))
                .bind(&notice.kind)
                .bind(&notice.recipient)
                .bind(&notice.subject)
                .bind(&notice.body)
                .bind(to_micros(now))
                .bind(&notice.sealed_secret)
                .execute(&mut *$tx)
                .await?;
            }
        }
    }};
}

/// Gives an organisation role to an OIDC identity (idempotent).
macro_rules! grant_role {
    ($tx:expr, $issuer:expr, $subject:expr, $role:expr, $entity:expr, $now:expr) => {{
        sqlx::query(
            "INSERT INTO role_assignments (issuer, subject, role, entity_id, created_by, \
             created_at) VALUES ($1, $2, $3, $4, 'ra', $5) ON CONFLICT DO NOTHING",
        )
        .bind($issuer)
        .bind($subject)
        .bind($role)
        .bind($entity.to_string())
        .bind(to_micros($now))
        .execute(&mut *$tx)
        .await?;
    }};
}

impl Store {
    /// Writes every effect of `change` in one transaction, or none of them.
    pub async fn apply_ra_change(
        &self,
        change: &RaChange,
        message_id_domain: &str,
        now: OffsetDateTime,
    ) -> Result<StatusChange, StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for effect in &change.effects {
                write_effect!(tx, effect, message_id_domain, now);
            }
            tx.commit().await?;
        });
        // A revocation is done only once no instance can answer OCSP "good" for it.
        let revokes = change
            .effects
            .iter()
            .any(|effect| matches!(effect, Effect::Revoke(_)));
        Ok(if revokes {
            self.status_changed()
        } else {
            StatusChange::none()
        })
    }
}
