//! The registration file's shapes: what a request records (the dossier:
//! identity verification, terms acceptance, approvals), the revocation reasons
//! and their CRLReason codes, what callers send (applications, renewals) and
//! what the back office shows (requests, documents, certificates, revocations).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::request::{Move, RequestState};
use crate::pki::issuance::DeviceEvidence;
use crate::revocation::Reason;
use crate::store::entities::Entity;
use crate::store::ra::{Person, RequestEvent};

/// How the applicant's identity was verified (seed 000 §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum IdentityVerification {
    /// Face to face with an RA operator, who attests it.
    FaceToFace {
        attested_by: String,
        /// The registered staff person who attested.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attested_by_person: Option<Uuid>,
        /// The verified person's birth date, as on the identity document.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        birth_date: Option<BirthDate>,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// A certified remote identity-verification provider (PVID).
    RemoteProvider {
        provider: String,
        reference: String,
        recorded_by: String,
        /// The verified person's birth date, as the provider reported it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        birth_date: Option<BirthDate>,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// An eID means at level substantial: the sign-in's `acr` is the evidence.
    EidSubstantial {
        issuer: String,
        subject: String,
        acr: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

impl IdentityVerification {
    /// The verified person's birth date, when the verification recorded it.
    pub fn birth_date(&self) -> Option<time::Date> {
        match self {
            Self::FaceToFace { birth_date, .. } | Self::RemoteProvider { birth_date, .. } => {
                birth_date.map(|b| b.0)
            }
            Self::EidSubstantial { .. } => None,
        }
    }
}

/// A birth date, `YYYY-MM-DD`, parsed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BirthDate(pub time::Date);

const DAY: &[time::format_description::BorrowedFormatItem<'_>] =
    time::macros::format_description!("[year]-[month]-[day]");

impl TryFrom<String> for BirthDate {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        time::Date::parse(&text, DAY)
            .map(Self)
            .map_err(|_| format!("{text:?} is not a date YYYY-MM-DD"))
    }
}

impl From<BirthDate> for String {
    fn from(date: BirthDate) -> String {
        // A Date formats with this description whatever its value.
        date.0.format(DAY).unwrap_or_default()
    }
}

/// The acceptance of one precise version of the terms of use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsAcceptance {
    pub version: String,
    /// Hex SHA-256 of the terms text accepted.
    pub sha256: String,
    pub principal: String,
    #[serde(with = "time::serde::rfc3339")]
    pub accepted_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub operator: String,
    /// The registered staff person who approved: four eyes count persons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// What an application declared about its organisation. Until the RA
/// validates one of them, competing applications for one SIREN each keep
/// their own; the validated one is written to the organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredOrganisation {
    pub legal_name: String,
    pub siret: Option<String>,
    pub legal_form: String,
    pub street: String,
    pub postal_code: String,
    pub city: String,
}

impl DeclaredOrganisation {
    /// `entity` as this application declares it.
    pub fn over(&self, entity: &Entity) -> Entity {
        Entity {
            legal_name: self.legal_name.clone(),
            siret: self.siret.clone(),
            legal_form: Some(self.legal_form.clone()),
            street: Some(self.street.clone()),
            postal_code: Some(self.postal_code.clone()),
            city: Some(self.city.clone()),
            ..entity.clone()
        }
    }
}

/// The request's dossier, kept as JSON with the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dossier {
    /// The organisation as this application declared it, when it applied for
    /// an organisation no one held a role in yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<DeclaredOrganisation>,
    pub seal_name: String,
    pub validity_days: Option<u32>,
    pub rccs: Uuid,
    pub legal_representative: Uuid,
    pub agent: Option<Uuid>,
    pub identity_verification: Option<IdentityVerification>,
    pub terms: Option<TermsAcceptance>,
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// Base64 DER of the CSR, for the entity-generated profiles.
    pub csr: Option<String>,
    pub device: Option<DeviceEvidence>,
    /// 0 for a first certificate, n for the n-th renewal.
    pub renewal_number: u32,
    /// Whether this request must verify the identity again (initial requests
    /// and renewals the policy says so for).
    pub identity_required: bool,
}

impl Dossier {
    /// Whether `person` is one of the request's people (RCCS, legal
    /// representative, agent).
    pub fn names(&self, person: uuid::Uuid) -> bool {
        self.rccs == person || self.legal_representative == person || self.agent == Some(person)
    }
}

/// The reasons a revocation may give (seed 000 §9), each with its RFC 5280
/// CRLReason code (`None`: no reasonCode extension, as for "unspecified").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// Information in the file or the certificate is wrong.
    InformationError,
    /// The holder refused the certificate at acceptance.
    Refused,
    /// The private key is compromised or lost.
    KeyCompromise,
    /// The activation data (credentials) are compromised or lost.
    ActivationDataCompromise,
    /// The organisation stopped the service or ceased its activity.
    CessationOfOperation,
    /// The holder did not meet its obligations.
    ObligationsNotMet,
    /// A technology break makes the key or algorithm unsafe.
    TechnologyBreak,
    /// The CA itself was revoked or ends.
    CaRevoked,
    /// Any other reason the holder gives.
    Unspecified,
}

