//! CAdES baseline signatures (EN 319 122-1) at B-B, B-T and B-LT: over a
//! document, detached or enveloping, or over a digest the client computed (the
//! document never leaves the client). B-B signs content-type, message-digest,
//! signing-time and signing-certificate-v2; B-T adds a signature-time-stamp;
//! every level carries the signer's issuing CA in SignedData's `certificates`,
//! and B-LT puts the whole chain and the issuing CA's CRL in `certificates`
//! and `crls` (the baseline's place for them, not the extended formats'
//! certificate-values and revocation-values attributes).

use std::str::FromStr;
use std::sync::Arc;

use crate::journal::event::SealMade;
use ::cms::signed_data::SignerInfos;
use const_oid::ObjectIdentifier;
use der::asn1::SetOfVec;
use der::{Any, Decode};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Level, SealError, SealKeys, Sealed, Sealer, SealingKey};
use crate::auth::Principal;
use crate::crypto::{DigestAlgorithm, MessageSigner};
use crate::pki::cms::{self, RevocationData, ToSign};

/// id-aa-signatureTimeStampToken (RFC 3161 appendix A).
pub const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");
/// `application/pkcs7-signature`.
pub const MEDIA_TYPE: &str = "application/pkcs7-signature";
/// Most digests one hash-sealing call may carry.
pub const MAX_HASHES: usize = 100;

/// Where the sealed content goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packaging {
    /// The CMS carries no content: the document is kept beside it.
    Detached,
    /// The CMS carries the document (eContent).
    Enveloping,
}

impl Packaging {
    pub fn name(self) -> &'static str {
        match self {
            Self::Detached => "detached",
            Self::Enveloping => "enveloping",
        }
    }
}

impl FromStr for Packaging {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "detached" => Ok(Self::Detached),
            "enveloping" => Ok(Self::Enveloping),
            other => Err(format!(
                "{other:?} is not a packaging: detached or enveloping"
            )),
        }
    }
}

fn cades_level(level: Level) -> Result<Level, SealError> {
    if level == Level::BLta {
        return Err(SealError::Invalid {
            field: "level",
            reason: "CAdES seals are made at B-B, B-T and B-LT".to_owned(),
        });
    }
    Ok(level)
}

impl<K: SealKeys> Sealer<K> {
    /// Seals `content` as CAdES.
    pub async fn cades(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        sad: Option<&str>,
        level: Level,
        packaging: Packaging,
        content: &[u8],
    ) -> Result<Sealed, SealError> {
        let level = cades_level(level)?;
        let _slot = self.document_slot(content.len(), super::CMS_MEMORY_FACTOR)?;
        let digest = Sha256::digest(content).to_vec();
        let key = self
            .key_for(principal, credential_id, sad, std::slice::from_ref(&digest))
            .await?;
        let enveloped = (packaging == Packaging::Enveloping).then_some(content);
        self.sign(
            principal,
            &key,
            level,
            &digest,
            enveloped,
            SealMade {
                packaging: Some(packaging.name().to_owned()),
                ..SealMade::of("cades", level.name(), hex::encode(&digest))
            },
        )
        .await
    }

    /// One detached CAdES signature per SHA-256 digest.
    pub async fn hashes(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        sad: Option<&str>,
        level: Level,
        digests: &[Vec<u8>],
    ) -> Result<Vec<Sealed>, SealError> {
        let level = cades_level(level)?;
        if digests.is_empty() || digests.len() > MAX_HASHES {
            return Err(SealError::Invalid {
                field: "hashes",
                reason: format!("between 1 and {MAX_HASHES} digests"),
            });
        }
        if let Some(position) = digests.iter().position(|d| d.len() != 32) {
            return Err(SealError::Invalid {
                field: "hashes",
                reason: format!("digest {position} is not 32 bytes (SHA-256)"),
            });
        }
        let key = self.key_for(principal, credential_id, sad, digests).await?;
        let signatures = self
            .signed_data_many(principal, &key, level, digests, None, true)
            .await?;
        // Journaled together: one group commit for the batch, not one each.
        let records = digests
            .iter()
            .zip(&signatures)
            .map(|(digest, der)| {
                (
                    SealMade {
                        packaging: Some("detached".to_owned()),
                        hash_only: true,
                        ..SealMade::of("cades", level.name(), hex::encode(digest))
                    },
                    Sha256::digest(der).into(),
                )
            })
            .collect();
        let indexes = self.record_all(principal, &key, records).await?;
        Ok(signatures
            .into_iter()
            .zip(indexes)
            .map(|(der, journal_index)| Sealed { der, journal_index })
            .collect())
    }

