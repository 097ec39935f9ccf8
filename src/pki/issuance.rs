//! The issuance engine: turns a validated registration into a seal certificate
//! under one policy. It takes the key (generated in the HSM, or from a verified
//! CSR), builds the TBSCertificate, lints it, reserves the serial number, signs
//! with the issuing CA key, journals the result and only then stores and returns
//! it. The RA is the only caller.

use std::sync::Arc;
use std::time::SystemTime;

use const_oid::db::rfc5912;
use der::Any;
use der::asn1::{Ia5String, OctetString};
use serde_json::json;
use uuid::Uuid;
use x509_cert::Certificate;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::CertificatePolicies;
use x509_cert::ext::pkix::certpolicy::{PolicyInformation, PolicyQualifierInfo};
use x509_cert::serial_number::SerialNumber;

use super::certificate::{self, CertificateError, PreparedExtension, extensions};
use super::csr::{self, CsrError};
use super::lint::{Finding, ID_QT_CPS};
use super::policy::{CertificatePolicy, KeyGeneration, PolicySet};
use super::qc;
use super::signing::{
    self, CertificateKind, EndEntityCa, EndEntityError, EndEntityRecord, Grant, SignedEndEntity,
    SigningError,
};
use super::subject::{OrganizationIdentifier, SealSubject};
use crate::clock::SharedClock;
use crate::config::TokenRole;
use crate::crypto;
use crate::error::{ErrorKind, HasErrorKind};
use crate::hsm::{HsmError, HsmKey, HsmSigner, KeyAlgorithm, TokenPool};
use crate::journal::event::{EndEntityRequest, SealIssuance};
use crate::journal::{Journal, JournalError};
use crate::store::certificates::{CertificateReservation, NewCredential};
use crate::store::entities::KeyReference;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum IssuanceError {
    #[error("no certificate policy {0:?}")]
    UnknownPolicy(String),
    #[error("the registration data cannot make a subject: {0}")]
    Subject(String),
    #[error("policy {policy} has `{generation}` keys: {reason}")]
    WrongKeySource {
        policy: String,
        generation: &'static str,
        reason: &'static str,
    },
    #[error("{0}")]
    KeyAlgorithm(String),
    #[error(transparent)]
    Csr(#[from] CsrError),
    #[error("this public key is already certified; a new certificate needs a new key")]
    KeyAlreadyCertified,
    #[error("validity of {requested} days exceeds the policy's {maximum}")]
    Validity { requested: u32, maximum: u32 },
    #[error("the certificate failed the pre-signing lint (journal entry {journal_index}): {}",
        findings.iter().map(|f| format!("{}: {}", f.rule, f.message)).collect::<Vec<_>>().join("; "))]
    LintFailed {
        findings: Vec<Finding>,
        journal_index: u64,
    },
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("the issuing CA is being terminated or was terminated: it issues no more certificates")]
    CaTerminated,
    #[error("internal: {0}")]
    Internal(String),
}

impl HasErrorKind for IssuanceError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::UnknownPolicy(_) => ErrorKind::NotFound,
            Self::Subject(_)
            | Self::WrongKeySource { .. }
            | Self::KeyAlgorithm(_)
            | Self::Validity { .. } => ErrorKind::Unprocessable,
            Self::Csr(e) => e.kind(),
            Self::KeyAlreadyCertified | Self::CaTerminated => ErrorKind::Conflict,
            Self::Store(e) => e.kind(),
            Self::Hsm(e) => e.kind(),
            Self::Journal(e) => e.kind(),
            Self::LintFailed { .. } | Self::Certificate(_) | Self::Internal(_) => {
                ErrorKind::Internal
            }
        }
    }
}

/// Where the key to certify comes from; it must match the policy's generation.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `ca` / `ca-qscd`: generated now in the seal token, never leaving it.
    Generate { algorithm: Option<KeyAlgorithm> },
    /// `entity`, `entity-qscd`, `chip`: a PKCS#10 request, with the device
    /// evidence the policy asks for.
    Csr {
        csr: Vec<u8>,
        device: Option<DeviceEvidence>,
    },
}

/// What the entity shows about the device its key was generated on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeviceEvidence {
    /// `entity-qscd`: the QSealCD model and the SHA-256 of the proof that the key
    /// was generated on it (ceremony record, device attestation), kept by the RA.
    Qscd { model: String, proof_sha256: String },
    /// `chip`: the reference of the chip the CA handed over.
    Chip { reference: String },
}

/// What the RA asks for once a request is validated.
#[derive(Debug, Clone)]
pub struct IssuanceRequest {
    pub request_id: Uuid,
    pub policy_id: String,
    pub entity_id: Uuid,
    /// The seal's name, the certificate's commonName.
    pub seal_name: String,
    /// At most the policy's maximum; the maximum when absent.
    pub validity_days: Option<u32>,
    pub key: KeySource,
}

