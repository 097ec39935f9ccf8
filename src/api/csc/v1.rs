//! CSC API v1.0.4: the same operations in v1's names and shapes, for clients
//! that speak only v1.

use super::*;

/// `POST /csc/v1/info`.
pub(super) async fn info_v1(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(json!({
        "specs": SPECS_V1,
        "name": csc_vocabulary::SERVICE_NAME,
        "region": "FR",
        "lang": "en",
        "description": DESCRIPTION,
        "authType": auth_types(&state),
        "methods": METHODS_V1,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListV1 {
    pub(super) max_results: Option<u32>,
    pub(super) page_token: Option<String>,
}

/// `POST /csc/v1/credentials/list`: paged by `maxResults` and `pageToken`.
pub(super) async fn list_v1(
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

/// `POST /csc/v1/credentials/info`: v1 names the mode `authMode`.
pub(super) async fn credential_info_v1(
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
pub(super) struct AuthorizeV1 {
    #[serde(rename = "credentialID")]
    pub(super) credential_id: Option<String>,
    #[serde(rename = "numSignatures")]
    pub(super) num_signatures: Option<u32>,
    pub(super) hash: Option<Vec<String>>,
    #[serde(rename = "PIN")]
    pub(super) pin: Option<Value>,
    #[serde(rename = "OTP")]
    pub(super) otp: Option<Value>,
}

/// `POST /csc/v1/credentials/authorize`: v1 sends `hash` without naming its
/// algorithm; the digests' length says which.
pub(super) async fn authorize_v1(
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
        Some(first) => Some(
            csc_vocabulary::digest_algorithm_of_length(first.len()).ok_or_else(|| {
                CscError::invalid_parameter(
                    "hash",
                    "not the length of a SHA-256, SHA-384 or SHA-512 digest",
                )
            })?,
        ),
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
pub(super) struct SignHashV1 {
    #[serde(rename = "credentialID")]
    pub(super) credential_id: Option<String>,
    #[serde(rename = "SAD")]
    pub(super) sad: Option<String>,
    pub(super) hash: Option<Vec<String>>,
    #[serde(rename = "hashAlgo")]
    pub(super) hash_algo: Option<String>,
    #[serde(rename = "signAlgo")]
    pub(super) sign_algo: Option<String>,
    #[serde(rename = "signAlgoParams")]
    pub(super) sign_algo_params: Option<String>,
}

/// `POST /csc/v1/signatures/signHash`.
pub(super) async fn sign_hash_v1(
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
