//! The CAs the responder answers for, and how a CertID names one of their
//! certificates (its hash algorithm, the issuer's name and key hashes).

use super::*;

/// A CA this responder answers for.
#[derive(Debug, Clone)]
pub struct ServedCa {
    /// `issuing`.
    pub purpose: String,
    /// Hex of the CA certificate's serial (its termination is recorded under it).
    pub serial: String,
    pub(super) name_sha1: Vec<u8>,
    pub(super) key_sha1: Vec<u8>,
    pub(super) name_sha256: Vec<u8>,
    pub(super) key_sha256: Vec<u8>,
    /// The CA certificate's notBefore (EN 319 411-2: status is kept past expiry).
    pub(super) archive_cutoff: OcspGeneralizedTime,
}

impl ServedCa {
    pub fn new(purpose: &str, certificate: &Certificate) -> Result<Self, OcspError> {
        let name = certificate
            .tbs_certificate
            .subject
            .to_der()
            .map_err(|e| OcspError::Certificate("CA", e.to_string()))?;
        let key = certificate
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        let not_before = certificate
            .tbs_certificate
            .validity
            .not_before
            .to_system_time();
        Ok(Self {
            purpose: purpose.to_owned(),
            serial: hex::encode(certificate.tbs_certificate.serial_number.as_bytes()),
            name_sha1: Sha1::digest(&name).to_vec(),
            key_sha1: Sha1::digest(key).to_vec(),
            name_sha256: Sha256::digest(&name).to_vec(),
            key_sha256: Sha256::digest(key).to_vec(),
            archive_cutoff: generalized(not_before)?,
        })
    }

    pub(super) fn matches(&self, id: &CertId) -> bool {
        let (name, key) = if id.hash_algorithm.oid == ID_SHA_1 {
            (&self.name_sha1, &self.key_sha1)
        } else {
            (&self.name_sha256, &self.key_sha256)
        };
        id.issuer_name_hash.as_bytes() == name.as_slice()
            && id.issuer_key_hash.as_bytes() == key.as_slice()
    }

    /// The CertID of `serial` under this CA, hashed with `hash`.
    pub(super) fn cert_id(&self, hash: CertIdHash, serial: &[u8]) -> Result<CertId, OcspError> {
        let internal = |e: der::Error| OcspError::Internal(e.to_string());
        let (oid, name, key) = match hash {
            CertIdHash::Sha1 => (ID_SHA_1, &self.name_sha1, &self.key_sha1),
            CertIdHash::Sha256 => (ID_SHA_256, &self.name_sha256, &self.key_sha256),
        };
        Ok(CertId {
            hash_algorithm: spki::AlgorithmIdentifierOwned {
                oid,
                parameters: Some(der::asn1::Null.into()),
            },
            issuer_name_hash: OctetString::new(name.clone()).map_err(internal)?,
            issuer_key_hash: OctetString::new(key.clone()).map_err(internal)?,
            serial_number: x509_cert::serial_number::SerialNumber::new(serial).map_err(internal)?,
        })
    }

    /// Whether a certificate issued under `issued_under` comes from this CA.
    pub(super) fn issued(&self, issued_under: &str) -> bool {
        match self.purpose.as_str() {
            "issuing" => !issued_under.is_empty() && issued_under != "client-auth",
            other => issued_under == other,
        }
    }
}

/// The hash of a CertID: final responses are made for both, since a client
/// matches the CertID it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertIdHash {
    Sha1,
    Sha256,
}

impl CertIdHash {
    pub const ALL: [CertIdHash; 2] = [Self::Sha1, Self::Sha256];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
        }
    }

    pub(super) fn of(id: &CertId) -> Self {
        if id.hash_algorithm.oid == ID_SHA_1 {
            Self::Sha1
        } else {
            Self::Sha256
        }
    }
}
