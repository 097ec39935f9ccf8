//! Certificate policies read from `policies/certificates/*.toml`: one file per
//! policy, checked field by field at start-up, so that a new profile is a new
//! file and never a code change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use const_oid::ObjectIdentifier;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::KeyUsages;

use super::qc::{self, QcSummary};
use crate::crypto::PublicKeyKind;
use crate::error::{ErrorKind, HasErrorKind};
use crate::hsm::KeyAlgorithm;

/// EN 319 411-2 §5.3: QCP-l, a qualified certificate for a legal person.
pub const QCP_L: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.194112.1.1");
/// EN 319 411-2 §5.3: QCP-l-qscd, the same with the key in a QSCD.
pub const QCP_L_QSCD: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.194112.1.3");
/// Certificates are valid for at most three years (the CA's terms of use).
pub const MAX_VALIDITY_DAYS: u32 = 3 * 365 + 1;
/// Larger RSA keys than this are refused: nothing needs them and they slow every check.
pub const MAX_RSA_BITS: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{}: {source}", dir.display())]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no certificate policy (*.toml) found", dir.display())]
    Empty { dir: PathBuf },
    #[error("{}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TOML does not match the schema: an unknown field, a missing one, a wrong type.
    #[error("{}{}: {message}", file.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Syntax {
        file: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("{}: field `{field}`: {reason}", file.display())]
    Field {
        file: PathBuf,
        field: &'static str,
        reason: String,
    },
}

impl HasErrorKind for PolicyError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// The qualified-certificate level (EN 319 411-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Level {
    #[serde(rename = "QCP-l")]
    QcpL,
    #[serde(rename = "QCP-l-qscd")]
    QcpLQscd,
}

impl Level {
    pub fn etsi_policy_oid(self) -> ObjectIdentifier {
        match self {
            Self::QcpL => QCP_L,
            Self::QcpLQscd => QCP_L_QSCD,
        }
    }

    pub fn is_qscd(self) -> bool {
        self == Self::QcpLQscd
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::QcpL => "QCP-l",
            Self::QcpLQscd => "QCP-l-qscd",
        }
    }
}

/// Who generates the key pair, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyGeneration {
    /// The CA, in its HSM; the entity activates it by strong authentication.
    Ca,
    /// The CA, in its HSM run as a remote QSCD; every use needs a SAD at SCAL2.
    CaQscd,
    /// The entity, on its own device; it sends a CSR.
    Entity,
    /// The entity, on a QSealCD; it sends a CSR, the device model and proof of generation.
    EntityQscd,
    /// On a chip the CA hands over; a CSR from the chip and the chip's reference.
    Chip,
}

impl KeyGeneration {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ca => "ca",
            Self::CaQscd => "ca-qscd",
            Self::Entity => "entity",
            Self::EntityQscd => "entity-qscd",
            Self::Chip => "chip",
        }
    }

    /// Whether the key is generated in sceau's HSM (no CSR).
    pub fn is_ca_managed(self) -> bool {
        matches!(self, Self::Ca | Self::CaQscd)
    }

    /// The level this way of generating keys can reach.
    pub fn level(self) -> Level {
        match self {
            Self::Ca | Self::Entity => Level::QcpL,
            Self::CaQscd | Self::EntityQscd | Self::Chip => Level::QcpLQscd,
        }
    }

    /// Whether each use of the key needs a signature activation data at SCAL2.
    pub fn requires_scal2(self) -> bool {
        self == Self::CaQscd
    }
}

/// The key usage bits a policy file may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyUsageName {
    DigitalSignature,
    NonRepudiation,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
    KeyCertSign,
    CrlSign,
}

impl KeyUsageName {
    pub fn flag(self) -> KeyUsages {
        match self {
            Self::DigitalSignature => KeyUsages::DigitalSignature,
            Self::NonRepudiation => KeyUsages::NonRepudiation,
            Self::KeyEncipherment => KeyUsages::KeyEncipherment,
            Self::DataEncipherment => KeyUsages::DataEncipherment,
            Self::KeyAgreement => KeyUsages::KeyAgreement,
            Self::KeyCertSign => KeyUsages::KeyCertSign,
            Self::CrlSign => KeyUsages::CRLSign,
        }
    }
}

/// The QcType values a policy file may name (EN 319 412-5 §4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QcTypeName {
    Esign,
    Eseal,
    Web,
}

impl QcTypeName {
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Esign => qc::QC_TYPE_ESIGN,
            Self::Eseal => qc::QC_TYPE_ESEAL,
            Self::Web => qc::QC_TYPE_WEB,
        }
    }
}

/// The terms of use the RCCS accepts with a request under this policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermsOfUse {
    pub oid: ObjectIdentifier,
    pub version: String,
    pub path: PathBuf,
    /// SHA-256 of the text file, checked at load.
    pub sha256: [u8; 32],
    /// The text, as read and checked at load (what `GET /policies/{id}/terms` serves).
    pub text: std::sync::Arc<str>,
}

/// Which keys a policy certifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicy {
    pub generation: KeyGeneration,
    /// CA-managed: the algorithms the CA generates, the first by default. CSR
    /// intake: the accepted keys, `rsa-N` meaning RSA of at least N bits.
    pub algorithms: Vec<KeyAlgorithm>,
}

