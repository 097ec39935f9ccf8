//! TLS client certificates for mutual-TLS activation, issued by the
//! client-authentication CA to organisations' staff (RCCS) from a CSR: proof of
//! possession checked, the subject taken from the validated registration (never
//! from the CSR), the serial reserved before signing, the issuance journaled
//! before the row is completed and the caller told.

use std::sync::Arc;
use std::time::SystemTime;

use const_oid::db::rfc5912;
use time::OffsetDateTime;
use uuid::Uuid;
use x509_cert::Certificate;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::KeyUsages;

use super::ceremony::ClientAuthSpec;
use super::certificate::{self, CertificateError, PreparedExtension, SubjectName, extensions};
use super::csr::{self, CsrError};
use super::policy::MAX_RSA_BITS;
use super::signing::{
    self, CertificateKind, EndEntityCa, EndEntityError, EndEntityRecord, Grant, SignedEndEntity,
    SigningError,
};
use super::subject::OrganizationIdentifier;
use crate::clock::SharedClock;
use crate::clock::format::rfc3339;
use crate::crypto::PublicKeyKind;
use crate::error::{ErrorKind, HasErrorKind};
use crate::hsm::{HsmError, HsmSigner};
use crate::journal::event::{ClientIssuance, EndEntityRequest};
use crate::journal::{Journal, JournalError};
use crate::store::certificates::CertificateReservation;
use crate::store::{Store, StoreError};

/// The `policy_id` of client certificates in the `certificates` table, which
/// they share with seal certificates so that a key is certified once, whatever for.
pub const CLIENT_AUTH_POLICY_ID: &str = "client-auth";
/// The longest validity a client certificate may have (the CA/Browser Forum's
/// former limit for TLS certificates, a common ceiling for client ones).
pub const MAX_CLIENT_VALIDITY_DAYS: u32 = 825;
/// The smallest RSA key accepted for a client certificate (ETSI TS 119 312 for
/// short-lived authentication keys; the seal policies ask for more).
pub const MIN_CLIENT_RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum ClientCertificateError {
    /// The CSR is unusable: malformed, no proof of possession, unacceptable key.
    #[error("csr: {0}")]
    Csr(#[from] CsrError),
    /// A request field cannot go into the certificate.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("this public key is already certified; a new certificate needs a new key")]
    KeyAlreadyCertified,
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("internal: {0}")]
    Internal(String),
}

impl ClientCertificateError {
    /// The request field the error is about, for the caller to name.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Csr(_) | Self::KeyAlreadyCertified => Some("csr"),
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl HasErrorKind for ClientCertificateError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Csr(e) => e.kind(),
            Self::Invalid { .. } => ErrorKind::Unprocessable,
            Self::KeyAlreadyCertified => ErrorKind::Conflict,
            Self::Hsm(e) => e.kind(),
            Self::Store(e) => e.kind(),
            Self::Journal(e) => e.kind(),
            Self::Certificate(_) | Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// One client certificate to issue; the caller (the RA) has validated who asks.
#[derive(Debug, Clone)]
pub struct ClientCertificateRequest {
    pub request_id: Uuid,
    /// The registered organisation the holder acts for.
    pub entity_id: Uuid,
    /// The subject, from the registration: O, organizationIdentifier, C, CN.
    pub organization: String,
    pub organization_identifier: String,
    pub country: String,
    pub common_name: String,
    /// PKCS#10, DER (or PEM): only its public key is used.
    pub csr_der: Vec<u8>,
    /// 1 to [`MAX_CLIENT_VALIDITY_DAYS`].
    pub validity_days: u32,
}

/// A client certificate issued, journaled and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedClientCertificate {
    pub der: Vec<u8>,
    /// Hex of the serial number's content octets.
    pub serial: String,
    /// Hex SHA-256 of the DER (what an activation credential binds).
    pub sha256: String,
    pub not_after: OffsetDateTime,
    pub journal_index: u64,
}

/// Where relying parties find the client-auth CA's certificate and CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuthUrls {
    pub ca_issuers_url: String,
    pub crl_url: String,
}

impl From<&ClientAuthSpec> for ClientAuthUrls {
    fn from(spec: &ClientAuthSpec) -> Self {
        Self {
            ca_issuers_url: spec.certificate_url.clone(),
            crl_url: spec.crl_url.clone(),
        }
    }
}

