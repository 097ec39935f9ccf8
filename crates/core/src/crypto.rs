//! Software-side public-key checks: signature algorithms we use, and verification
//! of signatures against a SubjectPublicKeyInfo (never any private-key operation).

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::{Decode, Encode};
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::error::{ErrorKind, HasErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("public key is not a supported RSA or EC (P-256, P-384) key")]
    UnsupportedKey,
    #[error("public key is malformed: {0}")]
    MalformedKey(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("signature is malformed")]
    MalformedSignature,
}

impl HasErrorKind for CryptoError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// The signature algorithms sceau signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    EcdsaSha256,
    EcdsaSha384,
}

/// Whatever signs a message with one key: a key in the HSM, or a software key
/// in benches and tests. The signature is DER for ECDSA, raw for RSA.
pub trait MessageSigner {
    fn algorithm(&self) -> SignatureAlgorithm;
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String>;

    /// Signs a digest the client made (CSC `signHash`), checked against the
    /// public key before it is returned. Signers that only ever sign whole
    /// messages (benches, software test keys) refuse.
    fn sign_digest(
        &self,
        scheme: DigestSignatureScheme,
        digest_algorithm: DigestAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, String> {
        let _ = (scheme, digest_algorithm, digest);
        Err("this signer does not sign bare digests".to_owned())
    }
}

/// The digest algorithms used with [`SignatureAlgorithm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    pub const ALL: [Self; 3] = [Self::Sha256, Self::Sha384, Self::Sha512];

    /// The algorithm an OID names, if it is one of ours.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.oid() == *oid)
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha384 => Sha384::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha256 => rfc5912::ID_SHA_256,
            Self::Sha384 => rfc5912::ID_SHA_384,
            Self::Sha512 => rfc5912::ID_SHA_512,
        }
    }

    /// The DER DigestInfo prefix that PKCS#1 v1.5 puts before the digest (RFC 8017 §9.2).
    pub fn pkcs1_digest_info_prefix(self) -> &'static [u8] {
        match self {
            Self::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Self::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Self::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

impl SignatureAlgorithm {
    pub fn digest(self) -> DigestAlgorithm {
        match self {
            Self::RsaPkcs1Sha256 | Self::EcdsaSha256 => DigestAlgorithm::Sha256,
            Self::RsaPkcs1Sha384 | Self::EcdsaSha384 => DigestAlgorithm::Sha384,
            Self::RsaPkcs1Sha512 => DigestAlgorithm::Sha512,
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            Self::RsaPkcs1Sha256 | Self::RsaPkcs1Sha384 | Self::RsaPkcs1Sha512
        )
    }

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::RsaPkcs1Sha256 => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            Self::RsaPkcs1Sha384 => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            Self::RsaPkcs1Sha512 => rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
            Self::EcdsaSha256 => rfc5912::ECDSA_WITH_SHA_256,
            Self::EcdsaSha384 => rfc5912::ECDSA_WITH_SHA_384,
        }
    }

    /// The AlgorithmIdentifier as X.509 and CMS write it: NULL parameters for RSA
    /// (RFC 4055 §5), absent parameters for ECDSA (RFC 5758 §3.2).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        let parameters = if self.is_rsa() {
            Some(der::asn1::Null.into())
        } else {
            None
        };
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters,
        }
    }

    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        [
            Self::RsaPkcs1Sha256,
            Self::RsaPkcs1Sha384,
            Self::RsaPkcs1Sha512,
            Self::EcdsaSha256,
            Self::EcdsaSha384,
        ]
        .into_iter()
        .find(|alg| alg.oid() == *oid)
    }
}

/// The kind of public key inside an SPKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKeyKind {
    Rsa { bits: usize },
    EcP256,
    EcP384,
}

