//! The front office: pages in French and English for the people of the trust
//! service, served on the plain listener next to the JSON API and signed in
//! with OpenID Connect. It holds no business rule: each page reads and acts
//! through the same services as `/ra/v1`, with the principal the person's
//! session stands for, under the same permission table.

#[cfg(feature = "dev-idp")]
pub mod dev_provider;
mod evidence;
mod i18n;
mod order;
mod page;
mod queue;
mod requests;
mod session;
mod sign_in;
mod upload;
mod visit;
mod welcome;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};

use crate::api::RouteTable;
use crate::api::route_table::Access;
use crate::auth::Permission;
use crate::config::Settings;
use crate::state::AppState;

pub use i18n::Lang;
pub use session::{LANG_COOKIE, SESSION_COOKIE, SIGN_IN_COOKIE};

/// What the portal's handlers share besides the services.
#[derive(Clone)]
pub struct Portal {
    clients: sign_in::Clients,
    settings: Arc<Settings>,
    /// The origins a form may lead to: the providers' sign-out pages.
    form_targets: Arc<str>,
}

/// The portal's routes, each with its permission (a page needing none is public).
fn routes() -> RouteTable<AppState> {
    RouteTable::new()
        .get("/portal", welcome::home)
        .get("/portal/static/portal.css", welcome::stylesheet)
        .get("/portal/sign-in/{provider}", welcome::sign_in)
        .get("/portal/callback", welcome::callback)
        .post("/portal/sign-out", welcome::sign_out)
        .get_as(
            "/portal/order",
            Permission::ApplyForCertificate,
            order::start,
        )
        .post_as(
            "/portal/order",
            Permission::ApplyForCertificate,
            order::step,
        )
        .get_as("/portal/requests", Permission::ReadRequests, queue::list)
        .get_as(
            "/portal/requests/{id}",
            Permission::ReadRequests,
            requests::show,
        )
        .post_as(
            "/portal/requests/{id}/terms",
            Permission::CompleteRequest,
            requests::accept_terms,
        )
        .post_as(
            "/portal/requests/{id}/identity",
            Permission::RecordIdentityVerification,
            requests::record_identity,
        )
        .post_as(
            "/portal/requests/{id}/documents",
            Permission::CompleteRequest,
            upload::upload,
        )
        .get_as(
            "/portal/requests/{id}/documents/{document}",
            Permission::ReadEvidence,
            evidence::download,
        )
        .post_as(
            "/portal/requests/{id}/moves",
            Permission::MoveRequest,
            requests::move_request,
        )
}

/// Every (METHOD, path, access) the portal serves, for the route table's readers.
pub fn route_access() -> Vec<(String, String, Access)> {
    routes().access()
}

/// The portal's router, for the plain listener.
pub fn router(settings: Arc<Settings>) -> Result<Router<AppState>, sign_in::SignInError> {
    let clients = sign_in::Clients::new(&settings.portal, settings.public_url())?;
    let form_targets = clients.origins().into();
    let portal = Portal {
        clients,
        settings,
        form_targets,
    };
    #[cfg_attr(
        not(feature = "dev-idp"),
        expect(unused_mut, reason = "only the development provider adds to it")
    )]
    let mut router = routes().into_router();
    #[cfg(feature = "dev-idp")]
    if portal.settings.portal.dev_provider {
        router = router.merge(dev_provider::router(&portal.settings));
    }
    Ok(router
        .layer(axum::middleware::from_fn_with_state(
            portal.clone(),
            page_headers,
        ))
        .layer(Extension(portal)))
}

/// The security headers on every portal answer, and the language the
/// person chose (`?lang=`) kept in its cookie.
async fn page_headers(
    axum::extract::State(portal): axum::extract::State<Portal>,
    request: Request,
    next: Next,
) -> Response {
    let chosen = request.uri().query().and_then(visit::lang_parameter);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // The stylesheet is cached like any static file; pages never are.
    let is_page = headers
        .get(CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/html"));
    if is_page {
        page::security_headers(headers, &portal.form_targets);
    }
    if let Some(lang) = chosen {
        session::set_cookie(headers, LANG_COOKIE, lang.code(), Some(365 * 24 * 3600));
    }
    response
}

/// How often the portal's expired sessions are forgotten.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// Forgets expired sessions and unfinished sign-ins now; how many rows went.
pub async fn purge_expired(state: &AppState) -> Result<u64, crate::store::StoreError> {
    session::purge_expired(&state.store, &state.settings.portal, visit::now(state)).await
}

/// The portal's upkeep until `stop` turns true: expired sessions forgotten
/// every few minutes (a session is refused once expired anyway; this keeps
/// the table small).
pub async fn run_upkeep(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(UPKEEP_EVERY) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        match purge_expired(&state).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "portal sessions purged"),
            Err(error) => tracing::warn!(%error, "portal sessions not purged"),
        }
    }
}

/// A static file of the portal.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}
