//! Certificate revocation lists (RFC 5280 §5): building and signing a CRL v2 by
//! hand with a CA key in the HSM, and the publisher that issues each CA's CRL
//! (issuing, client-auth) when a revocation is new or the current one nears its
//! nextUpdate, and the root's ARL at a ceremony.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::asn1::{BitString, GeneralizedTime, OctetString};
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, SubjectKeyIdentifier};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use super::certificate::rfc5280_time;
use crate::clock::SharedClock;
use crate::config::CrlSettings;
use crate::crypto;
use crate::error::{ErrorKind, HasErrorKind};
use crate::hsm::{Hsm, HsmError, HsmSigner, KeyId};
use crate::journal::event::CrlIssued;
use crate::journal::{Actor, Event, Journal, JournalError};
use crate::revocation::Reason;
use crate::store::ca::CaCertificate;
use crate::store::crl::{CrlScope, RevokedEntry, StoredCrl};
use crate::store::entities::KeyReference;
use crate::store::{Store, StoreError};

/// id-ce-expiredCertsOnCRL (X.509 §9.6.2.9, 2.5.29.60): revoked certificates
/// issued since this date stay listed after they expire.
pub const EXPIRED_CERTS_ON_CRL: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.60");
/// id-ce-invalidityDate (RFC 5280 §5.3.2).
pub const INVALIDITY_DATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.24");

/// The CAs with a CRL the service keeps current, by purpose, and the file name
/// each is served under (`/crl/{file}`).
pub const CRL_ISSUERS: [(&str, CrlScope, &str); 2] = [
    ("issuing", CrlScope::Seal, "issuing.crl"),
    ("client-auth", CrlScope::ClientAuth, "client-auth.crl"),
];
/// The root's purpose: its CRL (the ARL) is issued at a ceremony only.
pub const ROOT: &str = "root";

/// 99991231235959Z: "no next update" (RFC 5280 §4.1.2.5 GeneralizedTime value
/// for no well-defined expiration), the nextUpdate of a terminated CA's last
/// CRL and the end of its last OCSP responses.
pub fn forever() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799)
}

#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("encoding the CRL failed: {0}")]
    Encoding(#[from] der::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("the CRL signature does not verify with the CA certificate's key")]
    SignatureCheck,
    #[error("signing the CRL failed: {0}")]
    Signing(String),
    #[error("no active {0} CA certificate")]
    NoCa(String),
    #[error("the {0} CA is being terminated: only its final CRL is published")]
    Terminating(String),
}

impl HasErrorKind for CrlError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Store(e) => e.kind(),
            Self::Hsm(e) => e.kind(),
            Self::Journal(e) => e.kind(),
            _ => ErrorKind::Internal,
        }
    }
}

/// What a CRL says about its issuer, read from the CA certificate.
#[derive(Debug, Clone)]
pub struct CrlIssuer {
    /// The CA certificate's subject.
    pub name: Name,
    /// The CA certificate's subjectKeyIdentifier (the CRL's AKI).
    pub key_identifier: Vec<u8>,
    /// The CA certificate's notBefore (the ExpiredCertsOnCRL date).
    pub not_before: SystemTime,
    /// To verify the CRL after signing.
    pub public_key: SubjectPublicKeyInfoOwned,
}

impl CrlIssuer {
    pub fn from_certificate(certificate: &Certificate) -> Result<Self, CrlError> {
        let tbs = &certificate.tbs_certificate;
        let ski = tbs
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == rfc5912::ID_CE_SUBJECT_KEY_IDENTIFIER)
            .ok_or_else(|| {
                CrlError::Invalid("the CA certificate has no subjectKeyIdentifier".to_owned())
            })?;
        let ski = SubjectKeyIdentifier::from_der(ski.extn_value.as_bytes())?;
        Ok(Self {
            name: tbs.subject.clone(),
            key_identifier: ski.0.as_bytes().to_vec(),
            not_before: tbs.validity.not_before.to_system_time(),
            public_key: tbs.subject_public_key_info.clone(),
        })
    }
}

/// The variable part of one CRL.
#[derive(Debug, Clone)]
pub struct CrlContents {
    pub number: u64,
    pub this_update: SystemTime,
    pub next_update: SystemTime,
    pub entries: Vec<RevokedEntry>,
}

