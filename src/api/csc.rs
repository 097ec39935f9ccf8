//! `/csc/v2/…` and `/csc/v1/…`: the Cloud Signature Consortium API over the
//! seal credentials. Every method is a JSON POST; errors leave in CSC's
//! `{error, error_description}` form (the one exception to problem+json).
//! The handlers only translate: `auth::activation` decides and issues SADs,
//! `seal` signs, `csc` names things as the spec does. Each version's methods
//! have their file (`v2`, `v1`), as do signDoc and the time stamp; this file
//! holds the routes, the caller, the errors and what both versions share.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use super::authn::Caller;
use super::problem::FinalErrorBody;
use super::route_table::RouteTable;
use crate::auth::Principal;
use crate::auth::activation::AuthorizeRequest;
use crate::auth::principal::Permission;
use crate::crypto::{DigestAlgorithm, PublicKeyKind};
use crate::csc_vocabulary::{self, Certificates, CscError};
use crate::error::ErrorKind;
use crate::seal::Level;
use crate::seal::cades::Packaging;
use crate::seal::pades::PadesOptions;
use crate::state::AppState;
use crate::store::entities::SealCredential;

mod sign_doc;
mod timestamp;
mod v1;
mod v2;

use sign_doc::*;
use timestamp::*;
use v1::*;
use v2::*;

/// The CSC versions served, as `info` gives them.
const SPECS_V2: &str = "2.0.0.2";
const SPECS_V1: &str = "1.0.4.0";

const METHODS_V2: [&str; 8] = [
    "info",
    "credentials/list",
    "credentials/info",
    "credentials/authorize",
    "credentials/extendTransaction",
    "signatures/signHash",
    "signatures/signDoc",
    "signatures/timestamp",
];
const METHODS_V1: [&str; 5] = [
    "info",
    "credentials/list",
    "credentials/info",
    "credentials/authorize",
    "signatures/signHash",
];

pub fn routes() -> RouteTable<AppState> {
    let seal = Permission::UseSealCredential;
    RouteTable::new()
        .post("/csc/v2/info", info_v2)
        .post_as("/csc/v2/credentials/list", seal, list_v2)
        .post_as("/csc/v2/credentials/info", seal, credential_info_v2)
        .post_as("/csc/v2/credentials/authorize", seal, authorize_v2)
        .post_as(
            "/csc/v2/credentials/extendTransaction",
            seal,
            extend_transaction,
        )
        .post_as("/csc/v2/signatures/signHash", seal, sign_hash_v2)
        .post_as("/csc/v2/signatures/signDoc", seal, sign_doc)
        .post_as("/csc/v2/signatures/timestamp", seal, timestamp)
        .post("/csc/v1/info", info_v1)
        .post_as("/csc/v1/credentials/list", seal, list_v1)
        .post_as("/csc/v1/credentials/info", seal, credential_info_v1)
        .post_as("/csc/v1/credentials/authorize", seal, authorize_v1)
        .post_as("/csc/v1/signatures/signHash", seal, sign_hash_v1)
}

/// A CSC error on its way out.
#[derive(Debug)]
pub struct CscFailure(CscError);

impl From<CscError> for CscFailure {
    fn from(error: CscError) -> Self {
        Self(error)
    }
}

impl From<crate::auth::activation::ActivationError> for CscFailure {
    fn from(error: crate::auth::activation::ActivationError) -> Self {
        Self(error.into())
    }
}

impl From<crate::seal::SealError> for CscFailure {
    fn from(error: crate::seal::SealError) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for CscFailure {
    fn into_response(self) -> Response {
        let error = self.0;
        if error.is_server_error() {
            tracing::error!(
                status = error.status,
                error = error.error,
                "CSC request failed"
            );
        } else {
            tracing::info!(status = error.status, error = error.error, description = %error.error_description, "CSC request refused");
        }
        let status =
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&error)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response.extensions_mut().insert(FinalErrorBody);
        response
    }
}

type CscResult = Result<axum::Json<Value>, CscFailure>;

/// The authenticated seal client, or a CSC error saying why not.
pub struct CscCaller(Principal);

impl FromRequestParts<AppState> for CscCaller {
    type Rejection = CscFailure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, CscFailure> {
        Caller::from_request_parts(parts, state)
            .await
            .map(|Caller(principal)| Self(principal))
            .map_err(|error| {
                let kind = ErrorKind::ALL
                    .into_iter()
                    .find(|kind| kind.http_status() == error.status().as_u16())
                    .unwrap_or(ErrorKind::Internal);
                CscFailure(CscError::of_kind(kind, error.detail()))
            })
    }
}

/// The JSON body as `T`; an empty body reads as `{}`.
fn body<T: DeserializeOwned>(raw: &Bytes) -> Result<T, CscError> {
    let text: &[u8] = if raw.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        raw
    };
    serde_json::from_slice(text).map_err(|e| {
        CscError::invalid_request(format!("the request body is not the JSON expected: {e}"))
    })
}

fn credential_id(text: Option<&str>) -> Result<Uuid, CscError> {
    let text = text.ok_or_else(|| CscError::missing("credentialID"))?;
    Uuid::parse_str(text).map_err(|_| {
        CscError::invalid_parameter("credentialID", "no such credential for this client")
    })
}

/// Base64 as CSC clients send it: standard, or URL-safe, padded or not.
fn base64_value(name: &str, text: &str) -> Result<Vec<u8>, CscError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim();
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .map_err(|_| CscError::invalid_parameter(name, "not base64"))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hash_algorithm(name: &str, oid: Option<&str>) -> Result<Option<DigestAlgorithm>, CscError> {
    oid.map(|oid| {
        csc_vocabulary::digest_algorithm(oid).ok_or_else(|| {
            CscError::invalid_parameter(name, format!("{oid:?} is not SHA-256, SHA-384 or SHA-512"))
        })
    })
    .transpose()
}

