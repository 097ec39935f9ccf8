//! The registration back office's rows: organisations' registry details, the
//! persons attached to them, certificate requests with their history, evidence
//! documents, revocations and renewal reminders. Every change the RA makes is
//! one [`RaChange`], written in one transaction with the notices it produces.

use time::OffsetDateTime;
use uuid::Uuid;

use super::entities::{CredentialStatus, ENTITY_COLUMNS, Entity, KeyReference, parse_uuid};
use super::notices::NewNotice;
use super::{Store, StoreError, from_micros, on_pool, seq_from_sql, seq_to_sql, to_micros};
use sceau_core::revocation::Reason;

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
    pub reason_code: Option<Reason>,
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
    InsertEntity(Entity),
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
    UpdateEntity(Entity),
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

mod change;
mod keys;
mod reads;
mod rows;
pub use keys::KeyToDestroy;
