//! CSR intake for entity-generated keys: PKCS#10 parsing (DER or PEM, nothing
//! after it), proof of possession, and the policy's key rules. Only the public
//! key comes out: the subject is taken from the validated registration instead.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::{Decode, Encode, Tagged};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::request::CertReq;

use super::policy::KeyPolicy;
use crate::crypto::{self, PublicKeyKind, SignatureAlgorithm};
use crate::error::{ErrorKind, HasErrorKind};

/// The largest CSR accepted (an RSA-8192 request with attributes is about 2 KiB).
pub const MAX_CSR_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("the CSR is larger than {MAX_CSR_BYTES} bytes")]
    TooLarge,
    #[error("not a PKCS#10 certification request: {0}")]
    Malformed(String),
    #[error("the CSR is followed by {0} bytes of trailing data")]
    TrailingData(u32),
    #[error("the CSR is signed with {0}, which sceau does not accept")]
    UnsupportedSignatureAlgorithm(ObjectIdentifier),
    #[error("the CSR's signature does not verify with its own public key (no proof of possession)")]
    BadSignature,
    #[error(
        "the EC key has explicit curve parameters; only named curves (P-256, P-384) are accepted"
    )]
    ExplicitCurve,
    #[error("the public key is not acceptable: {0}")]
    UnsupportedKey(String),
    #[error("the RSA public exponent is not acceptable: {0}")]
    RsaExponent(&'static str),
    #[error("the key does not meet the policy: {0}")]
    KeyPolicy(String),
}

impl HasErrorKind for CsrError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::TooLarge => ErrorKind::PayloadTooLarge,
            _ => ErrorKind::Unprocessable,
        }
    }
}

/// A public key whose holder proved possession, and that meets the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    pub public_key: SubjectPublicKeyInfoOwned,
    pub kind: PublicKeyKind,
    pub spki_sha256: [u8; 32],
}

/// Parses a CSR (DER, or PEM `CERTIFICATE REQUEST`), checks its signature with its
/// own key and the key against `policy`.
pub fn verify(bytes: &[u8], policy: &KeyPolicy) -> Result<VerifiedKey, CsrError> {
    verify_with(bytes, |kind| policy.accepts(kind))
}

/// The same intake as [`verify`], with the caller's own rule for which keys are
/// acceptable (for certificates that no `KeyPolicy` describes, such as TLS
/// client certificates): `accepts` says why a key is refused.
pub fn verify_with(
    bytes: &[u8],
    accepts: impl FnOnce(PublicKeyKind) -> Result<(), String>,
) -> Result<VerifiedKey, CsrError> {
    if bytes.len() > MAX_CSR_BYTES {
        return Err(CsrError::TooLarge);
    }
    let request = parse(bytes)?;
    let public_key = request.info.public_key.clone();
    let kind = check_key(&public_key)?;
    accepts(kind).map_err(CsrError::KeyPolicy)?;

    let algorithm = SignatureAlgorithm::from_oid(&request.algorithm.oid).ok_or(
        CsrError::UnsupportedSignatureAlgorithm(request.algorithm.oid),
    )?;
    if algorithm.is_rsa() != matches!(kind, PublicKeyKind::Rsa { .. }) {
        return Err(CsrError::UnsupportedSignatureAlgorithm(
            request.algorithm.oid,
        ));
    }
    let info = request
        .info
        .to_der()
        .map_err(|e| CsrError::Malformed(e.to_string()))?;
    let signature = request
        .signature
        .as_bytes()
        .ok_or_else(|| CsrError::Malformed("the signature has unused bits".to_owned()))?;
    crypto::verify(&public_key, algorithm, &info, signature).map_err(|_| CsrError::BadSignature)?;

    let spki_sha256 =
        crypto::spki_sha256(&public_key).map_err(|e| CsrError::UnsupportedKey(e.to_string()))?;
    Ok(VerifiedKey {
        public_key,
        kind,
        spki_sha256,
    })
}

