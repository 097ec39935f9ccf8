//! The registration back office's rows: organisations' registry details, the
//! persons attached to them, certificate requests with their history, evidence
//! documents, revocations and renewal reminders. Every change the RA makes is
//! one [`RaChange`], written in one transaction with the notices it produces.

use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use super::entities::{CredentialStatus, KeyReference, parse_role, parse_uuid};
use super::notices::NewNotice;
use super::{Store, StoreError, from_micros, on_pool, seq_from_sql, seq_to_sql, to_micros};

/// An organisation as the RA registers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegisteredEntity {
    pub id: Uuid,
    pub legal_name: String,
    pub organization_identifier: String,
    pub country: String,
    pub siren: Option<String>,
    pub siret: Option<String>,
    pub legal_form: Option<String>,
    pub street: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What a person is to an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonRole {
    Rccs,
    LegalRepresentative,
    Agent,
}

impl PersonRole {
    pub fn name(self) -> &'static str {
        match self {
            Self::Rccs => "rccs",
            Self::LegalRepresentative => "legal_representative",
            Self::Agent => "agent",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "rccs" => Self::Rccs,
            "legal_representative" => Self::LegalRepresentative,
            "agent" => Self::Agent,
            other => return Err(StoreError::Corrupt(format!("person role {other:?}"))),
        })
    }
}

/// A person attached to an organisation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Person {
    pub id: Uuid,
    pub entity_id: Uuid,
    pub role: PersonRole,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    pub phone: Option<String>,
    /// `fr` or `en`: the language of the notices sent to this person.
    pub language: String,
    /// The OIDC identity bound to this person (issuer, subject), once bound.
    #[serde(skip)]
    pub identity: Option<(String, String)>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Person {
    pub fn is_bound(&self) -> bool {
        self.identity.is_some()
    }
}

/// An enrolment link for a person: only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub sha256: String,
    pub expires_at: OffsetDateTime,
}

/// A request as stored: the columns the RA queries on and the JSON dossier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub id: Uuid,
    pub entity_id: Uuid,
    /// `initial` or `renewal`.
    pub kind: String,
    pub policy_id: String,
    pub state: String,
    /// Bumped by every update; an update names the version it read.
    pub version: i64,
    /// The dossier, JSON (its shape is the RA's).
    pub file: String,
    pub renews_serial: Option<String>,
    pub certificate_serial: Option<String>,
    pub credential_id: Option<Uuid>,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One move in a request's history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestEvent {
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub actor: String,
    pub message: Option<String>,
    pub journal_index: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// An evidence document's record; the content is in `ciphertext` until purged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRow {
    pub id: Uuid,
    pub request_id: Uuid,
    pub kind: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    pub kek_label: String,
    pub wrapped_key: Option<Vec<u8>>,
    pub ciphertext: Option<Vec<u8>>,
    pub uploaded_by: String,
    pub uploaded_at: OffsetDateTime,
    pub retain_until: OffsetDateTime,
    pub purged_at: Option<OffsetDateTime>,
    pub journal_index: Option<u64>,
}

/// A revocation as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub serial: String,
    /// The RA's reason name (seed 000 §9).
    pub reason: String,
    /// The RFC 5280 CRLReason code; `None` means no reasonCode extension.
    pub reason_code: Option<u8>,
    pub revoked_at: OffsetDateTime,
    pub requested_by: String,
    pub requester_role: String,
    pub comment: Option<String>,
    pub journal_index: u64,
    /// When the key is known or suspected to have been compromised (RFC 5280
    /// invalidityDate), when the requester says.
    pub invalidity_date: Option<OffsetDateTime>,
}

/// A certificate the reminder sweep looks at: accepted, not revoked, expiring soon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiringCertificate {
    pub serial: String,
    pub entity_id: Uuid,
    pub policy_id: String,
    pub request_id: Uuid,
    pub not_after: OffsetDateTime,
    /// The thresholds (days before expiry) already reminded.
    pub reminded: Vec<u32>,
}