/// What signs a CRL: the CA key in the HSM, or a software key in benches.
pub use crate::crypto::MessageSigner as CrlSigner;

/// Whole seconds: CRL times carry no fractions.
fn seconds(at: SystemTime) -> SystemTime {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs())
}

fn generalized(at: SystemTime) -> der::Result<GeneralizedTime> {
    GeneralizedTime::from_system_time(seconds(at))
}

fn extension(
    oid: ObjectIdentifier,
    critical: bool,
    value: &impl Encode,
) -> Result<Extension, CrlError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn revoked_cert(entry: &RevokedEntry) -> Result<RevokedCert, CrlError> {
    let serial = hex::decode(&entry.serial)
        .map_err(|e| CrlError::Invalid(format!("serial {:?}: {e}", entry.serial)))?;
    let mut extensions = Vec::new();
    if let Some(reason) = entry.reason_code.map(Reason::crl_reason) {
        extensions.push(extension(rfc5912::ID_CE_CRL_REASONS, false, &reason)?);
    }
    if let Some(invalidity) = entry.invalidity_date {
        extensions.push(extension(
            INVALIDITY_DATE,
            false,
            &generalized(invalidity.into())?,
        )?);
    }
    Ok(RevokedCert {
        serial_number: SerialNumber::new(&serial)?,
        revocation_date: rfc5280_time(seconds(entry.revoked_at.into()))?,
        crl_entry_extensions: (!extensions.is_empty()).then_some(extensions),
    })
}

/// Builds the CRL v2 of `issuer`, signs it and verifies the signature with the
/// CA certificate's key. Returns the DER. Blocking when the signer is an HSM key.
pub fn build_crl(
    issuer: &CrlIssuer,
    contents: &CrlContents,
    signer: &impl CrlSigner,
) -> Result<Vec<u8>, CrlError> {
    let algorithm = signer.algorithm();
    let revoked = contents
        .entries
        .iter()
        .map(revoked_cert)
        .collect::<Result<Vec<_>, _>>()?;
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(issuer.key_identifier.clone())?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let number = der::asn1::Uint::new(&contents.number.to_be_bytes())?;
    let crl_extensions = vec![
        extension(rfc5912::ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &aki)?,
        extension(rfc5912::ID_CE_CRL_NUMBER, false, &number)?,
        extension(
            EXPIRED_CERTS_ON_CRL,
            false,
            &generalized(issuer.not_before)?,
        )?,
    ];
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: algorithm.algorithm_identifier(),
        issuer: issuer.name.clone(),
        this_update: rfc5280_time(seconds(contents.this_update))?,
        next_update: Some(rfc5280_time(seconds(contents.next_update))?),
        revoked_certificates: (!revoked.is_empty()).then_some(revoked),
        crl_extensions: Some(crl_extensions),
    };
    let message = tbs.to_der()?;
    let signature = signer.sign(&message).map_err(CrlError::Signing)?;
    crypto::verify(&issuer.public_key, algorithm, &message, &signature)
        .map_err(|_| CrlError::SignatureCheck)?;
    let list = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: algorithm.algorithm_identifier(),
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(list.to_der()?)
}

/// One CRL just published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The issuer's purpose: `issuing`, `client-auth`, `root`.
    pub issuer: String,
    pub number: u64,
    pub this_update: SystemTime,
    pub next_update: SystemTime,
    pub entries: u64,
    /// Hex SHA-256 of the DER.
    pub sha256: String,
}

/// The signer of a CA key recorded in the database.
async fn signer(hsm: &Hsm, key: &KeyReference) -> Result<HsmSigner, CrlError> {
    let pool = hsm.token(key.token_role)?.clone();
    let id = KeyId::from_bytes(&key.key_id)
        .ok_or_else(|| CrlError::Invalid(format!("key id of {} is not 16 bytes", key.key_label)))?;
    let found = pool.clone().find_key(id).await?;
    Ok(HsmSigner::new(pool, found))
}

/// Everything one publication needs.
struct Publication<'a> {
    store: &'a Store,
    journal: &'a Journal,
    hsm: &'a Hsm,
    clock: &'a SharedClock,
    ca: &'a CaCertificate,
    scope: CrlScope,
    next_update: NextUpdate,
    event: fn(CrlIssued) -> Event,
    actor: &'a Actor,
}