/// The client-authentication CA's key and certificate, with what issuance
/// needs around them. Built by `ca::client_certificate_issuer`.
#[derive(Debug, Clone)]
pub struct ClientCertificateIssuer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    journal: Journal,
    clock: SharedClock,
    ca_key: HsmSigner,
    ca_certificate: Certificate,
    urls: ClientAuthUrls,
}

/// The keys a client certificate may bind: P-256, P-384, RSA of 2048 bits or more.
fn client_key_rule(kind: PublicKeyKind) -> Result<(), String> {
    match kind {
        PublicKeyKind::EcP256 | PublicKeyKind::EcP384 => Ok(()),
        PublicKeyKind::Rsa { bits } if bits < MIN_CLIENT_RSA_BITS => Err(format!(
            "an RSA key of {bits} bits is below the {MIN_CLIENT_RSA_BITS} bits a client certificate requires"
        )),
        PublicKeyKind::Rsa { bits } if bits > MAX_RSA_BITS => Err(format!(
            "an RSA key of {bits} bits is above the {MAX_RSA_BITS}-bit limit"
        )),
        PublicKeyKind::Rsa { .. } => Ok(()),
    }
}

impl ClientCertificateIssuer {
    engine_constructor! {
        fn new(
            store: Store,
            journal: Journal,
            clock: SharedClock,
            ca_key: HsmSigner,
            ca_certificate: Certificate,
            urls: ClientAuthUrls,
        ) -> Self {
            Self {
                inner: Arc::new(Inner {
                    store,
                    journal,
                    clock,
                    ca_key,
                    ca_certificate,
                    urls,
                }),
            }
        }
    }

    /// The client-auth CA certificate (what a relying party needs as intermediate).
    pub fn ca_certificate(&self) -> &Certificate {
        &self.inner.ca_certificate
    }

    /// Issues one client certificate. Nothing is returned before the journal
    /// holds the issuance.
    pub async fn issue(
        &self,
        grant: Grant,
        request: ClientCertificateRequest,
    ) -> Result<IssuedClientCertificate, ClientCertificateError> {
        let inner = &self.inner;
        if grant.kind() != CertificateKind::ClientAuth {
            return Err(ClientCertificateError::Internal(format!(
                "a {} grant does not issue client certificates",
                grant.kind().name()
            )));
        }
        let subject = subject_name(&request)?;
        if request.validity_days == 0 || request.validity_days > MAX_CLIENT_VALIDITY_DAYS {
            return Err(ClientCertificateError::Invalid {
                field: "validity_days",
                reason: format!(
                    "{} days: a client certificate lasts 1 to {MAX_CLIENT_VALIDITY_DAYS} days",
                    request.validity_days
                ),
            });
        }
        let verified = csr::verify_with(&request.csr_der, client_key_rule)?;
        let spki_sha256 = hex::encode(verified.spki_sha256);
        if inner.store.is_key_certified(&spki_sha256).await? {
            return Err(ClientCertificateError::KeyAlreadyCertified);
        }

        let now = inner.clock.now();
        let validity = certificate::validity(now, request.validity_days)?;
        let ca_not_after = inner
            .ca_certificate
            .tbs_certificate
            .validity
            .not_after
            .to_system_time();
        if validity.not_after.to_system_time() > ca_not_after {
            return Err(ClientCertificateError::Invalid {
                field: "validity_days",
                reason: format!(
                    "the certificate would outlive the client-auth CA's ({})",
                    rfc3339(ca_not_after)
                ),
            });
        }
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: signing::serial_to_be_reserved(),
            signature: inner.ca_key.algorithm().algorithm_identifier(),
            issuer: inner.ca_certificate.tbs_certificate.subject.clone(),
            validity,
            subject,
            subject_public_key_info: verified.public_key.clone(),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(self.extensions(&verified.public_key)?),
        };
        let not_after = time_of(tbs.validity.not_after.to_system_time());
        let ca = EndEntityCa {
            store: &inner.store,
            journal: &inner.journal,
            clock: &inner.clock,
            key: &inner.ca_key,
            certificate: &inner.ca_certificate,
        };
        let record = EndEntityRecord {
            policy: None,
            reservation: CertificateReservation {
                serial: String::new(),
                policy_id: CLIENT_AUTH_POLICY_ID.to_owned(),
                request_id: request.request_id,
                entity_id: request.entity_id,
                credential_id: None,
                subject: String::new(),
                spki_sha256: spki_sha256.clone(),
                not_before: time_of(now),
                not_after: time_of(now),
            },
            request: EndEntityRequest::Client(ClientIssuance {
                request_id: request.request_id,
                entity_id: request.entity_id,
                issuer: inner.ca_certificate.tbs_certificate.subject.to_string(),
                spki_sha256: spki_sha256.clone(),
            }),
            credential: None,
        };
        let SignedEndEntity {
            der,
            serial,
            sha256,
            journal_index,
            ..
        } = ca.issue(grant, tbs, record).await.map_err(|e| match e {
            EndEntityError::KeyAlreadyCertified => ClientCertificateError::KeyAlreadyCertified,
            EndEntityError::Signing(SigningError::Certificate(e)) => e.into(),
            EndEntityError::Signing(SigningError::Hsm(e)) => e.into(),
            EndEntityError::Store(e) => e.into(),
            EndEntityError::Journal(e) => e.into(),
            other => ClientCertificateError::Internal(other.to_string()),
        })?;
        tracing::info!(%serial, entity = %request.entity_id, journal_index, "client certificate issued");
        Ok(IssuedClientCertificate {
            der,
            serial,
            sha256,
            not_after,
            journal_index,
        })
    }

    /// RFC 5280 end-entity extensions for TLS client authentication.
    fn extensions(
        &self,
        public_key: &spki::SubjectPublicKeyInfoOwned,
    ) -> Result<Vec<x509_cert::ext::Extension>, ClientCertificateError> {
        let ca = &self.inner.ca_certificate.tbs_certificate;
        let urls = &self.inner.urls;
        let prepared: Vec<PreparedExtension> = vec![
            extensions::basic_constraints(false, None)?,
            extensions::key_usage(KeyUsages::DigitalSignature)?,
            extensions::extended_key_usage(vec![rfc5912::ID_KP_CLIENT_AUTH], false)?,
            extensions::subject_key_identifier(public_key)?,
            extensions::authority_key_identifier(&ca.subject_public_key_info)?,
            extensions::crl_distribution_point(&urls.crl_url)?,
            extensions::authority_info_access(None, Some(&urls.ca_issuers_url))?,
        ];
        Ok(prepared.into_iter().map(|e| e.0).collect())
    }
}

