//! `GET /policies/{id}/terms`: a certificate policy's terms of use, public,
//! so that an applicant (and the portal) reads what he accepts: the version
//! to name when accepting, the text, and its SHA-256.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::problem::ApiError;
use super::route_table::RouteTable;
use crate::error::ErrorKind;
use crate::state::AppState;

pub fn routes() -> RouteTable<AppState> {
    RouteTable::new().get("/policies/{id}/terms", terms)
}

#[derive(Debug, Serialize)]
struct TermsView {
    policy: String,
    /// The terms' OID, dotted.
    oid: String,
    /// What an acceptance names (`{"terms": {"version": …}}`).
    version: String,
    /// Hex SHA-256 of `text` as UTF-8.
    sha256: String,
    text: String,
}

async fn terms(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let policy = state.policies.get(&id).ok_or_else(|| {
        ApiError::from_kind(ErrorKind::NotFound, format!("no certificate policy {id:?}"))
    })?;
    let terms = &policy.terms;
    let unreadable = |why: String| {
        tracing::error!(policy = %id, path = %terms.path.display(), "terms of use: {why}");
        ApiError::from_kind(
            ErrorKind::Internal,
            "the terms of use of this policy cannot be read",
        )
    };
    let bytes = tokio::fs::read(&terms.path)
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    // The file was checked at start-up; one changed since is not served.
    if Sha256::digest(&bytes).as_slice() != terms.sha256 {
        return Err(unreadable("the file changed since start-up".to_owned()));
    }
    let text = String::from_utf8(bytes).map_err(|_| unreadable("not UTF-8".to_owned()))?;
    let view = TermsView {
        policy: policy.id.clone(),
        oid: terms.oid.to_string(),
        version: terms.version.clone(),
        sha256: hex::encode(terms.sha256),
        text,
    };
    Ok((
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        )],
        Json(view),
    ))
}
