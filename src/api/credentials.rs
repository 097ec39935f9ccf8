//! `/api/v1/credentials/{id}/…`: activating a seal credential (SAD), unlocking
//! it, and the RCCS's management of its activation credentials.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::authn::Caller;
use super::problem::{ApiError, json_body};
use super::route_table::RouteTable;
use crate::auth::Principal;
use crate::auth::activation::AuthorizeRequest;
use crate::auth::principal::{self, Permission};
use crate::crypto::DigestAlgorithm;
use crate::error::ErrorKind;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::auth::{ActivationBinding, ActivationCredential};
use crate::store::entities::SealCredential;

pub fn routes() -> RouteTable<AppState> {
    RouteTable::new()
        .post_as(
            "/api/v1/credentials/{id}/authorize",
            Permission::UseSealCredential,
            authorize,
        )
        .post_as(
            "/api/v1/credentials/{id}/unlock",
            Permission::UnlockSealCredential,
            unlock,
        )
        .get_as(
            "/api/v1/credentials/{id}/activation-credentials",
            Permission::ManageActivationCredentials,
            list_activation_credentials,
        )
        .post_as(
            "/api/v1/credentials/{id}/activation-credentials",
            Permission::ManageActivationCredentials,
            register_activation_credential,
        )
        .delete_as(
            "/api/v1/credentials/{id}/activation-credentials/{activation_id}",
            Permission::ManageActivationCredentials,
            revoke_activation_credential,
        )
        .post_as(
            "/api/v1/credentials/{id}/activation-credentials/{activation_id}/rotate",
            Permission::ManageActivationCredentials,
            rotate_activation_credential,
        )
}

