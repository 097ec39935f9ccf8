//! The Cloud Signature Consortium API's vocabulary (v2.0, and v1.0.4 for
//! older clients) mapped onto sceau's own layers: CSC errors from activation
//! and seal errors, the algorithm and level names CSC clients send, and the
//! description of a seal credential that `credentials/info` returns. The
//! decisions (who may sign, SADs, seals) stay with `auth::activation` and
//! `seal`; nothing here signs or spends.

use base64::Engine as _;
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::{Decode, Encode};
use serde::Serialize;
use time::OffsetDateTime;
use x509_cert::Certificate;

use crate::auth::activation::ActivationError;
use crate::clock::format;
use crate::crypto::{DigestAlgorithm, DigestSignatureScheme, PublicKeyKind};
use crate::error::{ErrorKind, HasErrorKind};
use crate::seal::{Level, SealError};
use crate::store::entities::{CredentialStatus, SealCredential};

/// What `info` names this service.
pub const SERVICE_NAME: &str = "sceau";
/// The conformance levels signDoc accepts, as CSC v2 spells them, with ours.
pub const CONFORMANCE_LEVELS: [(&str, Level); 4] = [
    ("Ades-B-B", Level::BB),
    ("Ades-B-T", Level::BT),
    ("Ades-B-LT", Level::BLt),
    ("Ades-B-LTA", Level::BLta),
];

/// RSASSA-PSS (RFC 4055): the signAlgo of PSS signatures, with signAlgoParams.
pub const ID_RSASSA_PSS: ObjectIdentifier = rfc5912::ID_RSASSA_PSS;

/// A CSC error: `{error, error_description}` with the spec's HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CscError {
    #[serde(skip)]
    pub status: u16,
    pub error: &'static str,
    pub error_description: String,
}

impl CscError {
    pub fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            error_description: description.into(),
        }
    }

    /// 400 `invalid_request`: the spec's answer to every malformed or
    /// unacceptable parameter.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", description)
    }

    /// `Invalid parameter NAME: why`.
    pub fn invalid_parameter(name: &str, why: impl std::fmt::Display) -> Self {
        Self::invalid_request(format!("Invalid parameter {name}: {why}"))
    }

    /// `Missing (or invalid type) parameter NAME`.
    pub fn missing(name: &str) -> Self {
        Self::invalid_request(format!("Missing (or invalid type) parameter {name}"))
    }

    /// From the kind of a module error, with the text the caller may read;
    /// a 5xx never carries its cause.
    pub fn of_kind(kind: ErrorKind, description: impl Into<String>) -> Self {
        let description = description.into();
        match kind {
            ErrorKind::BadRequest
            | ErrorKind::Unprocessable
            | ErrorKind::Conflict
            | ErrorKind::NotFound => Self::invalid_request(description),
            ErrorKind::Unauthenticated => Self::new(401, "invalid_token", description),
            ErrorKind::Forbidden | ErrorKind::Locked => {
                Self::new(403, "access_denied", description)
            }
            ErrorKind::PayloadTooLarge => Self::new(413, "invalid_request", description),
            ErrorKind::TooManyRequests => Self::new(429, "access_denied", description),
            ErrorKind::Unavailable => Self::new(503, "temporarily_unavailable", description),
            ErrorKind::Internal => Self::new(
                500,
                "server_error",
                "the server failed to handle the request; quote the request id when reporting it",
            ),
        }
    }

    pub fn is_server_error(&self) -> bool {
        self.status >= 500
    }
}

impl From<ActivationError> for CscError {
    fn from(error: ActivationError) -> Self {
        match &error {
            // A stranger learns nothing more than a typo would tell.
            ActivationError::UnknownCredential(_) | ActivationError::NotEntitled => {
                Self::invalid_parameter("credentialID", "no such credential for this client")
            }
            ActivationError::NotUsable(_) => Self::invalid_parameter("credentialID", &error),
            ActivationError::Sad(_) => Self::invalid_parameter("SAD", &error),
            ActivationError::BadRequest(reason) => Self::invalid_request(reason.clone()),
            other => {
                if other.kind().http_status() >= 500 {
                    tracing::error!(error = %crate::error::chain(other), "CSC request failed");
                }
                Self::of_kind(other.kind(), other.to_string())
            }
        }
    }
}