/// PIN, OTP and authData have no place here: a seal credential is authorised
/// by the client's own TLS or OAuth identity (`auth.mode` implicit).
fn refuse_explicit_factors(given: &[(&str, bool)]) -> Result<(), CscError> {
    match given.iter().find(|(_, present)| *present) {
        Some((name, _)) => Err(CscError::invalid_parameter(
            name,
            "credentials here are authorised by the client's TLS or OAuth identity \
             (auth mode implicit); no PIN, OTP or authData is taken",
        )),
        None => Ok(()),
    }
}

fn auth_types(state: &AppState) -> Vec<&'static str> {
    let mut types = Vec::new();
    if state.settings.server.tls.is_some() {
        types.push("TLS");
    }
    // Organisations register their own providers; their servers' access
    // tokens (client credentials) are accepted on every listener.
    types.push("oauth2client");
    types
}

const DESCRIPTION: &str = "sceau: remote qualified electronic seals with CA-managed keys";

/// Most signatures one SAD (and one signHash call) may carry: `multisign`.
fn multisign(state: &AppState) -> u32 {
    let per_call = u32::try_from(crate::seal::digests::MAX_DIGESTS).unwrap_or(u32::MAX);
    state.settings.auth.max_signatures_per_sad.min(per_call)
}

/// One credential described, as v2 and v1 share it.
async fn describe(
    state: &AppState,
    credential: &SealCredential,
    certificates: Certificates,
    cert_info: bool,
) -> Result<csc_vocabulary::CredentialView, CscError> {
    let scal = state.activation.scal_of(credential.id).await?;
    let chain = if certificates == Certificates::Chain {
        state.sealer.validation_data().await?.0
    } else {
        Vec::new()
    };
    let now = time::OffsetDateTime::from(state.clock.now());
    csc_vocabulary::describe(credential, &chain, certificates, cert_info, scal, now)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfoRequest {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    certificates: Option<String>,
    cert_info: Option<bool>,
    auth_info: Option<bool>,
}

async fn visible(
    state: &AppState,
    principal: &Principal,
    request: &InfoRequest,
) -> Result<(SealCredential, csc_vocabulary::CredentialView), CscError> {
    let id = credential_id(request.credential_id.as_deref())?;
    let certificates = Certificates::parse(request.certificates.as_deref())?;
    let credential = state.activation.visible_credential(principal, id).await?;
    if credential.certificate.is_none() {
        return Err(CscError::invalid_parameter(
            "credentialID",
            "the credential has no certificate yet",
        ));
    }
    let view = describe(
        state,
        &credential,
        certificates,
        request.cert_info.unwrap_or(false),
    )
    .await?;
    Ok((credential, view))
}

fn decode_all(name: &str, values: &[String]) -> Result<Vec<Vec<u8>>, CscError> {
    values.iter().map(|v| base64_value(name, v)).collect()
}

async fn issue_sad(
    state: &AppState,
    principal: &Principal,
    credential: Uuid,
    num_signatures: Option<u32>,
    digests: Vec<Vec<u8>>,
    digest_algorithm: Option<DigestAlgorithm>,
) -> CscResult {
    let num_signatures = num_signatures.ok_or_else(|| CscError::missing("numSignatures"))?;
    let issued = state
        .activation
        .authorize(
            principal,
            credential,
            &AuthorizeRequest {
                num_signatures: Some(num_signatures),
                digests,
                digest_algorithm,
            },
        )
        .await?;
    Ok(axum::Json(
        json!({ "SAD": issued.sad, "expiresIn": issued.expires_in }),
    ))
}

#[derive(Debug, Deserialize)]
struct ExtendRequest {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    #[serde(rename = "SAD")]
    sad: Option<String>,
}

/// `POST /csc/v2/credentials/extendTransaction`: the same SAD lives longer;
/// it keeps the hashes and count it was issued for.
async fn extend_transaction(
    State(state): State<AppState>,
    CscCaller(principal): CscCaller,
    raw: Bytes,
) -> CscResult {
    let request: ExtendRequest = body(&raw)?;
    let credential = credential_id(request.credential_id.as_deref())?;
    let sad = request.sad.ok_or_else(|| CscError::missing("SAD"))?;
    let extended = state
        .activation
        .extend(&principal, credential, &sad)
        .await?;
    Ok(axum::Json(
        json!({ "SAD": extended.sad, "expiresIn": extended.expires_in }),
    ))
}

/// What signHash needs, v1 and v2 alike.
struct SignHash {
    credential: Uuid,
    sad: String,
    digests: Vec<Vec<u8>>,
    digest_algorithm: Option<DigestAlgorithm>,
    sign_algo: String,
    sign_algo_params: Option<String>,
}

async fn sign_hash(state: &AppState, principal: &Principal, request: SignHash) -> CscResult {
    let (scheme, digest_algorithm) = csc_vocabulary::signature_scheme(
        &request.sign_algo,
        request.sign_algo_params.as_deref(),
        request.digest_algorithm,
    )?;
    let signatures = state
        .sealer
        .sign_digests(
            principal,
            request.credential,
            Some(&request.sad),
            scheme,
            digest_algorithm,
            &request.digests,
        )
        .await?;
    let values: Vec<String> = signatures.iter().map(|s| b64(&s.value)).collect();
    Ok(axum::Json(json!({ "signatures": values })))
}
