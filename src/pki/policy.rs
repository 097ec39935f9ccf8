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
}

impl Default for RegistrationRules {
    fn default() -> Self {
        Self {
            evidence_retention_years: 10,
            renewal_window_days: 90,
            reverify_identity_on_first_renewal: false,
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

// The file's schema. Every table refuses unknown fields, so a typo is an error
// rather than a silently ignored setting.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    title: String,
    level: Level,
    etsi_policy_oid: String,
    ca_policy_oid: String,
    max_validity_days: i64,
    key_usage: Vec<KeyUsageName>,
    terms: TermsFile,
    key: KeyFile,
    qc_statements: QcFile,
    publication: PublicationFile,
    #[serde(default)]
    registration: RegistrationRules,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TermsFile {
    oid: String,
    version: String,
    file: PathBuf,
    sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    generation: KeyGeneration,
    algorithms: Vec<KeyAlgorithm>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QcFile {
    compliance: bool,
    types: Vec<QcTypeName>,
    sscd: bool,
    legal_person_semantics: bool,
    #[serde(default)]
    retention_period_years: Option<u32>,
    pds: Vec<PdsFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PdsFile {
    language: String,
    url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicationFile {
    cps_uri: String,
    crl_url: String,
    ocsp_url: String,
    ca_issuers_url: String,
}

impl CertificatePolicy {
    /// Reads and checks one policy file.
    pub fn load(file: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(file).map_err(|source| PolicyError::Read {
            file: file.to_owned(),
            source,
        })?;
        let parsed: PolicyFile = toml::from_str(&text).map_err(|e| PolicyError::Syntax {
            file: file.to_owned(),
            line: e
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1)),
            message: e.message().to_owned(),
        })?;
        let field = |field: &'static str, reason: String| PolicyError::Field {
            file: file.to_owned(),
            field,
            reason,
        };
        let id = file
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
            .ok_or_else(|| {
                field(
                    "(file name)",
                    "the file name is the policy id: lower-case letters, digits and '-'".to_owned(),
                )
            })?
            .to_owned();
        let oid = |name: &'static str, text: &str| {
            text.parse::<ObjectIdentifier>()
                .map_err(|e| field(name, format!("{text:?} is not an OID: {e}")))
        };

        if parsed.title.trim().is_empty() {
            return Err(field("title", "must not be empty".to_owned()));
        }
        let etsi_policy_oid = oid("etsi_policy_oid", &parsed.etsi_policy_oid)?;
        if etsi_policy_oid != parsed.level.etsi_policy_oid() {
            return Err(field(
                "etsi_policy_oid",
                format!(
                    "{} is not the ETSI OID of {} ({})",
                    etsi_policy_oid,
                    parsed.level.name(),
                    parsed.level.etsi_policy_oid()
                ),
            ));
        }
        let ca_policy_oid = oid("ca_policy_oid", &parsed.ca_policy_oid)?;
        if ca_policy_oid == QCP_L || ca_policy_oid == QCP_L_QSCD {
            return Err(field(
                "ca_policy_oid",
                "must be the CA's own OID, not an ETSI one".to_owned(),
            ));
        }
        let max_validity_days = u32::try_from(parsed.max_validity_days)
            .ok()
            .filter(|days| (1..=MAX_VALIDITY_DAYS).contains(days))
            .ok_or_else(|| {
                field(
                    "max_validity_days",
                    format!(
                        "{} is impossible: a seal certificate is valid 1 to {MAX_VALIDITY_DAYS} days (3 years)",
                        parsed.max_validity_days
                    ),
                )
            })?;
        if parsed.key_usage.is_empty() {
            return Err(field(
                "key_usage",
                "must name at least one usage".to_owned(),
            ));
        }

        let terms_oid = oid("terms.oid", &parsed.terms.oid)?;
        if terms_oid == ca_policy_oid {
            return Err(field(
                "terms.oid",
                "the terms of use need their own OID, not the policy's".to_owned(),
            ));
        }
        if parsed.terms.version.trim().is_empty() {
            return Err(field("terms.version", "must not be empty".to_owned()));
        }
        let terms_path = file
            .parent()
            .unwrap_or(Path::new("."))
            .join(&parsed.terms.file);
        let terms_text = std::fs::read(&terms_path).map_err(|e| {
            field(
                "terms.file",
                format!("cannot read {}: {e}", terms_path.display()),
            )
        })?;
        let declared: [u8; 32] = hex::decode(parsed.terms.sha256.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| field("terms.sha256", "must be 64 hex digits".to_owned()))?;
        let actual: [u8; 32] = Sha256::digest(&terms_text).into();
        if declared != actual {
            return Err(field(
                "terms.sha256",
                format!(
                    "{} has SHA-256 {}, not the declared one",
                    terms_path.display(),
                    hex::encode(actual)
                ),
            ));
        }

        let generation = parsed.key.generation;
        if generation.level() != parsed.level {
            return Err(field(
                "key.generation",
                format!(
                    "`{}` keys make {} certificates, but the policy's level is {}",
                    generation.name(),
                    generation.level().name(),
                    parsed.level.name()
                ),
            ));
        }
        if parsed.key.algorithms.is_empty() {
            return Err(field("key.algorithms", "must list at least one".to_owned()));
        }

        let qc_file = &parsed.qc_statements;
        if qc_file.sscd != parsed.level.is_qscd() {
            return Err(field(
                "qc_statements.sscd",
                format!(
                    "QcSSCD belongs in {} certificates only",
                    Level::QcpLQscd.name()
                ),
            ));
        }
        if qc_file.pds.is_empty() {
            return Err(field(
                "qc_statements.pds",
                "at least one PKI disclosure statement is required".to_owned(),
            ));
        }
        for pds in &qc_file.pds {
            if pds.language.len() != 2 || !pds.language.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(field(
                    "qc_statements.pds.language",
                    format!("{:?} is not an ISO 639-1 code", pds.language),
                ));
            }
            check_url(&pds.url, true).map_err(|r| field("qc_statements.pds.url", r))?;
        }
        if qc_file.retention_period_years == Some(0) {
            return Err(field(
                "qc_statements.retention_period_years",
                "must be at least one year".to_owned(),
            ));
        }
        let qc_statements = QcSummary {
            compliance: qc_file.compliance,
            types: qc_file.types.iter().map(|t| t.oid()).collect(),
            sscd: qc_file.sscd,
            pds: qc_file
                .pds
                .iter()
                .map(|p| (p.url.clone(), p.language.clone()))
                .collect(),
            semantics_identifier: qc_file
                .legal_person_semantics
                .then_some(qc::SEMANTICS_ID_LEGAL),
            retention_period_years: qc_file.retention_period_years,
            unknown: Vec::new(),
        };

        let urls = &parsed.publication;
        check_url(&urls.cps_uri, false).map_err(|r| field("publication.cps_uri", r))?;
        check_url(&urls.crl_url, false).map_err(|r| field("publication.crl_url", r))?;
        check_url(&urls.ocsp_url, false).map_err(|r| field("publication.ocsp_url", r))?;
        check_url(&urls.ca_issuers_url, false)
            .map_err(|r| field("publication.ca_issuers_url", r))?;

        let registration = parsed.registration;
        if !(1..=50).contains(&registration.evidence_retention_years) {
            return Err(field(
                "registration.evidence_retention_years",
                format!(
                    "{} is impossible: evidence is kept 1 to 50 years",
                    registration.evidence_retention_years
                ),
            ));
        }
        if !(1..max_validity_days).contains(&registration.renewal_window_days) {
            return Err(field(
                "registration.renewal_window_days",
                format!(
                    "{} must be at least 1 and shorter than max_validity_days ({max_validity_days})",
                    registration.renewal_window_days
                ),
            ));
        }
        Ok(Self {
            id,
            file: file.to_owned(),
            title: parsed.title,
            level: parsed.level,
            etsi_policy_oid,
            ca_policy_oid,
            max_validity_days,
            terms: TermsOfUse {
                oid: terms_oid,
                version: parsed.terms.version,
                path: terms_path,
                sha256: actual,
            },
            key: KeyPolicy {
                generation,
                algorithms: parsed.key.algorithms,
            },
            key_usage: parsed.key_usage,
            qc_statements,
            urls: PublicationUrls {
                cps_uri: urls.cps_uri.clone(),
                crl_url: urls.crl_url.clone(),
                ocsp_url: urls.ocsp_url.clone(),
                ca_issuers_url: urls.ca_issuers_url.clone(),
            },
            registration: parsed.registration,
        })
    }
}

/// An absolute http(s) URL with a host and only ASCII (certificates carry IA5String).
fn check_url(url: &str, https_only: bool) -> Result<(), String> {
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        if https_only {
            return Err(format!("{url:?} must be an https URL"));
        }
        rest
    } else {
        return Err(format!("{url:?} is not an http(s) URL"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if !url.is_ascii() || url.bytes().any(|b| b.is_ascii_whitespace() || b < 0x20) {
        return Err(format!(
            "{url:?} must be plain ASCII without spaces (percent-encode the rest)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://pki.sceau.eu/pds/en", true).is_ok());
        assert!(check_url("http://pki.sceau.eu/pds/en", true).is_err());
        assert!(check_url("http://ocsp.sceau.eu", false).is_ok());
        assert!(check_url("ftp://pki.sceau.eu", false).is_err());
        assert!(check_url("http:///crl", false).is_err());
        assert!(check_url("http://pki.sceau.eu/a b", false).is_err());
    }

    #[test]
    fn key_policy_names_the_reason() {
        let entity = KeyPolicy {
            generation: KeyGeneration::Entity,
            algorithms: vec![KeyAlgorithm::Rsa4096],
        };
        assert!(entity.accepts(PublicKeyKind::Rsa { bits: 4096 }).is_ok());
        assert!(entity.accepts(PublicKeyKind::Rsa { bits: 8192 }).is_ok());
        let small = entity
            .accepts(PublicKeyKind::Rsa { bits: 2048 })
            .unwrap_err();
        assert!(small.contains("2048") && small.contains("4096"), "{small}");
        assert!(
            entity
                .accepts(PublicKeyKind::EcP256)
                .unwrap_err()
                .contains("ec-p256")
        );
        assert!(entity.accepts(PublicKeyKind::Rsa { bits: 16384 }).is_err());
        let managed = KeyPolicy {
            generation: KeyGeneration::Ca,
            algorithms: vec![KeyAlgorithm::EcP256, KeyAlgorithm::Rsa3072],
        };
        assert_eq!(managed.generated(None).unwrap(), KeyAlgorithm::EcP256);
        assert_eq!(
            managed.generated(Some(KeyAlgorithm::Rsa3072)).unwrap(),
            KeyAlgorithm::Rsa3072
        );
        assert!(managed.generated(Some(KeyAlgorithm::EcP384)).is_err());
    }
}
