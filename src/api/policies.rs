//! `GET /policies/{id}/terms`: a certificate policy's terms of use, public,
//! so that an applicant (and the portal) reads what he accepts: the version
//! to name when accepting, the text, and its SHA-256, all as checked when the
//! policies were loaded (no file is read per request).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use serde::Serialize;

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
    let view = TermsView {
        policy: policy.id.clone(),
        oid: terms.oid.to_string(),
        version: terms.version.clone(),
        sha256: hex::encode(terms.sha256),
        text: terms.text.to_string(),
    };
    Ok((
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        )],
        Json(view),
    ))
}
