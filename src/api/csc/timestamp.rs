//! CSC v2 signatures/timestamp: an RFC 3161 token from sceau's TSA for a hash
//! the caller sends.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct TimestampRequest {
    pub(super) hash: Option<String>,
    #[serde(rename = "hashAlgorithmOID")]
    pub(super) hash_algorithm_oid: Option<String>,
    pub(super) nonce: Option<String>,
}

/// `POST /csc/v2/signatures/timestamp`: an RFC 3161 token from the TSA the
/// seals use, over the client's hash, echoing its nonce.
pub(super) async fn timestamp(
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
pub(super) fn positive_integer(bytes: &[u8]) -> Option<der::asn1::Int> {
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
