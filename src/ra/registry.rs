//! The registration authority's service: applications, evidence, terms
//! acceptance, identity verification, the moves of a request up to issuance and
//! acceptance, renewal, revocation requests, enrolment of legal representatives
//! and agents, and the maintenance sweep (reminders, evidence purge, issuance
//! retries). It holds the issuance engine: nothing else asks the CA to issue.
//!
//! Every action is journaled first, then written with its notices in one
//! transaction, then answered.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::dossier::{
    Application, Approval, BirthDate, CertificateView, DeclaredOrganisation, DeviceInput,
    DocumentView, Dossier, IdentityInput, IdentityVerification, PersonInput, PersonsView,
    RenewalInput, RequestView, RevocationReason, RevocationView, SweepReport, TermsAcceptance,
    TermsInput,
};
use super::evidence::{DocumentKind, EvidenceError, EvidenceVault, MediaType, SealedDocument};
use super::identifiers::{IdentifierError, Siren, Siret};
use super::request::{Lifecycle, Move, MoveError, RequestState};
use super::templates::{Language, NoticeText};
use crate::auth::{AuthMethod, Principal, Role};
use crate::clock::SharedClock;
use crate::clock::format::rfc3339;
use crate::config::RaSettings;
use crate::error::{ErrorKind, HasErrorKind};
use crate::hsm::{KeyId, TokenPool};
use crate::journal::{Actor, Event, Journal, JournalError, event};
use crate::pki::client_auth::{
    ClientCertificateError, ClientCertificateIssuer, ClientCertificateRequest,
    IssuedClientCertificate,
};
use crate::pki::crl::CrlPublisher;
use crate::pki::csr::{self, CsrError};
use crate::pki::issuance::{DeviceEvidence, IssuanceError, IssuanceRequest, Issuer, KeySource};
use crate::pki::policy::{CertificatePolicy, PolicySet};
use crate::pki::signing::Grant;
use crate::revocation::Reason;
use crate::store::certificates::IssuedCertificate;
use crate::store::entities::CredentialStatus;
use crate::store::entities::Entity;
use crate::store::notices::{NewNotice, SECRET_PLACEHOLDER, secret_context};
use crate::store::ra::{
    Effect, Enrolment, EvidenceRow, Person, PersonRole, RaChange, RequestEvent, RequestRow,
    RequestScope, Revocation,
};
use crate::store::{Store, StoreError};

mod apply;
mod documents;
mod enrolment;
mod issue;
mod moves;
mod parties;
mod revocation;
mod role_withdrawal;
mod sweep;
mod views;

pub use revocation::{CA_TERMINATION_REASON, revoke_all_for_ca_termination};
pub use sweep::destroy_retired_seal_keys;

/// Days before expiry on which the holder is reminded to renew (seed 002).
pub const REMINDER_DAYS: [u32; 4] = [90, 45, 30, 15];

/// The most requests one page of a listing holds.
pub const MAX_PAGE: u32 = 200;

/// A page of the requests listing; `next_before` names the request to page
/// on from, while there are more.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestPage {
    pub requests: Vec<RequestView>,
    pub next_before: Option<Uuid>,
}

/// An organisation and its people, as a request's view shows them.
struct Organisation {
    entity: Entity,
    persons: Vec<Person>,
}

/// How long a client certificate for activation is valid (one year: short,
/// as it authenticates a person).
const CLIENT_CERTIFICATE_DAYS: u32 = 365;

/// The evidence an initial request needs before it can be submitted (seed 002).
const REQUIRED_DOCUMENTS: [DocumentKind; 3] = [
    DocumentKind::IdentityDocument,
    DocumentKind::RegistryExtract,
    DocumentKind::Mandate,
];

