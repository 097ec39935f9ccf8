//! `/api/v1/seal/…`: seals for the organisations' servers. The CAdES route
//! takes the document as the raw body; the hash route takes JSON digests. A SAD,
//! when the credential needs one (SCAL2) or the caller has one, comes in the
//! `X-Sad` header. Each answer names the seal's journal entry in
//! `Sceau-Journal-Index`. An `Idempotency-Key` makes a retry return the first
//! answer (same key, same request) or 409 (same key, another request): a retry
//! never makes a second seal. The RCCS lists a credential's seals and fetches
//! each one's inclusion proof in the journal (seal transparency).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::authn::Caller;
use super::problem::{ApiError, ProblemType};
use super::route_table::RouteTable;
use crate::auth::principal::Permission;
use crate::error::{ErrorKind, HasErrorKind};
use crate::seal::cades::{MEDIA_TYPE, Packaging};
use crate::seal::pades::{PadesOptions, VisibleSeal};
use crate::seal::{Level, SealError};
use crate::state::AppState;
use crate::store::seals::IdempotencyClaim;
use sha2::{Digest, Sha256};

/// The header that names the seal's journal entry.
pub const JOURNAL_INDEX_HEADER: &str = "sceau-journal-index";
/// The header that carries a SAD.
pub const SAD_HEADER: &str = "x-sad";

/// The header that makes a seal call idempotent.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

pub fn routes() -> RouteTable<AppState> {
    RouteTable::new()
        .post_as("/api/v1/seal/cades", Permission::UseSealCredential, cades)
        .post_as("/api/v1/seal/pades", Permission::UseSealCredential, pades)
        .post_as("/api/v1/seal/hashes", Permission::UseSealCredential, hashes)
        .get_as(
            "/api/v1/credentials/{id}/seals",
            Permission::ReadSeals,
            list_seals,
        )
        .get_as(
            "/api/v1/credentials/{id}/seals/{index}/proof",
            Permission::ReadSeals,
            seal_proof,
        )
}

/// What a seal call answers, kept for replay under its Idempotency-Key.
struct Answer {
    media_type: &'static str,
    /// The body in the pieces it was made of (a sealed PDF: the document as
    /// received, then the seal's revision), sent without joining them.
    body: Vec<Bytes>,
    journal_index: u64,
}