impl RevocationReason {
    pub const ALL: [RevocationReason; 9] = [
        Self::InformationError,
        Self::Refused,
        Self::KeyCompromise,
        Self::ActivationDataCompromise,
        Self::CessationOfOperation,
        Self::ObligationsNotMet,
        Self::TechnologyBreak,
        Self::CaRevoked,
        Self::Unspecified,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::InformationError => "information_error",
            Self::Refused => "refused",
            Self::KeyCompromise => "key_compromise",
            Self::ActivationDataCompromise => "activation_data_compromise",
            Self::CessationOfOperation => "cessation_of_operation",
            Self::ObligationsNotMet => "obligations_not_met",
            Self::TechnologyBreak => "technology_break",
            Self::CaRevoked => "ca_revoked",
            Self::Unspecified => "unspecified",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == text)
    }

    /// The RFC 5280 CRLReason: keyCompromise (1), cACompromise (2),
    /// affiliationChanged (3), cessationOfOperation (5), privilegeWithdrawn (9);
    /// none for unspecified and refused.
    pub fn crl_reason(self) -> Option<Reason> {
        match self {
            Self::KeyCompromise | Self::ActivationDataCompromise | Self::TechnologyBreak => {
                Some(Reason::KeyCompromise)
            }
            Self::CaRevoked => Some(Reason::CaCompromise),
            Self::InformationError => Some(Reason::AffiliationChanged),
            Self::CessationOfOperation => Some(Reason::CessationOfOperation),
            Self::ObligationsNotMet => Some(Reason::PrivilegeWithdrawn),
            Self::Refused | Self::Unspecified => None,
        }
    }
}

/// A person as the applicant describes them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonInput {
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    pub phone: Option<String>,
    /// `fr` (default) or `en`.
    pub language: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationInput {
    pub siren: String,
    pub siret: Option<String>,
    /// The legal name as registered with INSEE.
    pub legal_name: String,
    pub legal_form: String,
    pub street: String,
    pub postal_code: String,
    pub city: String,
    /// ISO 3166-1 alpha-2; `FR` by default (SIREN numbers are French).
    pub country: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityInput {
    /// `face_to_face`, `remote_provider` or `eid_substantial`.
    pub method: String,
    pub provider: Option<String>,
    pub reference: Option<String>,
    /// The verified person's birth date (`YYYY-MM-DD`), read from the identity
    /// document or reported by the provider.
    pub birth_date: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermsInput {
    pub version: String,
    /// Hex SHA-256 of the text the applicant was shown; checked when given.
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInput {
    pub model: Option<String>,
    pub proof_sha256: Option<String>,
    pub chip_reference: Option<String>,
}

/// An application for an organisation's seal certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub policy: String,
    pub organisation: OrganisationInput,
    pub rccs: PersonInput,
    pub legal_representative: PersonInput,
    pub agent: Option<PersonInput>,
    pub seal_name: String,
    pub validity_days: Option<u32>,
    /// PEM or base64 DER, for the entity-generated profiles.
    pub csr: Option<String>,
    pub device: Option<DeviceInput>,
    pub identity_verification: Option<IdentityInput>,
    pub terms: Option<TermsInput>,
}

/// A renewal, started by the RCCS.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalInput {
    pub validity_days: Option<u32>,
    pub csr: Option<String>,
    pub device: Option<DeviceInput>,
    pub identity_verification: Option<IdentityInput>,
    pub terms: Option<TermsInput>,
}

/// A document's record as the API shows it (never its content).
#[derive(Debug, Clone, Serialize)]
pub struct DocumentView {
    pub id: Uuid,
    pub kind: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub uploaded_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub retain_until: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub purged_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CertificateView {
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub credential_id: Option<Uuid>,
    /// The seal credential's status (`pending` until accepted).
    pub credential_status: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub accepted_at: Option<OffsetDateTime>,
    pub revoked: bool,
    /// Whether the credential can seal now: accepted, active, not revoked.
    pub usable: bool,
    /// The certificate, PEM.
    pub pem: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonsView {
    pub rccs: Person,
    pub legal_representative: Person,
    pub agent: Option<Person>,
}

/// A request as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestView {
    pub id: Uuid,
    pub kind: String,
    pub policy: String,
    pub state: RequestState,
    pub version: i64,
    /// The moves the caller may make now.
    pub allowed_moves: Vec<Move>,
    /// While the file can change: what it lacks before it can be submitted
    /// (empty once nothing does, and in every other state).
    pub missing: Vec<super::registry::Lack>,
    pub entity: Entity,
    pub persons: PersonsView,
    pub seal_name: String,
    pub validity_days: Option<u32>,
    pub identity_verification: Option<IdentityVerification>,
    pub identity_required: bool,
    pub terms: Option<TermsAcceptance>,
    pub approvals: Vec<Approval>,
    pub approvals_needed: usize,
    pub documents: Vec<DocumentView>,
    pub renews_serial: Option<String>,
    pub renewal_number: u32,
    pub certificate: Option<CertificateView>,
    pub history: Vec<RequestEvent>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct RevocationView {
    pub serial: String,
    pub reason: String,
    pub reason_code: Option<u8>,
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
    pub requested_by: String,
    pub requester_role: String,
    pub journal_index: u64,
}

/// What one maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// (serial, days before expiry) of each reminder queued.
    pub reminders: Vec<(String, u32)>,
    pub purged_documents: Vec<Uuid>,
    /// Seal credentials whose key was destroyed in the HSM.
    pub destroyed_keys: Vec<Uuid>,
    pub issued_requests: Vec<Uuid>,
}
