//! The key ceremony: reads a ceremony file, generates the CA and service keys in
//! the HSM and issues the root, issuing CA, client-authentication CA, OCSP
//! responder and TSU certificates, with a transcript of what was made.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::ext::pkix::KeyUsages;

use super::certificate::{
    self, CertificateError, CertificateRequest, SubjectName, extensions as ext,
};
use super::serials::{CeremonySerials, ReservedSerial};
pub use super::service_certificate::issue_service_certificate;
use super::signing::{CertificateKind, Grant, SigningError, lint_then_sign};
use crate::clock::Clock;
use crate::clock::format::rfc3339;
use crate::config::TokenRole;
use crate::crypto;
use crate::error::{ErrorKind, HasErrorKind};
use crate::hsm::{Hsm, HsmError, HsmKey, HsmSigner, KeyAlgorithm};

#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    #[error("ceremony file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("ceremony file: {0}")]
    Invalid(String),
    #[error(
        "a ceremony already ran on token '{token}' (key '{label}' exists); run with --force to make a new hierarchy"
    )]
    AlreadyDone { token: String, label: String },
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error(transparent)]
    Signing(#[from] SigningError),
}

impl HasErrorKind for CeremonyError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::AlreadyDone { .. } => ErrorKind::Conflict,
            Self::Hsm(e) => e.kind(),
            _ => ErrorKind::Internal,
        }
    }
}

/// The ceremony file (`policies/ceremony.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CeremonyFile {
    /// Prefix of every key label, e.g. `sceau-example-2026`.
    pub name: String,
    pub root: RootSpec,
    pub issuing: IssuingSpec,
    /// The CA that issues TLS client certificates for mutual-TLS activation.
    /// Optional so that ceremony files written before it existed still load;
    /// `sceau config check` reports a hierarchy without it.
    #[serde(default)]
    pub client_auth: Option<ClientAuthSpec>,
    pub ocsp: ServiceSpec,
    pub tsa: ServiceSpec,
    pub audit: AuditSpec,
}

