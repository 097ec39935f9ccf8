//! Bare signatures over digests the client made (CSC `signatures/signHash`):
//! the same credential checks, SAD spending, self-check and journal entry as
//! every other seal, but the answer is the signature value alone, which the
//! client puts into its own CMS or PDF.

use crate::journal::event::SealMade;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{SealError, SealKeys, Sealer};
use crate::auth::Principal;
use crate::crypto::{DigestAlgorithm, DigestSignatureScheme, PublicKeyKind};

/// Most digests one call may sign (as for hash seals).
pub const MAX_DIGESTS: usize = super::cades::MAX_HASHES;

/// One bare signature made, with the journal entry that records it.
#[derive(Debug, Clone)]
pub struct DigestSignature {
    /// DER `ECDSA-Sig-Value` for ECDSA, the raw value for RSA.
    pub value: Vec<u8>,
    pub journal_index: u64,
}

impl<K: SealKeys> Sealer<K> {
    /// The kind of key behind a credential the principal may seal with;
    /// spends nothing.
    pub async fn key_kind(
        &self,
        principal: &Principal,
        credential_id: Uuid,
    ) -> Result<PublicKeyKind, SealError> {
        let (credential, _) = self
            .inner
            .activation
            .sealing_credential(principal, credential_id)
            .await?;
        let certificate = super::certificate_of(&credential)?;
        PublicKeyKind::of(&certificate.tbs_certificate.subject_public_key_info)
            .map_err(|e| SealError::Internal(e.to_string()))
    }

    /// Signs each digest with the credential's key under `scheme`, after
    /// spending the SAD on it (required at SCAL2, where the SAD names the
    /// digests). Every signature is checked against the certificate's key
    /// and journaled (`seal.created`, format `digest`) before it is returned.
    pub async fn sign_digests(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        sad: Option<&str>,
        scheme: DigestSignatureScheme,
        digest_algorithm: DigestAlgorithm,
        digests: &[Vec<u8>],
    ) -> Result<Vec<DigestSignature>, SealError> {
        if digests.is_empty() || digests.len() > MAX_DIGESTS {
            return Err(SealError::Invalid {
                field: "hashes",
                reason: format!("between 1 and {MAX_DIGESTS} digests"),
            });
        }
        let size = digest_algorithm.digest(b"").len();
        if let Some(position) = digests.iter().position(|d| d.len() != size) {
            return Err(SealError::Invalid {
                field: "hashes",
                reason: format!("digest {position} is not {size} bytes, as its algorithm makes"),
            });
        }
        let kind = self.key_kind(principal, credential_id).await?;
        if !scheme.fits(kind) {
            return Err(SealError::Invalid {
                field: "signAlgo",
                reason: format!("the credential's key ({kind:?}) does not sign with {scheme:?}"),
            });
        }
        let key = self.key_for(principal, credential_id, sad, digests).await?;
        let signer = key.signer.clone();
        let owned = digests.to_vec();
        let signed = tokio::task::spawn_blocking(move || {
            owned
                .iter()
                .map(|digest| signer.sign_digest(scheme, digest_algorithm, digest))
                .collect::<Result<Vec<_>, String>>()
        })
        .await
        .map_err(|e| SealError::Internal(e.to_string()))?;
        let values = match signed {
            Ok(values) => values,
            Err(reason) => {
                tracing::error!(%reason, "a digest signature failed");
                let error = SealError::SelfCheck;
                self.record_failure(principal, credential_id, &error)
                    .await?;
                return Err(error);
            }
        };
        let records = digests
            .iter()
            .zip(&values)
            .map(|(digest, value)| {
                (
                    SealMade {
                        format: "digest".to_owned(),
                        level: "raw".to_owned(),
                        packaging: None,
                        scheme: Some(format!("{scheme:?}")),
                        digest_algorithm: Some(digest_algorithm.oid().to_string()),
                        document_digest: Some(hex::encode(digest)),
                        // The seal index lists SHA-256 document digests only.
                        document_sha256: (digest_algorithm == DigestAlgorithm::Sha256)
                            .then(|| hex::encode(digest)),
                        hash_only: true,
                    },
                    Sha256::digest(value).into(),
                )
            })
            .collect();
        let indexes = self.record_all(principal, &key, records).await?;
        Ok(values
            .into_iter()
            .zip(indexes)
            .map(|(value, journal_index)| DigestSignature {
                value,
                journal_index,
            })
            .collect())
    }
}