fn parse_id(text: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::from_kind(ErrorKind::NotFound, format!("no {what} {text:?}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizeBody {
    num_signatures: Option<u32>,
    /// Base64 digests (SCAL2: required).
    #[serde(default)]
    hashes: Vec<String>,
    /// The digests' algorithm OID (2.16.840.1.101.3.4.2.1 for SHA-256).
    hash_algorithm_oid: Option<String>,
}

/// Activates a credential: returns a SAD bound to the caller, the credential and
/// the hashes (SCAL2) or a number of signatures (SCAL1).
async fn authorize(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    payload: Result<Json<AuthorizeBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let credential_id = parse_id(&id, "seal credential")?;
    // The schema is public: a body error tells a seal client nothing. Entitlement
    // (and the journal of refused strangers) is the activation service's.
    let body = json_body(payload)?;
    let digest_algorithm = match body.hash_algorithm_oid.as_deref() {
        None => None,
        Some(oid) => Some(digest_algorithm(oid)?),
    };
    let digests = body
        .hashes
        .iter()
        .map(|h| {
            base64::engine::general_purpose::STANDARD
                .decode(h)
                .map_err(|_| ApiError::from_kind(ErrorKind::BadRequest, "hashes must be base64"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sad = state
        .activation
        .authorize(
            &principal,
            credential_id,
            &AuthorizeRequest {
                num_signatures: body.num_signatures,
                digests,
                digest_algorithm,
            },
        )
        .await
        .map_err(|e| ApiError::public(&e))?;
    Ok(Json(sad))
}

fn digest_algorithm(oid: &str) -> Result<DigestAlgorithm, ApiError> {
    let named = const_oid::ObjectIdentifier::new(oid).ok();
    named
        .as_ref()
        .and_then(DigestAlgorithm::from_oid)
        .ok_or_else(|| {
            ApiError::from_kind(
                ErrorKind::Unprocessable,
                format!("hash algorithm {oid:?} is not SHA-256, SHA-384 or SHA-512"),
            )
        })
}

/// Unlocks a credential locked after failed activations: the organisation's RCCS
/// or an RA operator.
async fn unlock(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let credential =
        credential_for(&state, &principal, &id, Permission::UnlockSealCredential).await?;
    state
        .activation
        .unlock(&principal, credential.id)
        .await
        .map_err(|e| ApiError::public(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Loads the credential and checks the permission against its organisation.
async fn credential_for(
    state: &AppState,
    principal: &Principal,
    id: &str,
    permission: Permission,
) -> Result<SealCredential, ApiError> {
    let credential_id = parse_id(id, "seal credential")?;
    let credential = state
        .store
        .seal_credential(credential_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound { .. } => {
                ApiError::from_kind(ErrorKind::NotFound, format!("no seal credential {id}"))
            }
            other => ApiError::public(&other),
        })?;
    principal::authorize(principal, permission, Some(credential.entity_id))
        .map_err(|e| ApiError::public(&e))?;
    Ok(credential)
}

/// The seal credential `id`, when the caller manages its activation credentials.
async fn managed_credential(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<SealCredential, ApiError> {
    credential_for(
        state,
        principal,
        id,
        Permission::ManageActivationCredentials,
    )
    .await
}

#[derive(Debug, Serialize)]
struct ActivationCredentialView {
    id: Uuid,
    credential_id: Uuid,
    #[serde(flatten)]
    binding: BindingView,
    status: &'static str,
    created_by: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
    /// The client certificate sceau issued for this registration (PEM)…
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_certificate: Option<String>,
    /// …and its serial (hex), which revoking it needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_certificate_serial: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum BindingView {
    /// `certificate_sha256` in responses; `certificate` (PEM or base64 DER) in requests.
    ClientCertificate {
        #[serde(skip_serializing_if = "Option::is_none")]
        certificate: Option<String>,
        #[serde(default)]
        certificate_sha256: Option<String>,
    },
    Oidc {
        issuer: String,
        subject: String,
    },
    /// A request only: the RCCS's CSR, for a client certificate from sceau's
    /// client-authentication CA (issued through the RA).
    ClientCertificateRequest {
        csr: String,
    },
}

fn view(activation: &ActivationCredential) -> ActivationCredentialView {
    let time = |t: time::OffsetDateTime| crate::clock::format::rfc3339(t);
    ActivationCredentialView {
        id: activation.id,
        credential_id: activation.seal_credential_id,
        binding: match &activation.binding {
            ActivationBinding::ClientCertificate { sha256 } => BindingView::ClientCertificate {
                certificate: None,
                certificate_sha256: Some(sha256.clone()),
            },
            ActivationBinding::Oidc { issuer, subject } => BindingView::Oidc {
                issuer: issuer.clone(),
                subject: subject.clone(),
            },
        },
        status: if activation.active {
            "active"
        } else {
            "revoked"
        },
        created_by: activation.created_by.clone(),
        created_at: time(activation.created_at),
        revoked_at: activation.revoked_at.map(time),
        issued_certificate: None,
        issued_certificate_serial: None,
    }
}

async fn list_activation_credentials(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let credential = managed_credential(&state, &principal, &id).await?;
    let all = state
        .store
        .activation_credentials_of(credential.id)
        .await
        .map_err(|e| ApiError::public(&e))?;
    Ok(Json(json!({
        "activation_credentials": all.iter().map(view).collect::<Vec<_>>()
    })))
}

/// What a request asks to register, checked.
fn binding_of(body: BindingView) -> Result<ActivationBinding, ApiError> {
    let bad = |detail: &str| ApiError::from_kind(ErrorKind::Unprocessable, detail);
    match body {
        BindingView::ClientCertificate {
            certificate: Some(text),
            certificate_sha256: None,
        } => {
            let der = certificate_der(&text).ok_or_else(|| {
                bad("`certificate` must be one X.509 certificate, PEM or base64 DER")
            })?;
            Ok(ActivationBinding::ClientCertificate {
                sha256: crate::auth::mtls::fingerprint(&der),
            })
        }
        BindingView::ClientCertificate { .. } => Err(bad(
            "send the client certificate itself in `certificate`, not its hash",
        )),
        BindingView::Oidc { issuer, subject } => {
            if !issuer.starts_with("https://") && !issuer.starts_with("http://") {
                return Err(bad("`issuer` must be the identity provider's issuer URL"));
            }
            if subject.trim().is_empty() || subject.len() > 255 {
                return Err(bad("`subject` must be 1 to 255 characters"));
            }
            Ok(ActivationBinding::Oidc { issuer, subject })
        }
        BindingView::ClientCertificateRequest { .. } => Err(bad(
            "a certificate request is answered by the client-authentication CA, not registered",
        )),
    }
}

fn certificate_der(text: &str) -> Option<Vec<u8>> {
    use der::Decode;
    let der = if text.trim_start().starts_with("-----BEGIN") {
        let (label, der) = der::pem::decode_vec(text.trim().as_bytes()).ok()?;
        (label == "CERTIFICATE").then_some(der)?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?
    };
    x509_cert::Certificate::from_der(&der).ok()?;
    Some(der)
}

async fn register(
    state: &AppState,
    principal: &Principal,
    credential: &SealCredential,
    binding: ActivationBinding,
) -> Result<ActivationCredential, ApiError> {
    state
        .activation
        .register(principal, credential, binding)
        .await
        .map_err(|e| ApiError::public(&e))
}

async fn register_activation_credential(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    payload: Result<Json<BindingView>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let credential = managed_credential(&state, &principal, &id).await?;
    let body = json_body(payload)?;
    if let BindingView::ClientCertificateRequest { csr } = &body {
        // The RA has the client-authentication CA certify the RCCS's key, then
        // the new certificate is registered like any other.
        let issued = state
            .ra
            .issue_client_certificate(&principal, credential.entity_id, csr)
            .await
            .map_err(super::ra::problem)?;
        let binding = ActivationBinding::ClientCertificate {
            sha256: issued.sha256.clone(),
        };
        let registered = register(&state, &principal, &credential, binding).await?;
        let mut answer = view(&registered);
        answer.issued_certificate = Some(crate::crypto::certificate_pem(&issued.der));
        answer.issued_certificate_serial = Some(issued.serial);
        return Ok((StatusCode::CREATED, Json(answer)));
    }
    let registered = register(&state, &principal, &credential, binding_of(body)?).await?;
    Ok((StatusCode::CREATED, Json(view(&registered))))
}

async fn revoke(
    state: &AppState,
    principal: &Principal,
    credential: &SealCredential,
    activation_id: &str,
) -> Result<(), ApiError> {
    let activation_id = parse_id(activation_id, "activation credential")?;
    state
        .activation
        .revoke_registration(principal, credential, activation_id)
        .await
        .map_err(|e| ApiError::public(&e))?;
    Ok(())
}

async fn revoke_activation_credential(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((id, activation_id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let credential = managed_credential(&state, &principal, &id).await?;
    revoke(&state, &principal, &credential, &activation_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Registers the replacement, then revokes the old one: at no moment is the
/// credential left without a way to activate it.
async fn rotate_activation_credential(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((id, activation_id)): Path<(String, String)>,
    payload: Result<Json<BindingView>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let credential = managed_credential(&state, &principal, &id).await?;
    let binding = binding_of(json_body(payload)?)?;
    let registered = register(&state, &principal, &credential, binding).await?;
    revoke(&state, &principal, &credential, &activation_id).await?;
    Ok((StatusCode::CREATED, Json(view(&registered))))
}
