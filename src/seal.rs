//! Seals: who may seal with which credential (through `auth::activation`), the
//! signature with the credential's key, its check against the certificate, the
//! level extensions (a signature time-stamp from the TSA for B-T, the chain and
//! CRL for B-LT) and the journal entry each seal gets before it is returned.
//! CAdES (EN 319 122-1) lives in `cades`.

pub mod cades;
pub mod digests;
pub mod pades;

use std::str::FromStr;
use std::sync::Arc;

use der::Decode;
use uuid::Uuid;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;

use crate::auth::Principal;
use crate::auth::activation::{Activation, ActivationError};
use crate::auth::principal::{Permission, authorize};
use crate::clock::SharedClock;
use crate::config::SealSettings;
use crate::crypto::DigestAlgorithm;
use crate::crypto::MessageSigner;
use crate::error::{ErrorKind, HasErrorKind};
use crate::hsm::{HsmError, HsmSigner, KeyId, TokenPool};
use crate::journal::event::{self, SealMade};
use crate::journal::{Actor, Event, Journal, JournalError};
use crate::pki::cms::CmsError;
use crate::pki::tsa::{Refusal, Stamp, Tsa, TsaClient};
use crate::store::entities::KeyReference;
use crate::store::seals::SealRecord;
use crate::store::{Store, StoreError};
use base64::Engine as _;
use der::Encode;

/// A baseline level (EN 319 122-1 / EN 319 142-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Level {
    #[serde(rename = "B-B")]
    BB,
    #[serde(rename = "B-T")]
    BT,
    #[serde(rename = "B-LT")]
    BLt,
    #[serde(rename = "B-LTA")]
    BLta,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Self::BB => "B-B",
            Self::BT => "B-T",
            Self::BLt => "B-LT",
            Self::BLta => "B-LTA",
        }
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "B-B" => Ok(Self::BB),
            "B-T" => Ok(Self::BT),
            "B-LT" => Ok(Self::BLt),
            "B-LTA" => Ok(Self::BLta),
            other => Err(format!("{other:?} is not a level: B-B, B-T, B-LT or B-LTA")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The request is sound but the document's state forbids it (a
    /// certified document whose permissions the seal would break).
    #[error("{field}: {reason}")]
    Conflict { field: &'static str, reason: String },
    #[error(transparent)]
    Activation(#[from] ActivationError),
    #[error("a SAD is required: this credential is activated at SCAL2")]
    SadRequired,
    #[error("{0}")]
    Forbidden(String),
    #[error("no seal at journal index {0} for this credential")]
    NoSuchSeal(u64),
    /// Journaled, and no signed checkpoint covers it yet (the schedule's next will).
    #[error(
        "no signed checkpoint covers journal index {index} yet; the next is due within {retry_after} s"
    )]
    NotYetCheckpointed { index: u64, retry_after: u64 },
    #[error("too many documents are being sealed; retry in {0} s")]
    Busy(u64),
    #[error(
        "the document ({size} bytes) would need more memory to seal than this \
         instance allows for all documents together ({budget_mib} MiB)"
    )]
    TooLarge { size: usize, budget_mib: u64 },
    #[error("the time-stamp could not be obtained: {0}")]
    TimeStamp(Refusal),
    #[error("the seal failed its check against the certificate; nothing was returned")]
    SelfCheck,
    #[error("the credential's key cannot be used: {0}")]
    Key(#[from] HsmError),
    #[error(transparent)]
    Cms(CmsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<CmsError> for SealError {
    fn from(error: CmsError) -> Self {
        match error {
            CmsError::SelfCheck => Self::SelfCheck,
            other => Self::Cms(other),
        }
    }
}

impl HasErrorKind for SealError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Unprocessable,
            Self::Conflict { .. } | Self::NotYetCheckpointed { .. } => ErrorKind::Conflict,
            Self::Activation(e) => e.kind(),
            Self::SadRequired | Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::NoSuchSeal(_) => ErrorKind::NotFound,
            Self::Busy(_) => ErrorKind::Unavailable,
            Self::TooLarge { .. } => ErrorKind::PayloadTooLarge,
            Self::TimeStamp(refusal) => refusal.kind(),
            Self::Key(e) => e.kind(),
            Self::Store(e) => e.kind(),
            Self::Journal(e) => e.kind(),
            Self::SelfCheck | Self::Cms(_) | Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// Where a seal key's signer comes from: the seal token, or a faulty one in
/// the test that proves the self-check.
pub trait SealKeys: Send + Sync + std::fmt::Debug {
    fn signer(
        &self,
        key: &KeyReference,
    ) -> impl Future<Output = Result<Arc<dyn MessageSigner + Send + Sync>, SealError>> + Send;
}

/// The seal token's keys.
#[derive(Debug, Clone)]
pub struct TokenKeys(pub Arc<TokenPool>);

impl SealKeys for TokenKeys {
    async fn signer(
        &self,
        key: &KeyReference,
    ) -> Result<Arc<dyn MessageSigner + Send + Sync>, SealError> {
        let id = KeyId::from_bytes(&key.key_id).ok_or_else(|| {
            SealError::Internal(format!("key id of {} is not 16 bytes", key.key_label))
        })?;
        let found = self.0.clone().find_key(id).await?;
        Ok(Arc::new(HsmSigner::new(self.0.clone(), found)))
    }
}

/// Where seals get their time-stamps: the built-in TSA, or an external one
/// (`seal.tsa_url`).
#[derive(Debug, Clone)]
pub enum TimeStamper {
    Local(Tsa),
    External(TsaClient),
}

impl TimeStamper {
    pub async fn stamp(&self, digest: DigestAlgorithm, hashed: &[u8]) -> Result<Stamp, Refusal> {
        self.stamp_with_nonce(digest, hashed, None).await
    }

    /// A time-stamp for a client (CSC `signatures/timestamp`), echoing its
    /// nonce when it gives one.
    pub async fn stamp_with_nonce(
        &self,
        digest: DigestAlgorithm,
        hashed: &[u8],
        nonce: Option<der::asn1::Int>,
    ) -> Result<Stamp, Refusal> {
        match self {
            Self::Local(tsa) => tsa.stamp_with_nonce(digest, hashed, nonce).await,
            Self::External(client) => client.stamp_with_nonce(digest, hashed, nonce).await,
        }
    }
}

/// A seal's place in the journal, for the RCCS to check on their own.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SealInclusion {
    pub journal_index: u64,
    pub entry_kind: String,
    /// The entry's stored bytes, base64 (absent once purged).
    pub entry_payload: Option<String>,
    pub payload_sha256: String,
    /// RFC 9162 leaf hash of the entry, hex.
    pub leaf_hash: String,
    pub tree_size: u64,
    /// The inclusion proof, hex hashes from the leaf up.
    pub proof: Vec<String>,
    pub checkpoint: CheckpointView,
}

/// A signed checkpoint as JSON: `message` is exactly what the audit key signed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckpointView {
    pub tree_size: u64,
    pub root_hash: String,
    pub signed_at: String,
    pub key_id: String,
    pub message: String,
    pub signature: String,
    /// The audit key's SubjectPublicKeyInfo, DER, base64.
    pub audit_public_key: String,
}