impl PublicKeyKind {
    pub fn of(spki: &SubjectPublicKeyInfoOwned) -> Result<Self, CryptoError> {
        if spki.algorithm.oid == rfc5912::RSA_ENCRYPTION {
            use rsa::traits::PublicKeyParts;
            let key = rsa_key(spki)?;
            return Ok(Self::Rsa {
                bits: key.n().bits(),
            });
        }
        if spki.algorithm.oid == rfc5912::ID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or(CryptoError::UnsupportedKey)?;
            if curve == rfc5912::SECP_256_R_1 {
                return Ok(Self::EcP256);
            }
            if curve == rfc5912::SECP_384_R_1 {
                return Ok(Self::EcP384);
            }
        }
        Err(CryptoError::UnsupportedKey)
    }

    /// The signature algorithm sceau uses by default with this key.
    pub fn default_signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            Self::Rsa { .. } => SignatureAlgorithm::RsaPkcs1Sha256,
            Self::EcP256 => SignatureAlgorithm::EcdsaSha256,
            Self::EcP384 => SignatureAlgorithm::EcdsaSha384,
        }
    }
}

/// The largest RSA modulus sceau parses (the rsa crate's default stops at 4096).
pub const MAX_RSA_MODULUS_BITS: usize = 8192;

fn rsa_key(spki: &SubjectPublicKeyInfoOwned) -> Result<rsa::RsaPublicKey, CryptoError> {
    let (modulus, exponent) = rsa_components(spki)?;
    rsa::RsaPublicKey::new_with_max_size(
        rsa::BigUint::from_bytes_be(modulus),
        rsa::BigUint::from_bytes_be(exponent),
        MAX_RSA_MODULUS_BITS,
    )
    .map_err(|e| CryptoError::MalformedKey(e.to_string()))
}

/// The big-endian modulus and public exponent of an RSA SPKI, unchecked.
pub fn rsa_components(spki: &SubjectPublicKeyInfoOwned) -> Result<(&[u8], &[u8]), CryptoError> {
    let key = rsa::pkcs1::RsaPublicKey::from_der(spki.subject_public_key.raw_bytes())
        .map_err(|e| CryptoError::MalformedKey(e.to_string()))?;
    Ok((key.modulus.as_bytes(), key.public_exponent.as_bytes()))
}

/// Verifies `signature` (DER for ECDSA, raw for RSA) over `message` with the key in `spki`.
pub fn verify(
    spki: &SubjectPublicKeyInfoOwned,
    algorithm: SignatureAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let kind = PublicKeyKind::of(spki)?;
    let point = spki.subject_public_key.raw_bytes();
    match (kind, algorithm) {
        // ring for the keys it takes (2048 to 8192 bits): its RSA verification
        // is several times faster than the rsa crate's, which keeps the rest.
        (PublicKeyKind::Rsa { bits }, alg) if alg.is_rsa() && (2048..=8192).contains(&bits) => {
            let ring_algorithm: &ring::signature::RsaParameters = match alg.digest() {
                DigestAlgorithm::Sha256 => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                DigestAlgorithm::Sha384 => &ring::signature::RSA_PKCS1_2048_8192_SHA384,
                DigestAlgorithm::Sha512 => &ring::signature::RSA_PKCS1_2048_8192_SHA512,
            };
            // The SPKI's bit string is the DER RSAPublicKey ring reads.
            ring::signature::UnparsedPublicKey::new(ring_algorithm, point)
                .verify(message, signature)
                .map_err(|_| CryptoError::BadSignature)
        }
        (PublicKeyKind::Rsa { .. }, alg) if alg.is_rsa() => verify_digest(
            spki,
            DigestSignatureScheme::RsaPkcs1v15,
            alg.digest(),
            &alg.digest().digest(message),
            signature,
        ),
        // ECDSA over either curve with any of our hashes (CSRs from OpenSSL sign
        // P-384 keys with SHA-256 by default). ring's assembly verifies several
        // times faster than RustCrypto's field arithmetic (every seal and fresh
        // OCSP answer is verified once before it leaves); it has no SHA-512
        // variant, which RustCrypto keeps.
        (PublicKeyKind::EcP256 | PublicKeyKind::EcP384, alg)
            // ring takes uncompressed points only; RustCrypto reads the others.
            if !alg.is_rsa() && point.first() == Some(&0x04) && ring_ecdsa(kind, alg.digest()).is_some() =>
        {
            let Some(ring_algorithm) = ring_ecdsa(kind, alg.digest()) else {
                return Err(CryptoError::UnsupportedKey);
            };
            ring::signature::UnparsedPublicKey::new(ring_algorithm, point)
                .verify(message, signature)
                .map_err(|_| CryptoError::BadSignature)
        }
        (PublicKeyKind::EcP256 | PublicKeyKind::EcP384, alg) if !alg.is_rsa() => verify_digest(
            spki,
            DigestSignatureScheme::Ecdsa,
            alg.digest(),
            &alg.digest().digest(message),
            signature,
        ),
        _ => Err(CryptoError::UnsupportedKey),
    }
}

