//! Key pairs in a token: the algorithms we generate, their attribute templates
//! (sensitive, never extractable, sign only), and reading their public halves.

use std::fmt;
use std::str::FromStr;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use der::{Decode, Encode};
use rand::RngCore;
use spki::SubjectPublicKeyInfoOwned;

use super::HsmError;
use super::pool::{AttemptError, TokenPool};
use crate::crypto::{
    self, DigestAlgorithm, DigestSignatureScheme, PublicKeyKind, SignatureAlgorithm,
};

/// The key types sceau generates in a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum KeyAlgorithm {
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
    #[serde(rename = "ec-p256")]
    EcP256,
    #[serde(rename = "ec-p384")]
    EcP384,
}

impl KeyAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
            Self::EcP256 => "ec-p256",
            Self::EcP384 => "ec-p384",
        }
    }

    /// The signature algorithm sceau uses with keys of this type.
    pub fn signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            Self::Rsa3072 | Self::Rsa4096 => SignatureAlgorithm::RsaPkcs1Sha256,
            Self::EcP256 => SignatureAlgorithm::EcdsaSha256,
            Self::EcP384 => SignatureAlgorithm::EcdsaSha384,
        }
    }

    /// The generated key type a public key is, if any (RSA of other sizes is not).
    pub fn of(kind: PublicKeyKind) -> Option<Self> {
        match kind {
            PublicKeyKind::Rsa { bits: 3072 } => Some(Self::Rsa3072),
            PublicKeyKind::Rsa { bits: 4096 } => Some(Self::Rsa4096),
            PublicKeyKind::EcP256 => Some(Self::EcP256),
            PublicKeyKind::EcP384 => Some(Self::EcP384),
            PublicKeyKind::Rsa { .. } => None,
        }
    }

    /// DER of the named curve OID, as CKA_EC_PARAMS wants it.
    fn ec_params(self) -> Option<Vec<u8>> {
        match self {
            Self::EcP256 => Some(vec![
                0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
            ]),
            Self::EcP384 => Some(vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]),
            _ => None,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [Self::Rsa3072, Self::Rsa4096, Self::EcP256, Self::EcP384]
            .into_iter()
            .find(|alg| alg.name() == text)
            .ok_or_else(|| {
                format!("unknown key algorithm {text:?} (rsa-3072, rsa-4096, ec-p256, ec-p384)")
            })
    }
}

/// The CKA_ID sceau gives a key pair: 16 random bytes, printed in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 16]);

impl KeyId {
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(text).map_err(|_| format!("key id {text:?} is not hex"))?;
        Self::from_bytes(&bytes).ok_or_else(|| format!("key id {text:?} is not 16 bytes"))
    }
}

/// A key pair held in a token: where it is, what it is, and its public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmKey {
    pub id: KeyId,
    pub label: String,
    pub token: String,
    pub algorithm: KeyAlgorithm,
    pub public_key: SubjectPublicKeyInfoOwned,
}

pub(super) fn generate(
    pool: &TokenPool,
    session: &Session,
    id: KeyId,
    label: &str,
    algorithm: KeyAlgorithm,
) -> Result<HsmKey, AttemptError> {
    let common_public = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Derive(false),
        Attribute::Id(id.0.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    // The private half may only sign, and can never be read or exported.
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Id(id.0.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let (mechanism, mut public) = match algorithm {
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            let bits = if algorithm == KeyAlgorithm::Rsa3072 {
                3072
            } else {
                4096
            };
            (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits(cryptoki::types::Ulong::from(bits)),
                    Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                ],
            )
        }
        KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
            let params = algorithm.ec_params().ok_or_else(|| {
                AttemptError::Fatal(HsmError::Worker("EC algorithm without curve".to_owned()))
            })?;
            (Mechanism::EccKeyPairGen, vec![Attribute::EcParams(params)])
        }
    };
    public.extend(common_public);
    session.generate_key_pair(&mechanism, &public, &private)?;
    let key = read(pool, session, id)?;
    if key.algorithm != algorithm {
        return Err(AttemptError::Fatal(HsmError::UnusableKey {
            id,
            token: pool.token_label().to_owned(),
            reason: format!("asked for {algorithm}, token made {}", key.algorithm),
        }));
    }
    tracing::info!(token = %pool.token_label(), key_id = %id, label, algorithm = %algorithm, "key pair generated in the HSM");
    Ok(key)
}

