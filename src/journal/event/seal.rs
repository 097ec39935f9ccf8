//! The payloads of the seal events.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One seal made: with which credential and certificate, over what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealCreated {
    pub credential_id: Uuid,
    pub scal: u8,
    /// Hex of the seal certificate's serial number.
    pub certificate_serial: String,
    /// SHA-256 of the seal (the CMS, the signed PDF or the raw signature).
    pub seal_sha256: String,
    #[serde(flatten)]
    pub seal: SealMade,
}

/// What kind of seal was made, over what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealMade {
    /// `cades`, `pades` or `digest`.
    pub format: String,
    pub level: String,
    /// CAdES: `detached` or `enveloping`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packaging: Option<String>,
    /// The SHA-256 of the document; none when the document's digest is another.
    pub document_sha256: Option<String>,
    /// The digest signed as given, for a raw digest signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_digest: Option<String>,
    /// The digest's algorithm (an OID), for a raw digest signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_algorithm: Option<String>,
    /// The signature scheme of a raw digest signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Set when only a hash was sent, never the document.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hash_only: bool,
}

impl SealMade {
    /// A seal of `format` at `level` over a document of this SHA-256.
    pub fn of(format: &str, level: &str, document_sha256: String) -> Self {
        Self {
            format: format.to_owned(),
            level: level.to_owned(),
            packaging: None,
            document_sha256: Some(document_sha256),
            document_digest: None,
            digest_algorithm: None,
            scheme: None,
            hash_only: false,
        }
    }
}

/// A seal not made, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealFailed {
    pub credential_id: Uuid,
    pub reason: String,
}