impl CeremonyFile {
    /// The same hierarchy with every URL its certificates name under `base`,
    /// the instance's `server.public_url`, at the paths sceau serves: how the
    /// development instance, reachable only where its settings say, makes a
    /// hierarchy a relying party can check online.
    pub fn served_at(mut self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        self.root.certificate_url = format!("{base}/certs/root.der");
        self.root.crl_url = format!("{base}/crl/root.crl");
        self.issuing.certificate_url = format!("{base}/certs/issuing.der");
        self.issuing.crl_url = format!("{base}/crl/issuing.crl");
        self.issuing.ocsp_url = format!("{base}/ocsp");
        if let Some(client_auth) = &mut self.client_auth {
            client_auth.certificate_url = format!("{base}/certs/client-auth.der");
            client_auth.crl_url = format!("{base}/crl/client-auth.crl");
        }
        self
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootSpec {
    pub algorithm: KeyAlgorithm,
    pub validity_days: u32,
    pub subject: SubjectName,
    /// Where the root certificate is published (AIA caIssuers of the issuing CA).
    pub certificate_url: String,
    /// The root's ARL (CRL distribution point of the issuing CA certificate).
    pub crl_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuingSpec {
    pub algorithm: KeyAlgorithm,
    pub validity_days: u32,
    pub subject: SubjectName,
    /// Where this CA's certificate is published (AIA caIssuers of what it issues).
    pub certificate_url: String,
    /// This CA's CRL (CRL distribution point of what it issues).
    pub crl_url: String,
    /// The OCSP responder for what it issues.
    pub ocsp_url: String,
    /// Policy OIDs in the CA certificate (default: anyPolicy).
    #[serde(default = "any_policy")]
    pub policies: Vec<String>,
}

/// The client-authentication CA: a sub-CA of the root whose certificate
/// restricts it to id-kp-clientAuth. Its key is on the `issuing` token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthSpec {
    pub algorithm: KeyAlgorithm,
    pub validity_days: u32,
    pub subject: SubjectName,
    /// Where this CA's certificate is published (AIA caIssuers of what it issues).
    pub certificate_url: String,
    /// This CA's CRL (CRL distribution point of what it issues).
    pub crl_url: String,
}

fn any_policy() -> Vec<String> {
    vec!["2.5.29.32.0".to_owned()]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub algorithm: KeyAlgorithm,
    pub validity_days: u32,
    pub subject: SubjectName,
    /// Renew this many days before expiry (used for the OCSP responder).
    #[serde(default)]
    pub renew_before_days: Option<u32>,
    /// The private key's usage period in days from issuance (the TSU
    /// certificate's privateKeyUsagePeriod): the key time-stamps only within
    /// it, while its tokens stay verifiable until the certificate expires.
    #[serde(default)]
    pub key_usage_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSpec {
    pub algorithm: KeyAlgorithm,
}

/// Most days a delegated OCSP responder certificate (with ocsp-nocheck) may last.
const MAX_OCSP_VALIDITY_DAYS: u32 = 90;

impl CeremonyFile {
    /// Reads and checks the file; returns it with the SHA-256 of its bytes.
    pub fn load(path: &Path) -> Result<(Self, String), CeremonyError> {
        let file_error = |reason: String| CeremonyError::File {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| file_error(e.kind().to_string()))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| file_error("not UTF-8".to_owned()))?;
        let file: Self = toml::from_str(text)
            .map_err(|e| file_error(e.message().to_owned() + &span_hint(text, e.span())))?;
        file.validate().map_err(|e| file_error(e.to_string()))?;
        Ok((file, hex::encode(Sha256::digest(&bytes))))
    }

    fn validate(&self) -> Result<(), CeremonyError> {
        let invalid = |text: String| Err(CeremonyError::Invalid(text));
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return invalid("name must be letters, digits and dashes".to_owned());
        }
        for (what, days) in [
            ("root", self.root.validity_days),
            ("issuing", self.issuing.validity_days),
            ("ocsp", self.ocsp.validity_days),
            ("tsa", self.tsa.validity_days),
        ] {
            if days == 0 {
                return invalid(format!("{what}.validity_days must be positive"));
            }
        }
        if self.issuing.validity_days > self.root.validity_days {
            return invalid("issuing.validity_days exceeds the root's".to_owned());
        }
        if let Some(client_auth) = &self.client_auth {
            if client_auth.validity_days == 0 {
                return invalid("client_auth.validity_days must be positive".to_owned());
            }
            if client_auth.validity_days > self.root.validity_days {
                return invalid("client_auth.validity_days exceeds the root's".to_owned());
            }
            client_auth.subject.to_name()?;
            for url in [&client_auth.certificate_url, &client_auth.crl_url] {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return invalid(format!("client_auth: {url:?} is not an http(s) URL"));
                }
            }
        }
        if self.ocsp.validity_days > MAX_OCSP_VALIDITY_DAYS {
            return invalid(format!(
                "ocsp.validity_days must be at most {MAX_OCSP_VALIDITY_DAYS}: the responder certificate carries ocsp-nocheck"
            ));
        }
        match self.tsa.key_usage_days {
            None => return invalid("tsa.key_usage_days is required".to_owned()),
            Some(0) => return invalid("tsa.key_usage_days must be positive".to_owned()),
            Some(days) if days > self.tsa.validity_days => {
                return invalid("tsa.key_usage_days exceeds tsa.validity_days".to_owned());
            }
            Some(_) => {}
        }
        if self.ocsp.renew_before_days.unwrap_or(0) >= self.ocsp.validity_days {
            return invalid("ocsp.renew_before_days must be less than its validity".to_owned());
        }
        for subject in [
            &self.root.subject,
            &self.issuing.subject,
            &self.ocsp.subject,
            &self.tsa.subject,
        ] {
            subject.to_name()?;
        }
        for policy in &self.issuing.policies {
            certificate::parse_oid(policy)?;
        }
        for url in [
            &self.root.certificate_url,
            &self.root.crl_url,
            &self.issuing.certificate_url,
            &self.issuing.crl_url,
            &self.issuing.ocsp_url,
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return invalid(format!("{url:?} is not an http(s) URL"));
            }
        }
        Ok(())
    }

    pub fn label(&self, purpose: KeyPurpose) -> String {
        format!("{}-{}", self.name, purpose.name())
    }
}

fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(range) => {
            let line = text[..range.start.min(text.len())].lines().count().max(1);
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

/// What a key generated by the ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyPurpose {
    Root,
    Issuing,
    #[serde(rename = "client-auth")]
    ClientAuth,
    Ocsp,
    Tsa,
    Audit,
}

impl KeyPurpose {
    pub fn name(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Issuing => "issuing",
            Self::ClientAuth => "client-auth",
            Self::Ocsp => "ocsp",
            Self::Tsa => "tsa",
            Self::Audit => "audit",
        }
    }

    /// The token role whose token holds this key.
    pub fn token_role(self) -> TokenRole {
        match self {
            Self::Root => TokenRole::Root,
            Self::Issuing | Self::ClientAuth => TokenRole::Issuing,
            Self::Ocsp | Self::Tsa | Self::Audit => TokenRole::Services,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Root,
            Self::Issuing,
            Self::ClientAuth,
            Self::Ocsp,
            Self::Tsa,
            Self::Audit,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }
}

/// A key and the certificate issued for it.
#[derive(Debug, Clone)]
pub struct CertifiedKey {
    pub purpose: KeyPurpose,
    pub key: HsmKey,
    pub certificate: Certificate,
}

impl CertifiedKey {
    pub fn der(&self) -> Result<Vec<u8>, CertificateError> {
        Ok(self.certificate.to_der()?)
    }
}

/// Everything the ceremony made.
#[derive(Debug, Clone)]
pub struct CeremonyOutcome {
    pub root: CertifiedKey,
    pub issuing: CertifiedKey,
    /// Made when the ceremony file has a `[client_auth]` section.
    pub client_auth: Option<CertifiedKey>,
    pub ocsp: CertifiedKey,
    pub tsa: CertifiedKey,
    pub audit: HsmKey,
    pub transcript: Transcript,
}