#[derive(Debug, thiserror::Error)]
pub enum RaError {
    /// Bad input: the field and what is wrong with it.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A request that cannot be submitted yet: everything it lacks, each as
    /// the field and what is wrong with it (never empty).
    #[error("{}", incomplete_text(.0))]
    Incomplete(Vec<Lack>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Move(#[from] MoveError),
    #[error("{0}")]
    Evidence(#[from] EvidenceError),
    #[error("{0}")]
    Issuance(#[from] IssuanceError),
    #[error("{0}")]
    ClientCertificate(#[from] ClientCertificateError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("internal: {0}")]
    Internal(String),
}

/// One thing a request lacks before it can be submitted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lack {
    pub field: String,
    pub reason: String,
    /// For `documents`: the kinds of document still missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<String>,
}

fn incomplete_text(lacks: &[Lack]) -> String {
    let each: Vec<String> = lacks
        .iter()
        .map(|lack| format!("{}: {}", lack.field, lack.reason))
        .collect();
    each.join("; ")
}

impl HasErrorKind for RaError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } | Self::Incomplete(_) => ErrorKind::Unprocessable,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::Move(e) => e.kind(),
            Self::Evidence(e) => e.kind(),
            Self::Issuance(e) => e.kind(),
            Self::ClientCertificate(e) => e.kind(),
            Self::Store(e) => e.kind(),
            Self::Journal(e) => e.kind(),
            Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> RaError {
    RaError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// The registration authority.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    journal: Journal,
    clock: SharedClock,
    policies: Arc<PolicySet>,
    /// Absent once the issuing CA's termination started: nothing more is issued.
    issuer: Option<Issuer>,
    /// Issues TLS client certificates for activation; absent when the recorded
    /// hierarchy has no client-authentication CA.
    client_issuer: Option<ClientCertificateIssuer>,
    /// Where CA-managed seal keys live: destroyed here once their certificate
    /// is revoked or expired.
    seal_token: Arc<TokenPool>,
    /// Publishes a new CRL right after a revocation (every instance's poll
    /// would within seconds anyway).
    crl: CrlPublisher,
    vault: EvidenceVault,
    settings: RaSettings,
    portal_url: String,
    message_id_domain: String,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

/// Who acts on a request, and how far they may see it.
fn is_staff(principal: &Principal) -> bool {
    principal.has(Role::RaOperator) || principal.has(Role::CaAdmin)
}

/// Entity-bound callers see their own organisation only; anything else is 404,
/// so they cannot learn what exists elsewhere.
fn check_entity(principal: &Principal, entity: Uuid, what: &str) -> Result<(), RaError> {
    if is_staff(principal) || principal.entity == Some(entity) {
        Ok(())
    } else {
        Err(RaError::NotFound(format!("no {what}")))
    }
}

/// The roles `principal` acts with on one request, `None` when it may not see
/// it. Staff and the organisation's people act with their own roles. Whoever
/// applied acts as the RCCS of that request (and of no other): an applicant
/// holds a role in the organisation only once the RA validates a request.
/// Past validation the request is the organisation's: its applicant reaches it
/// through the role validation gave him, and not once that role is withdrawn.
fn acting_roles(principal: &Principal, row: &RequestRow) -> Option<BTreeSet<Role>> {
    let applicant = row.created_by == principal.id
        && principal.has(Role::Applicant)
        && RequestState::parse(&row.state).is_some_and(|state| !state.is_past_validation());
    let mut roles = if is_staff(principal) || principal.entity == Some(row.entity_id) {
        principal.roles.clone()
    } else if applicant {
        BTreeSet::new()
    } else {
        return None;
    };
    if applicant {
        roles.insert(Role::Rccs);
    }
    Some(roles)
}

/// The OIDC identity of a person calling (issuer, subject, acr).
fn person_identity(principal: &Principal) -> Result<(String, String, Option<String>), RaError> {
    match &principal.method {
        AuthMethod::Oidc {
            issuer,
            subject,
            acr,
            ..
        } => Ok((issuer.clone(), subject.clone(), acr.clone())),
        AuthMethod::ClientCertificate { .. } => Err(RaError::Forbidden(
            "people act here with their own sign-in (OpenID Connect), not a client certificate"
                .to_owned(),
        )),
    }
}

/// The verified person's birth date a caller recorded, if any.
fn birth_date(input: &IdentityInput) -> Result<Option<BirthDate>, RaError> {
    input
        .birth_date
        .clone()
        .map(|text| {
            BirthDate::try_from(text).map_err(|e| invalid("identity_verification.birth_date", e))
        })
        .transpose()
}

/// An approval as four eyes count it: its staff person, else (an approval
/// recorded before staff were registered people) its sign-in.
fn approver_key(approval: &Approval) -> String {
    approval
        .person
        .map(|person| person.to_string())
        .unwrap_or_else(|| approval.operator.clone())
}

fn odt(time: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(time)
}

fn non_empty(field: &str, text: &str, max: usize) -> Result<String, RaError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(invalid(field, "must not hold control characters"));
    }
    Ok(trimmed.to_owned())
}

fn email(field: &str, text: &str) -> Result<String, RaError> {
    let text = non_empty(field, text, 254)?;
    let valid = match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text
                    .chars()
                    .any(|c| c.is_whitespace() || c == '<' || c == '>')
                && !domain.contains('@')
        }
        None => false,
    };
    if valid {
        Ok(text)
    } else {
        Err(invalid(field, format!("{text:?} is not an e-mail address")))
    }
}

