//! A policy file read: its schema (unknown fields refused) and the checks
//! that turn it into a [`CertificatePolicy`].

use super::*;

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
        let terms_text = String::from_utf8(terms_text).map_err(|_| {
            field(
                "terms.file",
                format!("{} is not UTF-8 text", terms_path.display()),
            )
        })?;

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
        if registration.sign_in_level < crate::config::Assurance::Substantial {
            return Err(field(
                "registration.sign_in_level",
                "acting on a request needs strong authentication: substantial or high".to_owned(),
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
                text: terms_text.into(),
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
pub(super) fn check_url(url: &str, https_only: bool) -> Result<(), String> {
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