impl From<SealError> for CscError {
    fn from(error: SealError) -> Self {
        match error {
            SealError::Activation(inner) => inner.into(),
            SealError::Invalid { field, reason } => Self::invalid_parameter(field, reason),
            SealError::SadRequired => Self::invalid_parameter(
                "SAD",
                "this credential is activated at SCAL2: authorize the hashes first",
            ),
            SealError::TimeStamp(refusal) if refusal.kind() == ErrorKind::Unavailable => {
                tracing::warn!(reason = %refusal, "a CSC time-stamp could not be obtained");
                Self::new(
                    503,
                    "temporarily_unavailable",
                    "the time-stamping authority could not time-stamp; nothing was signed",
                )
            }
            other => {
                if other.kind().http_status() >= 500 {
                    tracing::error!(error = %crate::error::chain(&other), "CSC request failed");
                }
                Self::of_kind(other.kind(), other.to_string())
            }
        }
    }
}

/// A digest algorithm named by its OID (`hashAlgorithmOID`, v1 `hashAlgo`).
pub fn digest_algorithm(oid: &str) -> Option<DigestAlgorithm> {
    DigestAlgorithm::from_oid(&ObjectIdentifier::new(oid).ok()?)
}

/// The digest algorithm whose digests are `len` bytes long (v1 `authorize`
/// sends hashes without naming their algorithm).
pub fn digest_algorithm_of_length(len: usize) -> Option<DigestAlgorithm> {
    DigestAlgorithm::ALL
        .into_iter()
        .find(|d| d.digest(b"").len() == len)
}

/// How `signAlgo` (and `signAlgoParams` for RSA-PSS) says to sign a digest
/// made with `digest`: a key-type OID (rsaEncryption, id-ecPublicKey), a
/// combined OID whose hash must be `digest` (sha256WithRSAEncryption,
/// ecdsa-with-SHA256, …), or RSASSA-PSS with MGF1 over the same hash and a
/// salt as long as the digest. The answer's digest is the one to use; the
/// caller checks it against the key.
pub fn signature_scheme(
    sign_algo: &str,
    params: Option<&str>,
    digest: Option<DigestAlgorithm>,
) -> Result<(DigestSignatureScheme, DigestAlgorithm), CscError> {
    let oid = ObjectIdentifier::new(sign_algo)
        .map_err(|_| CscError::invalid_parameter("signAlgo", "not an OID"))?;
    let combined = [
        (
            rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            DigestSignatureScheme::RsaPkcs1v15,
            DigestAlgorithm::Sha256,
        ),
        (
            rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            DigestSignatureScheme::RsaPkcs1v15,
            DigestAlgorithm::Sha384,
        ),
        (
            rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
            DigestSignatureScheme::RsaPkcs1v15,
            DigestAlgorithm::Sha512,
        ),
        (
            rfc5912::ECDSA_WITH_SHA_256,
            DigestSignatureScheme::Ecdsa,
            DigestAlgorithm::Sha256,
        ),
        (
            rfc5912::ECDSA_WITH_SHA_384,
            DigestSignatureScheme::Ecdsa,
            DigestAlgorithm::Sha384,
        ),
        (
            rfc5912::ECDSA_WITH_SHA_512,
            DigestSignatureScheme::Ecdsa,
            DigestAlgorithm::Sha512,
        ),
    ];
    let need_digest =
        || digest.ok_or_else(|| CscError::missing("hashAlgorithmOID (signAlgo names no hash)"));
    if let Some((_, scheme, implied)) = combined.iter().find(|(o, _, _)| *o == oid) {
        if params.is_some() {
            return Err(CscError::invalid_parameter(
                "signAlgoParams",
                "only RSASSA-PSS takes parameters",
            ));
        }
        if let Some(named) = digest
            && named != *implied
        {
            return Err(CscError::invalid_parameter(
                "hashAlgorithmOID",
                format!("signAlgo {oid} signs {} digests", implied.oid()),
            ));
        }
        return Ok((*scheme, *implied));
    }
    if oid == rfc5912::RSA_ENCRYPTION || oid == rfc5912::ID_EC_PUBLIC_KEY {
        if params.is_some() {
            return Err(CscError::invalid_parameter(
                "signAlgoParams",
                "only RSASSA-PSS takes parameters",
            ));
        }
        let scheme = if oid == rfc5912::RSA_ENCRYPTION {
            DigestSignatureScheme::RsaPkcs1v15
        } else {
            DigestSignatureScheme::Ecdsa
        };
        return Ok((scheme, need_digest()?));
    }
    if oid == ID_RSASSA_PSS {
        let params = params.ok_or_else(|| CscError::missing("signAlgoParams"))?;
        let named = pss_digest(params)?;
        if let Some(digest) = digest
            && digest != named
        {
            return Err(CscError::invalid_parameter(
                "signAlgoParams",
                "its hash is not the hash algorithm of the digests",
            ));
        }
        return Ok((DigestSignatureScheme::RsaPss, named));
    }
    Err(CscError::invalid_parameter(
        "signAlgo",
        format!("{oid} is not a signature algorithm this service uses"),
    ))
}

