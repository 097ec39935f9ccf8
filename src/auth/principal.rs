//! The principal (who, for which entity, authenticated how, with which roles and
//! strength) and the permission table: the one place that says which role may
//! do what.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

use crate::config::StaffMember;
use crate::error::{ErrorKind, HasErrorKind};

/// What a principal is to sceau.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An organisation's server that seals with its credentials.
    SealClient,
    /// The person responsible for an organisation's seal certificates.
    Rccs,
    LegalRepresentative,
    /// A certification agent mandated by the organisation.
    Agent,
    RaOperator,
    CaAdmin,
    Auditor,
    /// Any person signed in with strong authentication: may apply for an
    /// organisation's certificate and redeem an enrolment link. Every person has it.
    Applicant,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Self::SealClient,
        Self::Rccs,
        Self::LegalRepresentative,
        Self::Agent,
        Self::RaOperator,
        Self::CaAdmin,
        Self::Auditor,
        Self::Applicant,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::SealClient => "seal_client",
            Self::Rccs => "rccs",
            Self::LegalRepresentative => "legal_representative",
            Self::Agent => "agent",
            Self::RaOperator => "ra_operator",
            Self::CaAdmin => "ca_admin",
            Self::Auditor => "auditor",
            Self::Applicant => "applicant",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.name() == text)
    }

    /// Roles a person can hold. `seal_client` is a server's, and comes only
    /// with a sender-constrained token (certificate-bound or DPoP) or a
    /// registered client certificate, never from a person's claims or
    /// assignments.
    pub fn is_for_people(self) -> bool {
        self != Self::SealClient
    }

    /// Roles that act for one organisation only; the others are the trust
    /// service's own staff.
    pub fn is_entity_bound(self) -> bool {
        matches!(
            self,
            Self::SealClient | Self::Rccs | Self::LegalRepresentative | Self::Agent
        )
    }

    /// The trust service's own roles, given only to registered staff.
    pub fn is_staff(self) -> bool {
        matches!(self, Self::RaOperator | Self::CaAdmin | Self::Auditor)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How strongly the principal was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    /// One factor, or a bearer token a thief could replay.
    Weak,
    /// Strong, dynamic authentication: a TLS client key, a sender-constrained token,
    /// or a person's second factor.
    Strong,
}

/// How the principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum AuthMethod {
    /// A TLS client certificate, registered with the CA.
    ClientCertificate {
        /// Hex SHA-256 of the certificate's DER.
        sha256: String,
    },
    /// An OIDC access token from a registered identity provider.
    Oidc {
        issuer: String,
        subject: String,
        client_id: Option<String>,
        /// `bearer`, `certificate` (RFC 8705) or `dpop` (RFC 9449).
        binding: &'static str,
        /// The authentication context class the provider asserted (e.g. an eID
        /// level), recorded as evidence of identity verification.
        acr: Option<String>,
    },
}

/// Who is calling, as every handler sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Principal {
    /// Stable across requests: `cert:<sha256>` or `oidc:<issuer>#<subject>`.
    pub id: String,
    /// The organisation it acts for, if it is bound to one.
    pub entity: Option<Uuid>,
    pub method: AuthMethod,
    pub roles: BTreeSet<Role>,
    pub strength: Strength,
    /// The registered staff person this sign-in belongs to, when it acts as
    /// staff (then it holds no organisation role and `entity` is `None`: one
    /// capacity per sign-in). Staff roles come only with it.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "staff_id")]
    pub staff: Option<Arc<StaffMember>>,
}

fn staff_id<S: serde::Serializer>(
    staff: &Option<Arc<StaffMember>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match staff {
        Some(member) => serializer.serialize_some(&member.id),
        None => serializer.serialize_none(),
    }
}

impl From<&Principal> for crate::journal::Actor {
    fn from(principal: &Principal) -> Self {
        Self::Principal(principal.id.clone())
    }
}