/// A certificate issued, journaled and stored.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate: Certificate,
    pub der: Vec<u8>,
    /// Hex of the serial number's content octets.
    pub serial: String,
    /// Hex SHA-256 of the DER.
    pub sha256: String,
    pub journal_index: u64,
    /// For CA-managed keys: the seal credential and its key in the HSM.
    pub credential_id: Option<Uuid>,
    pub key: Option<HsmKey>,
}

/// The issuing CA's key and certificate, with what issuance needs around them.
#[derive(Debug, Clone)]
pub struct Issuer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    policies: Arc<PolicySet>,
    store: Store,
    journal: Journal,
    clock: SharedClock,
    ca_key: HsmSigner,
    ca_certificate: Certificate,
    seal_token: Arc<TokenPool>,
}

/// The key about to be certified.
struct SubjectKey {
    public_key: spki::SubjectPublicKeyInfoOwned,
    spki_sha256: [u8; 32],
    /// Generated for this request: destroyed again if the issuance fails.
    generated: Option<(Uuid, HsmKey)>,
}

impl Issuer {
    engine_constructor! {
        fn new(
            policies: Arc<PolicySet>,
            store: Store,
            journal: Journal,
            clock: SharedClock,
            ca_key: HsmSigner,
            ca_certificate: Certificate,
            seal_token: Arc<TokenPool>,
        ) -> Self {
            Self {
                inner: Arc::new(Inner {
                    policies,
                    store,
                    journal,
                    clock,
                    ca_key,
                    ca_certificate,
                    seal_token,
                }),
            }
        }
    }

    pub fn policies(&self) -> &PolicySet {
        &self.inner.policies
    }

    pub fn ca_certificate(&self) -> &Certificate {
        &self.inner.ca_certificate
    }

    /// Issues one certificate under `grant` (the RA's, for a validated
    /// request). Nothing is signed unless the TBSCertificate passes the lint;
    /// nothing is returned before the journal holds the issuance.
    pub async fn issue(
        &self,
        grant: Grant,
        request: IssuanceRequest,
    ) -> Result<Issued, IssuanceError> {
        let inner = &self.inner;
        if grant.kind() != CertificateKind::Seal {
            return Err(IssuanceError::Internal(format!(
                "a {} grant does not issue seal certificates",
                grant.kind().name()
            )));
        }
        // A termination started by `sceau ca terminate` (another process) stops
        // issuance here, before any key is made.
        let ca_serial = hex::encode(
            inner
                .ca_certificate
                .tbs_certificate
                .serial_number
                .as_bytes(),
        );
        if inner.store.termination(&ca_serial).await?.is_some() {
            return Err(IssuanceError::CaTerminated);
        }
        let policy = inner
            .policies
            .get(&request.policy_id)
            .cloned()
            .ok_or_else(|| IssuanceError::UnknownPolicy(request.policy_id.clone()))?;
        let subject = self.subject(&request).await?;
        let validity_days = match request.validity_days {
            None => policy.max_validity_days,
            Some(days) if days >= 1 && days <= policy.max_validity_days => days,
            Some(days) => {
                return Err(IssuanceError::Validity {
                    requested: days,
                    maximum: policy.max_validity_days,
                });
            }
        };
        let key = self.subject_key(&policy, &request).await?;
        let outcome = self
            .sign_and_record(grant, &policy, &request, &subject, validity_days, &key)
            .await;
        if outcome.is_err()
            && let Some((_, generated)) = &key.generated
        {
            // The key was made for this certificate only: it must not outlive a failure.
            let token = inner.seal_token.clone();
            let id = generated.id;
            let destroyed =
                tokio::task::spawn_blocking(move || token.destroy_key_blocking(&id)).await;
            if !matches!(destroyed, Ok(Ok(()))) {
                tracing::error!(key = %id, "could not destroy the key of a failed issuance");
            }
        }
        outcome
    }

    async fn subject(&self, request: &IssuanceRequest) -> Result<SealSubject, IssuanceError> {
        let entity = self.inner.store.entity(request.entity_id).await?;
        let organization_identifier: OrganizationIdentifier = entity
            .organization_identifier
            .parse()
            .map_err(|e: super::subject::OrganizationIdentifierError| {
                IssuanceError::Subject(e.to_string())
            })?;
        let subject = SealSubject {
            country: entity.country,
            organization: entity.legal_name,
            organization_identifier,
            common_name: request.seal_name.clone(),
        };
        // Encoding checks lengths and the country code once, here.
        subject
            .to_name()
            .map_err(|e| IssuanceError::Subject(e.to_string()))?;
        Ok(subject)
    }