/// Reads the public key object with `id` and builds its SPKI.
pub(super) fn read(pool: &TokenPool, session: &Session, id: KeyId) -> Result<HsmKey, AttemptError> {
    let unusable = |reason: String| {
        AttemptError::Fatal(HsmError::UnusableKey {
            id,
            token: pool.token_label().to_owned(),
            reason,
        })
    };
    let handles = session.find_objects(&[
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::Id(id.0.to_vec()),
    ])?;
    let handle = *handles.first().ok_or(AttemptError::KeyMissing(id))?;
    let attributes = session.get_attributes(
        handle,
        &[
            AttributeType::KeyType,
            AttributeType::Label,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
            AttributeType::EcParams,
            AttributeType::EcPoint,
        ],
    )?;
    let mut key_type = None;
    let mut label = String::new();
    let (mut modulus, mut exponent, mut params, mut point) = (None, None, None, None);
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Label(bytes) => label = String::from_utf8_lossy(&bytes).into_owned(),
            Attribute::Modulus(bytes) => modulus = Some(bytes),
            Attribute::PublicExponent(bytes) => exponent = Some(bytes),
            Attribute::EcParams(bytes) => params = Some(bytes),
            Attribute::EcPoint(bytes) => point = Some(bytes),
            _ => {}
        }
    }
    let spki_der = match key_type {
        Some(KeyType::RSA) => {
            use rsa::pkcs8::EncodePublicKey;
            let (Some(n), Some(e)) = (modulus, exponent) else {
                return Err(unusable(
                    "RSA public key without modulus or exponent".to_owned(),
                ));
            };
            let key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&n),
                rsa::BigUint::from_bytes_be(&e),
            )
            .map_err(|e| unusable(e.to_string()))?;
            key.to_public_key_der()
                .map_err(|e| unusable(e.to_string()))?
                .into_vec()
        }
        Some(KeyType::EC) => {
            let (Some(params), Some(point)) = (params, point) else {
                return Err(unusable("EC public key without params or point".to_owned()));
            };
            ec_spki_der(&params, &point).map_err(unusable)?
        }
        other => return Err(unusable(format!("unsupported key type {other:?}"))),
    };
    let public_key = crypto::spki_from_der(&spki_der).map_err(|e| unusable(e.to_string()))?;
    let kind = PublicKeyKind::of(&public_key).map_err(|e| unusable(e.to_string()))?;
    let algorithm =
        KeyAlgorithm::of(kind).ok_or_else(|| unusable(format!("unsupported key {kind:?}")))?;
    Ok(HsmKey {
        id,
        label,
        token: pool.token_label().to_owned(),
        algorithm,
        public_key,
    })
}

/// Builds an EC SPKI from CKA_EC_PARAMS and CKA_EC_POINT. SoftHSM wraps the point
/// in a DER OCTET STRING; some HSMs return it raw: accept both.
fn ec_spki_der(params: &[u8], point: &[u8]) -> Result<Vec<u8>, String> {
    let curve = const_oid::ObjectIdentifier::from_der(params)
        .map_err(|e| format!("EC params are not a named curve: {e}"))?;
    let raw_point = match der::asn1::OctetString::from_der(point) {
        Ok(inner) if inner.as_bytes().first() == Some(&0x04) => inner.as_bytes().to_vec(),
        _ => point.to_vec(),
    };
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
            parameters: Some(der::Any::from(&curve)),
        },
        subject_public_key: der::asn1::BitString::from_bytes(&raw_point)
            .map_err(|e| e.to_string())?,
    };
    spki.to_der().map_err(|e| e.to_string())
}

pub(super) fn key_id_of(
    session: &Session,
    handle: ObjectHandle,
) -> Result<Option<KeyId>, AttemptError> {
    let attributes = session.get_attributes(handle, &[AttributeType::Id])?;
    Ok(attributes
        .into_iter()
        .find_map(|attribute| match attribute {
            Attribute::Id(bytes) => KeyId::from_bytes(&bytes),
            _ => None,
        }))
}

/// RSA: PKCS#1 v1.5 over the DigestInfo (so the HSM only needs CKM_RSA_PKCS);
/// ECDSA: CKM_ECDSA over the digest, raw r‖s turned into DER.
pub(super) fn sign_digest(
    session: &Session,
    handle: ObjectHandle,
    algorithm: SignatureAlgorithm,
    digest: &[u8],
) -> Result<Vec<u8>, AttemptError> {
    let expected = algorithm.digest().digest(b"").len();
    if digest.len() != expected {
        return Err(AttemptError::Fatal(HsmError::Worker(format!(
            "digest is {} bytes, {algorithm:?} needs {expected}",
            digest.len()
        ))));
    }
    let scheme = if algorithm.is_rsa() {
        DigestSignatureScheme::RsaPkcs1v15
    } else {
        DigestSignatureScheme::Ecdsa
    };
    sign_prehashed(session, handle, scheme, algorithm.digest(), digest)
}

/// Signs a digest the client made (CSC `signHash`) with the scheme it asked
/// for: PKCS#1 v1.5 over the DigestInfo, RSA-PSS (CKM_RSA_PKCS_PSS, MGF1 with
/// the same hash, salt as long as the digest) or ECDSA (raw r‖s turned into
/// DER). The digest's length was checked by the caller.
pub(super) fn sign_prehashed(
    session: &Session,
    handle: ObjectHandle,
    scheme: DigestSignatureScheme,
    digest_algorithm: DigestAlgorithm,
    digest: &[u8],
) -> Result<Vec<u8>, AttemptError> {
    use cryptoki::mechanism::MechanismType;
    use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
    match scheme {
        DigestSignatureScheme::RsaPkcs1v15 => {
            let mut digest_info = digest_algorithm.pkcs1_digest_info_prefix().to_vec();
            digest_info.extend_from_slice(digest);
            Ok(session.sign(&Mechanism::RsaPkcs, handle, &digest_info)?)
        }
        DigestSignatureScheme::RsaPss => {
            let (hash_alg, mgf) = match digest_algorithm {
                DigestAlgorithm::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
                DigestAlgorithm::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
                DigestAlgorithm::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
            };
            let params = PkcsPssParams {
                hash_alg,
                mgf,
                s_len: (digest.len() as u64).into(),
            };
            Ok(session.sign(&Mechanism::RsaPkcsPss(params), handle, digest)?)
        }
        DigestSignatureScheme::Ecdsa => {
            let raw = session.sign(&Mechanism::Ecdsa, handle, digest)?;
            crypto::ecdsa_raw_to_der(&raw)
                .map_err(|_| AttemptError::Fatal(HsmError::SignatureCheckFailed))
        }
    }
}