/// The record of a ceremony: written to the journal and as a file.
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    pub ceremony: String,
    pub ceremony_file_sha256: String,
    pub started_at: String,
    pub completed_at: String,
    pub forced: bool,
    pub keys: Vec<TranscriptKey>,
    pub certificates: Vec<TranscriptCertificate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TranscriptKey {
    pub purpose: KeyPurpose,
    pub token: String,
    pub label: String,
    pub key_id: String,
    pub algorithm: String,
    pub public_key_sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TranscriptCertificate {
    pub purpose: KeyPurpose,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub sha256: String,
}

impl TranscriptKey {
    fn of(purpose: KeyPurpose, key: &HsmKey) -> Result<Self, CeremonyError> {
        let public_key_sha256 = crypto::spki_sha256(&key.public_key)
            .map_err(|e| CeremonyError::Invalid(e.to_string()))?;
        Ok(Self {
            purpose,
            token: key.token.clone(),
            label: key.label.clone(),
            key_id: key.id.to_string(),
            algorithm: key.algorithm.to_string(),
            public_key_sha256: hex::encode(public_key_sha256),
        })
    }
}

impl TranscriptCertificate {
    pub fn of(certified: &CertifiedKey) -> Result<Self, CeremonyError> {
        let tbs = &certified.certificate.tbs_certificate;
        Ok(Self {
            purpose: certified.purpose,
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            serial: hex::encode(tbs.serial_number.as_bytes()),
            not_before: tbs.validity.not_before.to_string(),
            not_after: tbs.validity.not_after.to_string(),
            sha256: hex::encode(Sha256::digest(certified.der()?)),
        })
    }
}

/// Runs the ceremony, signing each certificate under the serial reserved for
/// it. Blocking (key generation takes seconds): call it from `spawn_blocking`.
/// Needs the root, issuing and services tokens.
pub fn run(
    file: &CeremonyFile,
    file_sha256: &str,
    hsm: &Hsm,
    clock: &dyn Clock,
    force: bool,
    serials: CeremonySerials,
) -> Result<CeremonyOutcome, CeremonyError> {
    let client_auth_serial = match (&file.client_auth, serials.client_auth) {
        (Some(_), Some(serial)) => Some(serial),
        (None, None) => None,
        _ => {
            return Err(CeremonyError::Invalid(
                "a client-authentication CA has a serial reserved exactly when the ceremony file asks for one"
                    .to_owned(),
            ));
        }
    };
    let started_at = clock.now();
    let root_pool = hsm.token(TokenRole::Root)?;
    let issuing_pool = hsm.token(TokenRole::Issuing)?;
    let services_pool = hsm.token(TokenRole::Services)?;
    if !force {
        let mut made_here = vec![
            (root_pool, KeyPurpose::Root),
            (issuing_pool, KeyPurpose::Issuing),
        ];
        if file.client_auth.is_some() {
            made_here.push((issuing_pool, KeyPurpose::ClientAuth));
        }
        for (pool, purpose) in made_here {
            let label = file.label(purpose);
            if !pool.key_ids_with_label_blocking(&label)?.is_empty() {
                return Err(CeremonyError::AlreadyDone {
                    token: pool.token_label().to_owned(),
                    label,
                });
            }
        }
    }
    tracing::info!(ceremony = %file.name, forced = force, "key ceremony started");

    let root_key =
        root_pool.generate_key_pair_blocking(&file.label(KeyPurpose::Root), file.root.algorithm)?;
    let root_signer = HsmSigner::new(Arc::clone(root_pool), root_key.clone());
    let root_name = file.root.subject.to_name()?;
    let root_certificate = signed(
        &Grant::ceremony(CertificateKind::Root),
        None,
        CertificateRequest {
            subject: root_name.clone(),
            issuer: None,
            serial: serials.root,
            validity: certificate::validity(started_at, file.root.validity_days)?,
            public_key: root_key.public_key.clone(),
            extensions: vec![
                ext::basic_constraints(true, None)?,
                ext::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)?,
                ext::subject_key_identifier(&root_key.public_key)?,
            ],
        },
        &root_signer,
    )?;
    let root = CertifiedKey {
        purpose: KeyPurpose::Root,
        key: root_key,
        certificate: root_certificate,
    };

    let issuing_key = issuing_pool
        .generate_key_pair_blocking(&file.label(KeyPurpose::Issuing), file.issuing.algorithm)?;
    let policies = file
        .issuing
        .policies
        .iter()
        .map(|p| certificate::parse_oid(p))
        .collect::<Result<Vec<ObjectIdentifier>, _>>()?;
    let issuing_certificate = signed(
        &Grant::ceremony(CertificateKind::IssuingCa),
        Some(&root.certificate),
        CertificateRequest {
            subject: file.issuing.subject.to_name()?,
            issuer: Some(root_name),
            serial: serials.issuing,
            validity: certificate::validity(started_at, file.issuing.validity_days)?,
            public_key: issuing_key.public_key.clone(),
            extensions: vec![
                ext::basic_constraints(true, Some(0))?,
                ext::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)?,
                ext::subject_key_identifier(&issuing_key.public_key)?,
                ext::authority_key_identifier(&root.key.public_key)?,
                ext::crl_distribution_point(&file.root.crl_url)?,
                ext::authority_info_access(None, Some(&file.root.certificate_url))?,
                ext::certificate_policies(&policies)?,
            ],
        },
        &root_signer,
    )?;
    let issuing = CertifiedKey {
        purpose: KeyPurpose::Issuing,
        key: issuing_key,
        certificate: issuing_certificate,
    };

    let client_auth = match (&file.client_auth, client_auth_serial) {
        (Some(spec), Some(serial)) => Some(issue_client_auth_ca(
            file,
            (spec, serial),
            issuing_pool,
            &root,
            &root_signer,
            &policies,
            started_at,
        )?),
        _ => None,
    };

    let ocsp = issue_service_certificate(
        (
            &Grant::ceremony(CertificateKind::OcspResponder),
            serials.ocsp,
        ),
        file,
        hsm,
        &issuing,
        started_at,
        KeyPurpose::Ocsp,
    )?;
    let tsa = issue_service_certificate(
        (
            &Grant::ceremony(CertificateKind::TimeStampingUnit),
            serials.tsa,
        ),
        file,
        hsm,
        &issuing,
        started_at,
        KeyPurpose::Tsa,
    )?;
    let audit = services_pool
        .generate_key_pair_blocking(&file.label(KeyPurpose::Audit), file.audit.algorithm)?;

    let completed_at = clock.now().max(started_at);
    let mut keys = vec![
        TranscriptKey::of(KeyPurpose::Root, &root.key)?,
        TranscriptKey::of(KeyPurpose::Issuing, &issuing.key)?,
    ];
    let mut certificates = vec![
        TranscriptCertificate::of(&root)?,
        TranscriptCertificate::of(&issuing)?,
    ];
    if let Some(client_auth) = &client_auth {
        keys.push(TranscriptKey::of(KeyPurpose::ClientAuth, &client_auth.key)?);
        certificates.push(TranscriptCertificate::of(client_auth)?);
    }
    keys.extend([
        TranscriptKey::of(KeyPurpose::Ocsp, &ocsp.key)?,
        TranscriptKey::of(KeyPurpose::Tsa, &tsa.key)?,
        TranscriptKey::of(KeyPurpose::Audit, &audit)?,
    ]);
    certificates.extend([
        TranscriptCertificate::of(&ocsp)?,
        TranscriptCertificate::of(&tsa)?,
    ]);
    let transcript = Transcript {
        ceremony: file.name.clone(),
        ceremony_file_sha256: file_sha256.to_owned(),
        started_at: rfc3339(started_at),
        completed_at: rfc3339(completed_at),
        forced: force,
        keys,
        certificates,
    };
    tracing::info!(ceremony = %file.name, "key ceremony completed");
    Ok(CeremonyOutcome {
        root,
        issuing,
        client_auth,
        ocsp,
        tsa,
        audit,
        transcript,
    })
}