/// One seal made: the DER, and the journal entry that records it.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub der: Vec<u8>,
    pub journal_index: u64,
}

/// The DER of a certificate or CRL.
/// The subject's organizationName, else its commonName.
fn subject_name(certificate: &Certificate) -> Option<String> {
    use x509_cert::ext::pkix::name::DirectoryString;
    let subject = &certificate.tbs_certificate.subject;
    let value_of = |oid: der::asn1::ObjectIdentifier| {
        subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .find(|atv| atv.oid == oid)
            .and_then(|atv| der::Encode::to_der(&atv.value).ok())
            .and_then(|value| DirectoryString::from_der(&value).ok())
            .map(|value| match value {
                DirectoryString::PrintableString(s) => s.to_string(),
                DirectoryString::TeletexString(s) => s.to_string(),
                DirectoryString::Utf8String(s) => s,
            })
    };
    value_of(const_oid::db::rfc4519::O).or_else(|| value_of(const_oid::db::rfc4519::CN))
}

/// The certificate of a credential that can seal (one is always issued
/// before the credential becomes usable).
pub(crate) fn certificate_of(
    credential: &crate::store::entities::SealCredential,
) -> Result<Certificate, SealError> {
    let der = credential
        .certificate
        .as_ref()
        .ok_or_else(|| SealError::Internal("the credential has no certificate".into()))?;
    Certificate::from_der(der).map_err(|e| SealError::Internal(format!("stored certificate: {e}")))
}

pub(crate) fn encode(value: &impl der::Encode) -> Result<Vec<u8>, SealError> {
    value
        .to_der()
        .map_err(|e| SealError::Internal(format!("encoding: {e}")))
}

/// The credential a seal is made with, checked for this principal.
pub(crate) struct SealingKey {
    pub credential_id: Uuid,
    pub signer: Arc<dyn MessageSigner + Send + Sync>,
    pub certificate: Certificate,
    pub scal: u8,
}