/// How a bare digest is signed when the client hashed the data itself (CSC
/// `signatures/signHash`): the padding or curve scheme, with the digest's
/// algorithm beside it. RSA-PSS uses MGF1 with the same hash and a salt as
/// long as the digest (RFC 8017 §9.1; what CSC clients send as signAlgoParams).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestSignatureScheme {
    RsaPkcs1v15,
    RsaPss,
    Ecdsa,
}

impl DigestSignatureScheme {
    /// Whether a key of `kind` signs with this scheme.
    pub fn fits(self, kind: PublicKeyKind) -> bool {
        matches!(
            (self, kind),
            (Self::RsaPkcs1v15 | Self::RsaPss, PublicKeyKind::Rsa { .. })
                | (Self::Ecdsa, PublicKeyKind::EcP256 | PublicKeyKind::EcP384)
        )
    }
}

/// Verifies `signature` over a digest the signer never saw the data of: DER
/// for ECDSA, raw for RSA. RustCrypto's prehash verifiers take the digest as
/// it is (ring only verifies whole messages).
pub fn verify_digest(
    spki: &SubjectPublicKeyInfoOwned,
    scheme: DigestSignatureScheme,
    digest_algorithm: DigestAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    use signature::hazmat::PrehashVerifier;
    if digest.len() != digest_algorithm.digest(b"").len() {
        return Err(CryptoError::BadSignature);
    }
    let kind = PublicKeyKind::of(spki)?;
    if !scheme.fits(kind) {
        return Err(CryptoError::UnsupportedKey);
    }
    let point = spki.subject_public_key.raw_bytes();
    match (scheme, kind) {
        (DigestSignatureScheme::RsaPkcs1v15, _) => {
            let padding = match digest_algorithm {
                DigestAlgorithm::Sha256 => rsa::Pkcs1v15Sign::new::<Sha256>(),
                DigestAlgorithm::Sha384 => rsa::Pkcs1v15Sign::new::<Sha384>(),
                DigestAlgorithm::Sha512 => rsa::Pkcs1v15Sign::new::<Sha512>(),
            };
            rsa_key(spki)?
                .verify(padding, digest, signature)
                .map_err(|_| CryptoError::BadSignature)
        }
        (DigestSignatureScheme::RsaPss, _) => {
            let key = rsa_key(spki)?;
            let salt = digest.len();
            let padding = match digest_algorithm {
                DigestAlgorithm::Sha256 => rsa::Pss::new_with_salt::<Sha256>(salt),
                DigestAlgorithm::Sha384 => rsa::Pss::new_with_salt::<Sha384>(salt),
                DigestAlgorithm::Sha512 => rsa::Pss::new_with_salt::<Sha512>(salt),
            };
            key.verify(padding, digest, signature)
                .map_err(|_| CryptoError::BadSignature)
        }
        (DigestSignatureScheme::Ecdsa, PublicKeyKind::EcP256) => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|e| CryptoError::MalformedKey(e.to_string()))?;
            let sig = p256::ecdsa::Signature::from_der(signature)
                .map_err(|_| CryptoError::MalformedSignature)?;
            key.verify_prehash(digest, &sig)
                .map_err(|_| CryptoError::BadSignature)
        }
        (DigestSignatureScheme::Ecdsa, _) => {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|e| CryptoError::MalformedKey(e.to_string()))?;
            let sig = p384::ecdsa::Signature::from_der(signature)
                .map_err(|_| CryptoError::MalformedSignature)?;
            key.verify_prehash(digest, &sig)
                .map_err(|_| CryptoError::BadSignature)
        }
    }
}

