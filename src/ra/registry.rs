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
use serde_json::json;
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
use crate::journal::{Journal, JournalError, JournalEvent};
use crate::pki::client_auth::{
    ClientCertificateError, ClientCertificateIssuer, ClientCertificateRequest,
    IssuedClientCertificate,
};
use crate::pki::crl::CrlPublisher;
use crate::pki::csr::{self, CsrError};
use crate::pki::issuance::{DeviceEvidence, IssuanceError, IssuanceRequest, Issuer, KeySource};
use crate::pki::policy::{CertificatePolicy, PolicySet};
use crate::pki::signing::Grant;
use crate::store::certificates::IssuedCertificate;
use crate::store::entities::CredentialStatus;
use crate::store::notices::{NewNotice, SECRET_PLACEHOLDER, secret_context};
use crate::store::ra::{
    Effect, Enrolment, EvidenceRow, Person, PersonRole, RaChange, RegisteredEntity, RequestEvent,
    RequestRow, RequestScope, Revocation,
};
use crate::store::{Store, StoreError};

mod parties;
mod role_withdrawal;

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
    entity: RegisteredEntity,
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

impl HasErrorKind for RaError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Unprocessable,
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
    #[expect(
        clippy::too_many_arguments,
        reason = "the RA's collaborators, given once at start"
    )]
    pub fn new(
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

    async fn journal(
        &self,
        kind: &str,
        actor: &str,
        details: serde_json::Value,
    ) -> Result<u64, RaError> {
        Ok(self
            .inner
            .journal
            .append(JournalEvent::new(kind, actor, details))
            .await?)
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
        let written = self
            .inner
            .store
            .apply_ra_change(change, &self.inner.message_id_domain, self.now())
            .await;
        if !intents.is_empty() {
            let (kind, details) = match &written {
                Ok(()) => ("ra.applied", json!({ "intents": intents })),
                Err(error) => (
                    "ra.not_applied",
                    json!({ "intents": intents, "reason": error.to_string() }),
                ),
            };
            if let Err(error) = self.journal(kind, "ra", details).await {
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

    // ---- applications --------------------------------------------------------

    /// Opens a request (draft) for an organisation: registers it if new, records
    /// the persons, binds the applicant as RCCS and sends the legal
    /// representative (and agent) their enrolment links.
    pub async fn apply(
        &self,
        principal: &Principal,
        application: Application,
    ) -> Result<RequestView, RaError> {
        let (issuer, subject, acr) = person_identity(principal)?;
        let now = self.now();
        let policy = self.policy(&application.policy)?;
        let org = &application.organisation;
        let siren: Siren = org
            .siren
            .parse()
            .map_err(|e| identifier_error("organisation.siren", &e))?;
        let siret: Option<Siret> = match &org.siret {
            None => None,
            Some(text) => {
                let siret: Siret = text
                    .parse()
                    .map_err(|e| identifier_error("organisation.siret", &e))?;
                if siret.siren() != siren {
                    return Err(invalid(
                        "organisation.siret",
                        format!("{siret} is not an establishment of SIREN {siren}"),
                    ));
                }
                Some(siret)
            }
        };
        let country = org.country.clone().unwrap_or_else(|| "FR".to_owned());
        if country != "FR" {
            return Err(invalid(
                "organisation.country",
                "organisations are registered by SIREN, so they are French (FR)",
            ));
        }
        let legal_name = non_empty("organisation.legal_name", &org.legal_name, 64)?;
        let legal_form = non_empty("organisation.legal_form", &org.legal_form, 100)?;
        let street = non_empty("organisation.street", &org.street, 200)?;
        let postal_code = non_empty("organisation.postal_code", &org.postal_code, 10)?;
        if !(postal_code.len() == 5 && postal_code.bytes().all(|b| b.is_ascii_digit())) {
            return Err(invalid(
                "organisation.postal_code",
                "a French postal code is 5 digits",
            ));
        }
        let city = non_empty("organisation.city", &org.city, 100)?;
        let seal_name = non_empty("seal_name", &application.seal_name, 64)?;
        check_validity(&policy, application.validity_days)?;
        let (csr, device) = self.key_material(
            &policy,
            application.csr.as_deref(),
            application.device.as_ref(),
        )?;

        let rccs_input = self.person_input("rccs", &application.rccs)?;
        let legal_input =
            self.person_input("legal_representative", &application.legal_representative)?;
        let agent_input = match &application.agent {
            Some(agent) => Some(self.person_input("agent", agent)?),
            None => None,
        };

        // The organisation: the caller's own, one no one holds a role in yet
        // (competing applications reach the RA, which decides), or new.
        let existing = self.inner.store.entity_by_siren(siren.as_str()).await?;
        let declared = DeclaredOrganisation {
            legal_name,
            siret: siret.as_ref().map(|s| s.as_str().to_owned()),
            legal_form,
            street,
            postal_code,
            city,
        };
        let mut change = RaChange::new();
        let (entity, declared) = match existing {
            Some(entity) if principal.entity == Some(entity.id) && principal.has(Role::Rccs) => {
                (entity, None)
            }
            Some(entity) => {
                if let Some(other) = principal.entity {
                    return Err(RaError::Conflict(format!(
                        "this sign-in acts for organisation {other}; apply for another \
                         organisation with another identity"
                    )));
                }
                if !self.inner.store.role_holders(entity.id).await?.is_empty() {
                    return Err(RaError::Conflict(format!(
                        "the organisation with SIREN {siren} is registered; its RCCS applies \
                         for it, or the RA withdraws a role given in error"
                    )));
                }
                (entity, Some(declared))
            }
            None => {
                if let Some(other) = principal.entity {
                    return Err(RaError::Conflict(format!(
                        "this sign-in acts for organisation {other}; apply for another \
                         organisation with another identity"
                    )));
                }
                let identifier = siren
                    .organization_identifier()
                    .map_err(|e| invalid("organisation.siren", e))?;
                let entity = declared.over(&RegisteredEntity {
                    id: Uuid::new_v4(),
                    legal_name: String::new(),
                    organization_identifier: identifier.to_string(),
                    country,
                    siren: Some(siren.as_str().to_owned()),
                    siret: None,
                    legal_form: None,
                    street: None,
                    postal_code: None,
                    city: None,
                    created_at: now,
                });
                change.push(Effect::InsertEntity(entity.clone()));
                (entity, Some(declared))
            }
        };

        // The applicant is the RCCS; reuse his record when he has one.
        let persons = self.inner.store.persons_of(entity.id).await?;
        let rccs = match persons.iter().find(|p| {
            p.role == PersonRole::Rccs
                && p.identity.as_ref() == Some(&(issuer.clone(), subject.clone()))
        }) {
            Some(person) => person.clone(),
            None => {
                let person = rccs_input.into_person(
                    entity.id,
                    PersonRole::Rccs,
                    now,
                    Some((issuer.clone(), subject.clone())),
                );
                change.push(Effect::InsertPerson(person.clone(), None));
                person
            }
        };
        let mut links = Vec::new();
        let legal = self.attach(
            &persons,
            legal_input,
            entity.id,
            PersonRole::LegalRepresentative,
            now,
            &mut change,
            &mut links,
        );
        let agent = agent_input.map(|input| {
            self.attach(
                &persons,
                input,
                entity.id,
                PersonRole::Agent,
                now,
                &mut change,
                &mut links,
            )
        });

        let request_id = Uuid::new_v4();
        let mut dossier = Dossier {
            organisation: declared,
            seal_name,
            validity_days: application.validity_days,
            rccs: rccs.id,
            legal_representative: legal.id,
            agent: agent.as_ref().map(|a| a.id),
            identity_verification: None,
            terms: None,
            approvals: Vec::new(),
            csr,
            device,
            renewal_number: 0,
            identity_required: true,
        };
        if let Some(terms) = &application.terms {
            dossier.terms = Some(self.terms_acceptance(&policy, terms, principal, now)?);
        }
        if let Some(identity) = &application.identity_verification {
            dossier.identity_verification = Some(self.identity_verification(
                principal,
                identity,
                (&issuer, &subject, acr.as_deref()),
                None,
                now,
            )?);
        }
        let index = self
            .journal(
                "request.created",
                &principal.id,
                json!({
                    "request": request_id,
                    "kind": "initial",
                    "policy": policy.id,
                    "entity": entity.id,
                    "organization_identifier": entity.organization_identifier,
                    "siren": siren.as_str(),
                    "siret": siret.as_ref().map(|s| s.as_str().to_owned()),
                    "rccs": rccs.id,
                    "legal_representative": legal.id,
                    "agent": agent.as_ref().map(|a| a.id),
                    "terms": dossier.terms,
                    "identity_verification": dossier.identity_verification,
                }),
            )
            .await?;
        let row = RequestRow {
            id: request_id,
            entity_id: entity.id,
            kind: "initial".to_owned(),
            policy_id: policy.id.clone(),
            state: RequestState::Draft.name().to_owned(),
            version: 1,
            file: to_json(&dossier)?,
            renews_serial: None,
            certificate_serial: None,
            credential_id: None,
            created_by: principal.id.clone(),
            created_at: now,
            updated_at: now,
        };
        change.push(Effect::InsertRequest(row));
        change.push(Effect::AppendEvent {
            request_id,
            event: RequestEvent {
                action: "create".to_owned(),
                from_state: String::new(),
                to_state: RequestState::Draft.name().to_owned(),
                actor: principal.id.clone(),
                message: None,
                journal_index: Some(index),
                at: now,
            },
        });
        let expires =
            now + Duration::hours(i64::from(self.inner.settings.enrolment_lifetime_hours));
        for (person, token) in links {
            change.push(
                self.enrolment_notice(&person, &entity.legal_name, &token, expires)
                    .await?,
            );
        }
        self.commit(&change).await?;
        let row = self.inner.store.registration_request(request_id).await?;
        let organisation = self.organisation(row.entity_id).await?;
        self.render(principal, row, dossier, &organisation).await
    }

    fn person_input(&self, field: &str, input: &PersonInput) -> Result<PersonDraft, RaError> {
        Ok(PersonDraft {
            given_name: non_empty(&format!("{field}.given_name"), &input.given_name, 100)?,
            family_name: non_empty(&format!("{field}.family_name"), &input.family_name, 100)?,
            email: email(&format!("{field}.email"), &input.email)?,
            phone: match &input.phone {
                Some(phone) => Some(non_empty(&format!("{field}.phone"), phone, 32)?),
                None => None,
            },
            language: language(&format!("{field}.language"), input.language.as_deref())?,
        })
    }

    /// The existing person of that role and e-mail, or a new one with an
    /// enrolment link (queued in `links`).
    #[expect(clippy::too_many_arguments, reason = "one call site per role")]
    fn attach(
        &self,
        persons: &[Person],
        input: PersonDraft,
        entity: Uuid,
        role: PersonRole,
        now: OffsetDateTime,
        change: &mut RaChange,
        links: &mut Vec<(Person, String)>,
    ) -> Person {
        if let Some(person) = persons
            .iter()
            .find(|p| p.role == role && p.email.eq_ignore_ascii_case(&input.email))
        {
            return person.clone();
        }
        let person = input.into_person(entity, role, now, None);
        let token = random_token();
        change.push(Effect::InsertPerson(
            person.clone(),
            Some(Enrolment {
                sha256: hex::encode(Sha256::digest(token.as_bytes())),
                expires_at: now
                    + Duration::hours(i64::from(self.inner.settings.enrolment_lifetime_hours)),
            }),
        ));
        links.push((person.clone(), token));
        person
    }

    /// Checks the key material a policy needs: a CSR (and device evidence) for
    /// entity-generated keys, nothing for CA-managed ones.
    fn key_material(
        &self,
        policy: &CertificatePolicy,
        csr: Option<&str>,
        device: Option<&DeviceInput>,
    ) -> Result<(Option<String>, Option<DeviceEvidence>), RaError> {
        use crate::pki::policy::KeyGeneration;
        let generation = policy.key.generation;
        if generation.is_ca_managed() {
            if csr.is_some() {
                return Err(invalid(
                    "csr",
                    format!(
                        "policy {} has its keys generated by the CA: send no CSR",
                        policy.id
                    ),
                ));
            }
            return Ok((None, None));
        }
        let csr = csr.ok_or_else(|| {
            invalid(
                "csr",
                format!(
                    "policy {} certifies the organisation's own key: send its CSR",
                    policy.id
                ),
            )
        })?;
        let der = csr_der(csr)?;
        csr::verify(&der, &policy.key).map_err(|e| csr_error(&e))?;
        let device = match generation {
            KeyGeneration::EntityQscd => {
                let device = device.ok_or_else(|| invalid("device", "a QSealCD policy needs the device model and the SHA-256 of the proof of generation"))?;
                let model = non_empty("device.model", device.model.as_deref().unwrap_or(""), 200)?;
                let proof = device.proof_sha256.as_deref().unwrap_or("");
                if proof.len() != 64 || hex::decode(proof).is_err() {
                    return Err(invalid("device.proof_sha256", "must be 64 hex digits"));
                }
                Some(DeviceEvidence::Qscd {
                    model,
                    proof_sha256: proof.to_ascii_lowercase(),
                })
            }
            KeyGeneration::Chip => {
                let device = device
                    .ok_or_else(|| invalid("device", "a chip policy needs the chip's reference"))?;
                Some(DeviceEvidence::Chip {
                    reference: non_empty(
                        "device.chip_reference",
                        device.chip_reference.as_deref().unwrap_or(""),
                        200,
                    )?,
                })
            }
            _ => None,
        };
        // Stored as base64 DER.
        Ok((
            Some(base64::engine::general_purpose::STANDARD.encode(der)),
            device,
        ))
    }

    fn terms_acceptance(
        &self,
        policy: &CertificatePolicy,
        terms: &TermsInput,
        principal: &Principal,
        now: OffsetDateTime,
    ) -> Result<TermsAcceptance, RaError> {
        if terms.version != policy.terms.version {
            return Err(invalid(
                "terms.version",
                format!(
                    "unknown terms version {:?}; the terms of policy {} are version {}",
                    terms.version, policy.id, policy.terms.version
                ),
            ));
        }
        let sha256 = hex::encode(policy.terms.sha256);
        if let Some(given) = &terms.sha256
            && !given.eq_ignore_ascii_case(&sha256)
        {
            return Err(invalid(
                "terms.sha256",
                format!(
                    "the terms version {} have SHA-256 {sha256}",
                    policy.terms.version
                ),
            ));
        }
        Ok(TermsAcceptance {
            version: terms.version.clone(),
            sha256,
            principal: principal.id.clone(),
            accepted_at: now,
        })
    }

    /// How `input` verified the identity. `entity` is the request's
    /// organisation, `None` in an application (where the applicant would be
    /// attesting himself).
    fn identity_verification(
        &self,
        principal: &Principal,
        input: &IdentityInput,
        identity: (&str, &str, Option<&str>),
        entity: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<IdentityVerification, RaError> {
        match input.method.as_str() {
            "face_to_face" => {
                if !principal.has(Role::RaOperator) {
                    return Err(RaError::Forbidden(
                        "face-to-face verification is attested by an RA operator".to_owned(),
                    ));
                }
                if entity.is_none() {
                    return Err(RaError::Forbidden(
                        "the applicant never attests his own identity: an RA operator records \
                         a face-to-face verification on the request"
                            .to_owned(),
                    ));
                }
                Ok(IdentityVerification::FaceToFace {
                    attested_by: principal.id.clone(),
                    attested_by_person: principal.staff.as_ref().map(|member| member.id),
                    birth_date: birth_date(input)?,
                    at: now,
                })
            }
            "remote_provider" => Ok(IdentityVerification::RemoteProvider {
                provider: non_empty(
                    "identity_verification.provider",
                    input.provider.as_deref().unwrap_or(""),
                    200,
                )?,
                reference: non_empty(
                    "identity_verification.reference",
                    input.reference.as_deref().unwrap_or(""),
                    200,
                )?,
                recorded_by: principal.id.clone(),
                birth_date: birth_date(input)?,
                at: now,
            }),
            "eid_substantial" => {
                if input.birth_date.is_some() {
                    return Err(invalid(
                        "identity_verification.birth_date",
                        "an eID verification takes its attributes from the eID, not from the caller",
                    ));
                }
                let (issuer, subject, acr) = identity;
                let acr = acr.ok_or_else(|| {
                    invalid(
                        "identity_verification.method",
                        "this sign-in carries no eID level (acr); sign in with an eID means at level substantial",
                    )
                })?;
                Ok(IdentityVerification::EidSubstantial {
                    issuer: issuer.to_owned(),
                    subject: subject.to_owned(),
                    acr: acr.to_owned(),
                    at: now,
                })
            }
            other => Err(invalid(
                "identity_verification.method",
                format!("{other:?}: use face_to_face, remote_provider or eid_substantial"),
            )),
        }
    }

    // ---- reading -------------------------------------------------------------

    async fn load(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(RequestRow, Dossier), RaError> {
        let row = match self.inner.store.registration_request(id).await {
            Ok(row) => row,
            Err(StoreError::NotFound { .. }) => {
                return Err(RaError::NotFound(format!("no request {id}")));
            }
            Err(e) => return Err(e.into()),
        };
        if acting_roles(principal, &row).is_none() {
            return Err(RaError::NotFound(format!("no request {id}")));
        }
        let dossier = dossier_of(&row)?;
        Ok((row, dossier))
    }

    /// An issued certificate by serial; `NotFound` names it.
    async fn issued_certificate(&self, serial: &str) -> Result<IssuedCertificate, RaError> {
        match self.inner.store.issued_certificate(serial).await {
            Ok(certificate) => Ok(certificate),
            Err(StoreError::NotFound { .. }) => {
                Err(RaError::NotFound(format!("no certificate {serial}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn state_of(row: &RequestRow) -> Result<RequestState, RaError> {
        RequestState::parse(&row.state).ok_or_else(|| {
            RaError::Internal(format!("request {} in state {:?}", row.id, row.state))
        })
    }

    fn approvals_needed(policy: &CertificatePolicy) -> usize {
        // A CA-managed key is made and used by the CA: four eyes before it exists.
        if policy.key.generation.is_ca_managed() {
            2
        } else {
            1
        }
    }

    fn lifecycle(
        row: &RequestRow,
        dossier: &Dossier,
        policy: &CertificatePolicy,
    ) -> Result<Lifecycle, RaError> {
        let mut lifecycle = Lifecycle::new(Self::approvals_needed(policy));
        lifecycle.state = Self::state_of(row)?;
        // Four eyes count staff people, not their sign-ins.
        lifecycle.approvals = dossier.approvals.iter().map(approver_key).collect();
        lifecycle.identity_verifier = match &dossier.identity_verification {
            Some(IdentityVerification::FaceToFace {
                attested_by,
                attested_by_person,
                ..
            }) => Some(
                attested_by_person
                    .map(|person| person.to_string())
                    .unwrap_or_else(|| attested_by.clone()),
            ),
            _ => None,
        };
        Ok(lifecycle)
    }

    /// The request as `principal` may see it.
    pub async fn view(&self, principal: &Principal, id: Uuid) -> Result<RequestView, RaError> {
        let (row, dossier) = self.load(principal, id).await?;
        let organisation = self.organisation(row.entity_id).await?;
        self.render(principal, row, dossier, &organisation).await
    }

    async fn organisation(&self, entity_id: Uuid) -> Result<Organisation, RaError> {
        let store = &self.inner.store;
        Ok(Organisation {
            entity: store.registered_entity(entity_id).await?,
            persons: store.persons_of(entity_id).await?,
        })
    }

    async fn render(
        &self,
        principal: &Principal,
        row: RequestRow,
        dossier: Dossier,
        organisation: &Organisation,
    ) -> Result<RequestView, RaError> {
        let store = &self.inner.store;
        let policy = self.policy(&row.policy_id)?;
        let lifecycle = Self::lifecycle(&row, &dossier, &policy)?;
        let roles = acting_roles(principal, &row).unwrap_or_default();
        let allowed_moves = lifecycle.allowed_moves(&roles);
        let entity = match &dossier.organisation {
            Some(declared) => declared.over(&organisation.entity),
            None => organisation.entity.clone(),
        };
        let find = |id: Uuid| {
            organisation
                .persons
                .iter()
                .find(|p| p.id == id)
                .cloned()
                .ok_or_else(|| RaError::Internal(format!("person {id} of request {}", row.id)))
        };
        let persons_view = PersonsView {
            rccs: find(dossier.rccs)?,
            legal_representative: find(dossier.legal_representative)?,
            agent: dossier.agent.map(find).transpose()?,
        };
        let documents = store
            .evidence_documents(row.id)
            .await?
            .into_iter()
            .map(document_view)
            .collect();
        let certificate = match &row.certificate_serial {
            Some(serial) => Some(self.certificate_view(serial).await?),
            None => None,
        };
        let history = store.request_events(row.id).await?;
        Ok(RequestView {
            id: row.id,
            kind: row.kind,
            policy: row.policy_id,
            state: lifecycle.state,
            version: row.version,
            allowed_moves,
            entity,
            persons: persons_view,
            seal_name: dossier.seal_name,
            validity_days: dossier.validity_days,
            identity_verification: dossier.identity_verification,
            identity_required: dossier.identity_required,
            terms: dossier.terms,
            approvals: dossier.approvals,
            approvals_needed: lifecycle.approvals_needed,
            documents,
            renews_serial: row.renews_serial,
            renewal_number: dossier.renewal_number,
            certificate,
            history,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    async fn certificate_view(&self, serial: &str) -> Result<CertificateView, RaError> {
        let store = &self.inner.store;
        let issued = store.issued_certificate(serial).await?;
        let accepted_at = store.certificate_accepted_at(serial).await?;
        let revoked = store.revocation(serial).await?.is_some();
        let credential_status = match issued.credential_id {
            Some(id) => Some(store.seal_credential(id).await?.status),
            None => None,
        };
        let now = self.now();
        let usable = accepted_at.is_some()
            && !revoked
            && issued.not_after > now
            && credential_status.is_none_or(|s| s == CredentialStatus::Active);
        Ok(CertificateView {
            serial: issued.serial,
            not_before: issued.not_before,
            not_after: issued.not_after,
            credential_id: issued.credential_id,
            credential_status: credential_status.map(|s| s.as_str().to_owned()),
            accepted_at,
            revoked,
            usable,
            pem: crate::crypto::certificate_pem(&issued.der),
        })
    }

    /// Up to `limit` requests the caller may see, newest first: an
    /// organisation's own, or all for staff (optionally in one state); after
    /// `before`, a request of the previous page, when paging on.
    pub async fn list(
        &self,
        principal: &Principal,
        state: Option<&str>,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<RequestPage, RaError> {
        if let Some(state) = state
            && RequestState::parse(state).is_none()
        {
            return Err(invalid("state", format!("no state {state:?}")));
        }
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid(
                "limit",
                format!("{limit} is not between 1 and {MAX_PAGE}"),
            ));
        }
        // An applicant not yet holding a role sees the requests he applied with.
        let scope = if is_staff(principal) {
            RequestScope::All
        } else {
            match principal.entity {
                Some(entity) => RequestScope::Entity(entity),
                None => RequestScope::CreatedBy(&principal.id),
            }
        };
        let store = &self.inner.store;
        if let Some(before) = before {
            // A request the caller cannot see is refused like an unknown one.
            match self.load(principal, before).await {
                Ok(_) => {}
                Err(RaError::NotFound(_)) => {
                    return Err(invalid(
                        "before",
                        format!("no request {before} to page from"),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        // One more than asked: whether there is a next page.
        let mut rows = store
            .registration_requests(scope, state, before, limit + 1)
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        // The requests of a page mostly share their organisation: read it once.
        let mut organisations: HashMap<Uuid, Organisation> = HashMap::new();
        let mut requests = Vec::with_capacity(rows.len());
        for row in rows {
            let dossier = dossier_of(&row)?;
            let organisation = match organisations.entry(row.entity_id) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(new) => new.insert(self.organisation(row.entity_id).await?),
            };
            requests.push(self.render(principal, row, dossier, organisation).await?);
        }
        let next_before = if more {
            requests.last().map(|view| view.id)
        } else {
            None
        };
        Ok(RequestPage {
            requests,
            next_before,
        })
    }

    // ---- completing a request ------------------------------------------------

    fn editable(row: &RequestRow) -> Result<RequestState, RaError> {
        let state = Self::state_of(row)?;
        if matches!(state, RequestState::Draft | RequestState::NeedsInformation) {
            Ok(state)
        } else {
            Err(RaError::Conflict(format!(
                "request {} is {state}: its file can change only in draft or needs_information",
                row.id
            )))
        }
    }

    /// Stores an evidence document, encrypted; returns its record.
    pub async fn add_document(
        &self,
        principal: &Principal,
        id: Uuid,
        kind: &str,
        content: Vec<u8>,
    ) -> Result<DocumentView, RaError> {
        let kind = DocumentKind::parse(kind).ok_or_else(|| {
            invalid(
                "kind",
                format!("{kind:?}: use identity_document, registry_extract, mandate or other"),
            )
        })?;
        let (row, _) = self.load(principal, id).await?;
        let state = Self::editable(&row)?;
        let policy = self.policy(&row.policy_id)?;
        let document_id = Uuid::new_v4();
        let sealed: SealedDocument = self
            .inner
            .vault
            .seal(
                content,
                self.inner.settings.max_document_bytes,
                document_id.as_bytes(),
            )
            .await?;
        let now = self.now();
        let retain_until = add_years(now, policy.registration.evidence_retention_years);
        let sha256 = hex::encode(sealed.sha256);
        let index = self
            .journal(
                "evidence.received",
                &principal.id,
                json!({
                    "request": id,
                    "document": document_id,
                    "kind": kind.name(),
                    "media_type": sealed.media_type.mime(),
                    "size": sealed.size,
                    "sha256": sha256,
                    "retain_until": rfc3339(retain_until),
                }),
            )
            .await?;
        let record = EvidenceRow {
            id: document_id,
            request_id: id,
            kind: kind.name().to_owned(),
            media_type: sealed.media_type.mime().to_owned(),
            size: sealed.size,
            sha256,
            kek_label: sealed.kek_label,
            wrapped_key: Some(sealed.wrapped_key),
            ciphertext: Some(sealed.ciphertext),
            uploaded_by: principal.id.clone(),
            uploaded_at: now,
            retain_until,
            purged_at: None,
            journal_index: Some(index),
        };
        let view = document_view(record.clone());
        let change =
            RaChange::new()
                .with(Effect::InsertDocument(record))
                .with(Effect::AppendEvent {
                    request_id: id,
                    event: RequestEvent {
                        action: format!("upload:{}", kind.name()),
                        from_state: state.name().to_owned(),
                        to_state: state.name().to_owned(),
                        actor: principal.id.clone(),
                        message: None,
                        journal_index: Some(index),
                        at: now,
                    },
                });
        self.commit(&change).await?;
        Ok(view)
    }

    /// The decrypted content of a document and its media type (RA operators).
    pub async fn document_content(
        &self,
        principal: &Principal,
        id: Uuid,
        document_id: Uuid,
    ) -> Result<(String, Vec<u8>), RaError> {
        let (row, _) = self.load(principal, id).await?;
        let record = match self.inner.store.evidence_document(document_id).await {
            Ok(record) if record.request_id == row.id => record,
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                return Err(RaError::NotFound(format!("no document {document_id}")));
            }
            Err(e) => return Err(e.into()),
        };
        let (Some(wrapped_key), Some(ciphertext)) = (record.wrapped_key, record.ciphertext) else {
            return Err(RaError::Conflict(format!(
                "document {document_id} was purged at the end of its retention period"
            )));
        };
        let media_type = [MediaType::Pdf, MediaType::Jpeg, MediaType::Png]
            .into_iter()
            .find(|m| m.mime() == record.media_type)
            .ok_or_else(|| RaError::Internal(format!("media type {}", record.media_type)))?;
        let sha256: [u8; 32] = hex::decode(&record.sha256)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| RaError::Internal(format!("document {document_id}'s SHA-256")))?;
        let content = self
            .inner
            .vault
            .unseal(
                &SealedDocument {
                    media_type,
                    sha256,
                    size: record.size,
                    kek_label: record.kek_label,
                    wrapped_key,
                    ciphertext,
                },
                document_id.as_bytes(),
            )
            .await?;
        self.journal(
            "evidence.read",
            &principal.id,
            json!({ "request": id, "document": document_id }),
        )
        .await?;
        Ok((record.media_type, content))
    }

    /// Records the acceptance of a precise terms version.
    pub async fn accept_terms(
        &self,
        principal: &Principal,
        id: Uuid,
        terms: &TermsInput,
    ) -> Result<RequestView, RaError> {
        let (row, mut dossier) = self.load(principal, id).await?;
        let state = Self::editable(&row)?;
        let policy = self.policy(&row.policy_id)?;
        let now = self.now();
        let acceptance = self.terms_acceptance(&policy, terms, principal, now)?;
        let index = self
            .journal(
                "terms.accepted",
                &principal.id,
                json!({ "request": id, "policy": policy.id, "terms_oid": policy.terms.oid.to_string(),
                        "version": acceptance.version, "sha256": acceptance.sha256,
                        "accepted_at": rfc3339(now) }),
            )
            .await?;
        dossier.terms = Some(acceptance);
        self.save(principal, row, dossier, state, "accept_terms", index)
            .await
    }

    /// Records how the identity was verified.
    pub async fn record_identity(
        &self,
        principal: &Principal,
        id: Uuid,
        input: &IdentityInput,
    ) -> Result<RequestView, RaError> {
        let (row, mut dossier) = self.load(principal, id).await?;
        let state = Self::state_of(&row)?;
        let open = matches!(
            state,
            RequestState::Draft
                | RequestState::NeedsInformation
                | RequestState::Submitted
                | RequestState::InReview
        );
        if !open {
            return Err(RaError::Conflict(format!(
                "request {id} is {state}: identity verification is recorded before validation"
            )));
        }
        let now = self.now();
        let identity = person_identity(principal)?;
        if input.method == "face_to_face" {
            self.check_not_party(principal, &row, &dossier).await?;
        }
        let verification = self.identity_verification(
            principal,
            input,
            (&identity.0, &identity.1, identity.2.as_deref()),
            Some(row.entity_id),
            now,
        )?;
        // The approvers approved the record they saw: a new one needs them again.
        let cleared: Vec<String> = dossier
            .approvals
            .iter()
            .map(|approval| approval.operator.clone())
            .collect();
        let index = self
            .journal(
                "identity.verified",
                &principal.id,
                json!({ "request": id, "verification": verification,
                        "approvals_cleared": cleared }),
            )
            .await?;
        dossier.approvals.clear();
        dossier.identity_verification = Some(verification);
        self.save(principal, row, dossier, state, "record_identity", index)
            .await
    }

    /// Writes the dossier back with an event (no state change).
    async fn save(
        &self,
        principal: &Principal,
        row: RequestRow,
        dossier: Dossier,
        state: RequestState,
        action: &str,
        index: u64,
    ) -> Result<RequestView, RaError> {
        let id = row.id;
        self.transition(
            principal,
            row,
            dossier,
            state,
            state,
            action,
            None,
            index,
            Vec::new(),
        )
        .await?;
        self.view(principal, id).await
    }

    // ---- moves ---------------------------------------------------------------

    /// Makes a move on a request. Validation (the last approval) has the CA
    /// issue at once.
    pub async fn move_request(
        &self,
        principal: &Principal,
        id: Uuid,
        attempted: Move,
        message: Option<String>,
    ) -> Result<RequestView, RaError> {
        let (row, mut dossier) = self.load(principal, id).await?;
        let roles = acting_roles(principal, &row).unwrap_or_default();
        if !Move::ALL
            .iter()
            .any(|m| m.roles().iter().any(|r| roles.contains(r)))
        {
            return Err(RaError::Forbidden(
                "this principal may not move requests".to_owned(),
            ));
        }
        let policy = self.policy(&row.policy_id)?;
        let mut lifecycle = Self::lifecycle(&row, &dossier, &policy)?;
        let from = lifecycle.state;
        if attempted == Move::Issue {
            return Err(MoveError::NotAllowed {
                state: from,
                attempted,
                allowed: lifecycle.allowed_moves(&roles),
            }
            .into());
        }
        let message = match message {
            Some(text) => Some(non_empty("message", &text, 2000)?),
            None => None,
        };
        // Check the move against state and role before anything else.
        let mut probe = lifecycle.clone();
        probe.apply(attempted, &principal.person_key(), &roles)?;
        // Staff never act on a request they are a party to.
        if attempted.roles().iter().all(|role| !role.is_entity_bound()) {
            self.check_not_party(principal, &row, &dossier).await?;
        }
        match attempted {
            Move::Submit => self.check_complete(&row, &dossier, &policy).await?,
            Move::Approve
                if dossier.identity_required && dossier.identity_verification.is_none() =>
            {
                return Err(invalid(
                    "identity_verification",
                    "the applicant's identity is not verified yet",
                ));
            }
            Move::RequestInformation | Move::Reject if message.is_none() => {
                return Err(invalid("message", "say what is needed or why"));
            }
            _ => {}
        }
        let to = lifecycle.apply(attempted, &principal.person_key(), &roles)?;
        let now = self.now();
        if attempted == Move::Approve {
            dossier.approvals.push(Approval {
                operator: principal.id.clone(),
                person: principal.staff.as_ref().map(|member| member.id),
                at: now,
            });
        }
        if attempted == Move::RequestInformation {
            dossier.approvals.clear();
        }
        let persons = self.inner.store.persons_of(row.entity_id).await?;
        let entity = self.inner.store.registered_entity(row.entity_id).await?;
        let rccs = persons
            .iter()
            .find(|p| p.id == dossier.rccs)
            .cloned()
            .ok_or_else(|| RaError::Internal(format!("request {id} has no RCCS")))?;
        let mut extra = Vec::new();
        let serial = row.certificate_serial.clone();
        let details = json!({
            "request": id,
            "move": attempted.name(),
            "from": from.name(),
            "to": to.name(),
            "message": message,
            "approvals": dossier.approvals.iter().map(|a| a.operator.clone()).collect::<Vec<_>>(),
        });
        let index = self
            .journal("request.moved", &principal.id, details)
            .await?;
        match (attempted, to) {
            (Move::Submit, _) => extra.push(self.notice(
                &rccs,
                &NoticeText::Acknowledgement {
                    request_id: id,
                    entity_name: entity.legal_name.clone(),
                    policy_title: policy.title.clone(),
                },
            )),
            (Move::RequestInformation, _) => extra.push(self.notice(
                &rccs,
                &NoticeText::InformationNeeded {
                    request_id: id,
                    entity_name: entity.legal_name.clone(),
                    message: message.clone().unwrap_or_default(),
                },
            )),
            (Move::Reject, _) => extra.push(self.notice(
                &rccs,
                &NoticeText::Rejected {
                    request_id: id,
                    entity_name: entity.legal_name.clone(),
                    message: message.clone().unwrap_or_default(),
                },
            )),
            (Move::Approve, RequestState::Validated) => {
                extra.extend(self.validation_effects(&dossier, &entity, &persons).await?);
                extra.push(self.notice(
                    &rccs,
                    &NoticeText::Validated {
                        request_id: id,
                        entity_name: entity.legal_name.clone(),
                    },
                ));
            }
            (Move::Accept, _) => {
                let serial = serial.clone().ok_or_else(|| {
                    RaError::Internal(format!("issued request {id} has no serial"))
                })?;
                let accepted = self
                    .journal(
                        "certificate.accepted",
                        &principal.id,
                        json!({ "request": id, "serial": serial, "credential": row.credential_id }),
                    )
                    .await?;
                tracing::debug!(journal_index = accepted, "certificate accepted");
                extra.push(Effect::CertificateAccepted(serial));
                if let Some(credential) = row.credential_id {
                    extra.push(Effect::CredentialStatus(
                        credential,
                        CredentialStatus::Active,
                    ));
                }
            }
            (Move::Refuse, _) => {
                let serial = serial.clone().ok_or_else(|| {
                    RaError::Internal(format!("issued request {id} has no serial"))
                })?;
                let certificate = self.issued_certificate(&serial).await?;
                let revocation = self
                    .revocation_effects(
                        principal,
                        "rccs",
                        &certificate,
                        (RevocationReason::Refused, None),
                        message.clone(),
                        &entity,
                        &persons,
                    )
                    .await?;
                extra.extend(revocation);
            }
            _ => {}
        }
        self.transition(
            principal,
            row,
            dossier,
            from,
            to,
            attempted.name(),
            message,
            index,
            extra,
        )
        .await?;
        if attempted == Move::Refuse {
            self.after_revocation().await;
        }
        if to == RequestState::Validated {
            // The CA issues at once; if it cannot now, the sweep retries.
            if let Err(error) = self.issue(id).await {
                tracing::error!(request = %id, %error, "issuance after validation failed; the sweep will retry");
                return Err(error);
            }
        }
        self.view(principal, id).await
    }

    /// Whether `principal` applied with a request that names `person`: the
    /// applicant acts as the RCCS of his requests before holding the role.
    async fn applied_naming(
        &self,
        principal: &Principal,
        person: &Person,
    ) -> Result<bool, RaError> {
        self.any_request(RequestScope::CreatedBy(&principal.id), |row, dossier| {
            Ok(row.entity_id == person.entity_id && dossier.names(person.id))
        })
        .await
    }

    /// Whether a request of the person's organisation that the RA validated
    /// names him.
    async fn named_by_a_validated_request(&self, person: &Person) -> Result<bool, RaError> {
        self.any_request(RequestScope::Entity(person.entity_id), |row, dossier| {
            let validated = matches!(
                Self::state_of(row)?,
                RequestState::Validated | RequestState::Issued | RequestState::Accepted
            );
            Ok(validated && dossier.names(person.id))
        })
        .await
    }

    /// Whether any request of `scope` meets `test`, read a page at a time.
    async fn any_request(
        &self,
        scope: RequestScope<'_>,
        test: impl Fn(&RequestRow, &Dossier) -> Result<bool, RaError>,
    ) -> Result<bool, RaError> {
        let mut before = None;
        loop {
            let rows = self
                .inner
                .store
                .registration_requests(scope, None, before, MAX_PAGE)
                .await?;
            for row in &rows {
                if test(row, &dossier_of(row)?)? {
                    return Ok(true);
                }
            }
            match rows.last() {
                Some(last) if rows.len() == MAX_PAGE as usize => before = Some(last.id),
                _ => return Ok(false),
            }
        }
    }

    /// What validating a request binds: the organisation as the request
    /// declared it, when no one held a role in it yet, and the organisation
    /// roles of the request's people who have signed in. Until now they had
    /// none: an applicant holds nothing before the RA has checked him.
    async fn validation_effects(
        &self,
        dossier: &Dossier,
        entity: &RegisteredEntity,
        persons: &[Person],
    ) -> Result<Vec<Effect>, RaError> {
        let mut effects = Vec::new();
        if let Some(declared) = &dossier.organisation
            && self.inner.store.role_holders(entity.id).await?.is_empty()
        {
            effects.push(Effect::UpdateEntity(declared.over(entity)));
        }
        for person in persons.iter().filter(|p| dossier.names(p.id)) {
            if let Some((issuer, subject)) = &person.identity {
                effects.push(Effect::GrantRole {
                    issuer: issuer.clone(),
                    subject: subject.clone(),
                    role: person.role,
                    entity_id: entity.id,
                });
            }
        }
        Ok(effects)
    }

    /// Writes a state change with its event and effects.
    #[expect(clippy::too_many_arguments, reason = "the parts of one history event")]
    async fn transition(
        &self,
        principal: &Principal,
        row: RequestRow,
        dossier: Dossier,
        from: RequestState,
        to: RequestState,
        action: &str,
        message: Option<String>,
        index: u64,
        extra: Vec<Effect>,
    ) -> Result<(), RaError> {
        let now = self.now();
        let expected_version = row.version;
        let id = row.id;
        let updated = RequestRow {
            state: to.name().to_owned(),
            version: row.version + 1,
            file: to_json(&dossier)?,
            updated_at: now,
            ..row
        };
        let mut change = RaChange::new()
            .with(Effect::UpdateRequest {
                row: updated,
                expected_version,
            })
            .with(Effect::AppendEvent {
                request_id: id,
                event: RequestEvent {
                    action: action.to_owned(),
                    from_state: from.name().to_owned(),
                    to_state: to.name().to_owned(),
                    actor: principal.id.clone(),
                    message,
                    journal_index: Some(index),
                    at: now,
                },
            });
        for effect in extra {
            change.push(effect);
        }
        self.commit(&change).await
    }

    /// What a request needs before it can be submitted.
    async fn check_complete(
        &self,
        row: &RequestRow,
        dossier: &Dossier,
        policy: &CertificatePolicy,
    ) -> Result<(), RaError> {
        match &dossier.terms {
            None => return Err(invalid("terms", "the terms of use are not accepted yet")),
            Some(terms) if terms.version != policy.terms.version => {
                return Err(invalid(
                    "terms",
                    format!(
                        "version {} was accepted, but the policy's terms are now version {}",
                        terms.version, policy.terms.version
                    ),
                ));
            }
            Some(_) => {}
        }
        let documents = self.inner.store.evidence_documents(row.id).await?;
        let have: BTreeSet<&str> = documents.iter().map(|d| d.kind.as_str()).collect();
        let needed: &[DocumentKind] = if row.kind == "initial" {
            &REQUIRED_DOCUMENTS
        } else if dossier.identity_required {
            &[DocumentKind::IdentityDocument]
        } else {
            &[]
        };
        let missing: Vec<&str> = needed
            .iter()
            .map(|k| k.name())
            .filter(|k| !have.contains(k))
            .collect();
        if !missing.is_empty() {
            return Err(invalid(
                "documents",
                format!("missing: {}", missing.join(", ")),
            ));
        }
        Ok(())
    }

    /// Has the CA issue the certificate of a validated request, then records it.
    async fn issue(&self, id: Uuid) -> Result<(), RaError> {
        let row = self.inner.store.registration_request(id).await?;
        if Self::state_of(&row)? != RequestState::Validated {
            return Ok(());
        }
        let dossier = dossier_of(&row)?;
        let policy = self.policy(&row.policy_id)?;
        let key = match &dossier.csr {
            None => KeySource::Generate { algorithm: None },
            Some(csr) => KeySource::Csr {
                csr: base64::engine::general_purpose::STANDARD
                    .decode(csr)
                    .map_err(|e| RaError::Internal(format!("stored CSR: {e}")))?,
                device: dossier.device.clone(),
            },
        };
        // The staff people who approved, by person id.
        let approvers: Vec<String> = dossier.approvals.iter().map(approver_key).collect();
        let issuer = self.inner.issuer.as_ref().ok_or_else(|| {
            RaError::Conflict(
                "the issuing CA was terminated: it issues no more certificates".to_owned(),
            )
        })?;
        // The lifecycle validated this request (its approvals are complete):
        // the one place a seal certificate is granted.
        let grant = Grant::validated_request(format!("ra:{}", approvers.join("+")));
        let issued = issuer
            .issue(
                grant,
                IssuanceRequest {
                    request_id: id,
                    policy_id: policy.id.clone(),
                    entity_id: row.entity_id,
                    seal_name: dossier.seal_name.clone(),
                    validity_days: dossier.validity_days,
                    key,
                },
            )
            .await?;
        let certificate = self.inner.store.issued_certificate(&issued.serial).await?;
        let entity = self.inner.store.registered_entity(row.entity_id).await?;
        let persons = self.inner.store.persons_of(row.entity_id).await?;
        let index = self
            .journal(
                "request.moved",
                "ra",
                json!({ "request": id, "move": "issue", "from": "validated", "to": "issued",
                        "serial": issued.serial, "certificate_journal_index": issued.journal_index }),
            )
            .await?;
        let mut extra = Vec::new();
        for person in persons.iter().filter(|p| p.id == dossier.rccs) {
            extra.push(self.notice(
                person,
                &NoticeText::Issued {
                    request_id: id,
                    entity_name: entity.legal_name.clone(),
                    serial: issued.serial.clone(),
                    not_after: certificate.not_after,
                    accept_url: self.request_url(id),
                },
            ));
        }
        let system = Principal {
            id: "ra".to_owned(),
            entity: None,
            method: AuthMethod::ClientCertificate {
                sha256: String::new(),
            },
            roles: BTreeSet::new(),
            strength: crate::auth::Strength::Strong,
            staff: None,
        };
        let row = RequestRow {
            certificate_serial: Some(issued.serial.clone()),
            credential_id: issued.credential_id,
            ..row
        };
        self.transition(
            &system,
            row,
            dossier,
            RequestState::Validated,
            RequestState::Issued,
            "issue",
            None,
            index,
            extra,
        )
        .await
    }

    // ---- renewal -------------------------------------------------------------

    /// Starts the renewal of an accepted certificate: a new request (draft) for a
    /// new key, inside the renewal window.
    pub async fn renew(
        &self,
        principal: &Principal,
        serial: &str,
        input: RenewalInput,
    ) -> Result<RequestView, RaError> {
        let (identity_issuer, identity_subject, acr) = person_identity(principal)?;
        let store = &self.inner.store;
        let certificate = self.issued_certificate(serial).await?;
        check_entity(
            principal,
            certificate.entity_id,
            &format!("certificate {serial}"),
        )?;
        let policy = self.policy(&certificate.policy_id)?;
        let now = self.now();
        if store.revocation(serial).await?.is_some() {
            return Err(RaError::Conflict(format!(
                "certificate {serial} is revoked: apply for a new certificate instead"
            )));
        }
        if store.certificate_accepted_at(serial).await?.is_none() {
            return Err(RaError::Conflict(format!(
                "certificate {serial} was never accepted; accept or refuse it first"
            )));
        }
        let opens = certificate.not_after
            - Duration::days(i64::from(policy.registration.renewal_window_days));
        if now < opens || now >= certificate.not_after {
            return Err(invalid(
                "serial",
                if now >= certificate.not_after {
                    format!(
                        "certificate {serial} expired at {}; apply for a new certificate",
                        rfc3339(certificate.not_after)
                    )
                } else {
                    format!(
                        "renewal of {serial} opens on {} ({} days before it expires at {})",
                        rfc3339(opens),
                        policy.registration.renewal_window_days,
                        rfc3339(certificate.not_after)
                    )
                },
            ));
        }
        let open = store.renewals_of(serial).await?.into_iter().find(|r| {
            RequestState::parse(&r.state)
                .is_some_and(|s| s != RequestState::Rejected && s != RequestState::Refused)
        });
        if let Some(open) = open {
            return Err(RaError::Conflict(format!(
                "certificate {serial} already has renewal request {} ({})",
                open.id, open.state
            )));
        }
        let original = store.registration_request(certificate.request_id).await?;
        let previous = dossier_of(&original)?;
        let renewal_number = previous.renewal_number + 1;
        let identity_required =
            renewal_number > 1 || policy.registration.reverify_identity_on_first_renewal;
        check_validity(&policy, input.validity_days)?;
        let (csr, device) =
            self.key_material(&policy, input.csr.as_deref(), input.device.as_ref())?;
        let mut dossier = Dossier {
            organisation: None,
            seal_name: previous.seal_name.clone(),
            validity_days: input.validity_days.or(previous.validity_days),
            rccs: previous.rccs,
            legal_representative: previous.legal_representative,
            agent: previous.agent,
            identity_verification: None,
            terms: None,
            approvals: Vec::new(),
            csr,
            device,
            renewal_number,
            identity_required,
        };
        if let Some(terms) = &input.terms {
            dossier.terms = Some(self.terms_acceptance(&policy, terms, principal, now)?);
        }
        if let Some(identity) = &input.identity_verification {
            dossier.identity_verification = Some(self.identity_verification(
                principal,
                identity,
                (&identity_issuer, &identity_subject, acr.as_deref()),
                None,
                now,
            )?);
        }
        let request_id = Uuid::new_v4();
        let index = self
            .journal(
                "renewal.started",
                &principal.id,
                json!({ "request": request_id, "renews": serial, "policy": policy.id,
                        "renewal_number": renewal_number, "identity_required": identity_required,
                        "terms": dossier.terms }),
            )
            .await?;
        let entity = store.registered_entity(certificate.entity_id).await?;
        let persons = store.persons_of(certificate.entity_id).await?;
        let mut change = RaChange::new()
            .with(Effect::InsertRequest(RequestRow {
                id: request_id,
                entity_id: certificate.entity_id,
                kind: "renewal".to_owned(),
                policy_id: policy.id.clone(),
                state: RequestState::Draft.name().to_owned(),
                version: 1,
                file: to_json(&dossier)?,
                renews_serial: Some(serial.to_owned()),
                certificate_serial: None,
                credential_id: None,
                created_by: principal.id.clone(),
                created_at: now,
                updated_at: now,
            }))
            .with(Effect::AppendEvent {
                request_id,
                event: RequestEvent {
                    action: "renew".to_owned(),
                    from_state: String::new(),
                    to_state: RequestState::Draft.name().to_owned(),
                    actor: principal.id.clone(),
                    message: Some(format!("renews {serial}")),
                    journal_index: Some(index),
                    at: now,
                },
            });
        for person in persons.iter().filter(|p| p.id == dossier.rccs) {
            change.push(self.notice(
                person,
                &NoticeText::RenewalStarted {
                    request_id,
                    entity_name: entity.legal_name.clone(),
                    serial: serial.to_owned(),
                },
            ));
        }
        self.commit(&change).await?;
        self.view(principal, request_id).await
    }

    // ---- revocation ----------------------------------------------------------

    /// Revokes a certificate at once, for good. `as_legal_representative` is
    /// the legal representative's own route: it needs his enrolled identity.
    pub async fn revoke(
        &self,
        principal: &Principal,
        serial: &str,
        reason: &str,
        comment: Option<String>,
        invalidity_date: Option<OffsetDateTime>,
        as_legal_representative: bool,
    ) -> Result<RevocationView, RaError> {
        let reason = RevocationReason::parse(reason).ok_or_else(|| {
            invalid(
                "reason",
                format!(
                    "{reason:?}: use one of {}",
                    RevocationReason::ALL
                        .iter()
                        .filter(|r| **r != RevocationReason::Refused)
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if reason == RevocationReason::Refused {
            return Err(invalid(
                "reason",
                "refusal is the RCCS's answer to an issued certificate: use the refuse move",
            ));
        }
        let comment = match comment {
            Some(text) => Some(non_empty("comment", &text, 2000)?),
            None => None,
        };
        let store = &self.inner.store;
        let certificate = self.issued_certificate(serial).await?;
        if as_legal_representative {
            if principal.entity != Some(certificate.entity_id)
                || !principal.has(Role::LegalRepresentative)
            {
                return Err(RaError::NotFound(format!("no certificate {serial}")));
            }
        } else {
            check_entity(
                principal,
                certificate.entity_id,
                &format!("certificate {serial}"),
            )?;
        }
        let role = if as_legal_representative {
            "legal_representative"
        } else if principal.has(Role::CaAdmin) {
            "ca_admin"
        } else if principal.has(Role::RaOperator) {
            "ra_operator"
        } else if principal.has(Role::Rccs) {
            "rccs"
        } else {
            "agent"
        };
        let entity = store.registered_entity(certificate.entity_id).await?;
        let persons = store.persons_of(certificate.entity_id).await?;
        if let Some(date) = invalidity_date
            && date > self.now()
        {
            return Err(invalid(
                "invalidity_date",
                "is when the key was (or may have been) compromised: not in the future",
            ));
        }
        let effects = self
            .revocation_effects(
                principal,
                role,
                &certificate,
                (reason, invalidity_date),
                comment,
                &entity,
                &persons,
            )
            .await?;
        let mut change = RaChange::new();
        let mut view = None;
        for effect in effects {
            if let Effect::Revoke(r) = &effect {
                view = Some(RevocationView {
                    serial: r.serial.clone(),
                    reason: r.reason.clone(),
                    reason_code: r.reason_code,
                    revoked_at: r.revoked_at,
                    requested_by: r.requested_by.clone(),
                    requester_role: r.requester_role.clone(),
                    journal_index: r.journal_index,
                });
            }
            change.push(effect);
        }
        self.commit(&change).await?;
        self.after_revocation().await;
        view.ok_or_else(|| RaError::Internal("revocation without a record".to_owned()))
    }

    /// Journals a revocation and returns what to write: the record, the
    /// credential's status, and the notices with the effective date.
    #[expect(
        clippy::too_many_arguments,
        reason = "who, what, why, and whom to tell"
    )]
    async fn revocation_effects(
        &self,
        principal: &Principal,
        role: &str,
        certificate: &IssuedCertificate,
        (reason, invalidity_date): (RevocationReason, Option<OffsetDateTime>),
        comment: Option<String>,
        entity: &RegisteredEntity,
        persons: &[Person],
    ) -> Result<Vec<Effect>, RaError> {
        let serial = certificate.serial.as_str();
        if let Some(done) = self.inner.store.revocation(serial).await? {
            return Err(RaError::Conflict(format!(
                "certificate {serial} was already revoked at {} ({}); revocation is irreversible",
                rfc3339(done.revoked_at),
                done.reason
            )));
        }
        // A client certificate's registrations as an activation credential
        // are revoked with it (store::ra, `Effect::Revoke`): the entry names them.
        let activation_credentials: Vec<String> = self
            .inner
            .store
            .registrations_of_certificate(&certificate.sha256)
            .await?
            .into_iter()
            .filter(|registration| registration.active)
            .map(|registration| registration.id.to_string())
            .collect();
        let now = self.now();
        let index = self
            .journal(
                "certificate.revoked",
                &principal.id,
                json!({
                    "serial": serial,
                    "certificate_sha256": certificate.sha256,
                    "activation_credentials": activation_credentials,
                    "entity": entity.id,
                    "reason": reason.name(),
                    "reason_code": reason.crl_reason_code(),
                    "requester_role": role,
                    "comment": comment,
                    "invalidity_date": invalidity_date.map(rfc3339),
                    "effective": rfc3339(now),
                }),
            )
            .await?;
        let mut effects = vec![Effect::Revoke(Revocation {
            serial: serial.to_owned(),
            reason: reason.name().to_owned(),
            reason_code: reason.crl_reason_code(),
            revoked_at: now,
            requested_by: principal.id.clone(),
            requester_role: role.to_owned(),
            comment,
            journal_index: index,
            invalidity_date,
        })];
        let text = NoticeText::Revoked {
            entity_name: entity.legal_name.clone(),
            serial: serial.to_owned(),
            reason: reason.name().replace('_', " "),
            effective: now,
        };
        for person in persons.iter().filter(|p| {
            matches!(p.role, PersonRole::Rccs | PersonRole::Agent)
                || (role == "legal_representative"
                    && p.role == PersonRole::LegalRepresentative
                    && p.is_bound())
        }) {
            effects.push(self.notice(person, &text));
        }
        Ok(effects)
    }

    // ---- client certificates for activation -----------------------------------

    /// Has the client-authentication CA certify the RCCS's own key (from his
    /// CSR) for mutual-TLS activation of the organisation's credentials. The
    /// subject is the registered organisation and the RCCS's registered name.
    pub async fn issue_client_certificate(
        &self,
        principal: &Principal,
        entity_id: Uuid,
        csr: &str,
    ) -> Result<IssuedClientCertificate, RaError> {
        let issuer = self.inner.client_issuer.as_ref().ok_or_else(|| {
            RaError::Conflict(
                "this CA hierarchy has no client-authentication CA: register a certificate \
                 from your own CA instead"
                    .to_owned(),
            )
        })?;
        check_entity(principal, entity_id, "organisation")?;
        let (issuer_url, subject, _) = person_identity(principal)?;
        let entity = self.inner.store.registered_entity(entity_id).await?;
        let persons = self.inner.store.persons_of(entity_id).await?;
        let holder = persons
            .iter()
            .find(|p| p.identity.as_ref() == Some(&(issuer_url.clone(), subject.clone())))
            .ok_or_else(|| {
                RaError::Forbidden(
                    "client certificates are issued to the organisation's registered RCCS"
                        .to_owned(),
                )
            })?;
        // The RCCS's request for his organisation is checked above: the one
        // place a client certificate is granted.
        let grant = Grant::checked_rccs(principal.id.clone());
        let issued = issuer
            .issue(
                grant,
                ClientCertificateRequest {
                    request_id: Uuid::new_v4(),
                    entity_id,
                    organization: entity.legal_name.clone(),
                    organization_identifier: entity.organization_identifier.clone(),
                    country: entity.country.clone(),
                    common_name: format!("{} {}", holder.given_name, holder.family_name),
                    csr_der: csr_der(csr)?,
                    validity_days: CLIENT_CERTIFICATE_DAYS,
                },
            )
            .await?;
        Ok(issued)
    }

    // ---- enrolment -----------------------------------------------------------

    /// Sends a person who has not enrolled yet a new enrolment link (the old one
    /// stops working): for the organisation's RCCS or an RA operator.
    pub async fn resend_enrolment(
        &self,
        principal: &Principal,
        person_id: Uuid,
    ) -> Result<Person, RaError> {
        let person = match self.inner.store.person(person_id).await {
            Ok(person) => person,
            Err(StoreError::NotFound { .. }) => {
                return Err(RaError::NotFound(format!("no person {person_id}")));
            }
            Err(e) => return Err(e.into()),
        };
        if check_entity(principal, person.entity_id, "person").is_err()
            && !self.applied_naming(principal, &person).await?
        {
            return Err(RaError::NotFound(format!("no person {person_id}")));
        }
        if person.is_bound() {
            return Err(RaError::Conflict(format!(
                "person {person_id} has already bound an identity; nothing to send"
            )));
        }
        let now = self.now();
        let expires =
            now + Duration::hours(i64::from(self.inner.settings.enrolment_lifetime_hours));
        let token = random_token();
        let entity = self.inner.store.registered_entity(person.entity_id).await?;
        let announced = self
            .journal(
                "person.enrolment_sent",
                &principal.id,
                json!({ "person": person.id, "entity": person.entity_id, "role": person.role.name(),
                    "expires": rfc3339(expires) }),
            )
            .await?;
        let notice = self
            .enrolment_notice(&person, &entity.legal_name, &token, expires)
            .await?;
        let change = RaChange::new()
            .with(Effect::RenewEnrolment {
                person_id: person.id,
                enrolment: Enrolment {
                    sha256: hex::encode(Sha256::digest(token.as_bytes())),
                    expires_at: expires,
                },
            })
            .with(notice);
        self.commit_announced(&change, &[announced]).await?;
        Ok(person)
    }

    /// Binds the caller's own identity to the person an enrolment link was sent to.
    pub async fn enrol(&self, principal: &Principal, token: &str) -> Result<Person, RaError> {
        let (issuer, subject, _) = person_identity(principal)?;
        let token = token.trim();
        if token.is_empty() {
            return Err(invalid("token", "must not be empty"));
        }
        let now = self.now();
        let sha256 = hex::encode(Sha256::digest(token.as_bytes()));
        let person = self
            .inner
            .store
            .person_by_enrolment(&sha256, now)
            .await?
            .ok_or_else(|| invalid("token", "this enrolment link is unknown, used or expired"))?;
        if principal.entity.is_some_and(|e| e != person.entity_id) {
            return Err(RaError::Conflict(
                "this sign-in acts for another organisation; enrol with another identity"
                    .to_owned(),
            ));
        }
        let announced = self
            .journal(
                "person.enrolled",
                &principal.id,
                json!({ "person": person.id, "entity": person.entity_id, "role": person.role.name(),
                    "issuer": issuer, "subject": subject }),
            )
            .await?;
        let mut change = RaChange::new().with(Effect::BindPerson {
            person_id: person.id,
            issuer: issuer.clone(),
            subject: subject.clone(),
        });
        // Named by a request the RA has validated, he gets the role with the
        // link; otherwise with the validation of the request naming him.
        if self.named_by_a_validated_request(&person).await? {
            change.push(Effect::GrantRole {
                issuer: issuer.clone(),
                subject: subject.clone(),
                role: person.role,
                entity_id: person.entity_id,
            });
        }
        self.commit_announced(&change, &[announced]).await?;
        Ok(Person {
            identity: Some((issuer, subject)),
            ..person
        })
    }

    // ---- maintenance ---------------------------------------------------------

    /// One maintenance pass: renewal reminders due, evidence past retention,
    /// validated requests whose issuance did not happen.
    pub async fn sweep(&self) -> Result<SweepReport, RaError> {
        let mut report = SweepReport::default();
        self.remind(&mut report).await?;
        self.purge(&mut report).await?;
        report.destroyed_keys = self.destroy_keys().await?;
        // Page by page: those whose issuance fails again stay validated, and
        // the next page starts after them.
        let mut before = None;
        loop {
            let rows = self
                .inner
                .store
                .registration_requests(
                    RequestScope::All,
                    Some(RequestState::Validated.name()),
                    before,
                    MAX_PAGE,
                )
                .await?;
            for row in &rows {
                match self.issue(row.id).await {
                    Ok(()) => report.issued_requests.push(row.id),
                    Err(error) => {
                        tracing::warn!(request = %row.id, %error, "issuance retry failed");
                    }
                }
            }
            if rows.len() < MAX_PAGE as usize {
                break;
            }
            before = rows.last().map(|row| row.id);
        }
        Ok(report)
    }

    async fn remind(&self, report: &mut SweepReport) -> Result<(), RaError> {
        let store = &self.inner.store;
        let now = self.now();
        let horizon = now + Duration::days(i64::from(REMINDER_DAYS[0]));
        for certificate in store.expiring_certificates(now, horizon).await? {
            let left = certificate.not_after - now;
            let due: Vec<u32> = REMINDER_DAYS
                .into_iter()
                .filter(|d| left <= Duration::days(i64::from(*d)))
                .filter(|d| !certificate.reminded.contains(d))
                .collect();
            let Some(&closest) = due.iter().min() else {
                continue;
            };
            // Renewed already: no reminder.
            let renewed = store
                .renewals_of(&certificate.serial)
                .await?
                .iter()
                .any(|r| {
                    matches!(
                        RequestState::parse(&r.state),
                        Some(RequestState::Issued | RequestState::Accepted)
                    )
                });
            let mut change = RaChange::new();
            // Thresholds the clock jumped over are marked too, with one notice.
            for days in &due {
                change.push(Effect::Reminded {
                    serial: certificate.serial.clone(),
                    days_before: *days,
                });
            }
            if !renewed {
                let entity = store.registered_entity(certificate.entity_id).await?;
                let persons = store.persons_of(certificate.entity_id).await?;
                let days_left = u32::try_from(left.whole_days().max(0)).unwrap_or(0);
                let text = NoticeText::Reminder {
                    entity_name: entity.legal_name.clone(),
                    serial: certificate.serial.clone(),
                    not_after: certificate.not_after,
                    days_left,
                    renew_url: format!(
                        "{}/certificates/{}/renew",
                        self.inner.portal_url, certificate.serial
                    ),
                };
                for person in persons
                    .iter()
                    .filter(|p| matches!(p.role, PersonRole::Rccs | PersonRole::Agent))
                {
                    change.push(self.notice(person, &text));
                }
                report.reminders.push((certificate.serial.clone(), closest));
            }
            self.commit(&change).await?;
        }
        Ok(())
    }

    async fn purge(&self, report: &mut SweepReport) -> Result<(), RaError> {
        let store = &self.inner.store;
        let now = self.now();
        for document in store.evidence_due_for_purge(now).await? {
            let index = self
                .journal(
                    "evidence.purged",
                    "sceau",
                    json!({
                        "request": document.request_id,
                        "document": document.id,
                        "kind": document.kind,
                        "sha256": document.sha256,
                        "uploaded_at": rfc3339(document.uploaded_at),
                        "retain_until": rfc3339(document.retain_until),
                    }),
                )
                .await?;
            store.purge_evidence(document.id, index, now).await?;
            report.purged_documents.push(document.id);
        }
        Ok(())
    }

    /// What follows a revocation at once: the key is destroyed and a new CRL
    /// published. Failures are logged: the sweep and every instance's CRL poll
    /// catch up within seconds.
    async fn after_revocation(&self) {
        if let Err(error) = self.destroy_keys().await {
            tracing::warn!(%error, "key destruction after revocation failed; the sweep retries");
        }
        if let Err(error) = self.inner.crl.publish_now().await {
            tracing::warn!(%error, "CRL publication after revocation failed; the poll retries");
        }
    }

    /// Destroys, in the seal token, every CA-managed key whose certificate is
    /// revoked or expired, journaling each (`key.destroyed`) and recording it.
    /// Idempotent: a key already gone (a crash after the destruction) is
    /// journaled and recorded on the next pass. Returns the credentials done.
    pub async fn destroy_keys(&self) -> Result<Vec<Uuid>, RaError> {
        destroy_retired_seal_keys(
            &self.inner.store,
            &self.inner.journal,
            &self.inner.seal_token,
            self.now(),
        )
        .await
    }

    /// Runs the sweep every `ra.sweep_interval_secs` until `stop` turns true.
    pub async fn run_sweeps(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let interval =
            std::time::Duration::from_secs(self.inner.settings.sweep_interval_secs.max(1));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            if let Err(error) = self.sweep().await {
                tracing::warn!(%error, "RA maintenance sweep failed; next pass retries");
            }
        }
    }
}

/// Destroys, in the seal token, every CA-managed key whose certificate is
/// revoked or expired at `now`, journaling each (`key.destroyed`) and recording
/// it. Idempotent: a key already gone (a crash after the destruction) is
/// journaled and recorded on the next pass. Returns the credentials done. The
/// RA's sweep runs it, and so does a CA termination.
pub async fn destroy_retired_seal_keys(
    store: &Store,
    journal: &Journal,
    seal_token: &Arc<TokenPool>,
    now: OffsetDateTime,
) -> Result<Vec<Uuid>, RaError> {
    let mut done = Vec::new();
    for key in store.keys_to_destroy(now).await? {
        let Some(id) = KeyId::from_bytes(&key.key.key_id) else {
            tracing::error!(credential = %key.credential_id, "stored key id is not 16 bytes");
            continue;
        };
        let token = seal_token.clone();
        tokio::task::spawn_blocking(move || token.destroy_key_blocking(&id))
            .await
            .map_err(|e| RaError::Internal(format!("key destruction task: {e}")))?
            .map_err(|e| RaError::Internal(format!("destroying key {id}: {e}")))?;
        let expired = !key.revoked;
        let index = journal
            .append(JournalEvent::new(
                "key.destroyed",
                "sceau",
                json!({
                    "credential": key.credential_id,
                    "serial": key.serial,
                    "key_id": id.to_string(),
                    "key_label": key.key.key_label,
                    "token": key.key.token_role.name(),
                    "reason": if expired { "expired" } else { "revoked" },
                    "not_after": key.not_after.map(rfc3339),
                }),
            ))
            .await?;
        store
            .mark_key_destroyed(key.credential_id, expired, index, now)
            .await?;
        done.push(key.credential_id);
    }
    Ok(done)
}

/// The reason recorded for certificates revoked because their CA ends (with
/// CRLReason cessationOfOperation).
pub const CA_TERMINATION_REASON: &str = "ca_termination";

/// Revokes every seal certificate still valid because the issuing CA ends:
/// one journal entry lists them, then one transaction revokes them, turns
/// their credentials `revoked` and queues a notice to each organisation's RCCS
/// and agents. Returns the serials revoked (none when nothing was left).
pub async fn revoke_all_for_ca_termination(
    store: &Store,
    journal: &Journal,
    message_id_domain: &str,
    actor: &str,
    now: OffsetDateTime,
) -> Result<Vec<String>, RaError> {
    let still_valid = store.still_valid_seal_certificates().await?;
    if still_valid.is_empty() {
        return Ok(Vec::new());
    }
    let serials: Vec<String> = still_valid.iter().map(|c| c.serial.clone()).collect();
    let index = journal
        .append(JournalEvent::new(
            "certificates.revoked_for_ca_termination",
            actor,
            json!({
                "serials": serials,
                "reason": CA_TERMINATION_REASON,
                "crl_reason": "cessationOfOperation",
                "effective": rfc3339(now),
            }),
        ))
        .await?;
    let mut change = RaChange::new();
    let mut entities: std::collections::BTreeMap<Uuid, Vec<String>> = Default::default();
    for certificate in &still_valid {
        change = change.with(Effect::Revoke(Revocation {
            serial: certificate.serial.clone(),
            reason: CA_TERMINATION_REASON.to_owned(),
            reason_code: Some(5),
            revoked_at: now,
            requested_by: actor.to_owned(),
            requester_role: "ca_admin".to_owned(),
            comment: Some("the issuing CA ends".to_owned()),
            journal_index: index,
            invalidity_date: None,
        }));
        entities
            .entry(certificate.entity_id)
            .or_default()
            .push(certificate.serial.clone());
    }
    for (entity_id, serials) in entities {
        let entity = store.entity(entity_id).await?;
        let persons = store.persons_of(entity_id).await?;
        for serial in serials {
            let text = NoticeText::Revoked {
                entity_name: entity.legal_name.clone(),
                serial,
                reason: "end of the issuing certification authority".to_owned(),
                effective: now,
            };
            for person in persons
                .iter()
                .filter(|p| matches!(p.role, PersonRole::Rccs | PersonRole::Agent))
            {
                change = change.with(notice_to(person, &text));
            }
        }
    }
    store
        .apply_ra_change(&change, message_id_domain, now)
        .await?;
    Ok(serials)
}

/// A person as given, before it has an id.
struct PersonDraft {
    given_name: String,
    family_name: String,
    email: String,
    phone: Option<String>,
    language: String,
}

impl PersonDraft {
    fn into_person(
        self,
        entity_id: Uuid,
        role: PersonRole,
        now: OffsetDateTime,
        identity: Option<(String, String)>,
    ) -> Person {
        Person {
            id: Uuid::new_v4(),
            entity_id,
            role,
            given_name: self.given_name,
            family_name: self.family_name,
            email: self.email,
            phone: self.phone,
            language: self.language,
            identity,
            created_at: now,
        }
    }
}

fn document_view(record: EvidenceRow) -> DocumentView {
    DocumentView {
        id: record.id,
        kind: record.kind,
        media_type: record.media_type,
        size: record.size,
        sha256: record.sha256,
        uploaded_at: record.uploaded_at,
        retain_until: record.retain_until,
        purged_at: record.purged_at,
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
            if let Some(code) = reason.crl_reason_code() {
                // RFC 5280 §5.3.1: 7 is unused, 8 is removeFromCRL (deltas only).
                assert!(
                    code <= 10 && code != 7 && code != 8 && code != 6,
                    "{reason:?}"
                );
            }
        }
        assert_eq!(RevocationReason::KeyCompromise.crl_reason_code(), Some(1));
        assert_eq!(
            RevocationReason::CessationOfOperation.crl_reason_code(),
            Some(5)
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
