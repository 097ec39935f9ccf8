//! The audit events: every kind the journal records, each with its payload
//! type, and who caused it ([`Actor`]). The journal accepts nothing else.
//!
//! An entry's stored bytes are `{"kind":…,"actor":…,"details":…}`, the details'
//! keys in lexical order (they pass through a `serde_json::Value`), so the
//! order of a payload's fields never changes what is recorded. The full list,
//! with each kind's fields, is `docs/JOURNAL-EVENTS.md`, checked by a test.
//! Payloads use the journal's own plain types (strings, UUIDs, counts and
//! [`Time`]); a snapshot owned by a higher layer (a ceremony transcript, a
//! principal, lint findings) is carried as the JSON that layer wrote.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::JournalError;
use super::entry::JournalEvent;
#[cfg(test)]
use super::entry::MAX_KIND_LEN;

mod auth;
mod ca;
mod ra;
mod seal;
mod time;

pub use auth::*;
pub use ca::*;
pub use ra::*;
pub use seal::*;
pub use time::Time;

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An authenticated principal, by its stable id (`cert:…`, `oidc:…#…`).
    Principal(String),
    /// The service itself, on its own schedule (`sceau`).
    Service,
    /// The registration authority, carrying out a change it validated (`ra`).
    Registry,
    /// The RA operators whose approvals granted an issuance (`ra:<a>+<b>`).
    Approvers(Vec<String>),
    /// An administrator's command or a named task (`sceau ca init`, `ceremony`).
    Task(&'static str),
}

impl Actor {
    /// The text recorded in the entry's `actor` field.
    pub fn recorded(&self) -> String {
        match self {
            Self::Principal(id) => id.clone(),
            Self::Service => "sceau".to_owned(),
            Self::Registry => "ra".to_owned(),
            Self::Approvers(ids) => format!("ra:{}", ids.join("+")),
            Self::Task(name) => (*name).to_owned(),
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.recorded())
    }
}

/// An intent's outcome when the change was not made: the intent's index and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotDone {
    pub intent: u64,
    pub reason: String,
}