    async fn subject_key(
        &self,
        policy: &CertificatePolicy,
        request: &IssuanceRequest,
    ) -> Result<SubjectKey, IssuanceError> {
        let generation = policy.key.generation;
        let wrong = |reason| IssuanceError::WrongKeySource {
            policy: policy.id.clone(),
            generation: generation.name(),
            reason,
        };
        match (&request.key, generation) {
            (KeySource::Generate { algorithm }, KeyGeneration::Ca | KeyGeneration::CaQscd) => {
                let algorithm = policy
                    .key
                    .generated(*algorithm)
                    .map_err(IssuanceError::KeyAlgorithm)?;
                let credential_id = Uuid::new_v4();
                let key = self
                    .inner
                    .seal_token
                    .clone()
                    .generate_key_pair(credential_id.to_string(), algorithm)
                    .await?;
                let spki_sha256 = crypto::spki_sha256(&key.public_key)
                    .map_err(|e| IssuanceError::Internal(e.to_string()))?;
                Ok(SubjectKey {
                    public_key: key.public_key.clone(),
                    spki_sha256,
                    generated: Some((credential_id, key)),
                })
            }
            (KeySource::Generate { .. }, _) => {
                Err(wrong("the entity generates the key and sends a CSR"))
            }
            (KeySource::Csr { .. }, KeyGeneration::Ca | KeyGeneration::CaQscd) => Err(wrong(
                "the CA generates the key in its HSM; a CSR is not accepted",
            )),
            (KeySource::Csr { csr, device }, _) => {
                match (generation, device) {
                    (KeyGeneration::Entity, None)
                    | (KeyGeneration::EntityQscd, Some(DeviceEvidence::Qscd { .. }))
                    | (KeyGeneration::Chip, Some(DeviceEvidence::Chip { .. })) => {}
                    (KeyGeneration::EntityQscd, _) => {
                        return Err(wrong(
                            "the QSealCD model and the proof of generation on it are required",
                        ));
                    }
                    (KeyGeneration::Chip, _) => {
                        return Err(wrong("the reference of the chip handed over is required"));
                    }
                    _ => return Err(wrong("no device evidence belongs to this policy")),
                }
                if let Some(DeviceEvidence::Qscd {
                    model,
                    proof_sha256,
                }) = device
                {
                    let proof_ok = proof_sha256.len() == 64
                        && proof_sha256.bytes().all(|b| b.is_ascii_hexdigit());
                    if model.trim().is_empty() || !proof_ok {
                        return Err(wrong(
                            "the QSealCD model must be named and the proof given as a SHA-256 (hex)",
                        ));
                    }
                }
                if let Some(DeviceEvidence::Chip { reference }) = device
                    && reference.trim().is_empty()
                {
                    return Err(wrong("the chip reference must not be empty"));
                }
                let verified = csr::verify(csr, &policy.key)?;
                if self
                    .inner
                    .store
                    .is_key_certified(&hex::encode(verified.spki_sha256))
                    .await?
                {
                    return Err(IssuanceError::KeyAlreadyCertified);
                }
                Ok(SubjectKey {
                    public_key: verified.public_key,
                    spki_sha256: verified.spki_sha256,
                    generated: None,
                })
            }
        }
    }

    async fn sign_and_record(
        &self,
        grant: Grant,
        policy: &Arc<CertificatePolicy>,
        request: &IssuanceRequest,
        subject: &SealSubject,
        validity_days: u32,
        key: &SubjectKey,
    ) -> Result<Issued, IssuanceError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let tbs = self.tbs_certificate(policy, subject, validity_days, key, now)?;