    /// Signs, extends to `level`, journals.
    async fn sign(
        &self,
        principal: &Principal,
        key: &SealingKey,
        level: Level,
        digest: &[u8],
        content: Option<&[u8]>,
        details: SealMade,
    ) -> Result<Sealed, SealError> {
        let der = self
            .signed_data(principal, key, level, digest, content, true)
            .await?;
        let journal_index = self
            .record(principal, key, details, Sha256::digest(&der).into())
            .await?;
        Ok(Sealed { der, journal_index })
    }

    /// The CMS of a seal over `digest` at `level` (B-B, B-T, B-LT), as a
    /// ContentInfo DER: signing-time only when `signing_time` (PAdES puts the
    /// time in the signature dictionary instead). A signature that fails its
    /// check against the certificate is journaled as `seal.failed` and not
    /// returned.
    pub(crate) async fn signed_data(
        &self,
        principal: &Principal,
        key: &SealingKey,
        level: Level,
        digest: &[u8],
        content: Option<&[u8]>,
        signing_time: bool,
    ) -> Result<Vec<u8>, SealError> {
        let mut one = self
            .signed_data_many(
                principal,
                key,
                level,
                &[digest.to_vec()],
                content,
                signing_time,
            )
            .await?;
        one.pop()
            .ok_or_else(|| SealError::Internal("no signature made".into()))
    }