/// The hash of base64 DER RSASSA-PSS-params, which must use MGF1 with that
/// hash, a salt as long as its digest and the usual trailer.
fn pss_digest(params: &str) -> Result<DigestAlgorithm, CscError> {
    let bad = |why: &str| CscError::invalid_parameter("signAlgoParams", why);
    let der = base64::engine::general_purpose::STANDARD
        .decode(params.trim())
        .map_err(|_| bad("not base64"))?;
    let parsed =
        rsa::pkcs1::RsaPssParams::from_der(&der).map_err(|_| bad("not DER RSASSA-PSS-params"))?;
    let digest = digest_algorithm(&parsed.hash.oid.to_string())
        .ok_or_else(|| bad("its hash is not SHA-256, SHA-384 or SHA-512"))?;
    let mgf_hash = parsed
        .mask_gen
        .parameters
        .as_ref()
        .map(|p| p.oid.to_string());
    if parsed.mask_gen.oid != rfc5912::ID_MGF_1 || mgf_hash != Some(digest.oid().to_string()) {
        return Err(bad("the mask generation must be MGF1 with the same hash"));
    }
    if usize::from(parsed.salt_len) != digest.digest(b"").len() {
        return Err(bad("the salt must be as long as the digest"));
    }
    if parsed.trailer_field != rsa::pkcs1::TrailerField::BC {
        return Err(bad("the trailer field must be 1"));
    }
    Ok(digest)
}

/// A document seal's `signAlgo`: the algorithm the credential's key signs
/// documents with, or the bare key type; no parameters.
pub fn check_document_sign_algo(
    kind: PublicKeyKind,
    sign_algo: Option<&str>,
    params: Option<&str>,
) -> Result<(), CscError> {
    let sign_algo = sign_algo.ok_or_else(|| CscError::missing("signAlgo"))?;
    if params.is_some() {
        return Err(CscError::invalid_parameter(
            "signAlgoParams",
            "document seals are made with the key's own algorithm, which takes none",
        ));
    }
    let default = kind.default_signature_algorithm().oid();
    let key_type = match kind {
        PublicKeyKind::Rsa { .. } => rfc5912::RSA_ENCRYPTION,
        PublicKeyKind::EcP256 | PublicKeyKind::EcP384 => rfc5912::ID_EC_PUBLIC_KEY,
    };
    match ObjectIdentifier::new(sign_algo) {
        Ok(named) if named == default || named == key_type => Ok(()),
        _ => Err(CscError::invalid_parameter(
            "signAlgo",
            format!("this credential seals documents with {default}"),
        )),
    }
}

/// Only synchronous operation (`operationMode` absent or `S`) is offered.
pub fn check_synchronous(operation_mode: Option<&str>) -> Result<(), CscError> {
    match operation_mode {
        None | Some("S") => Ok(()),
        Some(_) => Err(CscError::invalid_parameter(
            "operationMode",
            "only synchronous (S) is offered",
        )),
    }
}

/// A conformance level as CSC v2 names it (any case).
pub fn conformance_level(text: Option<&str>) -> Result<Level, CscError> {
    let text = text.unwrap_or("Ades-B-B");
    CONFORMANCE_LEVELS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, level)| *level)
        .ok_or_else(|| {
            CscError::invalid_parameter(
                "conformance_level",
                format!("{text:?}: Ades-B-B, Ades-B-T, Ades-B-LT or Ades-B-LTA"),
            )
        })
}

