//! The payloads of the registration authority's events: requests, evidence,
//! people, revocations and the outcome of its changes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Time;

/// A new request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestCreated {
    pub request: Uuid,
    /// `initial` (a renewal starts with `renewal.started`).
    pub kind: String,
    pub policy: String,
    pub entity: Uuid,
    pub organization_identifier: String,
    pub siren: String,
    pub siret: Option<String>,
    pub rccs: Uuid,
    pub legal_representative: Uuid,
    pub agent: Option<Uuid>,
    /// The terms accepted with the application, as the dossier holds them.
    pub terms: Value,
    /// The identity verification given with the application.
    pub identity_verification: Value,
}

/// A request's move: by a person, or the issuance that follows the approvals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestMoved {
    /// The certificate was issued (`validated` to `issued`).
    Issued {
        request: Uuid,
        #[serde(rename = "move")]
        step: String,
        from: String,
        to: String,
        serial: String,
        certificate_journal_index: u64,
    },
    /// A person's move, with the approvals that count after it.
    ByPerson {
        request: Uuid,
        #[serde(rename = "move")]
        step: String,
        from: String,
        to: String,
        message: Option<String>,
        approvals: Vec<String>,
    },
}

/// A renewal request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenewalStarted {
    pub request: Uuid,
    pub renews: String,
    pub policy: String,
    pub renewal_number: u32,
    pub identity_required: bool,
    pub terms: Value,
}

/// An evidence document received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceReceived {
    pub request: Uuid,
    pub document: Uuid,
    pub kind: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    pub retain_until: Time,
}

/// An evidence document read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRead {
    pub request: Uuid,
    pub document: Uuid,
}

/// An evidence document purged at the end of its retention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidencePurged {
    pub request: Uuid,
    pub document: Uuid,
    pub kind: String,
    pub sha256: String,
    pub uploaded_at: Time,
    pub retain_until: Time,
}

/// Terms accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermsAccepted {
    pub request: Uuid,
    pub policy: String,
    pub terms_oid: String,
    pub version: String,
    pub sha256: String,
    pub accepted_at: Time,
}

/// An identity verification recorded; the approvals it cleared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityVerified {
    pub request: Uuid,
    pub verification: Value,
    pub approvals_cleared: Vec<String>,
}

/// An enrolment link sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolmentSent {
    pub person: Uuid,
    pub entity: Uuid,
    pub role: String,
    pub expires: Time,
}

/// A person enrolled with a sign-in identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrolled {
    pub person: Uuid,
    pub entity: Uuid,
    pub role: String,
    pub issuer: String,
    pub subject: String,
}

/// The roles withdrawn from a person, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleWithdrawal {
    pub person: Uuid,
    pub entity: Uuid,
    pub issuer: String,
    pub subject: String,
    pub roles: Vec<String>,
    pub reason: String,
}

/// The withdrawal done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleWithdrawn {
    pub intent: u64,
    pub withdrawal: RoleWithdrawal,
}

/// The holder's acceptance of a certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateAccepted {
    pub request: Uuid,
    pub serial: String,
    pub credential: Option<Uuid>,
}

/// A revocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateRevoked {
    pub serial: String,
    pub certificate_sha256: String,
    /// The activation credentials revoked with it.
    pub activation_credentials: Vec<String>,
    pub entity: Uuid,
    pub reason: String,
    /// The CRL reason code, when the reason has one.
    pub reason_code: Option<u8>,
    pub requester_role: String,
    pub comment: Option<String>,
    pub invalidity_date: Option<Time>,
    pub effective: Time,
}

/// The seal certificates revoked because the CA ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokedForTermination {
    pub serials: Vec<String>,
    pub reason: String,
    pub crl_reason: String,
    pub effective: Time,
}

/// A seal key destroyed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyDestroyed {
    pub credential: Uuid,
    pub serial: Option<String>,
    pub key_id: String,
    pub key_label: String,
    pub token: String,
    /// `expired` or `revoked`.
    pub reason: String,
    pub not_after: Option<Time>,
}

/// The intents an RA change carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaApplied {
    pub intents: Vec<u64>,
}

/// The intents of an RA change rolled back, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaNotApplied {
    pub intents: Vec<u64>,
    pub reason: String,
}

/// A notice handed to the mail server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoticeSent {
    pub notice_id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub message_id: String,
    pub attempt: u32,
}