/// ring's ECDSA verification for a curve and hash, where it has one.
fn ring_ecdsa(
    kind: PublicKeyKind,
    digest: DigestAlgorithm,
) -> Option<&'static ring::signature::EcdsaVerificationAlgorithm> {
    use ring::signature::{
        ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA384_ASN1, ECDSA_P384_SHA256_ASN1,
        ECDSA_P384_SHA384_ASN1,
    };
    match (kind, digest) {
        (PublicKeyKind::EcP256, DigestAlgorithm::Sha256) => Some(&ECDSA_P256_SHA256_ASN1),
        (PublicKeyKind::EcP256, DigestAlgorithm::Sha384) => Some(&ECDSA_P256_SHA384_ASN1),
        (PublicKeyKind::EcP384, DigestAlgorithm::Sha256) => Some(&ECDSA_P384_SHA256_ASN1),
        (PublicKeyKind::EcP384, DigestAlgorithm::Sha384) => Some(&ECDSA_P384_SHA384_ASN1),
        _ => None,
    }
}

/// Turns a PKCS#11 raw ECDSA signature (r ‖ s, each the curve size) into DER `ECDSA-Sig-Value`.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if raw.is_empty() || raw.len() % 2 != 0 {
        return Err(CryptoError::MalformedSignature);
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let r = der::asn1::UintRef::new(r).map_err(|_| CryptoError::MalformedSignature)?;
    let s = der::asn1::UintRef::new(s).map_err(|_| CryptoError::MalformedSignature)?;
    let sequence = EcdsaSigValue { r, s };
    sequence
        .to_der()
        .map_err(|_| CryptoError::MalformedSignature)
}

#[derive(der::Sequence)]
struct EcdsaSigValue<'a> {
    r: der::asn1::UintRef<'a>,
    s: der::asn1::UintRef<'a>,
}

/// SHA-256 of a DER-encoded SPKI: the stable identifier sceau gives a public key.
pub fn spki_sha256(spki: &SubjectPublicKeyInfoOwned) -> Result<[u8; 32], CryptoError> {
    let der = spki
        .to_der()
        .map_err(|e| CryptoError::MalformedKey(e.to_string()))?;
    Ok(Sha256::digest(&der).into())
}

/// Parses a DER SPKI.
pub fn spki_from_der(der: &[u8]) -> Result<SubjectPublicKeyInfoOwned, CryptoError> {
    SubjectPublicKeyInfoOwned::from_der(der).map_err(|e| CryptoError::MalformedKey(e.to_string()))
}