/// Declares [`Event`], its kinds in order and the kind of each value.
macro_rules! events {
    ($( $(#[doc = $doc:literal])* $kind:literal => $name:ident($payload:ty), )*) => {
        /// One audit event: its kind (the serde tag) and its payload.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", content = "details")]
        pub enum Event {
            $( $(#[doc = $doc])* #[serde(rename = $kind)] $name($payload), )*
        }

        impl Event {
            /// Every kind, with what it records, in the order declared.
            pub const CATALOGUE: &[(&str, &str)] = &[$( ($kind, concat!($($doc, "\n"),*)) ),*];

            /// The dotted kind recorded with the entry.
            pub fn kind(&self) -> &'static str {
                match self {
                    $( Self::$name(_) => $kind, )*
                }
            }
        }
    };
}

events! {
    /// The CA ceremony: its transcript (keys, certificates, holders).
    "ca.ceremony" => CaCeremony(Value),
    /// A CA administrator approved the termination of the issuing CA.
    "ca.termination_approved" => CaTerminationApproved(TerminationApproved),
    /// The termination of the issuing CA started: nothing more is issued.
    "ca.termination_started" => CaTerminationStarted(TerminationStarted),
    /// The OCSP and time-stamping certificates of the terminating CA are revoked.
    "ca.service_certificates_revoked" => CaServiceCertificatesRevoked(ServiceCertificatesRevoked),
    /// The issuing CA's own certificate is revoked by the root.
    "ca.revoked" => CaRevoked(CaRevoked),
    /// The responses the OCSP responder serves for ever after the termination.
    "ocsp.final_responses" => OcspFinalResponses(FinalOcspResponses),
    /// A CA's private key was destroyed in the HSM.
    "ca.key_destroyed" => CaKeyDestroyed(CaKeyDestroyed),
    /// The termination of the issuing CA is complete.
    "ca.terminated" => CaTerminated(Terminated),
    /// An administrator renewed the OCSP responder's certificate.
    "ca.ocsp_responder_renewed" => CaOcspResponderRenewed(ServiceRenewed),
    /// An administrator renewed the time-stamping unit's certificate.
    "ca.tsu_renewed" => CaTsuRenewed(ServiceRenewed),
    /// The maintenance loop renewed the OCSP responder's certificate before it expired.
    "ocsp.responder_renewed" => OcspResponderRenewed(ServiceRenewed),
    /// A CRL of the seal or client-auth certificates was published.
    "crl.published" => CrlPublished(CrlIssued),
    /// The root's CRL of CA certificates (ARL) was published.
    "arl.published" => ArlPublished(CrlIssued),
    /// The terminated CA's last CRL, valid for ever.
    "crl.final" => CrlFinal(CrlIssued),
    /// A certificate failed the pre-signing lint and was not signed.
    "certificate.lint_refused" => CertificateLintRefused(LintRefused),
    /// A seal certificate was signed, with its certificate.
    "certificate.issued" => CertificateIssued(SealCertificateIssued),
    /// A TLS client certificate for an organisation's server was signed.
    "client_certificate.issued" => ClientCertificateIssued(ClientCertificateIssued),
    /// A certificate request was created.
    "request.created" => RequestCreated(RequestCreated),
    /// A request moved from one state to another.
    "request.moved" => RequestMoved(RequestMoved),
    /// The renewal of a certificate started, as a new request.
    "renewal.started" => RenewalStarted(RenewalStarted),
    /// An evidence document was received and sealed in the vault.
    "evidence.received" => EvidenceReceived(EvidenceReceived),
    /// An evidence document was read.
    "evidence.read" => EvidenceRead(EvidenceRead),
    /// An evidence document's retention ended and its content was destroyed.
    "evidence.purged" => EvidencePurged(EvidencePurged),
    /// The terms of a policy were accepted, in a precise version.
    "terms.accepted" => TermsAccepted(TermsAccepted),
    /// How the identity of the applicant was verified.
    "identity.verified" => IdentityVerified(IdentityVerified),
    /// An enrolment link was sent to a person named in a request.
    "person.enrolment_sent" => PersonEnrolmentSent(EnrolmentSent),
    /// A person followed the link and bound a sign-in identity.
    "person.enrolled" => PersonEnrolled(Enrolled),
    /// Intent: a person's roles are being withdrawn.
    "role.withdrawing" => RoleWithdrawing(RoleWithdrawal),
    /// Outcome: the roles were withdrawn.
    "role.withdrawn" => RoleWithdrawn(RoleWithdrawn),
    /// Outcome: the roles were not withdrawn.
    "role.not_withdrawn" => RoleNotWithdrawn(NotDone),
    /// The holder accepted the issued certificate.
    "certificate.accepted" => CertificateAccepted(CertificateAccepted),
    /// A seal certificate was revoked.
    "certificate.revoked" => CertificateRevoked(CertificateRevoked),
    /// Every still-valid seal certificate was revoked because the CA ends.
    "certificates.revoked_for_ca_termination" => CertificatesRevokedForCaTermination(RevokedForTermination),
    /// A seal key was destroyed in the HSM (its certificate expired or was revoked).
    "key.destroyed" => KeyDestroyed(KeyDestroyed),
    /// Outcome of announced RA changes: written in one transaction.
    "ra.applied" => RaApplied(RaApplied),
    /// Outcome of announced RA changes: rolled back, with the reason.
    "ra.not_applied" => RaNotApplied(RaNotApplied),
    /// A notice e-mail was handed to the mail server.
    "notice.sent" => NoticeSent(NoticeSent),
    /// Intent: an activation credential is being registered.
    "activation_credential.registering" => ActivationCredentialRegistering(ActivationRegistering),
    /// Outcome: the activation credential was registered.
    "activation_credential.registered" => ActivationCredentialRegistered(ActivationRegistered),
    /// Outcome: the activation credential was not registered.
    "activation_credential.not_registered" => ActivationCredentialNotRegistered(NotDone),
    /// Intent: an activation credential is being revoked.
    "activation_credential.revoking" => ActivationCredentialRevoking(ActivationRevoking),
    /// Outcome: the activation credential was revoked.
    "activation_credential.revoked" => ActivationCredentialRevoked(ActivationRevoked),
    /// Outcome: the activation credential was not revoked.
    "activation_credential.not_revoked" => ActivationCredentialNotRevoked(NotDone),
    /// A signature activation (SAD) was granted for a seal credential.
    "activation.authorized" => ActivationAuthorized(ActivationAuthorized),
    /// A SAD's lifetime was extended.
    "activation.extended" => ActivationExtended(ActivationExtended),
    /// An activation was refused before any check of its secret.
    "activation.refused" => ActivationRefused(ActivationRefused),
    /// An activation failed and counts against the credential.
    "activation.failed" => ActivationFailed(ActivationFailed),
    /// A seal credential was locked after repeated failures.
    "credential.locked" => CredentialLocked(CredentialLocked),
    /// A locked seal credential was unlocked.
    "credential.unlocked" => CredentialUnlocked(CredentialUnlocked),
    /// Intent: an identity provider is being registered for an organisation.
    "identity_provider.registering" => IdentityProviderRegistering(Provider),
    /// Outcome: the identity provider was registered.
    "identity_provider.registered" => IdentityProviderRegistered(ProviderDone),
    /// Outcome: the identity provider was not registered.
    "identity_provider.not_registered" => IdentityProviderNotRegistered(NotDone),
    /// Intent: an identity provider is being removed.
    "identity_provider.removing" => IdentityProviderRemoving(Provider),
    /// Outcome: the identity provider was removed.
    "identity_provider.removed" => IdentityProviderRemoved(ProviderDone),
    /// Outcome: the identity provider was not removed.
    "identity_provider.not_removed" => IdentityProviderNotRemoved(NotDone),
    /// Intent: an identity provider is being disabled.
    "identity_provider.disabling" => IdentityProviderDisabling(Provider),
    /// Outcome: the identity provider was disabled.
    "identity_provider.disabled" => IdentityProviderDisabled(ProviderDone),
    /// Outcome: the identity provider was not disabled.
    "identity_provider.not_disabled" => IdentityProviderNotDisabled(NotDone),
    /// Intent: an identity provider is being enabled again.
    "identity_provider.enabling" => IdentityProviderEnabling(Provider),
    /// Outcome: the identity provider was enabled again.
    "identity_provider.enabled" => IdentityProviderEnabled(ProviderDone),
    /// Outcome: the identity provider was not enabled again.
    "identity_provider.not_enabled" => IdentityProviderNotEnabled(NotDone),
    /// A seal was made with an organisation's key.
    "seal.created" => SealCreated(SealCreated),
    /// A seal was asked for and not made.
    "seal.failed" => SealFailed(SealFailed),
    /// The audit key that signs checkpoints was replaced.
    "journal.audit_key_rotated" => JournalAuditKeyRotated(AuditKeyRotated),
    /// An entry's payload was erased; its hash stays in the tree.
    "journal.payload_purged" => JournalPayloadPurged(PayloadPurged),
    /// A synthetic entry of the journal load tool (never written by the service).
    "load.test" => LoadTest(LoadTest),
}

/// A checkpoint key rotation: the old and the new key ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditKeyRotated {
    pub old_key_id: String,
    pub new_key_id: String,
}

/// The index of the entry whose payload was erased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadPurged {
    pub index: u64,
}

/// One entry of the load tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadTest {
    pub pid: u32,
    pub task: u64,
    pub n: u64,
}

