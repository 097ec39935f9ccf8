//! `/ca/v1/…`: the CA administrators' side. For now the termination of the
//! issuing CA: each administrator approves in their own authenticated call;
//! `sceau ca terminate` then runs it (it needs the root token, offline).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::authn::Caller;
use super::problem::{ApiError, json_body};
use super::route_table::RouteTable;
use crate::auth::principal::Permission;
use crate::ca::termination::{self, TerminationError};
use crate::state::AppState;

pub fn routes() -> RouteTable<AppState> {
    RouteTable::new()
        .get_as("/ca/v1/termination", Permission::ReadJournal, show)
        .post_as(
            "/ca/v1/termination/approvals",
            Permission::ApproveCaTermination,
            approve,
        )
}

fn problem(error: TerminationError) -> ApiError {
    match &error {
        TerminationError::Invalid { field, .. } => {
            ApiError::public(&error).with_extension("field", json!(field))
        }
        _ => ApiError::public(&error),
    }
}

/// `GET /ca/v1/termination`: the approvals so far and the termination's progress.
async fn show(
    State(state): State<AppState>,
    Caller(_principal): Caller,
) -> Result<impl IntoResponse, ApiError> {
    let status = termination::status(&state.store, &state.clock)
        .await
        .map_err(problem)?;
    Ok(Json(status))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalBody {
    /// The serial (hex) of the issuing CA certificate being ended.
    ca_serial: String,
    /// Why the CA ends; kept in the journal.
    reason: String,
}

/// `POST /ca/v1/termination/approvals`: one CA administrator's approval.
async fn approve(
    State(state): State<AppState>,
    Caller(principal): Caller,
    payload: Result<Json<ApprovalBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = json_body(payload)?;
    let status = termination::approve(
        &state.store,
        &state.journal,
        &state.clock,
        &principal,
        &body.ca_serial,
        &body.reason,
    )
    .await
    .map_err(problem)?;
    Ok((StatusCode::CREATED, Json(status)))
}