/// A DER certificate as PEM (`CERTIFICATE`, LF line endings).
pub fn certificate_pem(der: &[u8]) -> String {
    // Encoding bytes as PEM only fails on a length overflow, which a
    // certificate held in memory cannot reach; an empty string is then returned.
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::EncodePublicKey;
    use signature::Signer;

    #[test]
    fn ecdsa_raw_signature_converts_to_der_that_verifies() {
        let key = p256::ecdsa::SigningKey::random(&mut rand::thread_rng());
        let sig: p256::ecdsa::Signature = key.sign(b"hello");
        let der = ecdsa_raw_to_der(&sig.to_bytes()).unwrap();
        assert_eq!(der, sig.to_der().as_bytes());
        let spki_der = key.verifying_key().to_public_key_der().unwrap();
        let spki = spki_from_der(spki_der.as_bytes()).unwrap();
        assert_eq!(PublicKeyKind::of(&spki).unwrap(), PublicKeyKind::EcP256);
        verify(&spki, SignatureAlgorithm::EcdsaSha256, b"hello", &der).unwrap();
        assert!(verify(&spki, SignatureAlgorithm::EcdsaSha256, b"hellO", &der).is_err());
    }

    #[test]
    fn ecdsa_verifies_on_both_curves_whichever_implementation_runs() {
        use signature::hazmat::PrehashSigner;
        // P-384 with SHA-256 and SHA-384 (ring), P-256 with SHA-384 (ring).
        let p384 = p384::ecdsa::SigningKey::random(&mut rand::thread_rng());
        let spki =
            spki_from_der(p384.verifying_key().to_public_key_der().unwrap().as_bytes()).unwrap();
        for alg in [
            SignatureAlgorithm::EcdsaSha256,
            SignatureAlgorithm::EcdsaSha384,
        ] {
            let digest = alg.digest().digest(b"document");
            let sig: p384::ecdsa::Signature = p384.sign_prehash(&digest).unwrap();
            let der = sig.to_der();
            verify(&spki, alg, b"document", der.as_bytes()).unwrap();
            assert!(matches!(
                verify(&spki, alg, b"Document", der.as_bytes()),
                Err(CryptoError::BadSignature)
            ));
        }
        // A compressed point: ring cannot read it, RustCrypto does.
        let p256 = p256::ecdsa::SigningKey::random(&mut rand::thread_rng());
        let sig: p256::ecdsa::Signature = p256.sign(b"hello");
        let compressed = p256.verifying_key().to_encoded_point(true);
        let mut spki =
            spki_from_der(p256.verifying_key().to_public_key_der().unwrap().as_bytes()).unwrap();
        spki.subject_public_key = der::asn1::BitString::from_bytes(compressed.as_bytes()).unwrap();
        let der = sig.to_der();
        verify(
            &spki,
            SignatureAlgorithm::EcdsaSha256,
            b"hello",
            der.as_bytes(),
        )
        .unwrap();
        assert!(
            verify(
                &spki,
                SignatureAlgorithm::EcdsaSha256,
                b"hellO",
                der.as_bytes()
            )
            .is_err()
        );
    }

    #[test]
    fn rsa_verifies_with_ring_and_below_its_range_with_the_rsa_crate() {
        use rsa::pkcs1v15::SigningKey;
        use rsa::pkcs8::EncodePublicKey as _;
        use signature::{SignatureEncoding, Signer as _};
        for bits in [1024, 2048] {
            let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits).unwrap();
            let spki_der = private.to_public_key().to_public_key_der().unwrap();
            let spki = spki_from_der(spki_der.as_bytes()).unwrap();
            assert_eq!(
                PublicKeyKind::of(&spki).unwrap(),
                PublicKeyKind::Rsa { bits }
            );
            let signer = SigningKey::<Sha256>::new(private);
            let signature = signer.sign(b"document").to_vec();
            verify(
                &spki,
                SignatureAlgorithm::RsaPkcs1Sha256,
                b"document",
                &signature,
            )
            .unwrap();
            assert!(matches!(
                verify(
                    &spki,
                    SignatureAlgorithm::RsaPkcs1Sha256,
                    b"Document",
                    &signature
                ),
                Err(CryptoError::BadSignature)
            ));
        }
    }

    #[test]
    fn digest_info_prefixes_match_der() {
        for (alg, len) in [
            (DigestAlgorithm::Sha256, 32),
            (DigestAlgorithm::Sha384, 48),
            (DigestAlgorithm::Sha512, 64),
        ] {
            let prefix = alg.pkcs1_digest_info_prefix();
            // The outer SEQUENCE length covers the AlgorithmIdentifier and the digest.
            assert_eq!(prefix[1] as usize + 2, prefix.len() + len);
            assert_eq!(*prefix.last().unwrap() as usize, len);
        }
    }
}
