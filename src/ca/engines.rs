//! The engines the serving instance is built from, each over the active key
//! and certificate the database names: the journal with the audit key, the
//! seal and TLS-client issuers, the TSA, the OCSP responder, and the CA
//! certificates served over HTTP.

use std::sync::Arc;

use der::{Decode, EncodePem};

use super::{CaError, active_record, hsm_signer, parsed, service_signer};
use crate::clock::SharedClock;
use crate::config::{Settings, TokenRole};
use crate::crypto::SignatureAlgorithm;
use crate::hsm::{Hsm, HsmSigner};
use crate::journal::{CheckpointSigner, Journal};
use crate::pki::ceremony::{self, CeremonyFile};
use crate::pki::client_auth::{ClientAuthUrls, ClientCertificateIssuer};
use crate::pki::issuance::Issuer;
use crate::pki::policy::PolicySet;
use crate::pki::publication::PublishedCertificate;
use crate::store::Store;
use crate::store::ca::CaCertificate;

/// The journal's audit key: an HSM key on the services token.
#[derive(Debug)]
pub struct AuditKey(HsmSigner);

impl CheckpointSigner for AuditKey {
    fn key_id(&self) -> String {
        crate::crypto::spki_sha256(&self.0.key().public_key)
            .map(hex::encode)
            .unwrap_or_default()
    }

    fn public_key(&self) -> spki::SubjectPublicKeyInfoOwned {
        self.0.key().public_key.clone()
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.0.algorithm()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.0.sign_message(message).map_err(|e| e.to_string())
    }
}

/// Opens the journal with the active audit key from the database.
pub async fn open_journal(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
) -> Result<Journal, CaError> {
    let audit = store
        .active_service_key("audit")
        .await?
        .ok_or(CaError::Incomplete("audit"))?;
    let signer = hsm_signer(hsm, &audit.key).await?;
    Ok(Journal::open(
        store.clone(),
        &settings.journal,
        Arc::new(AuditKey(signer)),
        clock.clone(),
    )
    .await?)
}

/// The issuance engine over the active issuing CA key. Only the RA is handed one.
pub async fn issuer(
    store: &Store,
    hsm: &Hsm,
    journal: &Journal,
    clock: &SharedClock,
    policies: Arc<PolicySet>,
) -> Result<Issuer, CaError> {
    let issuing = active_record(store, ceremony::KeyPurpose::Issuing).await?;
    let (signer, certificate) = service_signer(&issuing, hsm).await?;
    Ok(Issuer::new(
        policies,
        store.clone(),
        journal.clone(),
        clock.clone(),
        signer,
        certificate,
        hsm.token(TokenRole::Seal)?.clone(),
    ))
}

/// The active client-authentication CA certificate, if the hierarchy has one.
pub async fn active_client_auth_ca(store: &Store) -> Result<Option<CaCertificate>, CaError> {
    Ok(store
        .active_ca_certificate(ceremony::KeyPurpose::ClientAuth.name())
        .await?)
}

/// The client-certificate issuer over the active client-authentication CA key,
/// with the URLs of the ceremony file's `[client_auth]` section. Only the RA is
/// handed one. A hierarchy without that CA is reported, not a panic.
pub async fn client_certificate_issuer(
    store: &Store,
    hsm: &Hsm,
    journal: &Journal,
    clock: &SharedClock,
    ceremony_file: &CeremonyFile,
) -> Result<ClientCertificateIssuer, CaError> {
    let spec = ceremony_file
        .client_auth
        .as_ref()
        .ok_or(CaError::NoClientAuthCa(
            "the ceremony file has no [client_auth] section",
        ))?;
    let record = active_client_auth_ca(store)
        .await?
        .ok_or(CaError::NoClientAuthCa(
            "the recorded CA hierarchy has none",
        ))?;
    let certificate = x509_cert::Certificate::from_der(&record.der)
        .map_err(|e| CaError::Internal(format!("stored client-auth certificate: {e}")))?;
    let signer = hsm_signer(hsm, &record.key).await?;
    Ok(ClientCertificateIssuer::new(
        store.clone(),
        journal.clone(),
        clock.clone(),
        signer,
        certificate,
        ClientAuthUrls::from(spec),
    ))
}

