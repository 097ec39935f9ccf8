//! `/ra/v1/…`: the registration back office over HTTP, for the portal and the
//! operators' tools. Handlers parse the request, call the RA's registry and turn
//! its typed errors into problems (422 names the field, 409 gives the request's
//! state and the moves allowed).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::authn::Caller;
use super::problem::{ApiError, json_body};
use super::route_table::RouteTable;
use crate::auth::Principal;
use crate::auth::principal::Permission;
use crate::error::{ErrorKind, HasErrorKind};
use crate::ra::dossier::{Application, IdentityInput, RenewalInput, RevocationView, TermsInput};
use crate::ra::registry::RaError;
use crate::ra::request::{Move, MoveError};
use crate::state::AppState;

pub fn routes() -> RouteTable<AppState> {
    RouteTable::new()
        .post_as("/ra/v1/requests", Permission::ApplyForCertificate, apply)
        .get_as("/ra/v1/requests", Permission::ReadRequests, list)
        .get_as("/ra/v1/requests/{id}", Permission::ReadRequests, show)
        .post_as(
            "/ra/v1/requests/{id}/documents",
            Permission::CompleteRequest,
            upload_document,
        )
        .get_as(
            "/ra/v1/requests/{id}/documents/{document_id}",
            Permission::ReadEvidence,
            download_document,
        )
        .post_as(
            "/ra/v1/requests/{id}/terms",
            Permission::CompleteRequest,
            accept_terms,
        )
        .post_as(
            "/ra/v1/requests/{id}/identity-verification",
            Permission::RecordIdentityVerification,
            record_identity,
        )
        .post_as(
            "/ra/v1/requests/{id}/moves",
            Permission::MoveRequest,
            move_request,
        )
        .post_as(
            "/ra/v1/certificates/{serial}/renewal",
            Permission::RenewCertificate,
            renew,
        )
        .post_as(
            "/ra/v1/certificates/{serial}/revocation",
            Permission::RequestRevocation,
            revoke,
        )
        .post_as(
            "/ra/v1/legal-representative/certificates/{serial}/revocation",
            Permission::RevokeAsLegalRepresentative,
            revoke_as_legal_representative,
        )
        .post_as("/ra/v1/enrolments", Permission::Enrol, enrol)
        .post_as(
            "/ra/v1/persons/{id}/enrolment",
            Permission::ResendEnrolment,
            resend_enrolment,
        )
        .post_as(
            "/ra/v1/persons/{id}/role-withdrawal",
            Permission::WithdrawRoles,
            withdraw_roles,
        )
}

/// The problem for an RA error: the field for bad input, the state and the
/// allowed moves for a refused move.
pub(super) fn problem(error: RaError) -> ApiError {
    match &error {
        RaError::Invalid { field, .. } => {
            ApiError::public(&error).with_extension("field", json!(field))
        }
        RaError::Incomplete(lacks) => ApiError::public(&error)
            .with_extension("field", json!(lacks.first().map(|lack| &lack.field)))
            .with_extension("missing", json!(lacks)),
        RaError::Evidence(inner) if inner.kind().http_status() < 500 => {
            ApiError::public(&error).with_extension("field", json!("document"))
        }
        RaError::ClientCertificate(inner) => match inner.field() {
            Some(field) => ApiError::public(&error).with_extension("field", json!(field)),
            None => ApiError::public(&error),
        },
        RaError::Move(MoveError::NotAllowed { state, allowed, .. }) => ApiError::public(&error)
            .with_extension("state", json!(state))
            .with_extension("allowed_moves", json!(allowed)),
        _ => ApiError::public(&error),
    }
}

fn request_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::from_kind(ErrorKind::NotFound, format!("no request {text:?}")))
}

async fn apply(
    State(state): State<AppState>,
    Caller(principal): Caller,
    payload: Result<Json<Application>, JsonRejection>,
) -> Result<Response, ApiError> {
    let application = json_body(payload)?;
    let view = state
        .ra
        .apply(&principal, application)
        .await
        .map_err(problem)?;
    let location = format!("/ra/v1/requests/{}", view.id);
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    before: Option<Uuid>,
    limit: Option<u32>,
}

/// Requests per page when the caller does not say.
const DEFAULT_PAGE: u32 = 50;

async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Query(query): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let page = state
        .ra
        .list(
            &principal,
            query.state.as_deref(),
            query.before,
            query.limit.unwrap_or(DEFAULT_PAGE),
        )
        .await
        .map_err(problem)?;
    Ok(Json(page))
}