fn language(field: &str, text: Option<&str>) -> Result<String, RaError> {
    match text.unwrap_or("fr") {
        "fr" => Ok("fr".to_owned()),
        "en" => Ok("en".to_owned()),
        other => Err(invalid(field, format!("{other:?}: use \"fr\" or \"en\""))),
    }
}

fn language_of(person: &Person) -> Language {
    Language::parse(&person.language).unwrap_or(Language::Fr)
}

/// The notice `text` for `person`, in their language, as an outbox effect.
fn notice_to(person: &Person, text: &NoticeText) -> Effect {
    let rendered = text.render(language_of(person));
    Effect::Notice(NewNotice {
        kind: format!("ra.{}", text.kind()),
        recipient: person.email.clone(),
        subject: rendered.subject,
        body: rendered.body,
        sealed_secret: None,
    })
}

fn identifier_error(field: &str, error: &IdentifierError) -> RaError {
    invalid(field, error.to_string())
}

/// A CSR given as PEM or as base64 DER, as DER.
fn csr_der(text: &str) -> Result<Vec<u8>, RaError> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        let (label, der) = der::pem::decode_vec(text.as_bytes())
            .map_err(|e| invalid("csr", format!("not one PEM block: {e}")))?;
        if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
            return Err(invalid(
                "csr",
                format!("a PEM {label} is not a certificate request"),
            ));
        }
        return Ok(der);
    }
    base64::engine::general_purpose::STANDARD
        .decode(text.split_whitespace().collect::<String>())
        .map_err(|_| invalid("csr", "must be PEM or base64 DER"))
}

fn csr_error(error: &CsrError) -> RaError {
    invalid("csr", error.to_string())
}

impl Registry {
    engine_constructor! {
        #[expect(
            clippy::too_many_arguments,
            reason = "the RA's collaborators, given once at start"
        )]
        fn new(
            store: Store,
            journal: Journal,
            clock: SharedClock,
            policies: Arc<PolicySet>,
            issuer: Option<Issuer>,
            client_issuer: Option<ClientCertificateIssuer>,
            seal_token: Arc<TokenPool>,
            crl: CrlPublisher,
            vault: EvidenceVault,
            settings: RaSettings,
            public_url: &str,
            message_id_domain: String,
        ) -> Self {
            let portal_url = settings
                .portal_url
                .clone()
                .unwrap_or_else(|| public_url.to_owned())
                .trim_end_matches('/')
                .to_owned();
            Self {
                inner: Arc::new(Inner {
                    store,
                    journal,
                    clock,
                    policies,
                    issuer,
                    client_issuer,
                    seal_token,
                    crl,
                    vault,
                    settings,
                    portal_url,
                    message_id_domain,
                }),
            }
        }
    }

    fn now(&self) -> OffsetDateTime {
        odt(self.inner.clock.now())
    }

    fn policy(&self, id: &str) -> Result<Arc<CertificatePolicy>, RaError> {
        self.inner.policies.get(id).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.inner.policies.iter().map(|p| p.id.as_str()).collect();
            invalid(
                "policy",
                format!("no policy {id:?}; known: {}", known.join(", ")),
            )
        })
    }

    async fn journal(&self, actor: &Actor, event: Event) -> Result<u64, RaError> {
        Ok(self.inner.journal.append(actor, event).await?)
    }

    /// Writes `change` in one transaction. The journal entries that
    /// announced it (those its request event and revocations name) are then
    /// followed by its outcome: `ra.applied`, or `ra.not_applied` with the
    /// reason, so a change the database rolled back is never read as done.
    async fn commit(&self, change: &RaChange) -> Result<(), RaError> {
        self.commit_announced(change, &[]).await
    }

    /// As [`Registry::commit`], for a change also announced by `announced`.
    async fn commit_announced(&self, change: &RaChange, announced: &[u64]) -> Result<(), RaError> {
        let mut intents: Vec<u64> = announced.to_vec();
        for effect in &change.effects {
            match effect {
                Effect::AppendEvent { event, .. } => intents.extend(event.journal_index),
                Effect::Revoke(revocation) => intents.push(revocation.journal_index),
                _ => {}
            }
        }
        intents.sort_unstable();
        intents.dedup();
        let written = match self
            .inner
            .store
            .apply_ra_change(change, &self.inner.message_id_domain, self.now())
            .await
        {
            Ok(status) => {
                status.settled().await;
                Ok(())
            }
            Err(error) => Err(error),
        };
        if !intents.is_empty() {
            let outcome = match &written {
                Ok(()) => Event::RaApplied(event::RaApplied {
                    intents: intents.clone(),
                }),
                Err(error) => Event::RaNotApplied(event::RaNotApplied {
                    intents: intents.clone(),
                    reason: error.to_string(),
                }),
            };
            if let Err(error) = self.journal(&Actor::Registry, outcome).await {
                // The intents stand without an outcome: unknown, not done.
                tracing::error!(%error, ?intents, "the outcome of an RA change was not journaled");
            }
        }
        written.map_err(|e| match e {
            StoreError::Conflict(reason) => RaError::Conflict(reason),
            other => RaError::Store(other),
        })
    }

    fn notice(&self, person: &Person, text: &NoticeText) -> Effect {
        notice_to(person, text)
    }

    /// The enrolment e-mail: its link's token is sealed in the HSM and put in
    /// the body only when the notice is sent, so the outbox never holds it.
    async fn enrolment_notice(
        &self,
        person: &Person,
        entity_name: &str,
        token: &str,
        expires: OffsetDateTime,
    ) -> Result<Effect, RaError> {
        let text = NoticeText::Enrolment {
            entity_name: entity_name.to_owned(),
            role: person.role.name().to_owned(),
            enrolment_url: format!("{}/enrol#{SECRET_PLACEHOLDER}", self.inner.portal_url),
            expires,
        };
        let sealed = self
            .inner
            .vault
            .seal_secret(token.as_bytes(), &secret_context(&person.email))
            .await?;
        let mut effect = notice_to(person, &text);
        if let Effect::Notice(notice) = &mut effect {
            notice.sealed_secret = Some(sealed);
        }
        Ok(effect)
    }

    fn request_url(&self, id: Uuid) -> String {
        format!("{}/requests/{id}", self.inner.portal_url)
    }
}