/// Something one RA change does besides moving a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Registers a new organisation.
    InsertEntity(RegisteredEntity),
    /// Attaches a person, with an enrolment link if the person must bind an identity.
    /// Attaches a person, with an enrolment link if the person must bind an
    /// identity. It gives no role: roles come with `GrantRole`, once the RA
    /// has validated a request naming the person.
    InsertPerson(Person, Option<Enrolment>),
    /// Binds an OIDC identity to a person (no role by itself).
    BindPerson {
        person_id: Uuid,
        issuer: String,
        subject: String,
    },
    /// Gives an organisation role to an OIDC identity (idempotent).
    GrantRole {
        issuer: String,
        subject: String,
        role: PersonRole,
        entity_id: Uuid,
    },
    /// Takes every role in `entity_id` from an OIDC identity.
    WithdrawRoles {
        issuer: String,
        subject: String,
        entity_id: Uuid,
    },
    /// Writes what the validated request declared over an organisation no
    /// one holds a role in yet.
    UpdateEntity(RegisteredEntity),
    /// Replaces an unbound person's enrolment link (the old one stops working).
    RenewEnrolment {
        person_id: Uuid,
        enrolment: Enrolment,
    },
    InsertRequest(RequestRow),
    /// Writes `row` over the stored request if it is still at `expected_version`.
    UpdateRequest {
        row: RequestRow,
        expected_version: i64,
    },
    AppendEvent {
        request_id: Uuid,
        event: RequestEvent,
    },
    InsertDocument(EvidenceRow),
    CredentialStatus(Uuid, CredentialStatus),
    CertificateAccepted(String),
    Revoke(Revocation),
    Reminded {
        serial: String,
        days_before: u32,
    },
    Notice(NewNotice),
}

/// Which requests a listing reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestScope<'a> {
    All,
    /// One organisation's.
    Entity(Uuid),
    /// Those one principal applied with.
    CreatedBy(&'a str),
}

/// The changes of one RA action: all written, or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaChange {
    pub effects: Vec<Effect>,
}

impl RaChange {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, effect: Effect) -> Self {
        self.effects.push(effect);
        self
    }

    pub fn push(&mut self, effect: Effect) {
        self.effects.push(effect);
    }
}

const ENTITY_COLUMNS: &str = "id, legal_name, organization_identifier, country, siren, siret, \
                              legal_form, street, postal_code, city, created_at";
const PERSON_COLUMNS: &str = "id, entity_id, role, given_name, family_name, email, phone, \
                              language, oidc_issuer, oidc_subject, created_at";
const REQUEST_COLUMNS: &str = "id, entity_id, kind, policy_id, state, version, file, \
                               renews_serial, certificate_serial, credential_id, created_by, \
                               created_at, updated_at";
const EVIDENCE_COLUMNS: &str = "id, request_id, kind, media_type, size, sha256, kek_label, \
                                wrapped_key, ciphertext, uploaded_by, uploaded_at, retain_until, \
                                purged_at, journal_index";
const REVOCATION_COLUMNS: &str = "serial, reason, reason_code, revoked_at, requested_by, \
                                  requester_role, comment, journal_index, invalidity_date";

macro_rules! entity_from_row {
    ($row:expr) => {{
        let row = $row;
        RegisteredEntity {
            id: parse_uuid(&row.try_get::<String, _>(0)?)?,
            legal_name: row.try_get(1)?,
            organization_identifier: row.try_get(2)?,
            country: row.try_get(3)?,
            siren: row.try_get(4)?,
            siret: row.try_get(5)?,
            legal_form: row.try_get(6)?,
            street: row.try_get(7)?,
            postal_code: row.try_get(8)?,
            city: row.try_get(9)?,
            created_at: from_micros(row.try_get(10)?)?,
        }
    }};
}

macro_rules! person_from_row {
    ($row:expr) => {{
        let row = $row;
        let issuer: Option<String> = row.try_get(8)?;
        let subject: Option<String> = row.try_get(9)?;
        Person {
            id: parse_uuid(&row.try_get::<String, _>(0)?)?,
            entity_id: parse_uuid(&row.try_get::<String, _>(1)?)?,
            role: PersonRole::parse(&row.try_get::<String, _>(2)?)?,
            given_name: row.try_get(3)?,
            family_name: row.try_get(4)?,
            email: row.try_get(5)?,
            phone: row.try_get(6)?,
            language: row.try_get(7)?,
            identity: issuer.zip(subject),
            created_at: from_micros(row.try_get(10)?)?,
        }
    }};
}

macro_rules! request_from_row {
    ($row:expr) => {{
        let row = $row;
        let credential: Option<String> = row.try_get(9)?;
        RequestRow {
            id: parse_uuid(&row.try_get::<String, _>(0)?)?,
            entity_id: parse_uuid(&row.try_get::<String, _>(1)?)?,
            kind: row.try_get(2)?,
            policy_id: row.try_get(3)?,
            state: row.try_get(4)?,
            version: row.try_get(5)?,
            file: row.try_get(6)?,
            renews_serial: row.try_get(7)?,
            certificate_serial: row.try_get(8)?,
            credential_id: credential.as_deref().map(parse_uuid).transpose()?,
            created_by: row.try_get(10)?,
            created_at: from_micros(row.try_get(11)?)?,
            updated_at: from_micros(row.try_get(12)?)?,
        }
    }};
}