/// The signature algorithm OIDs a key of `kind` signs with (`key.algo`):
/// the combined OIDs first, as pyHanko and DSS pick from them.
pub fn key_algorithms(kind: PublicKeyKind) -> Vec<String> {
    let oids: &[ObjectIdentifier] = match kind {
        PublicKeyKind::Rsa { .. } => &[
            rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
            ID_RSASSA_PSS,
            rfc5912::RSA_ENCRYPTION,
        ],
        PublicKeyKind::EcP256 | PublicKeyKind::EcP384 => &[
            rfc5912::ECDSA_WITH_SHA_256,
            rfc5912::ECDSA_WITH_SHA_384,
            rfc5912::ECDSA_WITH_SHA_512,
            rfc5912::ID_EC_PUBLIC_KEY,
        ],
    };
    oids.iter().map(ToString::to_string).collect()
}

/// Every signature algorithm this service signs with (`info.signAlgorithms`).
pub fn all_sign_algorithms() -> Vec<String> {
    let mut all = key_algorithms(PublicKeyKind::Rsa { bits: 3072 });
    all.extend(key_algorithms(PublicKeyKind::EcP256));
    all
}

/// A credential's key as `credentials/info` describes it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    /// `enabled` while the credential can sign.
    pub status: &'static str,
    pub algo: Vec<String>,
    pub len: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
}

/// A credential's certificate as `credentials/info` describes it.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateView {
    pub status: &'static str,
    /// Base64 DER, the credential's certificate first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<String>>,
    #[serde(rename = "issuerDN", skip_serializing_if = "Option::is_none")]
    pub issuer_dn: Option<String>,
    #[serde(rename = "serialNumber", skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(rename = "subjectDN", skip_serializing_if = "Option::is_none")]
    pub subject_dn: Option<String>,
    #[serde(rename = "validFrom", skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    #[serde(rename = "validTo", skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<String>,
}

/// Which certificates `credentials/info` and `credentials/list` return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certificates {
    None,
    Single,
    Chain,
}

impl Certificates {
    pub fn parse(text: Option<&str>) -> Result<Self, CscError> {
        match text.unwrap_or("single") {
            "none" => Ok(Self::None),
            "single" => Ok(Self::Single),
            "chain" => Ok(Self::Chain),
            other => Err(CscError::invalid_parameter(
                "certificates",
                format!("{other:?}: none, single or chain"),
            )),
        }
    }
}

/// One credential described: its key, its certificate, its SCAL.
#[derive(Debug, Clone)]
pub struct CredentialView {
    pub key: KeyView,
    pub cert: CertificateView,
    pub scal: u8,
    pub usable: bool,
}

