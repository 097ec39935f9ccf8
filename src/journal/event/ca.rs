//! The payloads of the CA's events: termination, service certificates, CRLs
//! and the certificates it signs or refuses.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Time;

/// One administrator's approval of the termination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TerminationApproved {
    pub ca_serial: String,
    pub approver: String,
    /// How the approver authenticated, as the principal recorded it.
    pub auth_method: Value,
    pub reason: String,
}

/// The start of the termination, with the approvals that allowed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TerminationStarted {
    pub ca_serial: String,
    pub subject: String,
    /// The approvals as the store keeps them.
    pub approvals: Value,
}

/// The service certificates revoked with the CA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceCertificatesRevoked {
    pub ca_serial: String,
    pub serials: Vec<String>,
    pub crl_reason: String,
}

/// The CA certificate revoked by its issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaRevoked {
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    pub crl_reason: String,
}

/// The final OCSP responses: how many, and a digest over them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalOcspResponses {
    pub ca_serial: String,
    pub responses: u64,
    pub certificates: u64,
    pub next_update: Time,
    /// SHA-256 over the SHA-256 of each response, in serial order.
    pub sha256: String,
}

/// A CA key destroyed in its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaKeyDestroyed {
    pub ca_serial: String,
    pub key_id: String,
    pub key_label: String,
    pub token: String,
}

/// What the termination did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Terminated {
    pub ca_serial: String,
    pub certificates_revoked: u64,
    pub final_crl_number: u64,
    pub final_ocsp_responses: u64,
    pub arl_number: u64,
    pub seal_keys_destroyed: u64,
}

/// A service certificate (OCSP responder, time-stamping unit) renewed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRenewed {
    pub serial: String,
    pub sha256: String,
    pub key_id: String,
    pub not_after: Time,
}

/// A CRL signed and published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrlIssued {
    /// The issuer's purpose: `issuing`, `client-auth`, `root`.
    pub issuer: String,
    pub ca_serial: String,
    pub number: u64,
    pub this_update: Time,
    pub next_update: Time,
    pub entries: u64,
    pub sha256: String,
}

/// What a seal certificate's issuance is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealIssuance {
    pub request_id: Uuid,
    pub entity_id: Uuid,
    pub policy: String,
    pub policy_oid: String,
    pub level: String,
    /// Where the key is and what it is, as the issuance described it.
    pub key: Value,
}

/// What a client certificate's issuance is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientIssuance {
    pub request_id: Uuid,
    pub entity_id: Uuid,
    /// The issuing CA's subject.
    pub issuer: String,
    pub spki_sha256: String,
}

/// The request an end-entity certificate answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EndEntityRequest {
    Seal(SealIssuance),
    Client(ClientIssuance),
}

/// The certificate as signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedCertificate {
    pub serial: String,
    pub subject: String,
    pub not_before: Time,
    pub not_after: Time,
    pub certificate_sha256: String,
    /// Base64 of the DER.
    pub certificate: String,
}

/// A seal certificate issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealCertificateIssued {
    #[serde(flatten)]
    pub request: SealIssuance,
    #[serde(flatten)]
    pub certificate: SignedCertificate,
}

/// A client certificate issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientCertificateIssued {
    #[serde(flatten)]
    pub request: ClientIssuance,
    #[serde(flatten)]
    pub certificate: SignedCertificate,
}

impl EndEntityRequest {
    /// The issuance event of `certificate`, signed for this request.
    pub fn issued(self, certificate: SignedCertificate) -> super::Event {
        match self {
            Self::Seal(request) => super::Event::CertificateIssued(SealCertificateIssued {
                request,
                certificate,
            }),
            Self::Client(request) => {
                super::Event::ClientCertificateIssued(ClientCertificateIssued {
                    request,
                    certificate,
                })
            }
        }
    }
}

/// What the lint refused to sign, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LintRefused {
    /// The certificate kind (`seal`, `ocsp-responder`, …).
    pub kind: String,
    /// The lint's findings.
    pub findings: Value,
    /// The end-entity request it answered, if it was one.
    #[serde(flatten)]
    pub request: Option<EndEntityRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// The issuing CA, for a service certificate's renewal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_serial: Option<String>,
}