        let credential_id = key.generated.as_ref().map(|(id, _)| *id);
        let key_details = match &key.generated {
            Some((credential, hsm_key)) => json!({
                "source": policy.key.generation.name(),
                "credential_id": credential,
                "token": TokenRole::Seal.name(),
                "key_id": hsm_key.id.to_string(),
                "label": hsm_key.label,
                "algorithm": hsm_key.algorithm.name(),
                "spki_sha256": hex::encode(key.spki_sha256),
            }),
            None => json!({
                "source": policy.key.generation.name(),
                "spki_sha256": hex::encode(key.spki_sha256),
                "device": match &request.key {
                    KeySource::Csr { device, .. } => serde_json::to_value(device)
                        .unwrap_or(serde_json::Value::Null),
                    KeySource::Generate { .. } => serde_json::Value::Null,
                },
            }),
        };
        let credential = key.generated.as_ref().map(|(id, hsm_key)| NewCredential {
            id: *id,
            entity_id: request.entity_id,
            key: KeyReference {
                token_role: TokenRole::Seal,
                key_id: hsm_key.id.as_bytes().to_vec(),
                key_label: hsm_key.label.clone(),
            },
        });
        let ca = EndEntityCa {
            store: &inner.store,
            journal: &inner.journal,
            clock: &inner.clock,
            key: &inner.ca_key,
            certificate: &inner.ca_certificate,
        };
        let record = EndEntityRecord {
            policy: Some(policy),
            reservation: CertificateReservation {
                serial: String::new(),
                policy_id: policy.id.clone(),
                request_id: request.request_id,
                entity_id: request.entity_id,
                credential_id,
                subject: String::new(),
                spki_sha256: hex::encode(key.spki_sha256),
                not_before: time_of(now),
                not_after: time_of(now),
            },
            request: EndEntityRequest::Seal(SealIssuance {
                request_id: request.request_id,
                entity_id: request.entity_id,
                policy: policy.id.clone(),
                policy_oid: policy.ca_policy_oid.to_string(),
                level: policy.level.name().to_owned(),
                key: key_details,
            }),
            credential,
        };
        let SignedEndEntity {
            certificate,
            der,
            serial,
            sha256,
            journal_index,
        } = ca.issue(grant, tbs, record).await.map_err(|e| match e {
            EndEntityError::Lint {
                findings,
                journal_index,
            } => IssuanceError::LintFailed {
                findings,
                journal_index,
            },
            EndEntityError::KeyAlreadyCertified => IssuanceError::KeyAlreadyCertified,
            EndEntityError::Signing(SigningError::Certificate(e)) => e.into(),
            EndEntityError::Signing(SigningError::Hsm(e)) => e.into(),
            EndEntityError::Signing(
                e @ (SigningError::Lint { .. } | SigningError::SerialKind { .. }),
            ) => IssuanceError::Internal(e.to_string()),
            EndEntityError::Serial(e) => IssuanceError::Internal(e.to_string()),
            EndEntityError::Store(e) => e.into(),
            EndEntityError::Journal(e) => e.into(),
            EndEntityError::Internal(e) => IssuanceError::Internal(e),
        })?;
        tracing::info!(%serial, policy = %policy.id, journal_index, "certificate issued");
        Ok(Issued {
            certificate,
            der,
            serial,
            sha256,
            journal_index,
            credential_id,
            key: key.generated.as_ref().map(|(_, k)| k.clone()),
        })
    }

    /// The TBSCertificate of EN 319 412-3 for this policy and subject.
    fn tbs_certificate(
        &self,
        policy: &CertificatePolicy,
        subject: &SealSubject,
        validity_days: u32,
        key: &SubjectKey,
        now: SystemTime,
    ) -> Result<TbsCertificate, IssuanceError> {
        let ca = &self.inner.ca_certificate;
        let mut usages = der::flagset::FlagSet::default();
        for usage in &policy.key_usage {
            usages |= usage.flag();
        }
        let cps = Ia5String::new(&policy.urls.cps_uri).map_err(CertificateError::from)?;
        let policies = CertificatePolicies(vec![
            PolicyInformation {
                policy_identifier: policy.etsi_policy_oid,
                policy_qualifiers: None,
            },
            PolicyInformation {
                policy_identifier: policy.ca_policy_oid,
                policy_qualifiers: Some(vec![PolicyQualifierInfo {
                    policy_qualifier_id: ID_QT_CPS,
                    qualifier: Some(Any::from(&cps)),
                }]),
            },
        ]);
        let qc_der = policy
            .qc_statements
            .to_der()
            .map_err(CertificateError::from)?;
        let extensions: Vec<PreparedExtension> = vec![
            extensions::key_usage(usages)?,
            PreparedExtension::new(rfc5912::ID_CE_CERTIFICATE_POLICIES, false, &policies)?,
            // The statements are already DER: the extension carries them as they are.
            PreparedExtension(Extension {
                extn_id: qc::ID_PE_QC_STATEMENTS,
                critical: false,
                extn_value: OctetString::new(qc_der).map_err(CertificateError::from)?,
            }),
            extensions::authority_info_access(
                Some(&policy.urls.ocsp_url),
                Some(&policy.urls.ca_issuers_url),
            )?,
            extensions::crl_distribution_point(&policy.urls.crl_url)?,
            extensions::subject_key_identifier(&key.public_key)?,
            extensions::authority_key_identifier(&ca.tbs_certificate.subject_public_key_info)?,
        ];
        Ok(TbsCertificate {
            version: Version::V3,
            serial_number: signing::serial_to_be_reserved(),
            signature: self.inner.ca_key.algorithm().algorithm_identifier(),
            issuer: ca.tbs_certificate.subject.clone(),
            validity: certificate::validity(now, validity_days)?,
            subject: subject.to_name()?,
            subject_public_key_info: key.public_key.clone(),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions.into_iter().map(|e| e.0).collect()),
        })
    }
}

fn time_of(at: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(at)
}

/// The serial of a certificate as sceau stores it (hex of the content octets).
pub fn serial_hex(serial: &SerialNumber) -> String {
    hex::encode(serial.as_bytes())
}