/// Describes `credential` (its certificate, the CA chain above it when
/// `certificates` is `Chain`, and `cert_info` details) as CSC does.
pub fn describe(
    credential: &SealCredential,
    chain: &[Certificate],
    certificates: Certificates,
    cert_info: bool,
    scal: u8,
    now: OffsetDateTime,
) -> Result<CredentialView, CscError> {
    let internal = |e: String| {
        tracing::error!(error = %e, credential = %credential.id, "describing a credential");
        CscError::of_kind(ErrorKind::Internal, "")
    };
    let der = credential
        .certificate
        .as_ref()
        .ok_or_else(|| internal("no certificate".to_owned()))?;
    let certificate = Certificate::from_der(der).map_err(|e| internal(e.to_string()))?;
    let tbs = &certificate.tbs_certificate;
    let kind =
        PublicKeyKind::of(&tbs.subject_public_key_info).map_err(|e| internal(e.to_string()))?;
    let (len, curve) = match kind {
        PublicKeyKind::Rsa { bits } => (u32::try_from(bits).unwrap_or(u32::MAX), None),
        PublicKeyKind::EcP256 => (256, Some(rfc5912::SECP_256_R_1.to_string())),
        PublicKeyKind::EcP384 => (384, Some(rfc5912::SECP_384_R_1.to_string())),
    };
    let not_before = OffsetDateTime::from(tbs.validity.not_before.to_system_time());
    let not_after = OffsetDateTime::from(tbs.validity.not_after.to_system_time());
    let cert_status = match credential.status {
        CredentialStatus::Revoked => "revoked",
        _ if now >= not_after => "expired",
        _ if now < not_before => "invalid",
        _ => "valid",
    };
    let usable = credential.status == CredentialStatus::Active && cert_status == "valid";
    let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
    let listed = match certificates {
        Certificates::None => None,
        Certificates::Single => Some(vec![b64(der)]),
        Certificates::Chain => {
            let mut all = vec![b64(der)];
            for ca in chain {
                all.push(b64(&ca.to_der().map_err(|e| internal(e.to_string()))?));
            }
            Some(all)
        }
    };
    let info = |value: String| cert_info.then_some(value);
    Ok(CredentialView {
        key: KeyView {
            status: if usable { "enabled" } else { "disabled" },
            algo: key_algorithms(kind),
            len,
            curve,
        },
        cert: CertificateView {
            status: cert_status,
            certificates: listed,
            issuer_dn: info(tbs.issuer.to_string()),
            serial_number: info(hex::encode(tbs.serial_number.as_bytes())),
            subject_dn: info(tbs.subject.to_string()),
            valid_from: info(format::generalized_time(not_before)),
            valid_to: info(format::generalized_time(not_after)),
        },
        scal,
        usable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_algorithms_name_their_scheme_and_hash() {
        let sha256 = Some(DigestAlgorithm::Sha256);
        assert_eq!(
            signature_scheme("1.2.840.10045.4.3.2", None, sha256).unwrap(),
            (DigestSignatureScheme::Ecdsa, DigestAlgorithm::Sha256)
        );
        assert_eq!(
            signature_scheme("1.2.840.113549.1.1.1", None, sha256).unwrap(),
            (DigestSignatureScheme::RsaPkcs1v15, DigestAlgorithm::Sha256)
        );
        // A combined OID implies its hash; a different one named beside it is refused.
        assert!(signature_scheme("1.2.840.10045.4.3.3", None, sha256).is_err());
        assert_eq!(
            signature_scheme("1.2.840.10045.4.3.3", None, None)
                .unwrap()
                .1,
            DigestAlgorithm::Sha384
        );
        // A key-type OID needs the hash named.
        assert!(signature_scheme("1.2.840.10045.2.1", None, None).is_err());
        assert!(signature_scheme("1.2.3", None, sha256).is_err());
        assert!(signature_scheme("not an oid", None, sha256).is_err());
        assert!(signature_scheme("1.2.840.113549.1.1.10", None, sha256).is_err());
    }

    #[test]
    fn pss_parameters_must_match_the_digest() {
        use der::asn1::AnyRef;
        use spki::AlgorithmIdentifierRef;
        let params = |hash: ObjectIdentifier, salt: u8| {
            let hash_id = AlgorithmIdentifierRef {
                oid: hash,
                parameters: Some(AnyRef::NULL),
            };
            let encoded = rsa::pkcs1::RsaPssParams {
                hash: hash_id,
                mask_gen: spki::AlgorithmIdentifier {
                    oid: rfc5912::ID_MGF_1,
                    parameters: Some(hash_id),
                },
                salt_len: salt,
                trailer_field: rsa::pkcs1::TrailerField::BC,
            }
            .to_der()
            .unwrap();
            base64::engine::general_purpose::STANDARD.encode(encoded)
        };
        let good = params(rfc5912::ID_SHA_256, 32);
        assert_eq!(
            signature_scheme(
                "1.2.840.113549.1.1.10",
                Some(&good),
                Some(DigestAlgorithm::Sha256)
            )
            .unwrap(),
            (DigestSignatureScheme::RsaPss, DigestAlgorithm::Sha256)
        );
        let short_salt = params(rfc5912::ID_SHA_256, 20);
        assert!(signature_scheme("1.2.840.113549.1.1.10", Some(&short_salt), None).is_err());
        assert!(
            signature_scheme(
                "1.2.840.113549.1.1.10",
                Some(&good),
                Some(DigestAlgorithm::Sha384)
            )
            .is_err()
        );
        assert!(signature_scheme("1.2.840.113549.1.1.10", Some("%%"), None).is_err());
    }

    #[test]
    fn conformance_levels_read_in_any_case() {
        assert_eq!(conformance_level(None).unwrap(), Level::BB);
        assert_eq!(conformance_level(Some("AdES-B-LT")).unwrap(), Level::BLt);
        assert_eq!(conformance_level(Some("Ades-B-LTA")).unwrap(), Level::BLta);
        assert!(conformance_level(Some("Ades-LTA")).is_err());
    }

    #[test]
    fn certificate_dates_are_generalized_time() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(format::generalized_time(at), "20270115080000Z");
    }
}
