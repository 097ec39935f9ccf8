//! The BasicOCSPResponse: built for the certificates asked, signed by the
//! responder key, and the final responses of a terminated CA.

use super::*;

/// Builds, signs and verifies the response. Blocking (the HSM call).
pub(super) fn build(
    key: &ResponderKey,
    singles: Vec<SingleResponse>,
    nonce: Option<Nonce>,
    produced_at: OcspGeneralizedTime,
) -> Result<Vec<u8>, OcspError> {
    let internal = |e: &dyn std::fmt::Display| OcspError::Internal(e.to_string());
    let mut builder = OcspResponseBuilder::new(ResponderId::ByKey(
        OctetString::new(key.key_hash.clone()).map_err(|e| internal(&e))?,
    ));
    for single in singles {
        builder = builder.with_single_response(single);
    }
    if let Some(nonce) = nonce {
        builder = builder.with_extension(nonce).map_err(|e| internal(&e))?;
    }
    let mut signer = key.signer.clone();
    let response = builder
        .sign::<_, HsmSignature>(
            &mut signer,
            Some(vec![key.certificate.clone()]),
            produced_at,
        )
        .map_err(|e| OcspError::Signing(e.to_string()))?;
    // The signer checks each signature against its key; this checks the encoded
    // response against the certificate it carries (a key/certificate mix-up
    // after a rotation would show here).
    let bytes = response
        .response_bytes
        .as_ref()
        .ok_or_else(|| OcspError::Internal("no response bytes".to_owned()))?;
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).map_err(|e| internal(&e))?;
    let tbs = basic.tbs_response_data.to_der().map_err(|e| internal(&e))?;
    crate::crypto::verify(
        &key.certificate.tbs_certificate.subject_public_key_info,
        key.signer.algorithm(),
        &tbs,
        basic.signature.raw_bytes(),
    )
    .map_err(|_| OcspError::Verification)?;
    response.to_der().map_err(|e| internal(&e))
}

/// A terminated CA's last response for one certificate: signed by the CA key
/// itself (responderID byKey, the CA certificate attached), so it verifies with
/// the CA certificate alone after the delegated responder's certificate
/// expires; nextUpdate 99991231235959Z. Blocking (the HSM call). The status
/// must be revoked: a CA ends only after revoking everything it issued.
pub fn final_response(
    ca_key: &ResponderKey,
    ca: &ServedCa,
    serial_hex: &str,
    hash: CertIdHash,
    status: SerialStatus,
    produced_at: SystemTime,
) -> Result<Vec<u8>, OcspError> {
    let SerialStatus::Revoked { at, reason_code } = status else {
        return Err(OcspError::Internal(format!(
            "certificate {serial_hex} is not revoked: no final response"
        )));
    };
    let serial = hex::decode(serial_hex)
        .map_err(|e| OcspError::Internal(format!("serial {serial_hex:?}: {e}")))?;
    let now = generalized(produced_at)?;
    let single = SingleResponse::new(
        ca.cert_id(hash, &serial)?,
        CertStatus::revoked(RevokedInfo {
            revocation_time: generalized(truncate(at.into()))?,
            revocation_reason: reason_code.map(Reason::crl_reason),
        }),
        now,
    )
    .with_next_update(generalized(crate::pki::crl::forever())?)
    .with_extension(ArchiveCutoff(ca.archive_cutoff))
    .map_err(|e| OcspError::Internal(e.to_string()))?;
    build(ca_key, vec![single], None, now)
}

pub(super) fn truncate(at: SystemTime) -> SystemTime {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs())
}

pub(super) fn generalized(at: SystemTime) -> Result<OcspGeneralizedTime, OcspError> {
    der::asn1::GeneralizedTime::from_system_time(truncate(at))
        .map(OcspGeneralizedTime)
        .map_err(|e| OcspError::Internal(e.to_string()))
}
