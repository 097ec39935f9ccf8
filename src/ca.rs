//! The CA operations, between the application and the RA and PKI layers: the
//! key ceremony and its record, the ARL, the renewal of the service
//! certificates, the end of the issuing CA, the serving instance's upkeep, and
//! the engines (issuers, TSA, OCSP responder, journal) built over the keys the
//! database names.

pub mod arl;
pub mod ceremony;
pub mod engines;
pub mod maintenance;
pub mod renewal;
pub mod termination;

use der::Decode;

pub use arl::issue_arl;
pub use ceremony::{ceremony_file, certificate_policies, perform_ceremony};
pub use engines::{
    AuditKey, active_client_auth_ca, client_certificate_issuer, issuer, ocsp_responder,
    open_journal, published_certificates, time_stamping_authority,
};
pub use maintenance::{ServingCa, maintain_ocsp_responder};
pub use renewal::{renew_ocsp_responder, renew_time_stamping_unit};
pub use termination::{issuing_ca_terminating, terminate_issuing_ca};

use crate::error::{ErrorKind, HasErrorKind};
use crate::hsm::{Hsm, HsmError, HsmSigner, KeyId};
use crate::journal::JournalError;
use crate::pki::ceremony::{CeremonyError, KeyPurpose};
use crate::pki::crl::CrlError;
use crate::pki::policy::PolicyError;
use crate::pki::serials::SerialError;
use crate::store::ca::CaCertificate;
use crate::store::entities::KeyReference;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Ceremony(#[from] CeremonyError),
    #[error(transparent)]
    Serial(#[from] SerialError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Crl(#[from] CrlError),
    #[error(transparent)]
    Termination(#[from] termination::TerminationError),
    #[error(
        "a ceremony ('{name}', {at}) is already recorded in the database; run with --force to make a new hierarchy"
    )]
    CeremonyRecorded { name: String, at: String },
    #[error("the database holds no active {0} certificate or key")]
    Incomplete(&'static str),
    #[error(
        "no client-authentication CA: {0} (hierarchies made before it existed lack it; \
         a ceremony with a [client_auth] section makes one)"
    )]
    NoClientAuthCa(&'static str),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("internal: {0}")]
    Internal(String),
}

impl HasErrorKind for CaError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Store(e) => e.kind(),
            Self::Hsm(e) => e.kind(),
            Self::Journal(e) => e.kind(),
            Self::Ceremony(e) => e.kind(),
            Self::Policy(e) => e.kind(),
            Self::Crl(e) => e.kind(),
            Self::Termination(e) => e.kind(),
            Self::CeremonyRecorded { .. } => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        }
    }
}

async fn hsm_signer(hsm: &Hsm, key: &KeyReference) -> Result<HsmSigner, CaError> {
    let pool = hsm.token(key.token_role)?.clone();
    let id = KeyId::from_bytes(&key.key_id)
        .ok_or_else(|| CaError::Internal(format!("key id of {} is not 16 bytes", key.key_label)))?;
    let found = pool.clone().find_key(id).await?;
    Ok(HsmSigner::new(pool, found))
}

/// The active certificate record of a CA or service key (`issuing`, `ocsp`, `tsa`).
async fn active_record(store: &Store, purpose: KeyPurpose) -> Result<CaCertificate, CaError> {
    store
        .active_ca_certificate(purpose.name())
        .await?
        .ok_or(CaError::Incomplete(purpose.name()))
}

/// A service key's record, its certificate parsed and its signer found in the HSM.
async fn service_signer(
    record: &CaCertificate,
    hsm: &Hsm,
) -> Result<(HsmSigner, x509_cert::Certificate), CaError> {
    let certificate = parsed(record)?;
    Ok((hsm_signer(hsm, &record.key).await?, certificate))
}

/// A CA certificate record's certificate, parsed.
fn parsed(record: &CaCertificate) -> Result<x509_cert::Certificate, CaError> {
    x509_cert::Certificate::from_der(&record.der)
        .map_err(|e| CaError::Internal(format!("stored {} certificate: {e}", record.purpose)))
}