/// The CA certificates to serve, by their stable names.
pub async fn published_certificates(store: &Store) -> Result<Vec<PublishedCertificate>, CaError> {
    let mut published = Vec::new();
    for certificate in store.active_ca_certificates().await? {
        let parsed = x509_cert::Certificate::from_der(&certificate.der).map_err(|e| {
            CaError::Internal(format!("stored {} certificate: {e}", certificate.purpose))
        })?;
        let pem = parsed
            .to_pem(der::pem::LineEnding::LF)
            .map_err(|e| CaError::Internal(e.to_string()))?;
        published.push(PublishedCertificate {
            name: certificate.purpose.clone(),
            der: certificate.der,
            pem,
        });
    }
    Ok(published)
}

/// The time-stamping unit over a `tsa` certificate record, with the CA
/// certificates between it and the root (its issuing CA) for tokens that ask
/// for certificates.
pub(super) async fn time_stamping_unit(
    record: &CaCertificate,
    store: &Store,
    hsm: &Hsm,
) -> Result<crate::pki::tsa::TimeStampingUnit, CaError> {
    let (signer, certificate) = service_signer(record, hsm).await?;
    let mut chain = Vec::new();
    for ca in store.active_ca_certificates().await? {
        if ca.purpose != "issuing" {
            continue;
        }
        let parsed = x509_cert::Certificate::from_der(&ca.der)
            .map_err(|e| CaError::Internal(format!("stored issuing CA certificate: {e}")))?;
        if parsed.tbs_certificate.subject == certificate.tbs_certificate.issuer {
            chain.push(parsed);
        }
    }
    crate::pki::tsa::TimeStampingUnit::new(signer, certificate, chain)
        .map_err(|e| CaError::Internal(e.to_string()))
}

/// The TSA under the policy of `tsa.policy_file`, signing with the active unit.
pub async fn time_stamping_authority(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
) -> Result<crate::pki::tsa::Tsa, CaError> {
    let policy = crate::pki::tsa::TsaPolicy::load(&settings.tsa.policy_file)
        .map_err(|e| CaError::Internal(e.to_string()))?;
    Ok(crate::pki::tsa::Tsa::new(
        store.clone(),
        clock.clone(),
        policy,
        settings.tsa.clone(),
        time_stamping_unit(
            &active_record(store, ceremony::KeyPurpose::Tsa).await?,
            store,
            hsm,
        )
        .await?,
    ))
}

/// The responder key over the active `ocsp` certificate record.
pub(super) async fn ocsp_responder_key(
    store: &Store,
    hsm: &Hsm,
) -> Result<crate::pki::ocsp::ResponderKey, CaError> {
    let record = active_record(store, ceremony::KeyPurpose::Ocsp).await?;
    let (signer, certificate) = service_signer(&record, hsm).await?;
    Ok(crate::pki::ocsp::ResponderKey::new(signer, certificate))
}

/// The OCSP responder for the active issuing CA, signing with the active
/// delegated responder key (on the services token).
pub async fn ocsp_responder(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
) -> Result<crate::pki::ocsp::OcspResponder, CaError> {
    let issuing = active_record(store, ceremony::KeyPurpose::Issuing).await?;
    let certificate = parsed(&issuing)?;
    let served = crate::pki::ocsp::ServedCa::new("issuing", &certificate)
        .map_err(|e| CaError::Internal(e.to_string()))?;
    Ok(crate::pki::ocsp::OcspResponder::new(
        store.clone(),
        clock.clone(),
        settings.ocsp.clone(),
        vec![served],
        ocsp_responder_key(store, hsm).await?,
    ))
}