/// When a CRL's nextUpdate falls.
#[derive(Debug, Clone, Copy)]
enum NextUpdate {
    /// thisUpdate plus this much; refused once the CA's termination started.
    After(Duration),
    /// The terminated CA's last CRL: [`forever`].
    Never,
}

impl Publication<'_> {
    /// Reads the revocations, takes the next number, signs, journals, stores.
    async fn publish(self) -> Result<Published, CrlError> {
        // The mark is read first: a revocation landing meanwhile makes the next
        // check publish again.
        let covers = self.store.revocation_mark(self.scope).await?;
        let entries = self.store.revoked_for_crl(self.scope).await?;
        let number = self.store.next_crl_number(&self.ca.purpose).await?;
        let this_update = seconds(self.clock.now());
        let next_update = match self.next_update {
            NextUpdate::After(validity) => {
                // Checked after the number is taken: a termination that starts
                // later takes a higher number for its final CRL, so a CRL made
                // here can never come after (and replace) the final one.
                if self.store.termination(&self.ca.serial).await?.is_some() {
                    return Err(CrlError::Terminating(self.ca.purpose.clone()));
                }
                this_update + validity
            }
            NextUpdate::Never => forever(),
        };
        let certificate = Certificate::from_der(&self.ca.der)?;
        let issuer = CrlIssuer::from_certificate(&certificate)?;
        let signer = signer(self.hsm, &self.ca.key).await?;
        let count = entries.len() as u64;
        let contents = CrlContents {
            number,
            this_update,
            next_update,
            entries,
        };
        let der = tokio::task::spawn_blocking(move || build_crl(&issuer, &contents, &signer))
            .await
            .map_err(|e| CrlError::Signing(e.to_string()))??;
        let sha256 = hex::encode(Sha256::digest(&der));
        self.journal
            .append(
                self.actor,
                (self.event)(CrlIssued {
                    issuer: self.ca.purpose.clone(),
                    ca_serial: self.ca.serial.clone(),
                    number,
                    this_update: this_update.into(),
                    next_update: next_update.into(),
                    entries: count,
                    sha256: sha256.clone(),
                }),
            )
            .await?;
        self.store
            .insert_crl(&StoredCrl {
                issuer: self.ca.purpose.clone(),
                number,
                ca_serial: self.ca.serial.clone(),
                der,
                sha256: sha256.clone(),
                this_update: this_update.into(),
                next_update: next_update.into(),
                entries: count,
                covers,
                published_at: self.clock.now().into(),
            })
            .await?;
        tracing::info!(issuer = %self.ca.purpose, number, entries = count, "CRL published");
        Ok(Published {
            issuer: self.ca.purpose.clone(),
            number,
            this_update,
            next_update,
            entries: count,
            sha256,
        })
    }
}

/// Keeps the CRLs of the issuing and client-auth CAs current. Every instance
/// runs one; they share the database, so a revocation recorded by any of them
/// is published by whichever looks first, with a number no other used.
#[derive(Debug, Clone)]
pub struct CrlPublisher {
    inner: Arc<PublisherInner>,
}

#[derive(Debug)]
struct PublisherInner {
    store: Store,
    journal: Journal,
    hsm: Arc<Hsm>,
    clock: SharedClock,
    settings: CrlSettings,
    /// One check at a time in this instance (the poller and `publish_now`).
    running: tokio::sync::Mutex<()>,
}

impl CrlPublisher {
    engine_constructor! {
        fn new(
            store: Store,
            journal: Journal,
            hsm: Arc<Hsm>,
            clock: SharedClock,
            settings: CrlSettings,
        ) -> Self {
            Self {
                inner: Arc::new(PublisherInner {
                    store,
                    journal,
                    hsm,
                    clock,
                    settings,
                    running: tokio::sync::Mutex::new(()),
                }),
            }
        }
    }