impl Principal {
    /// The principal as a journal payload records it.
    pub fn snapshot(&self) -> serde_json::Value {
        // Every field serialises to plain JSON (strings, UUIDs, enums): no error.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Who acted, as four-eyes counts people: the staff person's id for staff,
    /// the sign-in's id otherwise.
    pub fn person_key(&self) -> String {
        match &self.staff {
            Some(member) => member.id.to_string(),
            None => self.id.clone(),
        }
    }
}

/// What a route does, as far as access goes. Each authenticated route names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Activate a seal credential (get a SAD) and seal with it.
    UseSealCredential,
    /// Register, list, rotate and revoke a credential's activation credentials.
    ManageActivationCredentials,
    /// Unlock a credential locked by failed activations.
    UnlockSealCredential,
    /// Register an organisation's identity providers.
    ManageIdentityProviders,
    /// Read the audit journal.
    ReadJournal,
    /// Apply for an organisation's certificate (opens a request).
    ApplyForCertificate,
    /// Read an organisation's requests and certificates.
    ReadRequests,
    /// Complete a request: evidence documents, terms acceptance.
    CompleteRequest,
    /// Record how the applicant's identity was verified.
    RecordIdentityVerification,
    /// Move a request through its lifecycle (which moves, the lifecycle says).
    MoveRequest,
    /// Read the content of evidence documents.
    ReadEvidence,
    /// Withdraw the organisation roles of a person's sign-in.
    WithdrawRoles,
    /// Start the renewal of a certificate.
    RenewCertificate,
    /// Ask for a certificate's revocation.
    RequestRevocation,
    /// Revoke as the organisation's legal representative (seed 002 §4a).
    RevokeAsLegalRepresentative,
    /// Bind one's own identity to a person named in a request (enrolment link).
    Enrol,
    /// Send a person who has not enrolled a new enrolment link.
    ResendEnrolment,
    /// Approve the end of the issuing CA (two distinct administrators must).
    ApproveCaTermination,
    /// List an organisation's seals and their journal inclusion proofs.
    ReadSeals,
}

impl Permission {
    pub const ALL: [Permission; 19] = [
        Self::UseSealCredential,
        Self::ManageActivationCredentials,
        Self::UnlockSealCredential,
        Self::ManageIdentityProviders,
        Self::ReadJournal,
        Self::ApplyForCertificate,
        Self::ReadRequests,
        Self::CompleteRequest,
        Self::RecordIdentityVerification,
        Self::MoveRequest,
        Self::ReadEvidence,
        Self::WithdrawRoles,
        Self::RenewCertificate,
        Self::RequestRevocation,
        Self::RevokeAsLegalRepresentative,
        Self::Enrol,
        Self::ResendEnrolment,
        Self::ApproveCaTermination,
        Self::ReadSeals,
    ];