/// The stored bytes of `event` by `actor`, and its kind. Every kind is 1 to
/// [`super::entry::MAX_KIND_LEN`] bytes (a unit test reads the catalogue).
pub fn encode(actor: &Actor, event: &Event) -> Result<(&'static str, Vec<u8>), JournalError> {
    let kind = event.kind();
    let details = match serde_json::to_value(event)? {
        Value::Object(mut tagged) => tagged.remove("details").unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let envelope = JournalEvent {
        kind: kind.to_owned(),
        actor: actor.recorded(),
        details,
    };
    Ok((kind, serde_json::to_vec(&envelope)?))
}

/// The typed event a stored entry holds, read back from its envelope.
pub fn decode(envelope: &JournalEvent) -> Result<Event, serde_json::Error> {
    serde_json::from_value(serde_json::json!({
        "kind": envelope.kind,
        "details": envelope.details,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_unique_and_fits_a_leaf() {
        let mut seen = std::collections::BTreeSet::new();
        for (kind, doc) in Event::CATALOGUE {
            assert!(!kind.is_empty() && kind.len() <= MAX_KIND_LEN, "{kind}");
            assert!(!doc.trim().is_empty(), "{kind} says what it records");
            assert!(seen.insert(kind), "{kind} is declared twice");
        }
    }

    #[test]
    fn actors_read_as_before() {
        assert_eq!(Actor::Service.recorded(), "sceau");
        assert_eq!(Actor::Registry.recorded(), "ra");
        let approvers = Actor::Approvers(vec!["op1".into(), "op2".into()]);
        assert_eq!(approvers.recorded(), "ra:op1+op2");
        assert_eq!(Actor::Task("sceau ca init").recorded(), "sceau ca init");
        assert_eq!(Actor::Principal("cert:ab".into()).recorded(), "cert:ab");
    }
}
