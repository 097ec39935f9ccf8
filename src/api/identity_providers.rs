//! `/api/v1/entities/{id}/identity-providers`: RA operators register the identity
//! providers an organisation's servers and people sign in with.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::authn::Caller;
use super::problem::{ApiError, json_body};
use super::route_table::RouteTable;
use crate::auth::Permission;
use crate::auth::providers;
use crate::config::Callers;
use crate::error::ErrorKind;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::identity::IdentityProviderRecord;

pub fn routes() -> RouteTable<AppState> {
    RouteTable::new()
        .get_as(
            "/api/v1/entities/{id}/identity-providers",
            Permission::ManageIdentityProviders,
            list,
        )
        .post_as(
            "/api/v1/entities/{id}/identity-providers",
            Permission::ManageIdentityProviders,
            register,
        )
        .delete_as(
            "/api/v1/entities/{id}/identity-providers/{provider_id}",
            Permission::ManageIdentityProviders,
            remove,
        )
        .post_as(
            "/api/v1/entities/{id}/identity-providers/{provider_id}/disable",
            Permission::ManageIdentityProviders,
            disable,
        )
        .post_as(
            "/api/v1/entities/{id}/identity-providers/{provider_id}/enable",
            Permission::ManageIdentityProviders,
            enable,
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProvider {
    issuer: String,
    audience: String,
    callers: Callers,
    #[serde(default)]
    allowed: Vec<String>,
    #[serde(default)]
    acr_values: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ProviderView {
    id: Uuid,
    entity_id: Uuid,
    issuer: String,
    audience: String,
    callers: Callers,
    allowed: Vec<String>,
    acr_values: Vec<String>,
    disabled: bool,
}

fn view(record: IdentityProviderRecord) -> ProviderView {
    ProviderView {
        id: record.id,
        entity_id: record.entity_id,
        issuer: record.issuer,
        audience: record.audience,
        callers: record.callers,
        allowed: record.allowed,
        acr_values: record.acr_values,
        disabled: record.disabled,
    }
}

async fn entity(state: &AppState, id: &str) -> Result<Uuid, ApiError> {
    let not_found = || ApiError::from_kind(ErrorKind::NotFound, format!("no entity {id}"));
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    match state.store.entity(id).await {
        Ok(entity) => Ok(entity.id),
        Err(StoreError::NotFound { .. }) => Err(not_found()),
        Err(e) => Err(ApiError::public(&e)),
    }
}

async fn list(
    State(state): State<AppState>,
    Caller(_principal): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let entity = entity(&state, &id).await?;
    let records = state
        .store
        .identity_providers_of(entity)
        .await
        .map_err(|e| ApiError::public(&e))?;
    Ok(Json(json!({
        "identity_providers": records.into_iter().map(view).collect::<Vec<_>>()
    })))
}

async fn register(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    payload: Result<Json<NewProvider>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let entity = entity(&state, &id).await?;
    let body = json_body(payload)?;
    let record = state
        .identity_providers
        .register(
            &principal,
            entity,
            providers::NewProvider {
                issuer: body.issuer,
                audience: body.audience,
                callers: body.callers,
                allowed: body.allowed,
                acr_values: body.acr_values,
            },
        )
        .await
        .map_err(|e| problem(&e))?;
    Ok((StatusCode::CREATED, Json(view(record))))
}

/// `POST …/identity-providers/{provider_id}/disable`: its tokens
/// authenticate no one until it is enabled again.
async fn disable(
    state: State<AppState>,
    caller: Caller,
    path: Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    set_disabled(state, caller, path, true).await
}

/// `POST …/identity-providers/{provider_id}/enable`.
async fn enable(
    state: State<AppState>,
    caller: Caller,
    path: Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    set_disabled(state, caller, path, false).await
}

async fn set_disabled(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((id, provider_id)): Path<(String, String)>,
    disabled: bool,
) -> Result<Json<ProviderView>, ApiError> {
    let entity = entity(&state, &id).await?;
    let provider_id = provider_id_of(&provider_id)?;
    let record = state
        .identity_providers
        .set_disabled(&principal, entity, provider_id, disabled)
        .await
        .map_err(|e| problem(&e))?;
    Ok(Json(view(record)))
}

fn provider_id_of(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| {
        ApiError::from_kind(
            ErrorKind::NotFound,
            format!("no identity provider {text} for this organisation"),
        )
    })
}

/// `DELETE …/identity-providers/{provider_id}`: its tokens authenticate no more.
async fn remove(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((id, provider_id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let entity = entity(&state, &id).await?;
    let provider_id = provider_id_of(&provider_id)?;
    state
        .identity_providers
        .remove(&principal, entity, provider_id)
        .await
        .map_err(|e| problem(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

fn problem(error: &providers::ProviderError) -> ApiError {
    let problem = ApiError::public(error);
    match error.field() {
        Some(field) => problem.with_extension("field", json!(field)),
        None => problem,
    }
}