    /// The permission table.
    pub fn roles(self) -> &'static [Role] {
        match self {
            Self::UseSealCredential => &[Role::SealClient],
            Self::ManageActivationCredentials => &[Role::Rccs],
            Self::UnlockSealCredential => &[Role::Rccs, Role::RaOperator],
            Self::ManageIdentityProviders => &[Role::RaOperator],
            Self::ReadJournal => &[Role::Auditor, Role::CaAdmin],
            Self::ApplyForCertificate => &[Role::Applicant],
            // An applicant reaches only the requests he applied with (the
            // registry checks each request it loads).
            Self::ReadRequests => &[
                Role::Rccs,
                Role::Agent,
                Role::RaOperator,
                Role::CaAdmin,
                Role::Applicant,
            ],
            Self::CompleteRequest => &[Role::Rccs, Role::Applicant],
            Self::RenewCertificate => &[Role::Rccs],
            Self::RecordIdentityVerification => &[Role::Rccs, Role::RaOperator, Role::Applicant],
            Self::MoveRequest => &[Role::Rccs, Role::RaOperator, Role::Applicant],
            Self::ReadEvidence | Self::WithdrawRoles => &[Role::RaOperator],
            Self::RequestRevocation => &[Role::Rccs, Role::Agent, Role::RaOperator, Role::CaAdmin],
            Self::RevokeAsLegalRepresentative => &[Role::LegalRepresentative],
            Self::Enrol => &[Role::Applicant],
            Self::ResendEnrolment => &[Role::Rccs, Role::RaOperator, Role::Applicant],
            Self::ApproveCaTermination => &[Role::CaAdmin],
            Self::ReadSeals => &[Role::Rccs, Role::Auditor],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::UseSealCredential => "use_seal_credential",
            Self::ManageActivationCredentials => "manage_activation_credentials",
            Self::UnlockSealCredential => "unlock_seal_credential",
            Self::ManageIdentityProviders => "manage_identity_providers",
            Self::ReadJournal => "read_journal",
            Self::ApplyForCertificate => "apply_for_certificate",
            Self::ReadRequests => "read_requests",
            Self::CompleteRequest => "complete_request",
            Self::RecordIdentityVerification => "record_identity_verification",
            Self::MoveRequest => "move_request",
            Self::ReadEvidence => "read_evidence",
            Self::WithdrawRoles => "withdraw_roles",
            Self::RenewCertificate => "renew_certificate",
            Self::RequestRevocation => "request_revocation",
            Self::RevokeAsLegalRepresentative => "revoke_as_legal_representative",
            Self::Enrol => "enrol",
            Self::ResendEnrolment => "resend_enrolment",
            Self::ApproveCaTermination => "approve_ca_termination",
            Self::ReadSeals => "read_seals",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
}

impl HasErrorKind for AuthError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Self::Forbidden(_) => ErrorKind::Forbidden,
        }
    }
}

/// The one permission check: a role the table allows, strong authentication, and,
/// for organisation-bound roles, the organisation the resource belongs to.
pub fn authorize(
    principal: &Principal,
    permission: Permission,
    entity: Option<Uuid>,
) -> Result<(), AuthError> {
    if principal.strength != Strength::Strong {
        return Err(AuthError::Forbidden(format!(
            "{} needs strong authentication",
            permission.name()
        )));
    }
    let allowed = permission.roles().iter().any(|role| {
        principal.has(*role)
            && (!role.is_entity_bound()
                || match entity {
                    // Checked again once the resource is loaded.
                    None => principal.entity.is_some(),
                    Some(entity) => principal.entity == Some(entity),
                })
    });
    if allowed {
        Ok(())
    } else {
        Err(AuthError::Forbidden(format!(
            "this principal may not {}",
            permission.name().replace('_', " ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[Role], entity: Option<Uuid>, strength: Strength) -> Principal {
        Principal {
            id: "test".to_owned(),
            entity,
            method: AuthMethod::ClientCertificate {
                sha256: "00".to_owned(),
            },
            roles: roles.iter().copied().collect(),
            strength,
            staff: None,
        }
    }

    #[test]
    fn roles_entities_and_strength_all_count() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let client = principal(&[Role::SealClient], Some(a), Strength::Strong);
        assert!(authorize(&client, Permission::UseSealCredential, Some(a)).is_ok());
        assert!(authorize(&client, Permission::UseSealCredential, Some(b)).is_err());
        assert!(authorize(&client, Permission::ManageActivationCredentials, Some(a)).is_err());
        let weak = principal(&[Role::SealClient], Some(a), Strength::Weak);
        assert!(authorize(&weak, Permission::UseSealCredential, Some(a)).is_err());
        let operator = principal(&[Role::RaOperator], None, Strength::Strong);
        assert!(authorize(&operator, Permission::UnlockSealCredential, Some(b)).is_ok());
        assert!(authorize(&operator, Permission::UseSealCredential, Some(b)).is_err());
    }

    #[test]
    fn every_role_has_a_name_that_parses_back() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()), Some(role));
        }
    }
}