/// Makes seals; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sealer<K: SealKeys = TokenKeys> {
    inner: Arc<Inner<K>>,
}

#[derive(Debug)]
struct Inner<K> {
    store: Store,
    journal: Journal,
    clock: SharedClock,
    activation: Activation,
    time_stamper: TimeStamper,
    keys: K,
    /// Document seals in flight (`seal.max_concurrent_documents`).
    documents: Arc<tokio::sync::Semaphore>,
    /// The memory they may take, in KiB (`seal.max_document_memory_mib`).
    memory_kib: Arc<tokio::sync::Semaphore>,
    settings: SealSettings,
}

/// A place among the document seals in flight, and the memory reserved for
/// the document; both are free again when dropped.
#[derive(Debug)]
pub struct DocumentSlot {
    #[expect(dead_code, reason = "held for its Drop")]
    place: tokio::sync::OwnedSemaphorePermit,
    #[expect(dead_code, reason = "held for its Drop")]
    memory: tokio::sync::OwnedSemaphorePermit,
}

/// How many times its size a PDF may take in memory while it is sealed: the
/// request body (shared with the answer up to B-T), the cross-reference
/// index and the few objects read (measured 0.1 to 0.6 times the file beyond
/// the body, benches/seal_load.rs), and at B-LT and B-LTA one copy of the
/// whole file; with room to spare.
pub const PDF_MEMORY_FACTOR: usize = 4;

/// What sealing a PDF of `size` bytes reserves: `PDF_MEMORY_FACTOR` times its
/// size, and the floor its cross-reference index and an inflated stream may
/// always take, however small the file (`sceau_pdf::row_budget`).
pub fn pdf_reservation(size: usize) -> usize {
    size.saturating_mul(PDF_MEMORY_FACTOR)
        .saturating_add(sceau_pdf::INDEX_FLOOR_BYTES)
        .saturating_add(sceau_pdf::DECODED_FLOOR_BYTES)
}
/// The same for CAdES: the content, its copy for the signing task, and an
/// enveloping CMS that holds it once more.
pub const CMS_MEMORY_FACTOR: usize = 3;

impl<K: SealKeys> Sealer<K> {
    engine_constructor! {
        fn new(
            store: Store,
            journal: Journal,
            clock: SharedClock,
            activation: Activation,
            time_stamper: TimeStamper,
            keys: K,
            settings: SealSettings,
        ) -> Self {
            Self {
                inner: Arc::new(Inner {
                    store,
                    journal,
                    clock,
                    activation,
                    time_stamper,
                    keys,
                    documents: Arc::new(tokio::sync::Semaphore::new(
                        settings.max_concurrent_documents,
                    )),
                    memory_kib: Arc::new(tokio::sync::Semaphore::new(
                        usize::try_from(settings.max_document_memory_mib.saturating_mul(1024))
                            .unwrap_or(usize::MAX)
                            .min(tokio::sync::Semaphore::MAX_PERMITS),
                    )),
                    settings,
                }),
            }
        }
    }

    /// A place for one document seal of `size` bytes and the memory it will
    /// take (`factor` times its size), or `Busy` when every place or the
    /// memory is taken: the caller is told to come back rather than queued
    /// (memory stays bounded). A document that would need more than the whole
    /// budget is `TooLarge`.
    pub fn document_slot(&self, size: usize, factor: usize) -> Result<DocumentSlot, SealError> {
        self.slot_of(size, size.saturating_mul(factor))
    }

