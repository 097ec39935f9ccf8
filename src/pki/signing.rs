//! The one path by which sceau signs a certificate. The caller shows the grant
//! its kind needs, each made only by the layer that owns that kind; the
//! TBSCertificate carries a serial reserved for that kind (`pki::serials`), is
//! linted against the kind's profile and signed only when clean, by the CA key
//! in the HSM (which checks its own signature). End-entity certificates (seals,
//! TLS clients) also have their issuance (or its refusal) journaled and their
//! record stored here.

use base64::Engine as _;
use der::Encode;
use der::asn1::BitString;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::certificate::{TbsCertificate, Version};

use super::certificate::{CertificateError, CertificateRequest};
use super::lint::{self, Finding};
use super::policy::CertificatePolicy;
use super::serials::{self, SerialError};
use crate::clock::SharedClock;
use crate::hsm::{HsmError, HsmSigner};
use crate::journal::event::{EndEntityRequest, LintRefused, SignedCertificate};
use crate::journal::{Actor, Event, Journal, JournalError};
use crate::store::certificates::{CertificateReservation, NewCredential, ReservationError};
use crate::store::{Store, StoreError};

/// What a certificate is for; each kind has its lint profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateKind {
    Seal,
    ClientAuth,
    OcspResponder,
    TimeStampingUnit,
    Root,
    IssuingCa,
    ClientAuthCa,
}

impl CertificateKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Seal => "seal",
            Self::ClientAuth => "client_auth",
            Self::OcspResponder => "ocsp_responder",
            Self::TimeStampingUnit => "time_stamping_unit",
            Self::Root => "root",
            Self::IssuingCa => "issuing_ca",
            Self::ClientAuthCa => "client_auth_ca",
        }
    }

    pub fn is_ca(self) -> bool {
        matches!(self, Self::Root | Self::IssuingCa | Self::ClientAuthCa)
    }
}

/// A service of the issuing CA whose certificate the CA operations renew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    OcspResponder,
    TimeStampingUnit,
}

/// The permission to have one certificate of one kind signed. Each
/// constructor belongs to one layer, and `tests/signing_path.rs` fails when
/// another calls it.
#[derive(Debug)]
pub struct Grant {
    kind: CertificateKind,
    actor: Actor,
}

impl Grant {
    /// A seal certificate: the RA's request lifecycle, once a request's
    /// approvals are complete (`ra::registry`), by the approvers named.
    pub fn validated_request(approvers: Vec<String>) -> Self {
        Self {
            kind: CertificateKind::Seal,
            actor: Actor::Approvers(approvers),
        }
    }

    /// A TLS client certificate: the RA, once it has checked the RCCS asking
    /// for it (`ra::registry`).
    pub fn checked_rccs(actor: Actor) -> Self {
        Self {
            kind: CertificateKind::ClientAuth,
            actor,
        }
    }

    /// A service certificate renewed by the CA operations (`ca::renewal`).
    pub fn service_renewal(service: ServiceKind, actor: Actor) -> Self {
        Self {
            kind: match service {
                ServiceKind::OcspResponder => CertificateKind::OcspResponder,
                ServiceKind::TimeStampingUnit => CertificateKind::TimeStampingUnit,
            },
            actor,
        }
    }

    /// A certificate of the hierarchy the key ceremony makes (`pki::ceremony`).
    pub fn ceremony(kind: CertificateKind) -> Self {
        Self {
            kind,
            actor: Actor::Task("ceremony"),
        }
    }

    pub fn kind(&self) -> CertificateKind {
        self.kind
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("the {} certificate failed the pre-signing lint: {}", kind.name(), describe(findings))]
    Lint {
        kind: CertificateKind,
        findings: Vec<Finding>,
    },
    #[error("a serial reserved for a {} certificate cannot serve a {} one", reserved.name(), kind.name())]
    SerialKind {
        kind: CertificateKind,
        reserved: CertificateKind,
    },
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
}

