//! Who is calling, for routes that require a permission: the `Caller` extractor
//! turns the TLS client certificate (or, with the OIDC resource server, the
//! access token) into a principal and checks the route's permission.

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, HOST};
use axum::http::request::Parts;

use super::problem::ApiError;
use super::route_table::RequiredPermission;
use super::tls::TlsConnection;
use crate::auth::Principal;
use crate::auth::dpop::DpopRequest;
use crate::auth::mtls::{self, PeerCertificates};
use crate::auth::oidc::Presentation;
use crate::auth::principal::{self, AuthError};
use crate::error::ErrorKind;
use crate::state::AppState;

/// An authenticated principal that holds the route's permission.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(RequiredPermission(permission)) =
            parts.extensions.get::<RequiredPermission>().copied()
        else {
            // A handler asked for a caller on a route registered as public.
            tracing::error!(
                path = parts.uri.path(),
                "route takes a Caller but names no permission"
            );
            return Err(ApiError::from_kind(
                ErrorKind::Internal,
                "the server failed to handle the request",
            ));
        };
        let principal = authenticate(parts, state).await?;
        principal::authorize(&principal, permission, None).map_err(|e| ApiError::public(&e))?;
        Ok(Caller(principal))
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let leaf = parts
        .extensions
        .get::<PeerCertificates>()
        .and_then(PeerCertificates::leaf);
    if let Some(authorization) = parts.headers.get(AUTHORIZATION) {
        let token = authorization
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("DPoP "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::public(&AuthError::Unauthenticated(
                    "the Authorization header must be `Bearer <access token>`".to_owned(),
                ))
            })?;
        return state
            .oidc
            .principal(
                token,
                Presentation {
                    client_certificate: leaf,
                    dpop: dpop_request(parts, state.settings.public_url())?,
                },
            )
            .await
            .map_err(|e| ApiError::public(&e));
    }
    match leaf {
        Some(leaf) => mtls::principal(&state.store, leaf)
            .await
            .map_err(|e| ApiError::public(&e)),
        None => Err(ApiError::public(&AuthError::Unauthenticated(
            "present a registered TLS client certificate (on the mutual-TLS listener) or an \
             access token"
                .to_owned(),
        ))),
    }
}

/// The `DPoP` header's proof with the request's method and URL. On the
/// mutual-TLS listener, clients connect directly: the URL is the one they
/// used. On the plain listener, which serves behind a proxy, it is
/// `server.public_url` with the path: what clients see, whatever the proxy
/// forwards.
fn dpop_request<'a>(
    parts: &'a Parts,
    public_url: &str,
) -> Result<Option<DpopRequest<'a>>, ApiError> {
    let Some(proof) = parts.headers.get("dpop") else {
        return Ok(None);
    };
    let malformed = || {
        ApiError::public(&AuthError::Unauthenticated(
            "the DPoP header must hold one proof JWT".to_owned(),
        ))
    };
    let proof = proof.to_str().map_err(|_| malformed())?.trim();
    if proof.is_empty() || proof.contains(',') {
        return Err(malformed());
    }
    let origin = if parts.extensions.get::<TlsConnection>().is_some() {
        let host = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                parts
                    .headers
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        format!("https://{host}")
    } else {
        public_url.trim_end_matches('/').to_owned()
    };
    Ok(Some(DpopRequest {
        proof,
        method: parts.method.as_str(),
        url: format!("{origin}{}", parts.uri.path()),
    }))
}