fn respond(media_type: &str, body: Vec<Bytes>, index: u64, replayed: bool) -> Response {
    let length: usize = body.iter().map(Bytes::len).sum();
    let body = match <[Bytes; 1]>::try_from(body) {
        Ok([one]) => Body::from(one),
        Err(pieces) => Body::from_stream(futures_util::stream::iter(
            pieces.into_iter().map(Ok::<_, std::convert::Infallible>),
        )),
    };
    let mut response = (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        [journal_index(index)],
        [(header::CONTENT_LENGTH, HeaderValue::from(length))],
        body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(media_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    if replayed {
        response.headers_mut().insert(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        );
    }
    response
}

/// Runs `make` once per (caller, Idempotency-Key): the first call seals and
/// stores its answer; a retry of the same request gets that answer again; a
/// different request under the same key, or one while the first is still
/// running, gets 409. Without the header, `make` just runs.
async fn idempotent<F, Fut>(
    state: &AppState,
    principal: &crate::auth::Principal,
    headers: &HeaderMap,
    request: &[&[u8]],
    make: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Answer, ApiError>>,
{
    let Some(key) = headers.get(IDEMPOTENCY_KEY_HEADER) else {
        let answer = make().await?;
        return Ok(respond(
            answer.media_type,
            answer.body,
            answer.journal_index,
            false,
        ));
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()))
        .ok_or_else(|| invalid("Idempotency-Key", "1 to 255 visible ASCII characters"))?
        .to_owned();
    let mut digest = Sha256::new();
    for part in request {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    let fingerprint = hex::encode(digest.finalize());
    let store = &state.store;
    let conflict = |detail: &str| ApiError::from_kind(ErrorKind::Conflict, detail.to_owned());
    let claim = store
        .claim_idempotency_key(&principal.id, &key, &fingerprint, state.clock.now().into())
        .await
        .map_err(|e| ApiError::public(&e))?;
    match claim {
        IdempotencyClaim::New => {}
        IdempotencyClaim::Done {
            request_sha256,
            media_type,
            response,
            journal_index,
        } if request_sha256 == fingerprint => {
            return Ok(respond(
                &media_type,
                vec![Bytes::from(response)],
                journal_index,
                true,
            ));
        }
        IdempotencyClaim::Pending { request_sha256 } if request_sha256 == fingerprint => {
            return Err(conflict(
                "a request with this Idempotency-Key is still being sealed; retry shortly",
            ));
        }
        IdempotencyClaim::Done { .. } | IdempotencyClaim::Pending { .. } => {
            return Err(conflict(
                "this Idempotency-Key was used for a different request",
            ));
        }
    }
    match make().await {
        Ok(answer) => {
            store
                .complete_idempotency_key(
                    &principal.id,
                    &key,
                    answer.media_type,
                    &answer.body.concat(),
                    answer.journal_index,
                )
                .await
                .map_err(|e| ApiError::public(&e))?;
            Ok(respond(
                answer.media_type,
                answer.body,
                answer.journal_index,
                false,
            ))
        }
        Err(error) => {
            if let Err(release) = store.release_idempotency_key(&principal.id, &key).await {
                tracing::error!(error = %release, "releasing an idempotency key failed");
            }
            Err(error)
        }
    }
}

fn problem(error: SealError) -> ApiError {
    match &error {
        SealError::Invalid { field, .. } | SealError::Conflict { field, .. } => {
            ApiError::public(&error).with_extension("field", json!(field))
        }
        SealError::TimeStamp(refusal) if error.kind() == ErrorKind::Unavailable => {
            // The cause (which TSA, why) goes to the log, not to the caller.
            tracing::warn!(reason = %refusal, "a seal's time-stamp could not be obtained");
            ApiError::new(
                &error,
                "the time-stamping authority could not time-stamp the seal; no seal was made",
            )
            .with_retry_after(5)
        }
        SealError::Busy(seconds) => {
            ApiError::new(&error, error.to_string()).with_retry_after(*seconds)
        }
        SealError::NotYetCheckpointed { retry_after, .. } => {
            ApiError::public(&error).with_retry_after(*retry_after)
        }
        _ => ApiError::public(&error),
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ApiError {
    problem(SealError::Invalid {
        field,
        reason: reason.into(),
    })
}

fn credential_id(text: Option<&str>) -> Result<Uuid, ApiError> {
    let text = text.ok_or_else(|| invalid("credential", "name the seal credential's id"))?;
    Uuid::parse_str(text).map_err(|_| invalid("credential", format!("{text:?} is not an id")))
}

fn level(text: Option<&str>) -> Result<Level, ApiError> {
    text.unwrap_or("B-B")
        .parse()
        .map_err(|reason: String| invalid("level", reason))
}

fn sad(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get(SAD_HEADER)
        .map(|value| {
            value
                .to_str()
                .map(str::to_owned)
                .map_err(|_| invalid("X-Sad", "not visible ASCII"))
        })
        .transpose()
}

/// The query string as `T`, or a 400 problem saying what is wrong with it.
fn query_of<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| ApiError::from_kind(ErrorKind::BadRequest, rejection.body_text()))
}

fn journal_index(index: u64) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static(JOURNAL_INDEX_HEADER),
        HeaderValue::from(index),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CadesQuery {
    credential: Option<String>,
    level: Option<String>,
    packaging: Option<String>,
}

/// `POST /api/v1/seal/cades?credential=ID&level=B-T&packaging=detached`.
async fn cades(
    State(state): State<AppState>,
    Caller(principal): Caller,
    uri: Uri,
    query: Result<Query<CadesQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let query = query_of(query)?;
    let credential = credential_id(query.credential.as_deref())?;
    let level = level(query.level.as_deref())?;
    let packaging: Packaging = query
        .packaging
        .as_deref()
        .unwrap_or("detached")
        .parse()
        .map_err(|reason: String| invalid("packaging", reason))?;
    let sad = sad(&headers)?;
    let target = uri.to_string();
    idempotent(
        &state,
        &principal,
        &headers,
        &[target.as_bytes(), &body],
        || async {
            let sealed = state
                .sealer
                .cades(
                    &principal,
                    credential,
                    sad.as_deref(),
                    level,
                    packaging,
                    &body,
                )
                .await
                .map_err(problem)?;
            Ok(Answer {
                media_type: MEDIA_TYPE,
                body: vec![Bytes::from(sealed.der)],
                journal_index: sealed.journal_index,
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PadesQuery {
    credential: Option<String>,
    level: Option<String>,
    reason: Option<String>,
    location: Option<String>,
    contact: Option<String>,
    field: Option<String>,
    /// A visible seal: the page (1-based, default 1)…
    page: Option<String>,
    /// …and the box `x1,y1,x2,y2` in points from the page's lower-left corner.
    #[serde(rename = "box")]
    area: Option<String>,
}

/// `POST /api/v1/seal/pades?credential=ID&level=B-T&reason=…`: the body is the
/// PDF; the answer is the sealed PDF (the original bytes, then the new revision).
async fn pades(
    State(state): State<AppState>,
    Caller(principal): Caller,
    uri: Uri,
    query: Result<Query<PadesQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let query = query_of(query)?;
    let credential = credential_id(query.credential.as_deref())?;
    let level = level(query.level.as_deref())?;
    let limit = |field: &'static str, value: &Option<String>| match value {
        Some(v) if v.chars().count() > 200 => Err(invalid(field, "at most 200 characters")),
        _ => Ok(()),
    };
    limit("reason", &query.reason)?;
    limit("location", &query.location)?;
    limit("contact", &query.contact)?;
    limit("field", &query.field)?;
    let options = PadesOptions {
        reason: query.reason,
        location: query.location,
        contact: query.contact,
        field_name: query.field,
        visible: VisibleSeal::parse(query.page.as_deref(), query.area.as_deref())
            .map_err(problem)?,
    };
    let sad = sad(&headers)?;
    let target = uri.to_string();
    idempotent(
        &state,
        &principal,
        &headers,
        &[target.as_bytes(), &body],
        || async {
            let sealed = state
                .sealer
                .pades(
                    &principal,
                    credential,
                    sad.as_deref(),
                    level,
                    &options,
                    body.clone(),
                )
                .await
                .map_err(problem)?;
            Ok(Answer {
                media_type: crate::seal::pades::MEDIA_TYPE,
                body: vec![sealed.head, Bytes::from(sealed.tail)],
                journal_index: sealed.journal_index,
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HashesBody {
    credential: String,
    #[serde(default)]
    level: Option<String>,
    hashes: Vec<HashInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HashInput {
    /// The digest, base64.
    digest: String,
    /// The digest algorithm's OID (2.16.840.1.101.3.4.2.1 for SHA-256).
    algorithm: String,
}

/// `POST /api/v1/seal/hashes`: one detached CAdES signature per digest.
async fn hashes(
    State(state): State<AppState>,
    Caller(principal): Caller,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().map(str::trim) == Some("application/json"));
    if !is_json {
        return Err(ApiError::of_type(
            ProblemType::UnsupportedMediaType,
            "the body must be JSON (application/json)",
        ));
    }
    let body: HashesBody = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::from_kind(ErrorKind::BadRequest, format!("the JSON body: {e}")))?;
    let credential = credential_id(Some(&body.credential))?;
    let level = level(body.level.as_deref())?;
    let sha256 = crate::crypto::DigestAlgorithm::Sha256.oid().to_string();
    let mut digests = Vec::with_capacity(body.hashes.len());
    for (position, hash) in body.hashes.iter().enumerate() {
        if hash.algorithm != sha256 {
            return Err(invalid(
                "hashes",
                format!(
                    "hash {position}: algorithm {:?} is not accepted; use SHA-256 ({sha256})",
                    hash.algorithm
                ),
            ));
        }
        let digest = base64::engine::general_purpose::STANDARD
            .decode(hash.digest.trim())
            .map_err(|_| invalid("hashes", format!("hash {position}: digest is not base64")))?;
        digests.push(digest);
    }
    let sad = sad(&headers)?;
    idempotent(
        &state,
        &principal,
        &headers,
        &[b"/api/v1/seal/hashes", &raw],
        || async {
            let sealed = state
                .sealer
                .hashes(&principal, credential, sad.as_deref(), level, &digests)
                .await
                .map_err(problem)?;
            let first = sealed.first().map(|s| s.journal_index).unwrap_or_default();
            let signatures: Vec<_> = sealed
                .iter()
                .map(|s| {
                    json!({
                        "signature": base64::engine::general_purpose::STANDARD.encode(&s.der),
                        "journal_index": s.journal_index,
                    })
                })
                .collect();
            let body = serde_json::to_vec(&json!({ "signatures": signatures }))
                .map_err(|e| ApiError::from_kind(ErrorKind::Internal, e.to_string()))?;
            Ok(Answer {
                media_type: "application/json",
                body: vec![Bytes::from(body)],
                journal_index: first,
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    before: Option<u64>,
    limit: Option<u32>,
}

fn credential_path(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::from_kind(ErrorKind::NotFound, format!("no credential {text:?}")))
}

/// `GET /api/v1/credentials/{id}/seals?before=&limit=`: newest first.
async fn list_seals(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = query_of(query)?;
    let credential = credential_path(&id)?;
    let seals = state
        .sealer
        .seals(
            &principal,
            credential,
            query.before,
            query.limit.unwrap_or(100),
        )
        .await
        .map_err(problem)?;
    let next = (seals.len() as u64 >= u64::from(query.limit.unwrap_or(100)))
        .then(|| seals.last().map(|s| s.journal_index))
        .flatten();
    Ok(Json(json!({ "seals": seals, "next_before": next })).into_response())
}

/// `GET /api/v1/credentials/{id}/seals/{index}/proof`.
async fn seal_proof(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((id, index)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let credential = credential_path(&id)?;
    // Whether the caller may read this credential's seals comes first: a
    // stranger learns nothing, not even which indexes are malformed.
    state
        .sealer
        .readable_credential(&principal, credential)
        .await
        .map_err(problem)?;
    let index: u64 = index
        .parse()
        .map_err(|_| ApiError::from_kind(ErrorKind::NotFound, format!("no seal {index:?}")))?;
    let inclusion = state
        .sealer
        .inclusion(&principal, credential, index)
        .await
        .map_err(problem)?;
    Ok(Json(inclusion).into_response())
}