/// The client-authentication CA: a new key on the issuing token, certified by the
/// root as a CA that may only issue end-entity certificates (pathLen 0) and, by
/// its extended key usage, only for TLS client authentication. Blocking.
fn issue_client_auth_ca(
    file: &CeremonyFile,
    (spec, serial): (&ClientAuthSpec, ReservedSerial),
    issuing_pool: &Arc<crate::hsm::TokenPool>,
    root: &CertifiedKey,
    root_signer: &HsmSigner,
    policies: &[ObjectIdentifier],
    now: SystemTime,
) -> Result<CertifiedKey, CeremonyError> {
    let key = issuing_pool
        .generate_key_pair_blocking(&file.label(KeyPurpose::ClientAuth), spec.algorithm)?;
    let certificate = signed(
        &Grant::ceremony(CertificateKind::ClientAuthCa),
        Some(&root.certificate),
        CertificateRequest {
            subject: spec.subject.to_name()?,
            issuer: Some(root.certificate.tbs_certificate.subject.clone()),
            serial,
            validity: certificate::validity(now, spec.validity_days)?,
            public_key: key.public_key.clone(),
            extensions: vec![
                ext::basic_constraints(true, Some(0))?,
                ext::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)?,
                ext::subject_key_identifier(&key.public_key)?,
                ext::authority_key_identifier(&root.key.public_key)?,
                // EKU in a CA certificate restricts what chains through it
                // (the de facto rule OpenSSL, NSS and webpki apply). Not
                // critical: RFC 5280 leaves it to the issuer, and CA/B asks
                // for it non-critical.
                ext::extended_key_usage(vec![rfc5912::ID_KP_CLIENT_AUTH], false)?,
                ext::crl_distribution_point(&file.root.crl_url)?,
                ext::authority_info_access(None, Some(&file.root.certificate_url))?,
                ext::certificate_policies(policies)?,
            ],
        },
        root_signer,
    )?;
    Ok(CertifiedKey {
        purpose: KeyPurpose::ClientAuth,
        key,
        certificate,
    })
}

/// `request` through the one signing path, under `grant`. Blocking.
pub(super) fn signed(
    grant: &Grant,
    issuer: Option<&Certificate>,
    request: CertificateRequest,
    key: &HsmSigner,
) -> Result<Certificate, CeremonyError> {
    Ok(lint_then_sign(grant, request, issuer, key)?)
}

/// Decodes a DER certificate.
pub fn certificate_from_der(der: &[u8]) -> Result<Certificate, CeremonyError> {
    Certificate::from_der(der).map_err(|e| CeremonyError::Invalid(e.to_string()))
}