    /// For each CA with a CRL (issuing, and client-auth when the hierarchy has
    /// it), issues a new CRL when it has none from its current certificate, when
    /// a revocation is not on the latest one, or when the latest one's
    /// nextUpdate is within `crl.refresh_before_hours`. Returns what it published.
    pub async fn publish_if_needed(&self) -> Result<Vec<Published>, CrlError> {
        let inner = &self.inner;
        let _one_at_a_time = inner.running.lock().await;
        let active = inner.store.active_ca_certificates().await?;
        // A CA being terminated publishes its final CRL itself, once.
        let terminating = inner.store.terminating_ca_serials().await?;
        let validity = Duration::from_secs(u64::from(inner.settings.validity_hours) * 3600);
        let refresh = Duration::from_secs(u64::from(inner.settings.refresh_before_hours) * 3600);
        let mut published = Vec::new();
        for (purpose, scope, _) in CRL_ISSUERS {
            let Some(ca) = active
                .iter()
                .find(|c| c.purpose == purpose && !terminating.contains(&c.serial))
            else {
                continue;
            };
            let latest = inner.store.latest_crl_head(purpose).await?;
            let needed = match &latest {
                None => true,
                Some(crl) => {
                    crl.ca_serial != ca.serial
                        || crl.covers != inner.store.revocation_mark(scope).await?
                        || SystemTime::from(crl.next_update) <= inner.clock.now() + refresh
                }
            };
            if needed {
                let publication = Publication {
                    store: &inner.store,
                    journal: &inner.journal,
                    hsm: &inner.hsm,
                    clock: &inner.clock,
                    ca,
                    scope,
                    next_update: NextUpdate::After(validity),
                    event: Event::CrlPublished,
                    actor: &Actor::Service,
                };
                published.push(publication.publish().await?);
            }
        }
        Ok(published)
    }

    /// Right after a revocation: publishes whatever is not yet on a CRL, at once
    /// rather than at the next poll. (The same check as `publish_if_needed`, so
    /// a CRL the poller already issued is not issued twice.)
    pub async fn publish_now(&self) -> Result<Vec<Published>, CrlError> {
        self.publish_if_needed().await
    }

    /// Checks once at start, then every `crl.poll_interval_ms`, until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let interval = Duration::from_millis(self.inner.settings.poll_interval_ms);
        loop {
            if let Err(error) = self.publish_if_needed().await {
                tracing::warn!(error = %crate::error::chain(&error), "CRL publication failed; retrying at the next poll");
            }
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}

/// The root's CRL (the ARL): the revoked sub-CA certificates, valid
/// `crl.arl_validity_days`. Needs the root token: a ceremony step.
pub async fn publish_arl(
    store: &Store,
    journal: &Journal,
    hsm: &Hsm,
    clock: &SharedClock,
    settings: &CrlSettings,
    actor: &Actor,
) -> Result<Published, CrlError> {
    let root = store
        .active_ca_certificates()
        .await?
        .into_iter()
        .find(|c| c.purpose == ROOT)
        .ok_or_else(|| CrlError::NoCa(ROOT.to_owned()))?;
    Publication {
        store,
        journal,
        hsm,
        clock,
        ca: &root,
        scope: CrlScope::SubCa,
        next_update: NextUpdate::After(Duration::from_secs(
            u64::from(settings.arl_validity_days) * 86_400,
        )),
        event: Event::ArlPublished,
        actor,
    }
    .publish()
    .await
}

/// The last CRL of the issuing CA `ca`, whose termination started: every
/// revocation, nextUpdate [`forever`], signed with the CA key before it is
/// destroyed (`crl.final`).
pub async fn publish_final(
    store: &Store,
    journal: &Journal,
    hsm: &Hsm,
    clock: &SharedClock,
    ca: &CaCertificate,
    actor: &Actor,
) -> Result<Published, CrlError> {
    Publication {
        store,
        journal,
        hsm,
        clock,
        ca,
        scope: CrlScope::Seal,
        next_update: NextUpdate::Never,
        event: Event::CrlFinal,
        actor,
    }
    .publish()
    .await
}

/// The purpose of the CA whose CRL is served as `file` (`issuing.crl`,
/// `client-auth.crl`, `root.crl`).
pub fn issuer_of_file(file: &str) -> Option<&'static str> {
    if file == "root.crl" {
        return Some(ROOT);
    }
    CRL_ISSUERS
        .iter()
        .find(|(_, _, name)| *name == file)
        .map(|(purpose, _, _)| *purpose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_map_to_issuers() {
        assert_eq!(issuer_of_file("issuing.crl"), Some("issuing"));
        assert_eq!(issuer_of_file("client-auth.crl"), Some("client-auth"));
        assert_eq!(issuer_of_file("root.crl"), Some("root"));
        assert_eq!(issuer_of_file("ocsp.crl"), None);
        assert_eq!(issuer_of_file("issuing"), None);
    }
}