fn describe(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("{}: {}", f.rule, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The findings of `kind`'s profile on `tbs`. A seal certificate is checked
/// against its policy; without one it cannot pass.
fn lint_of(
    kind: CertificateKind,
    tbs: &TbsCertificate,
    issuer: Option<&Certificate>,
    policy: Option<&CertificatePolicy>,
) -> Vec<Finding> {
    match (kind, policy, issuer) {
        (CertificateKind::Seal, Some(policy), Some(issuer)) => {
            lint::seal_certificate(tbs, policy, issuer)
        }
        (CertificateKind::Seal, ..) => vec![Finding {
            rule: "seal.policy",
            message: "a seal certificate is linted against its policy and its CA".to_owned(),
        }],
        (kind, _, issuer) => lint::certificate(kind, tbs, issuer),
    }
}

/// The TBSCertificate of `request`, to be signed by `key` (self-signed when
/// the request names no issuer).
fn tbs_of(request: CertificateRequest, key: &HsmSigner) -> TbsCertificate {
    let issuer = request.issuer.unwrap_or_else(|| request.subject.clone());
    TbsCertificate {
        version: Version::V3,
        serial_number: request.serial.into_number(),
        signature: key.algorithm().algorithm_identifier(),
        issuer,
        validity: request.validity,
        subject: request.subject,
        subject_public_key_info: request.public_key,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(request.extensions.into_iter().map(|e| e.0).collect()),
    }
}

/// Lints `request` against the grant's kind, then signs it with `key`. Its
/// serial must have been reserved for that kind. `issuer` is the CA's
/// certificate (`None` for the self-signed root). Blocking.
pub fn lint_then_sign(
    grant: &Grant,
    request: CertificateRequest,
    issuer: Option<&Certificate>,
    key: &HsmSigner,
) -> Result<Certificate, SigningError> {
    if request.serial.kind() != grant.kind {
        return Err(SigningError::SerialKind {
            kind: grant.kind,
            reserved: request.serial.kind(),
        });
    }
    let tbs = tbs_of(request, key);
    let findings = lint_of(grant.kind, &tbs, issuer, None);
    if !findings.is_empty() {
        return Err(SigningError::Lint {
            kind: grant.kind,
            findings,
        });
    }
    sign_linted(tbs, key)
}

/// The signature over a TBSCertificate that passed its lint. Blocking.
fn sign_linted(tbs: TbsCertificate, key: &HsmSigner) -> Result<Certificate, SigningError> {
    let message = tbs.to_der().map_err(CertificateError::from)?;
    let signature = key.sign_message(&message)?;
    Ok(Certificate {
        signature_algorithm: tbs.signature.clone(),
        tbs_certificate: tbs,
        signature: BitString::from_bytes(&signature).map_err(CertificateError::from)?,
    })
}

/// The journal entry of a certificate the lint refused: its kind, who asked,
/// what it would have said (`refused`, whose kind and findings this fills in)
/// and the findings. Returns its index.
pub async fn journal_refusal(
    journal: &Journal,
    grant: &Grant,
    mut refused: LintRefused,
    findings: &[Finding],
) -> Result<u64, JournalError> {
    refused.kind = grant.kind.name().to_owned();
    refused.findings = serde_json::to_value(findings)?;
    journal
        .append(&grant.actor, Event::CertificateLintRefused(refused))
        .await
}

/// A refusal's record before [`journal_refusal`] adds the kind and findings.
pub fn refusal() -> LintRefused {
    LintRefused {
        kind: String::new(),
        findings: serde_json::Value::Null,
        request: None,
        subject: None,
        serial: None,
        issuer_serial: None,
    }
}

/// The serial an end-entity TBSCertificate carries until [`EndEntityCa::issue`]
/// puts the one it reserved in its place (zero: never a valid serial, so a
/// TBSCertificate that skipped the reservation fails its lint).
pub fn serial_to_be_reserved() -> x509_cert::serial_number::SerialNumber {
    x509_cert::serial_number::SerialNumber::from(0u8)
}

/// An end-entity CA of sceau (the issuing CA for seals, the client-auth CA
/// for TLS clients), with what issuing needs around it.
pub struct EndEntityCa<'a> {
    pub store: &'a Store,
    pub journal: &'a Journal,
    pub clock: &'a SharedClock,
    pub key: &'a HsmSigner,
    pub certificate: &'a Certificate,
}

/// What one end-entity issuance records besides the certificate.
pub struct EndEntityRecord<'a> {
    pub policy: Option<&'a CertificatePolicy>,
    /// The reservation's fields; serial, subject and dates come from the TBS.
    pub reservation: CertificateReservation,
    /// What the refusal or the issuance entry says besides the certificate
    /// (and so which event it is: `certificate.issued`, …).
    pub request: EndEntityRequest,
    /// The seal credential that comes with a CA-managed key.
    pub credential: Option<NewCredential>,
}

