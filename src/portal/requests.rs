//! The request tracker: the requests a person may see, one request's state,
//! what it lacks and its history, and the forms that complete and move it
//! (the terms of use shown with their version and SHA-256 and accepted
//! explicitly; the moves the lifecycle allows this person now). Every form
//! carries the session's token.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use super::i18n::Texts;
use super::page::{self, Chrome, PageError};
use super::visit::Person;
use crate::auth::Permission;
use crate::auth::principal;
use crate::config::Assurance;
use crate::error::ErrorKind;
use crate::ra::dossier::{IdentityInput, IdentityVerification, RequestView, TermsInput};
use crate::ra::evidence::DocumentKind;
use crate::ra::request::Move;
use crate::state::AppState;

/// A line of the history.
struct Step {
    at: String,
    action: String,
    from: String,
    to: String,
    actor: String,
    message: String,
}

/// An evidence document of the request.
struct Document {
    kind: String,
    media_type: String,
    uploaded: String,
    /// Where an operator downloads it (none for others, or once purged).
    link: Option<String>,
}

/// The terms of use to accept.
struct Terms {
    version: String,
    sha256: String,
    text: String,
    accepted: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/request.html")]
struct Detail {
    chrome: Chrome,
    request: RequestView,
    state: String,
    missing: Vec<String>,
    terms: Option<Terms>,
    /// (move name, button label, whether it needs a message) of each move
    /// this person may make now.
    moves: Vec<(&'static str, String, bool)>,
    documents: Vec<Document>,
    /// (who, when) of each approval given.
    approvals: Vec<(String, String)>,
    history: Vec<Step>,
    notice: Option<String>,
    /// A sign-in at the level this request's actions need, when the session's is lower.
    step_up: Option<String>,
    /// (kind, label) of each kind of evidence, when this person may add some now.
    upload_kinds: Vec<(&'static str, String)>,
    /// How the identity was verified, in words, if it was.
    identity: Option<String>,
    /// Whether this person may record the identity verification now.
    records_identity: bool,
}

fn detail(
    state: &AppState,
    person: &Person,
    request: RequestView,
    notice: Option<String>,
) -> Detail {
    let tr: Texts = person.visit.tr;
    let missing = request
        .missing
        .iter()
        .map(|lack| match lack.field.as_str() {
            "documents" => {
                let kinds: Vec<String> = lack
                    .documents
                    .iter()
                    .map(|kind| tr.t(&format!("document-{kind}")))
                    .collect();
                tr.t1("missing-documents", "kinds", kinds.join(", "))
            }
            "terms" => tr.t("missing-terms"),
            _ => lack.reason.clone(),
        })
        .collect();
    let editable = !request.missing.is_empty()
        || matches!(request.state.name(), "draft" | "needs_information");
    let terms = state.policies.get(&request.policy).map(|policy| Terms {
        version: policy.terms.version.clone(),
        sha256: hex::encode(policy.terms.sha256),
        text: policy.terms.text.to_string(),
        accepted: request
            .terms
            .as_ref()
            .filter(|t| t.version == policy.terms.version)
            .map(|t| tr.date_time(&t.accepted_at)),
    });
    // A submit the file's lacks would refuse is not offered: the page says
    // what is missing instead.
    let moves = request
        .allowed_moves
        .iter()
        .filter(|m| **m != Move::Submit || request.missing.is_empty())
        .map(|m| {
            (
                m.name(),
                tr.t(&format!("move-{}", m.name())),
                matches!(m, Move::RequestInformation | Move::Reject),
            )
        })
        .collect();
    let reads_evidence =
        principal::authorize(&person.principal, Permission::ReadEvidence, None).is_ok();
    let documents = request
        .documents
        .iter()
        .map(|d| Document {
            kind: tr.t(&format!("document-{}", d.kind)),
            media_type: d.media_type.clone(),
            uploaded: tr.date_time(&d.uploaded_at),
            link: (reads_evidence && d.purged_at.is_none())
                .then(|| format!("/portal/requests/{}/documents/{}", request.id, d.id)),
        })
        .collect();
    let approvals = request
        .approvals
        .iter()
        .map(|a| (a.operator.clone(), tr.date_time(&a.at)))
        .collect();
    let history = request
        .history
        .iter()
        .map(|event| Step {
            at: tr.date_time(&event.at),
            action: action_text(&tr, &event.action),
            from: state_text(&tr, &event.from_state),
            to: state_text(&tr, &event.to_state),
            actor: event.actor.clone(),
            message: event.message.clone().unwrap_or_default(),
        })
        .collect();
    let step_up = step_up_needed(state, person, &request.policy)
        .map(|level| step_up_link(person, level, request.id));
    let completes = editable
        && principal::authorize(&person.principal, Permission::CompleteRequest, None).is_ok();
    let upload_kinds = if completes {
        DocumentKind::ALL
            .into_iter()
            .map(|k| (k.name(), tr.t(&format!("document-{}", k.name()))))
            .collect()
    } else {
        Vec::new()
    };
    let identity = request.identity_verification.as_ref().map(|v| match v {
        IdentityVerification::FaceToFace {
            attested_by, at, ..
        } => tr.t1("identity-face_to_face", "who", attested_by) + ", " + &tr.date_time(at),
        IdentityVerification::RemoteProvider {
            provider,
            reference,
            at,
            ..
        } => {
            tr.t1(
                "identity-remote_provider",
                "who",
                format!("{provider} ({reference})"),
            ) + ", "
                + &tr.date_time(at)
        }
        IdentityVerification::EidSubstantial { at, .. } => {
            tr.t("identity-eid_substantial") + ", " + &tr.date_time(at)
        }
    });
    let records_identity = principal::authorize(
        &person.principal,
        Permission::RecordIdentityVerification,
        None,
    )
    .is_ok()
        && person.principal.staff.is_some()
        && matches!(
            request.state.name(),
            "draft" | "needs_information" | "submitted" | "in_review"
        );
    Detail {
        identity,
        records_identity,
        upload_kinds,
        documents,
        approvals,
        step_up,
        chrome: person.chrome(),
        state: tr.t(&format!("state-{}", request.state.name())),
        missing,
        terms: terms.filter(|_| completes),
        moves,
        history,
        notice,
        request,
    }
}

/// A step of the history in words: `upload:<kind>` names the document's kind;
/// an action the texts do not know shows as recorded.
fn action_text(tr: &Texts, action: &str) -> String {
    let (verb, detail) = action.split_once(':').unwrap_or((action, ""));
    let id = format!("action-{verb}");
    if !tr.has(&id) {
        return action.to_owned();
    }
    let document = format!("document-{detail}");
    if tr.has(&document) {
        format!("{} ({})", tr.t(&id), tr.t(&document))
    } else {
        tr.t(&id)
    }
}

/// A state in words; none (before the request existed) is a dash.
fn state_text(tr: &Texts, state: &str) -> String {
    let id = format!("state-{state}");
    if tr.has(&id) {
        tr.t(&id)
    } else {
        "—".to_owned()
    }
}

/// The request a form acts on, once the form is shown to be this session's
/// (403 otherwise, before anything is read) and the session's sign-in is of
/// the level the request's policy needs (else to a step-up sign-in, and
/// nothing is done).
pub(super) async fn form_on_request(
    state: &AppState,
    person: &Person,
    csrf: &str,
    id: &str,
) -> Result<Uuid, Box<Response>> {
    if !person.form_is_genuine(csrf) {
        return Err(Box::new(person.error(PageError::new(
            ErrorKind::Forbidden,
            person.visit.tr.t("error-form-token"),
        ))));
    }
    let id = request_id(person, id)?;
    let policy = state
        .ra
        .request_policy(&person.principal, id)
        .await
        .map_err(|e| Box::new(person.error(PageError::from_error(&e, &person.visit.tr))))?;
    if let Some(needed) = step_up_needed(state, person, &policy) {
        return Err(Box::new(page::see_other(&step_up_link(person, needed, id))));
    }
    Ok(id)
}

/// The level a request under `policy` needs, when this session's is lower.
fn step_up_needed(state: &AppState, person: &Person, policy: &str) -> Option<Assurance> {
    let needed = state
        .policies
        .get(policy)
        .map_or(Assurance::Substantial, |p| p.registration.sign_in_level);
    (person.session.assurance < needed).then_some(needed)
}

/// A sign-in again at `level`, with the same provider, back to the request.
fn step_up_link(person: &Person, level: Assurance, id: Uuid) -> String {
    format!(
        "/portal/sign-in/{}?level={}&next=/portal/requests/{id}",
        person.session.record.provider,
        level.name()
    )
}

/// The request a path names; a malformed id is no request (404).
fn request_id(person: &Person, text: &str) -> Result<Uuid, Box<Response>> {
    Uuid::parse_str(text).map_err(|_| {
        Box::new(person.error(PageError::new(
            ErrorKind::NotFound,
            person.visit.tr.t("error-no-request"),
        )))
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct ShowQuery {
    /// What the form just done did (`terms`, or a move's name).
    done: Option<String>,
}

pub(super) async fn show(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Response {
    let id = match request_id(&person, &id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let notice = query
        .done
        .filter(|done| {
            matches!(done.as_str(), "terms" | "order" | "upload" | "identity")
                || Move::parse(done).is_some()
        })
        .map(|done| person.visit.tr.t(&format!("done-{done}")));
    match state.ra.view(&person.principal, id).await {
        Ok(request) => page::html(StatusCode::OK, &detail(&state, &person, request, notice)),
        Err(e) => person.error(PageError::from_error(&e, &person.visit.tr)),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct TermsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    sha256: String,
    /// The box "I have read and accept"; absent when not ticked.
    accept: Option<String>,
}

pub(super) async fn accept_terms(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<TermsForm>,
) -> Response {
    let tr = person.visit.tr;
    let id = match form_on_request(&state, &person, &form.csrf, &id).await {
        Ok(id) => id,
        Err(response) => return *response,
    };
    if form.accept.as_deref() != Some("yes") {
        return person.error(PageError::new(
            ErrorKind::Unprocessable,
            tr.t("error-terms-unticked"),
        ));
    }
    let terms = TermsInput {
        version: form.version,
        sha256: Some(form.sha256),
    };
    match state.ra.accept_terms(&person.principal, id, &terms).await {
        Ok(_) => page::see_other(&format!("/portal/requests/{id}?done=terms")),
        Err(e) => person.error(PageError::from_error(&e, &tr)),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct IdentityForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    method: String,
    provider: Option<String>,
    reference: Option<String>,
    birth_date: Option<String>,
}

/// An operator records how the applicant's identity was verified: face to
/// face (he attests it) or by a certified provider (its reference).
pub(super) async fn record_identity(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<IdentityForm>,
) -> Response {
    let tr = person.visit.tr;
    let id = match form_on_request(&state, &person, &form.csrf, &id).await {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let given = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let input = IdentityInput {
        method: form.method,
        provider: given(form.provider),
        reference: given(form.reference),
        birth_date: given(form.birth_date),
    };
    match state
        .ra
        .record_identity(&person.principal, id, &input)
        .await
    {
        Ok(_) => page::see_other(&format!("/portal/requests/{id}?done=identity")),
        Err(e) => person.error(PageError::from_error(&e, &tr)),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct MoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default, rename = "move")]
    attempted: String,
    message: Option<String>,
}

pub(super) async fn move_request(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<MoveForm>,
) -> Response {
    let tr = person.visit.tr;
    let id = match form_on_request(&state, &person, &form.csrf, &id).await {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let Some(attempted) = Move::parse(&form.attempted) else {
        return person.error(PageError::new(
            ErrorKind::BadRequest,
            tr.t1("error-no-move", "move", &form.attempted),
        ));
    };
    let message = form.message.filter(|m| !m.trim().is_empty());
    match state
        .ra
        .move_request(&person.principal, id, attempted, message)
        .await
    {
        Ok(_) => page::see_other(&format!("/portal/requests/{id}?done={}", attempted.name())),
        Err(e) => person.error(PageError::from_error(&e, &tr)),
    }
}