/// C, O, organizationIdentifier, CN from the request, each checked.
fn subject_name(
    request: &ClientCertificateRequest,
) -> Result<x509_cert::name::Name, ClientCertificateError> {
    let identifier: OrganizationIdentifier = request.organization_identifier.parse().map_err(
        |e: super::subject::OrganizationIdentifierError| ClientCertificateError::Invalid {
            field: "organization_identifier",
            reason: e.to_string(),
        },
    )?;
    SubjectName {
        country: request.country.clone(),
        organization: request.organization.clone(),
        organizational_unit: None,
        organization_identifier: Some(identifier.to_string()),
        common_name: request.common_name.clone(),
    }
    .to_name()
    .map_err(|e| match e {
        CertificateError::Invalid { field, reason } => {
            ClientCertificateError::Invalid { field, reason }
        }
        other => ClientCertificateError::Certificate(other),
    })
}

fn time_of(at: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys_are_p256_p384_or_rsa_of_2048_bits_or_more() {
        assert!(client_key_rule(PublicKeyKind::EcP256).is_ok());
        assert!(client_key_rule(PublicKeyKind::EcP384).is_ok());
        assert!(client_key_rule(PublicKeyKind::Rsa { bits: 2048 }).is_ok());
        assert!(client_key_rule(PublicKeyKind::Rsa { bits: 4096 }).is_ok());
        let small = client_key_rule(PublicKeyKind::Rsa { bits: 1024 }).unwrap_err();
        assert!(small.contains("2048"), "{small}");
    }

    #[test]
    fn csr_errors_name_the_csr_field_and_are_unprocessable() {
        let error = ClientCertificateError::from(CsrError::BadSignature);
        assert_eq!(error.kind(), ErrorKind::Unprocessable);
        assert_eq!(error.field(), Some("csr"));
        assert!(error.to_string().starts_with("csr: "), "{error}");
    }
}