/// An end-entity certificate signed, journaled and stored.
#[derive(Debug, Clone)]
pub struct SignedEndEntity {
    pub certificate: Certificate,
    pub der: Vec<u8>,
    pub serial: String,
    pub sha256: String,
    pub journal_index: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EndEntityError {
    #[error(
        "the certificate failed the pre-signing lint (journal entry {journal_index}): {}",
        describe(findings)
    )]
    Lint {
        findings: Vec<Finding>,
        journal_index: u64,
    },
    #[error("this public key is already certified; a new certificate needs a new key")]
    KeyAlreadyCertified,
    #[error(transparent)]
    Serial(#[from] SerialError),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("internal: {0}")]
    Internal(String),
}

impl EndEntityCa<'_> {
    /// Reserves the serial, lints, signs, journals and stores one end-entity
    /// certificate; the serial `tbs` comes with is replaced by the reserved
    /// one. Nothing is returned before the journal holds the issuance; a
    /// serial once reserved stays spent, whatever happens after.
    pub async fn issue(
        &self,
        grant: Grant,
        mut tbs: TbsCertificate,
        record: EndEntityRecord<'_>,
    ) -> Result<SignedEndEntity, EndEntityError> {
        let reserved = serials::reserve(self.store, grant.kind, self.clock.now()).await?;
        let serial = reserved.hex().to_owned();
        tbs.serial_number = reserved.into_number();
        let findings = lint_of(grant.kind, &tbs, Some(self.certificate), record.policy);
        if !findings.is_empty() {
            let refused = LintRefused {
                request: Some(record.request.clone()),
                subject: Some(tbs.subject.to_string()),
                serial: Some(serial.clone()),
                ..refusal()
            };
            let journal_index = journal_refusal(self.journal, &grant, refused, &findings).await?;
            tracing::error!(
                kind = grant.kind.name(),
                ?findings,
                "a certificate failed the pre-signing lint and was not signed"
            );
            return Err(EndEntityError::Lint {
                findings,
                journal_index,
            });
        }
        self.record_reservation(&tbs, &serial, &record.reservation)
            .await?;
        let key = self.key.clone();
        let signed = tokio::task::spawn_blocking(move || sign_linted(tbs, &key))
            .await
            .map_err(|e| EndEntityError::Internal(format!("signing task: {e}")))
            .and_then(|signed| signed.map_err(EndEntityError::from));
        let certificate = match signed {
            Ok(certificate) => certificate,
            Err(e) => {
                // Nothing carries the serial: give it back.
                if let Err(release) = self.store.release_reservation(&serial).await {
                    tracing::error!(%serial, error = %release, "releasing a reservation failed");
                }
                return Err(e);
            }
        };
        let der = certificate
            .to_der()
            .map_err(|e| EndEntityError::Signing(CertificateError::from(e).into()))?;
        let sha256 = hex::encode(Sha256::digest(&der));
        let tbs = &certificate.tbs_certificate;
        let signed = SignedCertificate {
            serial: serial.clone(),
            subject: tbs.subject.to_string(),
            not_before: tbs.validity.not_before.to_system_time().into(),
            not_after: tbs.validity.not_after.to_system_time().into(),
            certificate_sha256: sha256.clone(),
            certificate: base64::engine::general_purpose::STANDARD.encode(&der),
        };
        let journal_index = self
            .journal
            .append(&grant.actor, record.request.issued(signed))
            .await?;
        self.store
            .complete_certificate(
                &serial,
                &der,
                &sha256,
                journal_index,
                record.credential.as_ref(),
                time::OffsetDateTime::from(self.clock.now()),
            )
            .await?;
        Ok(SignedEndEntity {
            certificate,
            der,
            serial,
            sha256,
            journal_index,
        })
    }

    /// The certificate's row, taken before the signature: its serial (already
    /// in the register) and its key, which no other certificate may bind.
    async fn record_reservation(
        &self,
        tbs: &TbsCertificate,
        serial: &str,
        template: &CertificateReservation,
    ) -> Result<(), EndEntityError> {
        let now = time::OffsetDateTime::from(self.clock.now());
        let reservation = CertificateReservation {
            serial: serial.to_owned(),
            subject: tbs.subject.to_string(),
            not_before: tbs.validity.not_before.to_system_time().into(),
            not_after: tbs.validity.not_after.to_system_time().into(),
            ..template.clone()
        };
        match self.store.reserve_certificate(&reservation, now).await {
            Ok(()) => Ok(()),
            Err(ReservationError::KeyCertified(_)) => Err(EndEntityError::KeyAlreadyCertified),
            Err(ReservationError::SerialTaken(serial)) => Err(EndEntityError::Internal(format!(
                "serial {serial} is free in the register but has a certificate row"
            ))),
            Err(ReservationError::Store(e)) => Err(e.into()),
        }
    }
}