macro_rules! evidence_from_row {
    ($row:expr) => {{
        let row = $row;
        let size: i64 = row.try_get(4)?;
        let purged: Option<i64> = row.try_get(12)?;
        let index: Option<i64> = row.try_get(13)?;
        EvidenceRow {
            id: parse_uuid(&row.try_get::<String, _>(0)?)?,
            request_id: parse_uuid(&row.try_get::<String, _>(1)?)?,
            kind: row.try_get(2)?,
            media_type: row.try_get(3)?,
            size: seq_from_sql(size)?,
            sha256: row.try_get(5)?,
            kek_label: row.try_get(6)?,
            wrapped_key: row.try_get(7)?,
            ciphertext: row.try_get(8)?,
            uploaded_by: row.try_get(9)?,
            uploaded_at: from_micros(row.try_get(10)?)?,
            retain_until: from_micros(row.try_get(11)?)?,
            purged_at: purged.map(from_micros).transpose()?,
            journal_index: index.map(seq_from_sql).transpose()?,
        }
    }};
}

macro_rules! revocation_from_row {
    ($row:expr) => {{
        let row = $row;
        let code: Option<i64> = row.try_get(2)?;
        let index: i64 = row.try_get(7)?;
        let invalidity: Option<i64> = row.try_get(8)?;
        Revocation {
            serial: row.try_get(0)?,
            reason: row.try_get(1)?,
            reason_code: code
                .map(|c| {
                    u8::try_from(c).map_err(|_| StoreError::Corrupt(format!("reason code {c}")))
                })
                .transpose()?,
            revoked_at: from_micros(row.try_get(3)?)?,
            requested_by: row.try_get(4)?,
            requester_role: row.try_get(5)?,
            comment: row.try_get(6)?,
            journal_index: seq_from_sql(index)?,
            invalidity_date: invalidity.map(from_micros).transpose()?,
        }
    }};
}

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
                let next: i64 = sqlx::query(
                    "SELECT COALESCE(MAX(seq), -1) + 1 FROM request_events WHERE request_id = $1",
                )
                .bind(request_id.to_string())
                .fetch_one(&mut *$tx)
                .await?
                .try_get(0)?;
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
                    .bind(revocation.reason_code.map(i64::from))
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
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for effect in &change.effects {
                write_effect!(tx, effect, message_id_domain, now);
            }
            tx.commit().await?;
        });
        // A revocation is done only once no instance can answer OCSP "good" for it.
        if change
            .effects
            .iter()
            .any(|effect| matches!(effect, Effect::Revoke(_)))
        {
            self.settle_status_change().await;
        }
        Ok(())
    }

    pub async fn registered_entity(&self, id: Uuid) -> Result<RegisteredEntity, StoreError> {
        let sql = format!("SELECT {ENTITY_COLUMNS} FROM entities WHERE id = $1");
        on_pool!(self, |pool| {
            let row = sqlx::query(&sql)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound {
                    what: "entity",
                    id: id.to_string(),
                })?;
            Ok(entity_from_row!(&row))
        })
    }

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
    pub async fn entity_by_siren(
        &self,
        siren: &str,
    ) -> Result<Option<RegisteredEntity>, StoreError> {
        let sql = format!("SELECT {ENTITY_COLUMNS} FROM entities WHERE siren = $1");
        on_pool!(self, |pool| {
            match sqlx::query(&sql).bind(siren).fetch_optional(pool).await? {
                Some(row) => Ok(Some(entity_from_row!(&row))),
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
                out.push(person_from_row!(row));
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
            Ok(person_from_row!(&row))
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
                Some(row) => Ok(Some(person_from_row!(&row))),
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
            Ok(request_from_row!(&row))
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
                out.push(request_from_row!(row));
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
                out.push(request_from_row!(row));
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
                out.push(evidence_from_row!(row));
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
            Ok(evidence_from_row!(&row))
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
                out.push(evidence_from_row!(row));
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
                Some(row) => Ok(Some(revocation_from_row!(&row))),
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
                let key_id: String = row.try_get(2)?;
                let not_after: Option<i64> = row.try_get(6)?;
                out.push(KeyToDestroy {
                    credential_id: parse_uuid(&row.try_get::<String, _>(0)?)?,
                    key: KeyReference {
                        token_role: parse_role(&row.try_get::<String, _>(1)?)?,
                        key_id: hex::decode(&key_id)
                            .map_err(|e| StoreError::Corrupt(format!("key id {key_id:?}: {e}")))?,
                        key_label: row.try_get(3)?,
                    },
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
