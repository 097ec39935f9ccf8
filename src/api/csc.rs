//! `/csc/v2/…` and `/csc/v1/…`: the Cloud Signature Consortium API over the
//! seal credentials. Every method is a JSON POST; errors leave in CSC's
//! `{error, error_description}` form (the one exception to problem+json).
//! The handlers only translate: `auth::activation` decides and issues SADs,
//! `seal` signs, `csc` names things as the spec does.

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
use crate::csc::{self, Certificates, CscError};
use crate::error::ErrorKind;
use crate::seal::Level;
use crate::seal::cades::Packaging;
use crate::seal::pades::PadesOptions;
use crate::state::AppState;
use crate::store::entities::SealCredential;

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
        csc::digest_algorithm(oid).ok_or_else(|| {
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

/// `POST /csc/v2/info`.
async fn info_v2(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(json!({
        "specs": SPECS_V2,
        "name": csc::SERVICE_NAME,
        "region": "FR",
        "lang": "en",
        "description": DESCRIPTION,
        "authType": auth_types(&state),
        "methods": METHODS_V2,
        "signAlgorithms": { "algos": csc::all_sign_algorithms() },
        "signature_formats": {
            "formats": ["C", "P"],
            "envelope_properties": [["Detached", "Attached"], ["Revision"]],
        },
        "conformance_levels": csc::CONFORMANCE_LEVELS.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
    }))
}

/// `POST /csc/v1/info`.
async fn info_v1(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(json!({
        "specs": SPECS_V1,
        "name": csc::SERVICE_NAME,
        "region": "FR",
        "lang": "en",
        "description": DESCRIPTION,
        "authType": auth_types(&state),
        "methods": METHODS_V1,
    }))
}

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
) -> Result<csc::CredentialView, CscError> {
    let scal = state.activation.scal_of(credential.id).await?;
    let chain = if certificates == Certificates::Chain {
        state.sealer.validation_data().await?.0
    } else {
        Vec::new()
    };
    let now = time::OffsetDateTime::from(state.clock.now());
    csc::describe(credential, &chain, certificates, cert_info, scal, now)
}

fn v2_info_json(
    state: &AppState,
    view: &csc::CredentialView,
    auth_info: bool,
) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    out.insert("description".into(), json!("a CA-managed seal credential"));
    out.insert("key".into(), json!(view.key));
    out.insert("cert".into(), json!(view.cert));
    if auth_info {
        out.insert("auth".into(), json!({ "mode": "implicit" }));
    }
    out.insert("SCAL".into(), json!(view.scal.to_string()));
    out.insert("multisign".into(), json!(multisign(state)));
    out.insert("lang".into(), json!("en"));
    out
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListV2 {
    credential_info: Option<bool>,
    certificates: Option<String>,
    cert_info: Option<bool>,
    auth_info: Option<bool>,
    only_valid: Option<bool>,
}

/// `POST /csc/v2/credentials/list`: the caller's own credentials only.
async fn list_v2(
    State(state): State<AppState>,
    CscCaller(principal): CscCaller,
    raw: Bytes,
) -> CscResult {
    let request: ListV2 = body(&raw)?;
    let certificates = Certificates::parse(request.certificates.as_deref())?;
    let only_valid = request.only_valid.unwrap_or(false);
    let with_info = request.credential_info.unwrap_or(false);
    let credentials = state
        .activation
        .entitled_credentials(&principal)
        .await
        .map_err(CscError::from)?;
    let mut ids = Vec::new();
    let mut infos = Vec::new();
    for credential in credentials.iter().filter(|c| c.certificate.is_some()) {
        let view = describe(
            &state,
            credential,
            certificates,
            request.cert_info.unwrap_or(false),
        )
        .await?;
        if only_valid && !view.usable {
            continue;
        }
        ids.push(credential.id.to_string());
        if with_info {
            let mut info = v2_info_json(&state, &view, request.auth_info.unwrap_or(false));
            info.insert("credentialID".into(), json!(credential.id));
            infos.push(Value::Object(info));
        }
    }
    let mut out = json!({ "credentialIDs": ids, "onlyValid": only_valid });
    if with_info {
        out["credentialInfos"] = json!(infos);
    }
    Ok(axum::Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListV1 {
    max_results: Option<u32>,
    page_token: Option<String>,
}

/// `POST /csc/v1/credentials/list`: paged by `maxResults` and `pageToken`.
async fn list_v1(
    State(state): State<AppState>,
    CscCaller(principal): CscCaller,
    raw: Bytes,
) -> CscResult {
    let request: ListV1 = body(&raw)?;
    let start: usize = match request.page_token.as_deref() {
        None => 0,
        Some(token) => token.parse().map_err(|_| {
            CscError::invalid_parameter("pageToken", "not a token this service gave")
        })?,
    };
    let page = request.max_results.unwrap_or(100).clamp(1, 1000) as usize;
    let ids: Vec<String> = state
        .activation
        .entitled_credentials(&principal)
        .await
        .map_err(CscError::from)?
        .iter()
        .filter(|c| c.certificate.is_some())
        .map(|c| c.id.to_string())
        .collect();
    let listed: Vec<&String> = ids.iter().skip(start).take(page).collect();
    let mut out = json!({ "credentialIDs": listed });
    if start + page < ids.len() {
        out["nextPageToken"] = json!((start + page).to_string());
    }
    Ok(axum::Json(out))
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
) -> Result<(SealCredential, csc::CredentialView), CscError> {
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

/// `POST /csc/v2/credentials/info`.
async fn credential_info_v2(
    State(state): State<AppState>,
    CscCaller(principal): CscCaller,
    raw: Bytes,
) -> CscResult {
    let request: InfoRequest = body(&raw)?;
    let (_, view) = visible(&state, &principal, &request).await?;
    Ok(axum::Json(Value::Object(v2_info_json(
        &state,
        &view,
        request.auth_info.unwrap_or(false),
    ))))
}

/// `POST /csc/v1/credentials/info`: v1 names the mode `authMode`.
async fn credential_info_v1(
    State(state): State<AppState>,
    CscCaller(principal): CscCaller,
    raw: Bytes,
) -> CscResult {
    let request: InfoRequest = body(&raw)?;
    let (_, view) = visible(&state, &principal, &request).await?;
    Ok(axum::Json(json!({
        "description": "a CA-managed seal credential",
        "key": view.key,
        "cert": view.cert,
        "authMode": "implicit",
        "SCAL": view.scal.to_string(),
        "multisign": multisign(&state),
        "lang": "en",
    })))
}

#[derive(Debug, Deserialize)]
struct AuthorizeV2 {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    #[serde(rename = "numSignatures")]
    num_signatures: Option<u32>,
    hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
    #[serde(rename = "authData")]
    auth_data: Option<Value>,
    #[serde(rename = "PIN")]
    pin: Option<Value>,
    #[serde(rename = "OTP")]
    otp: Option<Value>,
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

/// `POST /csc/v2/credentials/authorize`: a SAD, as `/api/v1/credentials/{id}/authorize` gives.
async fn authorize_v2(
    State(state): State<AppState>,
    CscCaller(principal): CscCaller,
    raw: Bytes,
) -> CscResult {
    let request: AuthorizeV2 = body(&raw)?;
    let credential = credential_id(request.credential_id.as_deref())?;
    refuse_explicit_factors(&[
        ("authData", request.auth_data.is_some()),
        ("PIN", request.pin.is_some()),
        ("OTP", request.otp.is_some()),
    ])?;
    let digests = decode_all("hashes", request.hashes.as_deref().unwrap_or_default())?;
    let algorithm = hash_algorithm("hashAlgorithmOID", request.hash_algorithm_oid.as_deref())?;
    if !digests.is_empty() && algorithm.is_none() {
        return Err(CscError::missing("hashAlgorithmOID").into());
    }
    issue_sad(
        &state,
        &principal,
        credential,
        request.num_signatures,
        digests,
        algorithm,
    )
    .await
}

#[derive(Debug, Deserialize)]
struct AuthorizeV1 {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    #[serde(rename = "numSignatures")]
    num_signatures: Option<u32>,
    hash: Option<Vec<String>>,
    #[serde(rename = "PIN")]
    pin: Option<Value>,
    #[serde(rename = "OTP")]
    otp: Option<Value>,
}

/// `POST /csc/v1/credentials/authorize`: v1 sends `hash` without naming its
/// algorithm; the digests' length says which.
async fn authorize_v1(
    State(state): State<AppState>,
    CscCaller(principal): CscCaller,
    raw: Bytes,
) -> CscResult {
    let request: AuthorizeV1 = body(&raw)?;
    let credential = credential_id(request.credential_id.as_deref())?;
    refuse_explicit_factors(&[
        ("PIN", request.pin.is_some()),
        ("OTP", request.otp.is_some()),
    ])?;
    let digests = decode_all("hash", request.hash.as_deref().unwrap_or_default())?;
    let algorithm = match digests.first() {
        None => None,
        Some(first) => Some(csc::digest_algorithm_of_length(first.len()).ok_or_else(|| {
            CscError::invalid_parameter(
                "hash",
                "not the length of a SHA-256, SHA-384 or SHA-512 digest",
            )
        })?),
    };
    issue_sad(
        &state,
        &principal,
        credential,
        request.num_signatures,
        digests,
        algorithm,
    )
    .await
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
    let (scheme, digest_algorithm) = csc::signature_scheme(
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

#[derive(Debug, Deserialize)]
struct SignHashV2 {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    #[serde(rename = "SAD")]
    sad: Option<String>,
    hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
    #[serde(rename = "signAlgo")]
    sign_algo: Option<String>,
    #[serde(rename = "signAlgoParams")]
    sign_algo_params: Option<String>,
    #[serde(rename = "operationMode")]
    operation_mode: Option<String>,
}

/// `POST /csc/v2/signatures/signHash`: synchronous only.
async fn sign_hash_v2(
    State(state): State<AppState>,
    CscCaller(principal): CscCaller,
    raw: Bytes,
) -> CscResult {
    let request: SignHashV2 = body(&raw)?;
    let credential = credential_id(request.credential_id.as_deref())?;
    csc::check_synchronous(request.operation_mode.as_deref())?;
    let hashes = request.hashes.ok_or_else(|| CscError::missing("hashes"))?;
    sign_hash(
        &state,
        &principal,
        SignHash {
            credential,
            sad: request.sad.ok_or_else(|| CscError::missing("SAD"))?,
            digests: decode_all("hashes", &hashes)?,
            digest_algorithm: hash_algorithm(
                "hashAlgorithmOID",
                request.hash_algorithm_oid.as_deref(),
            )?,
            sign_algo: request
                .sign_algo
                .ok_or_else(|| CscError::missing("signAlgo"))?,
            sign_algo_params: request.sign_algo_params,
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
struct SignHashV1 {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    #[serde(rename = "SAD")]
    sad: Option<String>,
    hash: Option<Vec<String>>,
    #[serde(rename = "hashAlgo")]
    hash_algo: Option<String>,
    #[serde(rename = "signAlgo")]
    sign_algo: Option<String>,
    #[serde(rename = "signAlgoParams")]
    sign_algo_params: Option<String>,
}

/// `POST /csc/v1/signatures/signHash`.
async fn sign_hash_v1(
    State(state): State<AppState>,
    CscCaller(principal): CscCaller,
    raw: Bytes,
) -> CscResult {
    let request: SignHashV1 = body(&raw)?;
    let credential = credential_id(request.credential_id.as_deref())?;
    let hashes = request.hash.ok_or_else(|| CscError::missing("hash"))?;
    sign_hash(
        &state,
        &principal,
        SignHash {
            credential,
            sad: request.sad.ok_or_else(|| CscError::missing("SAD"))?,
            digests: decode_all("hash", &hashes)?,
            digest_algorithm: hash_algorithm("hashAlgo", request.hash_algo.as_deref())?,
            sign_algo: request
                .sign_algo
                .ok_or_else(|| CscError::missing("signAlgo"))?,
            sign_algo_params: request.sign_algo_params,
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
struct SignedProperty {
    attribute_name: String,
    attribute_value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DocumentToSign {
    document: Option<String>,
    signature_format: Option<String>,
    conformance_level: Option<String>,
    #[serde(rename = "signAlgo")]
    sign_algo: Option<String>,
    #[serde(rename = "signAlgoParams")]
    sign_algo_params: Option<String>,
    signed_props: Option<Vec<SignedProperty>>,
    signed_envelope_property: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DigestsToSign {
    hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
    signature_format: Option<String>,
    conformance_level: Option<String>,
    #[serde(rename = "signAlgo")]
    sign_algo: Option<String>,
    #[serde(rename = "signAlgoParams")]
    sign_algo_params: Option<String>,
    signed_props: Option<Vec<SignedProperty>>,
    signed_envelope_property: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SignDocRequest {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    #[serde(rename = "SAD")]
    sad: Option<String>,
    documents: Option<Vec<DocumentToSign>>,
    #[serde(rename = "documentDigests")]
    document_digests: Option<Vec<DigestsToSign>>,
    #[serde(rename = "operationMode")]
    operation_mode: Option<String>,
}

/// One seal signDoc will make, read in full before any is made so a bad
/// entry later in the list seals nothing.
enum DocSeal {
    Pades {
        document: Vec<u8>,
        level: Level,
        options: PadesOptions,
    },
    Cades {
        document: Vec<u8>,
        level: Level,
        packaging: Packaging,
    },
    Digests {
        digests: Vec<Vec<u8>>,
        level: Level,
    },
}

fn pades_options(props: &[SignedProperty]) -> Result<PadesOptions, CscError> {
    let mut options = PadesOptions::default();
    for prop in props {
        let value = prop.attribute_value.clone().ok_or_else(|| {
            CscError::invalid_parameter(
                "signed_props",
                format!("{} needs a value", prop.attribute_name),
            )
        })?;
        if value.chars().count() > 200 {
            return Err(CscError::invalid_parameter(
                "signed_props",
                format!("{} is longer than 200 characters", prop.attribute_name),
            ));
        }
        let slot = match prop.attribute_name.as_str() {
            "reason" | "Reason" => &mut options.reason,
            "location" | "Location" => &mut options.location,
            "contactInfo" | "ContactInfo" | "contact" => &mut options.contact,
            "fieldName" | "field" => &mut options.field_name,
            other => {
                return Err(CscError::invalid_parameter(
                    "signed_props",
                    format!(
                        "{other:?}: PAdES seals take reason, location, contactInfo and fieldName"
                    ),
                ));
            }
        };
        *slot = Some(value);
    }
    Ok(options)
}

fn no_signed_props(props: Option<&Vec<SignedProperty>>) -> Result<(), CscError> {
    match props {
        Some(props) if !props.is_empty() => Err(CscError::invalid_parameter(
            "signed_props",
            "CAdES seals carry content-type, message-digest, signing-time and \
             signing-certificate-v2 only",
        )),
        _ => Ok(()),
    }
}

fn read_document(kind: PublicKeyKind, doc: &DocumentToSign) -> Result<DocSeal, CscError> {
    let document = base64_value(
        "document",
        doc.document
            .as_deref()
            .ok_or_else(|| CscError::missing("document"))?,
    )?;
    let level = csc::conformance_level(doc.conformance_level.as_deref())?;
    csc::check_document_sign_algo(
        kind,
        doc.sign_algo.as_deref(),
        doc.sign_algo_params.as_deref(),
    )?;
    let envelope = doc.signed_envelope_property.as_deref();
    match doc.signature_format.as_deref() {
        Some("P") => {
            if !matches!(envelope, None | Some("Revision")) {
                return Err(CscError::invalid_parameter(
                    "signed_envelope_property",
                    "PAdES seals are added as a new revision (Revision)",
                ));
            }
            Ok(DocSeal::Pades {
                document,
                level,
                options: pades_options(doc.signed_props.as_deref().unwrap_or_default())?,
            })
        }
        Some("C") => {
            no_signed_props(doc.signed_props.as_ref())?;
            let packaging = match envelope {
                None | Some("Detached") => Packaging::Detached,
                Some("Attached" | "Enveloping") => Packaging::Enveloping,
                Some(other) => {
                    return Err(CscError::invalid_parameter(
                        "signed_envelope_property",
                        format!("{other:?}: CAdES seals are Detached or Attached"),
                    ));
                }
            };
            Ok(DocSeal::Cades {
                document,
                level,
                packaging,
            })
        }
        Some(other) => Err(CscError::invalid_parameter(
            "signature_format",
            format!("{other:?}: C (CAdES) or P (PAdES)"),
        )),
        None => Err(CscError::missing("signature_format")),
    }
}

fn read_digests(kind: PublicKeyKind, entry: &DigestsToSign) -> Result<DocSeal, CscError> {
    let hashes = entry
        .hashes
        .as_deref()
        .ok_or_else(|| CscError::missing("hashes"))?;
    let algorithm = hash_algorithm("hashAlgorithmOID", entry.hash_algorithm_oid.as_deref())?
        .ok_or_else(|| CscError::missing("hashAlgorithmOID"))?;
    if algorithm != DigestAlgorithm::Sha256 {
        return Err(CscError::invalid_parameter(
            "hashAlgorithmOID",
            "CAdES seals over document digests take SHA-256 digests",
        ));
    }
    if entry.signature_format.as_deref() != Some("C") {
        return Err(CscError::invalid_parameter(
            "signature_format",
            "a seal over a document digest is CAdES (C), detached",
        ));
    }
    if !matches!(
        entry.signed_envelope_property.as_deref(),
        None | Some("Detached")
    ) {
        return Err(CscError::invalid_parameter(
            "signed_envelope_property",
            "a seal over a document digest is detached (Detached)",
        ));
    }
    no_signed_props(entry.signed_props.as_ref())?;
    csc::check_document_sign_algo(
        kind,
        entry.sign_algo.as_deref(),
        entry.sign_algo_params.as_deref(),
    )?;
    Ok(DocSeal::Digests {
        digests: decode_all("hashes", hashes)?,
        level: csc::conformance_level(entry.conformance_level.as_deref())?,
    })
}

/// `POST /csc/v2/signatures/signDoc`: PAdES and CAdES seals by the Seal API's
/// own code; embedded results in `DocumentWithSignature`, detached ones in
/// `SignatureObject`.
async fn sign_doc(
    State(state): State<AppState>,
    CscCaller(principal): CscCaller,
    raw: Bytes,
) -> CscResult {
    let request: SignDocRequest = body(&raw)?;
    let credential = credential_id(request.credential_id.as_deref())?;
    csc::check_synchronous(request.operation_mode.as_deref())?;
    let sad = request.sad.ok_or_else(|| CscError::missing("SAD"))?;
    let documents = request.documents.unwrap_or_default();
    let digests = request.document_digests.unwrap_or_default();
    if documents.is_empty() && digests.is_empty() {
        return Err(CscError::missing("documents or documentDigests").into());
    }
    let kind = state.sealer.key_kind(&principal, credential).await?;
    let mut seals = Vec::with_capacity(documents.len() + digests.len());
    for doc in &documents {
        seals.push(read_document(kind, doc)?);
    }
    for entry in &digests {
        seals.push(read_digests(kind, entry)?);
    }
    let mut with_signature = Vec::new();
    let mut signature_objects = Vec::new();
    for seal in seals {
        match seal {
            DocSeal::Pades {
                document,
                level,
                options,
            } => {
                let sealed = state
                    .sealer
                    .pades(
                        &principal,
                        credential,
                        Some(&sad),
                        level,
                        &options,
                        document.into(),
                    )
                    .await?;
                with_signature.push(b64(&sealed.into_vec()));
            }
            DocSeal::Cades {
                document,
                level,
                packaging,
            } => {
                let sealed = state
                    .sealer
                    .cades(
                        &principal,
                        credential,
                        Some(&sad),
                        level,
                        packaging,
                        &document,
                    )
                    .await?;
                match packaging {
                    Packaging::Detached => signature_objects.push(b64(&sealed.der)),
                    Packaging::Enveloping => with_signature.push(b64(&sealed.der)),
                }
            }
            DocSeal::Digests { digests, level } => {
                for sealed in state
                    .sealer
                    .hashes(&principal, credential, Some(&sad), level, &digests)
                    .await?
                {
                    signature_objects.push(b64(&sealed.der));
                }
            }
        }
    }
    let mut out = serde_json::Map::new();
    if !with_signature.is_empty() {
        out.insert("DocumentWithSignature".into(), json!(with_signature));
    }
    if !signature_objects.is_empty() {
        out.insert("SignatureObject".into(), json!(signature_objects));
    }
    Ok(axum::Json(Value::Object(out)))
}

#[derive(Debug, Deserialize)]
struct TimestampRequest {
    hash: Option<String>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
    nonce: Option<String>,
}

/// `POST /csc/v2/signatures/timestamp`: an RFC 3161 token from the TSA the
/// seals use, over the client's hash, echoing its nonce.
async fn timestamp(
    State(state): State<AppState>,
    CscCaller(_principal): CscCaller,
    raw: Bytes,
) -> CscResult {
    let request: TimestampRequest = body(&raw)?;
    let hashed = base64_value(
        "hash",
        request
            .hash
            .as_deref()
            .ok_or_else(|| CscError::missing("hash"))?,
    )?;
    let algorithm = hash_algorithm("hashAlgorithmOID", request.hash_algorithm_oid.as_deref())?
        .ok_or_else(|| CscError::missing("hashAlgorithmOID"))?;
    if hashed.len() != algorithm.digest(b"").len() {
        return Err(
            CscError::invalid_parameter("hash", "not the length its algorithm makes").into(),
        );
    }
    let nonce = match request.nonce.as_deref() {
        None => None,
        Some(text) => {
            let bytes = hex::decode(text.trim())
                .ok()
                .filter(|b| !b.is_empty() && b.len() <= 32)
                .ok_or_else(|| CscError::invalid_parameter("nonce", "1 to 32 bytes, hex"))?;
            Some(
                positive_integer(&bytes)
                    .ok_or_else(|| CscError::invalid_parameter("nonce", "1 to 32 bytes, hex"))?,
            )
        }
    };
    let stamp = state
        .sealer
        .time_stamper()
        .stamp_with_nonce(algorithm, &hashed, nonce)
        .await
        .map_err(|refusal| CscError::from(crate::seal::SealError::TimeStamp(refusal)))?;
    Ok(axum::Json(json!({ "timestamp": b64(&stamp.token) })))
}

/// The unsigned big-endian `bytes` as a DER INTEGER: leading zeros dropped,
/// one put back where the top bit would read as a sign.
fn positive_integer(bytes: &[u8]) -> Option<der::asn1::Int> {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    let significant = bytes.get(start..)?;
    let mut encoded = Vec::with_capacity(significant.len() + 1);
    if significant.first().is_some_and(|b| b & 0x80 != 0) {
        encoded.push(0);
    }
    encoded.extend_from_slice(significant);
    der::asn1::Int::new(&encoded).ok()
}
