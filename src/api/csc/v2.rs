//! CSC API v2.0: info, credentials/list and credentials/info,
//! credentials/authorize, signatures/signHash, in v2's names and shapes.

use super::*;

/// `POST /csc/v2/info`.
pub(super) async fn info_v2(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(json!({
        "specs": SPECS_V2,
        "name": csc_vocabulary::SERVICE_NAME,
        "region": "FR",
        "lang": "en",
        "description": DESCRIPTION,
        "authType": auth_types(&state),
        "methods": METHODS_V2,
        "signAlgorithms": { "algos": csc_vocabulary::all_sign_algorithms() },
        "signature_formats": {
            "formats": ["C", "P"],
            "envelope_properties": [["Detached", "Attached"], ["Revision"]],
        },
        "conformance_levels": csc_vocabulary::CONFORMANCE_LEVELS.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
    }))
}

pub(super) fn v2_info_json(
    state: &AppState,
    view: &csc_vocabulary::CredentialView,
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
pub(super) struct ListV2 {
    pub(super) credential_info: Option<bool>,
    pub(super) certificates: Option<String>,
    pub(super) cert_info: Option<bool>,
    pub(super) auth_info: Option<bool>,
    pub(super) only_valid: Option<bool>,
}

/// `POST /csc/v2/credentials/list`: the caller's own credentials only.
pub(super) async fn list_v2(
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

/// `POST /csc/v2/credentials/info`.
pub(super) async fn credential_info_v2(
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

#[derive(Debug, Deserialize)]
pub(super) struct AuthorizeV2 {
    #[serde(rename = "credentialID")]
    pub(super) credential_id: Option<String>,
    #[serde(rename = "numSignatures")]
    pub(super) num_signatures: Option<u32>,
    pub(super) hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID")]
    pub(super) hash_algorithm_oid: Option<String>,
    #[serde(rename = "authData")]
    pub(super) auth_data: Option<Value>,
    #[serde(rename = "PIN")]
    pub(super) pin: Option<Value>,
    #[serde(rename = "OTP")]
    pub(super) otp: Option<Value>,
}

/// `POST /csc/v2/credentials/authorize`: a SAD, as `/api/v1/credentials/{id}/authorize` gives.
pub(super) async fn authorize_v2(
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
pub(super) struct SignHashV2 {
    #[serde(rename = "credentialID")]
    pub(super) credential_id: Option<String>,
    #[serde(rename = "SAD")]
    pub(super) sad: Option<String>,
    pub(super) hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID")]
    pub(super) hash_algorithm_oid: Option<String>,
    #[serde(rename = "signAlgo")]
    pub(super) sign_algo: Option<String>,
    #[serde(rename = "signAlgoParams")]
    pub(super) sign_algo_params: Option<String>,
    #[serde(rename = "operationMode")]
    pub(super) operation_mode: Option<String>,
}

/// `POST /csc/v2/signatures/signHash`: synchronous only.
pub(super) async fn sign_hash_v2(
    State(state): State<AppState>,
    CscCaller(principal): CscCaller,
    raw: Bytes,
) -> CscResult {
    let request: SignHashV2 = body(&raw)?;
    let credential = credential_id(request.credential_id.as_deref())?;
    csc_vocabulary::check_synchronous(request.operation_mode.as_deref())?;
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