async fn show(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = request_id(&id)?;
    Ok(Json(state.ra.view(&principal, id).await.map_err(problem)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentQuery {
    kind: Option<String>,
}

/// The document is the raw body; its type is read from its content, whatever
/// the Content-Type or file name says.
async fn upload_document(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    Query(query): Query<DocumentQuery>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let id = request_id(&id)?;
    let kind = query.kind.ok_or_else(|| {
        problem(RaError::Invalid {
            field: "kind".to_owned(),
            reason: "name the document's kind: ?kind=identity_document, registry_extract, \
                     mandate or other"
                .to_owned(),
        })
    })?;
    let view = state
        .ra
        .add_document(&principal, id, &kind, body.to_vec())
        .await
        .map_err(problem)?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn download_document(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((id, document_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = request_id(&id)?;
    let document_id = Uuid::parse_str(&document_id).map_err(|_| {
        ApiError::from_kind(ErrorKind::NotFound, format!("no document {document_id:?}"))
    })?;
    let (media_type, content) = state
        .ra
        .document_content(&principal, id, document_id)
        .await
        .map_err(problem)?;
    Ok(evidence_attachment(&media_type, content, document_id))
}

/// An evidence document as it goes out, to the API or the portal: never
/// kept by a cache, never rendered or sniffed by a browser (a PDF or an image
/// from an applicant is saved, not shown).
pub fn evidence_attachment(media_type: &str, content: Vec<u8>, document_id: Uuid) -> Response {
    let mut response = content.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(media_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let extension = match media_type {
        "application/pdf" => "pdf",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        _ => "bin",
    };
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{document_id}.{extension}\""
    )) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    response
}

async fn accept_terms(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    payload: Result<Json<TermsInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id = request_id(&id)?;
    let terms = json_body(payload)?;
    Ok(Json(
        state
            .ra
            .accept_terms(&principal, id, &terms)
            .await
            .map_err(problem)?,
    ))
}

async fn record_identity(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    payload: Result<Json<IdentityInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id = request_id(&id)?;
    let input = json_body(payload)?;
    Ok(Json(
        state
            .ra
            .record_identity(&principal, id, &input)
            .await
            .map_err(problem)?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    #[serde(rename = "move")]
    attempted: Move,
    message: Option<String>,
    /// Refused when present: an operator approves for himself only.
    on_behalf_of: Option<String>,
}

async fn move_request(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    payload: Result<Json<MoveBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id = request_id(&id)?;
    let body = json_body(payload)?;
    if body.on_behalf_of.is_some() {
        return Err(problem(RaError::Invalid {
            field: "on_behalf_of".to_owned(),
            reason: "every move is made by the signed-in person only; an approval cannot be \
                     given for another operator"
                .to_owned(),
        }));
    }
    Ok(Json(
        state
            .ra
            .move_request(&principal, id, body.attempted, body.message)
            .await
            .map_err(problem)?,
    ))
}

async fn renew(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(serial): Path<String>,
    payload: Result<Json<RenewalInput>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let input = json_body(payload)?;
    let view = state
        .ra
        .renew(&principal, &serial.to_ascii_lowercase(), input)
        .await
        .map_err(problem)?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevocationBody {
    reason: String,
    comment: Option<String>,
    /// RFC 3339: when the key was, or may have been, compromised.
    invalidity_date: Option<String>,
}

async fn revoke(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(serial): Path<String>,
    payload: Result<Json<RevocationBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    revocation(&state, &principal, &serial, payload, false).await
}

async fn revoke_as_legal_representative(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(serial): Path<String>,
    payload: Result<Json<RevocationBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    revocation(&state, &principal, &serial, payload, true).await
}

async fn revocation(
    state: &AppState,
    principal: &Principal,
    serial: &str,
    payload: Result<Json<RevocationBody>, JsonRejection>,
    as_legal_representative: bool,
) -> Result<Json<RevocationView>, ApiError> {
    let body = json_body(payload)?;
    let invalidity_date = match &body.invalidity_date {
        None => None,
        Some(text) => Some(
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    problem(RaError::Invalid {
                        field: "invalidity_date".to_owned(),
                        reason: format!("{text:?} is not an RFC 3339 date-time"),
                    })
                })?,
        ),
    };
    let revoked = state
        .ra
        .revoke(
            principal,
            &serial.to_ascii_lowercase(),
            &body.reason,
            body.comment,
            invalidity_date,
            as_legal_representative,
        )
        .await
        .map_err(problem)?;
    Ok(Json(revoked))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolBody {
    token: String,
}

async fn enrol(
    State(state): State<AppState>,
    Caller(principal): Caller,
    payload: Result<Json<EnrolBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = json_body(payload)?;
    Ok(Json(
        state
            .ra
            .enrol(&principal, &body.token)
            .await
            .map_err(problem)?,
    ))
}

/// A new enrolment link for a person who has not enrolled (the old one stops working).
async fn resend_enrolment(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::from_kind(ErrorKind::NotFound, format!("no person {id:?}")))?;
    let person = state
        .ra
        .resend_enrolment(&principal, id)
        .await
        .map_err(problem)?;
    Ok((StatusCode::ACCEPTED, Json(person)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawalBody {
    reason: String,
}

#[derive(Debug, serde::Serialize)]
struct Withdrawal {
    person: crate::store::ra::Person,
    withdrawn: Vec<String>,
}

/// Takes the organisation roles of a person's sign-in (RA operators).
async fn withdraw_roles(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    payload: Result<Json<WithdrawalBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::from_kind(ErrorKind::NotFound, format!("no person {id:?}")))?;
    let body = json_body(payload)?;
    let (person, withdrawn) = state
        .ra
        .withdraw_roles(&principal, id, &body.reason)
        .await
        .map_err(problem)?;
    Ok(Json(Withdrawal { person, withdrawn }))
}