    /// As `signed_data`, one seal per digest, in order. The attributes, chain
    /// and revocation data are made once for all, and the signatures in one
    /// blocking task: a batch of hash seals is one hand-off to the HSM's
    /// thread, not one per digest.
    pub(crate) async fn signed_data_many(
        &self,
        principal: &Principal,
        key: &SealingKey,
        level: Level,
        digests: &[Vec<u8>],
        content: Option<&[u8]>,
        signing_time: bool,
    ) -> Result<Vec<Vec<u8>>, SealError> {
        let now = self.clock().now();
        // Every level carries the path to the root; B-LT adds the root and
        // the CRL.
        let (chain, crls) = if level >= Level::BLt {
            self.validation_data().await?
        } else {
            (self.signer_chain(&key.certificate).await?, Vec::new())
        };
        let mut certificates = vec![key.certificate.clone()];
        certificates.extend(chain);
        let mut attributes = vec![cms::signing_certificate_v2(&key.certificate)?];
        if signing_time {
            attributes.push(cms::signing_time(now)?);
        }
        let signer: Arc<dyn MessageSigner + Send + Sync> = key.signer.clone();
        let batch = Arc::new(Batch {
            attributes,
            certificate: key.certificate.clone(),
            certificates,
            revocation: crls.into_iter().map(RevocationData::Crl).collect(),
            content: content.map(<[u8]>::to_vec),
        });
        // A batch is cut into one run per core, each signed on its own
        // blocking thread (and its own HSM session): one request's seals then
        // keep every core busy while other requests wait on their commits.
        let per_lane = digests.len().div_ceil(signing_lanes()).max(1);
        let lanes: Vec<_> = digests
            .chunks(per_lane)
            .map(|run| {
                let run = run.to_vec();
                let batch = Arc::clone(&batch);
                let signer = Arc::clone(&signer);
                tokio::task::spawn_blocking(move || {
                    run.iter()
                        .map(|digest| batch.sign(digest, signer.as_ref()))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        // Spawned, they already run together; awaited in order. Every lane
        // is awaited, so none is left signing after a failure is answered.
        let mut signed = Vec::with_capacity(digests.len());
        let mut failure = None;
        for lane in lanes {
            match lane.await.map_err(|e| SealError::Internal(e.to_string()))? {
                Ok(values) => signed.extend(values),
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        if let Some(error) = failure {
            let error = SealError::from(error);
            self.record_failure(principal, key.credential_id, &error)
                .await?;
            return Err(error);
        }
        let mut sealed = Vec::with_capacity(signed.len());
        for signed in signed {
            sealed.push(self.extended(level, signed).await?);
        }
        Ok(sealed)
    }

    /// The signature extended to `level` (a signature time-stamp from B-T),
    /// as a ContentInfo DER.
    async fn extended(
        &self,
        level: Level,
        mut signed: ::cms::signed_data::SignedData,
    ) -> Result<Vec<u8>, SealError> {
        if level >= Level::BT {
            let mut infos: Vec<_> = signed.signer_infos.0.into_vec();
            for info in &mut infos {
                let imprint = Sha256::digest(info.signature.as_bytes());
                let stamp = self
                    .time_stamper()
                    .stamp(DigestAlgorithm::Sha256, &imprint)
                    .await
                    .map_err(SealError::TimeStamp)?;
                let token = Any::from_der(&stamp.token)
                    .map_err(|e| SealError::Internal(format!("time-stamp token: {e}")))?;
                let mut values = SetOfVec::new();
                values
                    .insert(token)
                    .map_err(|e| SealError::Internal(e.to_string()))?;
                let mut unsigned = info.unsigned_attrs.take().unwrap_or_default();
                unsigned
                    .insert(x509_cert::attr::Attribute {
                        oid: ID_AA_SIGNATURE_TIME_STAMP_TOKEN,
                        values,
                    })
                    .map_err(|e| SealError::Internal(e.to_string()))?;
                info.unsigned_attrs = Some(unsigned);
            }
            signed.signer_infos = SignerInfos(
                SetOfVec::try_from(infos).map_err(|e| SealError::Internal(e.to_string()))?,
            );
        }
        Ok(cms::content_info_der(&signed)?)
    }
}

/// What every seal of a batch shares: its signed attributes besides the
/// digest, the signer's certificate, the certificates and revocation data to
/// carry, and the content when it is enveloped.
struct Batch {
    attributes: Vec<x509_cert::attr::Attribute>,
    certificate: x509_cert::Certificate,
    certificates: Vec<x509_cert::Certificate>,
    revocation: Vec<RevocationData>,
    content: Option<Vec<u8>>,
}

impl Batch {
    /// One SignedData over `digest`, checked against the certificate.
    fn sign(
        &self,
        digest: &[u8],
        signer: &(dyn MessageSigner + Send + Sync),
    ) -> Result<::cms::signed_data::SignedData, crate::pki::cms::CmsError> {
        cms::sign(
            ToSign {
                content_type: cms::ID_DATA,
                content: self.content.as_deref(),
                content_digest: digest,
                digest: DigestAlgorithm::Sha256,
                attributes: self.attributes.clone(),
                signer_certificate: &self.certificate,
                certificates: self.certificates.clone(),
                revocation: self.revocation.clone(),
            },
            signer,
        )
    }
}

/// How many blocking threads one batch is signed on: the cores this
/// process may use, read once.
fn signing_lanes() -> usize {
    static LANES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LANES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packagings_parse_and_lta_is_refused_for_cades() {
        assert_eq!("detached".parse(), Ok(Packaging::Detached));
        assert_eq!("enveloping".parse(), Ok(Packaging::Enveloping));
        assert!("attached".parse::<Packaging>().is_err());
        assert!(cades_level(Level::BLta).is_err());
        assert_eq!(cades_level(Level::BLt).unwrap(), Level::BLt);
    }
}