fn parse(bytes: &[u8]) -> Result<CertReq, CsrError> {
    let trimmed = bytes.trim_ascii_start();
    let der;
    let input = if trimmed.starts_with(b"-----BEGIN") {
        let (label, decoded) =
            der::pem::decode_vec(trimmed).map_err(|e| CsrError::Malformed(format!("PEM: {e}")))?;
        if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
            return Err(CsrError::Malformed(format!(
                "the PEM block is a {label:?}, not a CERTIFICATE REQUEST"
            )));
        }
        der = decoded;
        der.as_slice()
    } else {
        bytes
    };
    CertReq::from_der(input).map_err(|e| match e.kind() {
        der::ErrorKind::TrailingData { remaining, .. } => {
            CsrError::TrailingData(u32::from(remaining))
        }
        _ => CsrError::Malformed(e.to_string()),
    })
}

/// Named curves only, on-curve points, odd RSA exponents in the range
/// ETSI TS 119 312 recommends (2^16 < e < 2^256).
fn check_key(spki: &SubjectPublicKeyInfoOwned) -> Result<PublicKeyKind, CsrError> {
    if spki.algorithm.oid == rfc5912::ID_EC_PUBLIC_KEY {
        match &spki.algorithm.parameters {
            Some(parameters) if parameters.tag() == der::Tag::ObjectIdentifier => {}
            Some(parameters) if parameters.tag() == der::Tag::Sequence => {
                return Err(CsrError::ExplicitCurve);
            }
            _ => {
                return Err(CsrError::UnsupportedKey(
                    "an EC key must name its curve".to_owned(),
                ));
            }
        }
    } else if spki.algorithm.oid == rfc5912::RSA_ENCRYPTION {
        let (modulus, exponent) =
            crypto::rsa_components(spki).map_err(|e| CsrError::UnsupportedKey(e.to_string()))?;
        if modulus.last().is_none_or(|b| b & 1 == 0) {
            return Err(CsrError::UnsupportedKey(
                "the RSA modulus is even".to_owned(),
            ));
        }
        match exponent.last() {
            None => return Err(CsrError::RsaExponent("it is zero")),
            Some(b) if b & 1 == 0 => return Err(CsrError::RsaExponent("it is even")),
            Some(_) => {}
        }
        // Big-endian without leading zeros: 65537 is [1, 0, 1].
        let below_65537 =
            exponent.len() < 3 || (exponent.len() == 3 && exponent < &[1u8, 0, 1][..]);
        if below_65537 {
            return Err(CsrError::RsaExponent("it is below 65537"));
        }
        if exponent.len() > 32 {
            return Err(CsrError::RsaExponent("it is 2^256 or more"));
        }
    }
    // Decodes the key for real: RSA sizes, EC points on the curve.
    let kind = PublicKeyKind::of(spki).map_err(|e| CsrError::UnsupportedKey(e.to_string()))?;
    if matches!(kind, PublicKeyKind::EcP256 | PublicKeyKind::EcP384) {
        let point = spki.subject_public_key.raw_bytes();
        let on_curve = match kind {
            PublicKeyKind::EcP256 => p256::PublicKey::from_sec1_bytes(point).is_ok(),
            _ => p384::PublicKey::from_sec1_bytes(point).is_ok(),
        };
        if !on_curve {
            return Err(CsrError::UnsupportedKey(
                "the EC point is not on the curve".to_owned(),
            ));
        }
    }
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hsm::KeyAlgorithm;
    use crate::pki::policy::KeyGeneration;

    fn any_key() -> KeyPolicy {
        KeyPolicy {
            generation: KeyGeneration::Entity,
            algorithms: vec![
                KeyAlgorithm::Rsa3072,
                KeyAlgorithm::EcP256,
                KeyAlgorithm::EcP384,
            ],
        }
    }

    #[test]
    fn garbage_and_empty_input_are_malformed() {
        for input in [&b""[..], b"garbage", &[0x30, 0x82, 0xff, 0xff, 0x00]] {
            assert!(matches!(
                verify(input, &any_key()),
                Err(CsrError::Malformed(_))
            ));
        }
        assert_eq!(
            verify(&vec![0u8; MAX_CSR_BYTES + 1], &any_key()),
            Err(CsrError::TooLarge)
        );
    }

    #[test]
    fn a_pem_block_of_another_kind_is_named() {
        let pem = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        let error = verify(pem.as_bytes(), &any_key()).unwrap_err();
        assert!(error.to_string().contains("CERTIFICATE REQUEST"), "{error}");
    }
}