impl KeyPolicy {
    /// Whether a key from a CSR is acceptable; the error says why not.
    pub fn accepts(&self, kind: PublicKeyKind) -> Result<(), String> {
        let names = || {
            self.algorithms
                .iter()
                .map(|a| a.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match kind {
            PublicKeyKind::Rsa { bits } => {
                let minimum = self
                    .algorithms
                    .iter()
                    .filter_map(|a| match a {
                        KeyAlgorithm::Rsa3072 => Some(3072),
                        KeyAlgorithm::Rsa4096 => Some(4096),
                        _ => None,
                    })
                    .min()
                    .ok_or_else(|| format!("RSA keys are not accepted (allowed: {})", names()))?;
                if bits < minimum {
                    return Err(format!(
                        "an RSA key of {bits} bits is below the {minimum} bits this policy requires"
                    ));
                }
                if bits > MAX_RSA_BITS {
                    return Err(format!(
                        "an RSA key of {bits} bits is above the {MAX_RSA_BITS}-bit limit"
                    ));
                }
                Ok(())
            }
            PublicKeyKind::EcP256 | PublicKeyKind::EcP384 => {
                let wanted = if kind == PublicKeyKind::EcP256 {
                    KeyAlgorithm::EcP256
                } else {
                    KeyAlgorithm::EcP384
                };
                if self.algorithms.contains(&wanted) {
                    Ok(())
                } else {
                    Err(format!(
                        "{} keys are not accepted (allowed: {})",
                        wanted.name(),
                        names()
                    ))
                }
            }
        }
    }

    /// The algorithm the CA generates for a CA-managed key.
    pub fn generated(&self, requested: Option<KeyAlgorithm>) -> Result<KeyAlgorithm, String> {
        match requested {
            None => self
                .algorithms
                .first()
                .copied()
                .ok_or_else(|| "the policy lists no algorithm".to_owned()),
            Some(algorithm) if self.algorithms.contains(&algorithm) => Ok(algorithm),
            Some(algorithm) => Err(format!("{algorithm} is not among this policy's algorithms")),
        }
    }
}

/// Where relying parties find the policy documents and the status services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicationUrls {
    pub cps_uri: String,
    pub crl_url: String,
    pub ocsp_url: String,
    pub ca_issuers_url: String,
}

/// One certificate policy, as loaded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePolicy {
    /// The file's stem: what requests name.
    pub id: String,
    pub file: PathBuf,
    pub title: String,
    pub level: Level,
    pub etsi_policy_oid: ObjectIdentifier,
    pub ca_policy_oid: ObjectIdentifier,
    pub max_validity_days: u32,
    pub terms: TermsOfUse,
    pub key: KeyPolicy,
    pub key_usage: Vec<KeyUsageName>,
    /// The statements every certificate of this policy carries.
    pub qc_statements: QcSummary,
    pub urls: PublicationUrls,
    pub registration: RegistrationRules,
}

/// What the registration authority applies to requests under a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationRules {
    /// How long evidence documents are kept after they are received, then purged
    /// (seed 000 §14: 10 years).
    pub evidence_retention_years: u32,
    /// Renewal opens this many days before the certificate expires.
    pub renewal_window_days: u32,
    /// Whether the first renewal needs the holder's identity checked again
    /// (seed 001: optional at the first renewal, required after).
    pub reverify_identity_on_first_renewal: bool,
    /// The level of assurance a person's portal sign-in needs to act on a
    /// request under this policy (substantial or high); a lower session is
    /// asked to sign in again at this level (step-up).
    pub sign_in_level: crate::config::Assurance,
}

impl Default for RegistrationRules {
    fn default() -> Self {
        Self {
            evidence_retention_years: 10,
            renewal_window_days: 90,
            reverify_identity_on_first_renewal: false,
            sign_in_level: crate::config::Assurance::Substantial,
        }
    }
}

/// Every policy of the instance, by id.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: BTreeMap<String, Arc<CertificatePolicy>>,
}

impl PolicySet {
    /// Loads every `*.toml` in `dir`. Any bad file, or two files claiming the same
    /// CA policy OID, refuses the whole set.
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        let read_dir = |source| PolicyError::ReadDir {
            dir: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir)? {
            let path = entry.map_err(read_dir)?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(PolicyError::Empty {
                dir: dir.to_owned(),
            });
        }
        let mut set = Self::default();
        let mut by_oid: BTreeMap<ObjectIdentifier, PathBuf> = BTreeMap::new();
        for file in files {
            let policy = CertificatePolicy::load(&file)?;
            if let Some(other) = by_oid.insert(policy.ca_policy_oid, file.clone()) {
                return Err(PolicyError::Field {
                    file,
                    field: "ca_policy_oid",
                    reason: format!(
                        "{} is already the policy OID of {}",
                        policy.ca_policy_oid,
                        other.display()
                    ),
                });
            }
            set.policies.insert(policy.id.clone(), Arc::new(policy));
        }
        Ok(set)
    }

    pub fn get(&self, id: &str) -> Option<&Arc<CertificatePolicy>> {
        self.policies.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<CertificatePolicy>> {
        self.policies.values()
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The same policies with the URLs their certificates name (CRL, OCSP,
    /// caIssuers) under `base`, the instance's `server.public_url`: how the
    /// development instance, reachable only where its settings say, makes
    /// certificates a relying party can check online. The CPS and PDS links
    /// are documents, kept as written.
    pub fn served_at(self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        let policies = self
            .policies
            .into_iter()
            .map(|(id, policy)| {
                let mut policy = CertificatePolicy::clone(&policy);
                policy.urls.crl_url = format!("{base}/crl/issuing.crl");
                policy.urls.ocsp_url = format!("{base}/ocsp");
                policy.urls.ca_issuers_url = format!("{base}/certs/issuing.der");
                (id, Arc::new(policy))
            })
            .collect();
        Self { policies }
    }
}

mod file;

#[cfg(test)]
mod tests;