fn dossier_of(row: &RequestRow) -> Result<Dossier, RaError> {
    serde_json::from_str(&row.file)
        .map_err(|e| RaError::Internal(format!("request {}'s dossier: {e}", row.id)))
}

/// A requested validity must fit the policy's maximum.
fn check_validity(policy: &CertificatePolicy, days: Option<u32>) -> Result<(), RaError> {
    match days {
        Some(days) if !(1..=policy.max_validity_days).contains(&days) => Err(invalid(
            "validity_days",
            format!(
                "must be 1 to {} days under this policy",
                policy.max_validity_days
            ),
        )),
        _ => Ok(()),
    }
}

/// A dossier part as a journal payload records it.
fn snapshot(value: &impl serde::Serialize) -> Result<serde_json::Value, RaError> {
    serde_json::to_value(value).map_err(|e| RaError::Internal(format!("journal payload: {e}")))
}

fn to_json(dossier: &Dossier) -> Result<String, RaError> {
    serde_json::to_string(dossier).map_err(|e| RaError::Internal(format!("dossier: {e}")))
}

fn random_token() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `years` calendar years later (29 February becomes 28 February).
fn add_years(time: OffsetDateTime, years: u32) -> OffsetDateTime {
    let year = time.year() + i32::try_from(years).unwrap_or(0);
    time.replace_year(year)
        .or_else(|_| time.replace_day(28).and_then(|t| t.replace_year(year)))
        .unwrap_or(time + Duration::days(365 * i64::from(years)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_parses_back_and_maps_to_a_crl_reason() {
        for reason in RevocationReason::ALL {
            assert_eq!(RevocationReason::parse(reason.name()), Some(reason));
            if let Some(code) = reason.crl_reason().map(Reason::code) {
                // RFC 5280 §5.3.1: 7 is unused, 8 is removeFromCRL (deltas only).
                assert!(
                    code <= 10 && code != 7 && code != 8 && code != 6,
                    "{reason:?}"
                );
            }
        }
        assert_eq!(
            RevocationReason::KeyCompromise.crl_reason(),
            Some(Reason::KeyCompromise)
        );
        assert_eq!(
            RevocationReason::CessationOfOperation.crl_reason(),
            Some(Reason::CessationOfOperation)
        );
    }

    #[test]
    fn e_mail_addresses_are_checked() {
        assert!(email("e", "rccs@example.fr").is_ok());
        for bad in ["", "no-at", "a@b", "a b@example.fr", "a@.fr", "<a@b.fr>"] {
            assert!(email("e", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn years_are_calendar_years() {
        let leap = time::macros::datetime!(2028-02-29 12:00 UTC);
        assert_eq!(
            add_years(leap, 10),
            time::macros::datetime!(2038-02-28 12:00 UTC)
        );
        let plain = time::macros::datetime!(2026-11-22 10:00 UTC);
        assert_eq!(
            add_years(plain, 10),
            time::macros::datetime!(2036-11-22 10:00 UTC)
        );
    }
}