    /// As `document_slot`, for a document of `size` bytes that may take
    /// `needed` bytes of memory.
    pub fn slot_of(&self, size: usize, needed: usize) -> Result<DocumentSlot, SealError> {
        let budget_mib = self.inner.settings.max_document_memory_mib;
        let needed_kib = needed.div_ceil(1024).max(1);
        let budget_kib = usize::try_from(budget_mib.saturating_mul(1024)).unwrap_or(usize::MAX);
        let too_large = SealError::TooLarge { size, budget_mib };
        if needed_kib > budget_kib {
            return Err(too_large);
        }
        let busy = || SealError::Busy(self.inner.settings.retry_after_secs);
        let place = self
            .inner
            .documents
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy())?;
        let permits = u32::try_from(needed_kib).map_err(|_| too_large)?;
        let memory = self
            .inner
            .memory_kib
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| busy())?;
        Ok(DocumentSlot { place, memory })
    }

    pub(crate) fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    pub fn time_stamper(&self) -> &TimeStamper {
        &self.inner.time_stamper
    }

    /// Checks the principal's right to the credential and the credential's
    /// state, spends the SAD on each digest (required at SCAL2), and returns
    /// the key to sign with.
    pub(crate) async fn key_for(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        sad: Option<&str>,
        digests: &[Vec<u8>],
    ) -> Result<SealingKey, SealError> {
        let (credential, scal) = self
            .inner
            .activation
            .sealing_credential(principal, credential_id)
            .await?;
        match sad {
            Some(sad) => {
                for digest in digests {
                    self.inner
                        .activation
                        .spend(principal, credential_id, sad, digest)
                        .await?;
                }
            }
            None if scal >= 2 => return Err(SealError::SadRequired),
            None => {}
        }
        let certificate = certificate_of(&credential)?;
        let signer = self.inner.keys.signer(&credential.key).await?;
        Ok(SealingKey {
            credential_id,
            signer,
            certificate,
            scal,
        })
    }

    /// The name a visible seal shows: the organisation (O) of the credential's
    /// certificate, else its common name. Checks the principal's right to the
    /// credential and its state, and spends nothing.
    pub(crate) async fn sealed_by(
        &self,
        principal: &Principal,
        credential_id: Uuid,
    ) -> Result<String, SealError> {
        let (credential, _) = self
            .inner
            .activation
            .sealing_credential(principal, credential_id)
            .await?;
        let certificate = certificate_of(&credential)?;
        Ok(subject_name(&certificate).unwrap_or_else(|| "sceau".to_owned()))
    }

    /// The certificates between `signer` and the root (its issuing CA, the
    /// root excluded): what every seal carries, so a relying party that holds
    /// only the root can build the path.
    pub(crate) async fn signer_chain(
        &self,
        signer: &Certificate,
    ) -> Result<Vec<Certificate>, SealError> {
        let issuer = &signer.tbs_certificate.issuer;
        let mut chain = Vec::new();
        for record in self.inner.store.active_ca_certificates().await? {
            if record.purpose != "issuing" {
                continue;
            }
            let certificate = Certificate::from_der(&record.der)
                .map_err(|e| SealError::Internal(format!("stored CA certificate: {e}")))?;
            if certificate.tbs_certificate.subject == *issuer {
                chain.push(certificate);
            }
        }
        Ok(chain)
    }

    /// The issuing CA's and the root's certificates, and the issuing CA's
    /// latest CRL: what B-LT embeds so a verifier needs nothing else.
    pub(crate) async fn validation_data(
        &self,
    ) -> Result<(Vec<Certificate>, Vec<CertificateList>), SealError> {
        let mut chain = Vec::new();
        for record in self.inner.store.active_ca_certificates().await? {
            if record.purpose == "issuing" || record.purpose == "root" {
                chain.push(
                    Certificate::from_der(&record.der)
                        .map_err(|e| SealError::Internal(format!("stored CA certificate: {e}")))?,
                );
            }
        }
        let crls = match self.inner.store.latest_crl("issuing").await? {
            Some(crl) => vec![
                CertificateList::from_der(&crl.der)
                    .map_err(|e| SealError::Internal(format!("stored CRL: {e}")))?,
            ],
            None => Vec::new(),
        };
        Ok((chain, crls))
    }

    /// The DER of the latest CRL of `issuer` (`root` for the ARL), if any.
    pub(crate) async fn latest_crl_der(&self, issuer: &str) -> Result<Option<Vec<u8>>, SealError> {
        Ok(self
            .inner
            .store
            .latest_crl(issuer)
            .await?
            .map(|crl| crl.der))
    }

    /// Journals a seal (`seal.created`) and indexes it by credential; its
    /// journal index, once durable. `seal_sha256` is the SHA-256 of what the
    /// caller returns, which the caller computes as it sees fit (PAdES
    /// extends the document's hash state instead of hashing the file again).
    pub(crate) async fn record(
        &self,
        principal: &Principal,
        key: &SealingKey,
        details: SealMade,
        seal_sha256: [u8; 32],
    ) -> Result<u64, SealError> {
        let indexes = self
            .record_all(principal, key, vec![(details, seal_sha256)])
            .await?;
        indexes
            .first()
            .copied()
            .ok_or_else(|| SealError::Internal("the journal returned no index".into()))
    }

    /// Journals several seals together (they share the journal's group
    /// commits) and indexes them in one transaction; their journal indexes,
    /// in order, once durable.
    pub(crate) async fn record_all(
        &self,
        principal: &Principal,
        key: &SealingKey,
        seals: Vec<(SealMade, [u8; 32])>,
    ) -> Result<Vec<u64>, SealError> {
        let now = self.inner.clock.now();
        let mut events = Vec::with_capacity(seals.len());
        let mut records = Vec::with_capacity(seals.len());
        let certificate_serial =
            hex::encode(key.certificate.tbs_certificate.serial_number.as_bytes());
        for (seal, seal_sha256) in seals {
            let seal_sha256 = hex::encode(seal_sha256);
            records.push(SealRecord {
                journal_index: 0,
                credential_id: key.credential_id,
                principal: principal.id.clone(),
                format: seal.format.clone(),
                level: seal.level.clone(),
                document_sha256: seal.document_sha256.clone().unwrap_or_default(),
                seal_sha256: seal_sha256.clone(),
                created_at: now.into(),
            });
            events.push(Event::SealCreated(event::SealCreated {
                credential_id: key.credential_id,
                scal: key.scal,
                certificate_serial: certificate_serial.clone(),
                seal_sha256,
                seal,
            }));
        }
        let indexes = self
            .inner
            .journal
            .append_all(&Actor::from(principal), events)
            .await?;
        for (record, index) in records.iter_mut().zip(&indexes) {
            record.journal_index = *index;
        }
        // The journal entries are the record; these rows only find them by credential.
        self.inner.store.insert_seal_records(&records).await?;
        Ok(indexes)
    }

    /// The credential, when `principal` may read its seals (its organisation's
    /// RCCS, or an auditor).
    pub async fn readable_credential(
        &self,
        principal: &Principal,
        credential_id: Uuid,
    ) -> Result<(), SealError> {
        let credential = match self.inner.store.seal_credential(credential_id).await {
            Ok(credential) => credential,
            Err(StoreError::NotFound { .. }) => {
                return Err(ActivationError::UnknownCredential(credential_id).into());
            }
            Err(e) => return Err(e.into()),
        };
        authorize(principal, Permission::ReadSeals, Some(credential.entity_id))
            .map_err(|e| SealError::Forbidden(e.to_string()))
    }

    /// Seal transparency: the seals made with a credential, newest first.
    pub async fn seals(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<SealRecord>, SealError> {
        self.readable_credential(principal, credential_id).await?;
        Ok(self
            .inner
            .store
            .seals_of(credential_id, before, limit.clamp(1, 1000))
            .await?)
    }

    /// Seal transparency: the journal entry of one seal, its RFC 9162 inclusion
    /// proof, and the signed checkpoint it leads to, with the audit key.
    pub async fn inclusion(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        index: u64,
    ) -> Result<SealInclusion, SealError> {
        self.readable_credential(principal, credential_id).await?;
        let listed = self
            .inner
            .store
            .seals_of(credential_id, Some(index.saturating_add(1)), 1)
            .await?;
        if listed.first().map(|s| s.journal_index) != Some(index) {
            return Err(SealError::NoSuchSeal(index));
        }
        let journal = &self.inner.journal;
        let entry = journal.entry(index).await?;
        let checkpoint = journal.checkpoint_covering(index).await?.ok_or_else(|| {
            SealError::NotYetCheckpointed {
                index,
                retry_after: journal.checkpoint_interval().as_secs().max(1),
            }
        })?;
        let proof = journal.inclusion_proof(index, checkpoint.tree_size).await?;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let public_key = journal
            .public_key()
            .to_der()
            .map_err(|e| SealError::Internal(e.to_string()))?;
        Ok(SealInclusion {
            journal_index: index,
            entry_kind: entry.kind,
            entry_payload: entry.payload.as_deref().map(b64),
            payload_sha256: hex::encode(entry.payload_sha256),
            leaf_hash: hex::encode(entry.leaf_hash),
            tree_size: checkpoint.tree_size,
            proof: proof.iter().map(hex::encode).collect(),
            checkpoint: CheckpointView {
                tree_size: checkpoint.tree_size,
                root_hash: hex::encode(checkpoint.root_hash),
                signed_at: crate::clock::format::rfc3339(checkpoint.signed_at()),
                key_id: checkpoint.key_id.clone(),
                message: b64(&checkpoint.message()),
                signature: b64(&checkpoint.signature),
                audit_public_key: b64(&public_key),
            },
        })
    }

    /// Journals a seal that failed its check (an HSM fault): no seal leaves.
    pub(crate) async fn record_failure(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        error: &SealError,
    ) -> Result<(), SealError> {
        self.inner
            .journal
            .append(
                &Actor::from(principal),
                Event::SealFailed(event::SealFailed {
                    credential_id,
                    reason: error.to_string(),
                }),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
