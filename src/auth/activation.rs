//! Activation of seal credentials (EN 419 241-1, CSC): a principal entitled to a
//! credential gets a short-lived SAD bound to it, to the credential and to the
//! exact digests (SCAL2) or a number of signatures (SCAL1); each signature spends
//! it once, in a ledger shared by every instance. Failures by an entitled
//! principal count towards a lock; a stranger's never do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::principal::{AuthMethod, Principal, Role};
use crate::clock::SharedClock;
use crate::config::AuthSettings;
use crate::crypto::DigestAlgorithm;
use crate::error::{ErrorKind, HasErrorKind};
use crate::journal::{Actor, Event, Journal, JournalError, event};
use crate::pki::policy::PolicySet;
use crate::store::auth::{ActivationBinding, NewSad, SadRefusal};
use crate::store::entities::{CredentialStatus, SealCredential};
use crate::store::{Store, StoreError};

mod registrations;

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("no seal credential {0}")]
    UnknownCredential(Uuid),
    #[error("this principal may not activate this credential")]
    NotEntitled,
    #[error("too many refused attempts by this principal; try again later")]
    RateLimited,
    #[error(
        "the credential is locked after repeated failed activations; the RCCS or an RA operator must unlock it"
    )]
    Locked,
    #[error("the credential cannot be used: it is {0}")]
    NotUsable(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("the SAD was refused: {0}")]
    Sad(&'static str),
    #[error("the credential is not locked")]
    NotLocked,
    #[error("no activation credential {0} on this seal credential")]
    UnknownActivationCredential(Uuid),
    #[error("the activation credential is already revoked")]
    AlreadyRevoked,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl HasErrorKind for ActivationError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::UnknownCredential(_) | Self::UnknownActivationCredential(_) => {
                ErrorKind::NotFound
            }
            Self::NotEntitled | Self::Sad(_) => ErrorKind::Forbidden,
            Self::RateLimited => ErrorKind::TooManyRequests,
            Self::Locked => ErrorKind::Locked,
            Self::NotUsable(_) | Self::NotLocked | Self::AlreadyRevoked => ErrorKind::Conflict,
            Self::BadRequest(_) => ErrorKind::Unprocessable,
            Self::Store(e) => e.kind(),
            Self::Journal(e) => e.kind(),
        }
    }
}

fn refusal_reason(refusal: SadRefusal) -> &'static str {
    match refusal {
        SadRefusal::Unknown => "unknown SAD",
        SadRefusal::OtherCredential => "it was issued for another credential",
        SadRefusal::OtherPrincipal => "it was issued to another principal",
        SadRefusal::Expired => "it has expired",
        SadRefusal::Spent => "every signature it allowed was made",
        SadRefusal::DigestNotBound => {
            "it is not bound to this digest, or that digest was signed already"
        }
        SadRefusal::NoLongerExtendable => "it was extended as far as a SAD may live",
    }
}

/// What the caller asks to be allowed to sign.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeRequest {
    /// SCAL1: how many signatures (1 when absent).
    pub num_signatures: Option<u32>,
    /// SCAL2 (and allowed at SCAL1): the exact digests that will be signed.
    pub digests: Vec<Vec<u8>>,
    pub digest_algorithm: Option<DigestAlgorithm>,
}

/// A SAD handed to the caller.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IssuedSad {
    /// 32 random bytes, base64url; only its SHA-256 is stored.
    pub sad: String,
    pub expires_in: u64,
    pub scal: u8,
    pub num_signatures: u32,
}

/// A SAD whose life was extended: the same text, and the seconds it has left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedSad {
    pub sad: String,
    pub expires_in: u64,
}

/// Activation, shared by every handler of one instance.
#[derive(Debug, Clone)]
pub struct Activation {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    journal: Journal,
    clock: SharedClock,
    policies: Arc<PolicySet>,
    settings: AuthSettings,
    /// Refusals of strangers by principal id: (window start, count).
    strangers: Mutex<HashMap<String, (Instant, u32)>>,
}

const STRANGER_WINDOW: Duration = Duration::from_secs(60);

impl Activation {
    engine_constructor! {
        fn new(
            store: Store,
            journal: Journal,
            clock: SharedClock,
            policies: Arc<PolicySet>,
            settings: AuthSettings,
        ) -> Self {
            Self {
                inner: Arc::new(Inner {
                    store,
                    journal,
                    clock,
                    policies,
                    settings,
                    strangers: Mutex::new(HashMap::new()),
                }),
            }
        }
    }

    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::from(self.inner.clock.now())
    }

    /// Issues a SAD to an entitled principal.
    pub async fn authorize(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        request: &AuthorizeRequest,
    ) -> Result<IssuedSad, ActivationError> {
        let credential = self.entitled_credential(principal, credential_id).await?;
        let scal = self.scal_of(credential_id).await?;
        let digests: Vec<String> = request.digests.iter().map(hex::encode).collect();
        if !digests.is_empty() {
            let Some(algorithm) = request.digest_algorithm else {
                return Err(ActivationError::BadRequest(
                    "hashes need their hash algorithm".to_owned(),
                ));
            };
            let size = algorithm.digest(b"").len();
            if request.digests.iter().any(|d| d.len() != size) {
                return Err(ActivationError::BadRequest(format!(
                    "every hash must be {size} bytes for this algorithm"
                )));
            }
            let mut unique = digests.clone();
            unique.sort();
            unique.dedup();
            if unique.len() != digests.len() {
                return Err(ActivationError::BadRequest(
                    "the same hash is listed twice".to_owned(),
                ));
            }
        }
        let count = match (scal, digests.len(), request.num_signatures) {
            (2, 0, _) => {
                return Err(ActivationError::BadRequest(
                    "this credential is activated at SCAL2: list the hashes to be signed"
                        .to_owned(),
                ));
            }
            (_, n, Some(asked)) if n > 0 && asked as usize != n => {
                return Err(ActivationError::BadRequest(format!(
                    "numSignatures is {asked} but {n} hashes are listed"
                )));
            }
            (_, 0, asked) => asked.unwrap_or(1),
            (_, n, _) => u32::try_from(n).unwrap_or(u32::MAX),
        };
        if count == 0 || count > self.inner.settings.max_signatures_per_sad {
            return Err(ActivationError::BadRequest(format!(
                "a SAD allows 1 to {} signatures",
                self.inner.settings.max_signatures_per_sad
            )));
        }
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let sad = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let lifetime = self.inner.settings.sad_lifetime_secs;
        let now = self.now();
        let expires_at = now + Duration::from_secs(lifetime);
        self.inner
            .store
            .insert_sad(
                &NewSad {
                    sad_sha256: sad_hash(&sad),
                    credential_id,
                    principal_id: principal.id.clone(),
                    scal,
                    count,
                    // At SCAL1 listed digests only inform; the count binds.
                    digests: if scal == 2 {
                        digests.clone()
                    } else {
                        Vec::new()
                    },
                    expires_at,
                },
                now,
            )
            .await?;
        self.inner
            .store
            .reset_activation_failures(credential.id)
            .await?;
        self.journal(
            principal,
            Event::ActivationAuthorized(event::ActivationAuthorized {
                credential_id,
                scal,
                num_signatures: count,
                digests: if scal == 2 { digests } else { Vec::new() },
                expires_at: SystemTime::from(expires_at).into(),
                sad_sha256: sad_hash(&sad),
                principal: principal.snapshot(),
            }),
        )
        .await?;
        Ok(IssuedSad {
            sad,
            expires_in: lifetime,
            scal,
            num_signatures: count,
        })
    }

    /// Spends one signature of `sad` on `digest`. A refusal counts towards the
    /// lock when the principal is entitled to the credential.
    pub async fn spend(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        sad: &str,
        digest: &[u8],
    ) -> Result<(), ActivationError> {
        let credential = self.entitled_credential(principal, credential_id).await?;
        let outcome = self
            .inner
            .store
            .spend_sad(
                &sad_hash(sad),
                credential_id,
                &principal.id,
                &hex::encode(digest),
                self.now(),
            )
            .await?;
        match outcome {
            Ok(()) => {
                self.inner
                    .store
                    .reset_activation_failures(credential.id)
                    .await?;
                Ok(())
            }
            Err(refusal) => {
                let reason = refusal_reason(refusal);
                self.count_failure(principal, credential_id, reason).await?;
                Err(ActivationError::Sad(reason))
            }
        }
    }

    /// The credential `principal` wants to seal with, when it is entitled to it
    /// and the credential is usable (accepted, not locked, revoked or expired,
    /// and its certificate within its validity), with the SCAL its policy sets.
    pub async fn sealing_credential(
        &self,
        principal: &Principal,
        credential_id: Uuid,
    ) -> Result<(SealCredential, u8), ActivationError> {
        let credential = self.entitled_credential(principal, credential_id).await?;
        let certificate = self
            .inner
            .store
            .certificate_of_credential(credential_id)
            .await?
            .ok_or(ActivationError::NotUsable("without a certificate"))?;
        let now = self.now();
        if now >= certificate.not_after {
            return Err(ActivationError::NotUsable("expired"));
        }
        if now < certificate.not_before {
            return Err(ActivationError::NotUsable("not valid yet"));
        }
        let scal = self.scal_of(credential_id).await?;
        Ok((credential, scal))
    }

    /// Extends the life of a SAD this principal holds for this credential
    /// (CSC `credentials/extendTransaction`): the same SAD, usable for another
    /// `auth.sad_lifetime_secs`, never past `auth.sad_max_lifetime_secs` after
    /// its issue. A refusal counts towards the lock, as a refused signature does.
    pub async fn extend(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        sad: &str,
    ) -> Result<ExtendedSad, ActivationError> {
        self.entitled_credential(principal, credential_id).await?;
        let now = self.now();
        let settings = &self.inner.settings;
        let outcome = self
            .inner
            .store
            .extend_sad(
                &sad_hash(sad),
                credential_id,
                &principal.id,
                now,
                now + Duration::from_secs(settings.sad_lifetime_secs),
                Duration::from_secs(settings.sad_max_lifetime_secs),
            )
            .await?;
        let expires_at = match outcome {
            Ok(expires_at) => expires_at,
            Err(refusal) => {
                let reason = refusal_reason(refusal);
                self.count_failure(principal, credential_id, reason).await?;
                return Err(ActivationError::Sad(reason));
            }
        };
        self.journal(
            principal,
            Event::ActivationExtended(event::ActivationExtended {
                credential_id,
                sad_sha256: sad_hash(sad),
                expires_at: SystemTime::from(expires_at).into(),
                principal: principal.snapshot(),
            }),
        )
        .await?;
        Ok(ExtendedSad {
            sad: sad.to_owned(),
            expires_in: u64::try_from((expires_at - now).whole_seconds()).unwrap_or(0),
        })
    }

    /// The seal credentials of the principal's organisation that it may
    /// activate, whatever their state, oldest first. Another organisation's
    /// credentials are never listed.
    pub async fn entitled_credentials(
        &self,
        principal: &Principal,
    ) -> Result<Vec<SealCredential>, ActivationError> {
        let Some(entity) = principal.entity else {
            return Ok(Vec::new());
        };
        let mut entitled = Vec::new();
        for credential in self.inner.store.seal_credentials_of(entity).await? {
            if self.is_entitled(principal, &credential).await? {
                entitled.push(credential);
            }
        }
        Ok(entitled)
    }

    /// The credential, when the principal may activate it (in any state);
    /// a stranger's attempt is refused as by `authorize`.
    pub async fn visible_credential(
        &self,
        principal: &Principal,
        credential_id: Uuid,
    ) -> Result<SealCredential, ActivationError> {
        let credential = self.credential(credential_id).await?;
        if !self.is_entitled(principal, &credential).await? {
            self.refuse_stranger(principal, credential_id).await?;
            return Err(ActivationError::NotEntitled);
        }
        Ok(credential)
    }

    /// Unlocks a credential; the caller's right to do so is checked by the handler.
    pub async fn unlock(
        &self,
        principal: &Principal,
        credential_id: Uuid,
    ) -> Result<(), ActivationError> {
        let credential = self.credential(credential_id).await?;
        if !self
            .inner
            .store
            .unlock_seal_credential(credential.id, self.now())
            .await?
        {
            return Err(ActivationError::NotLocked);
        }
        self.journal(
            principal,
            Event::CredentialUnlocked(event::CredentialUnlocked {
                credential_id,
                principal: principal.snapshot(),
            }),
        )
        .await?;
        Ok(())
    }

    async fn credential(&self, credential_id: Uuid) -> Result<SealCredential, ActivationError> {
        match self.inner.store.seal_credential(credential_id).await {
            Ok(credential) => Ok(credential),
            Err(StoreError::NotFound { .. }) => {
                Err(ActivationError::UnknownCredential(credential_id))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The credential, when the principal may activate it and it is usable.
    async fn entitled_credential(
        &self,
        principal: &Principal,
        credential_id: Uuid,
    ) -> Result<SealCredential, ActivationError> {
        let credential = self.visible_credential(principal, credential_id).await?;
        match credential.status {
            CredentialStatus::Active => Ok(credential),
            CredentialStatus::Locked => {
                self.journal(
                    principal,
                    Event::ActivationRefused(event::ActivationRefused {
                        credential_id,
                        reason: "locked".to_owned(),
                        principal: principal.snapshot(),
                    }),
                )
                .await?;
                Err(ActivationError::Locked)
            }
            CredentialStatus::Pending => {
                Err(ActivationError::NotUsable("not accepted by its holder yet"))
            }
            CredentialStatus::Revoked => Err(ActivationError::NotUsable("revoked")),
            CredentialStatus::Expired => Err(ActivationError::NotUsable("expired")),
        }
    }

    /// Entitled: a seal client of the credential's organisation, whose client
    /// certificate or OIDC identity is an active activation credential of it.
    async fn is_entitled(
        &self,
        principal: &Principal,
        credential: &SealCredential,
    ) -> Result<bool, ActivationError> {
        if !principal.has(Role::SealClient) || principal.entity != Some(credential.entity_id) {
            return Ok(false);
        }
        let registrations = self
            .inner
            .store
            .activation_credentials_of(credential.id)
            .await?;
        Ok(registrations.iter().filter(|r| r.active).any(|r| {
            match (&r.binding, &principal.method) {
                (
                    ActivationBinding::ClientCertificate { sha256 },
                    AuthMethod::ClientCertificate { sha256: presented },
                ) => sha256 == presented,
                (
                    ActivationBinding::Oidc { issuer, subject },
                    AuthMethod::Oidc {
                        issuer: token_issuer,
                        subject: token_subject,
                        client_id,
                        ..
                    },
                ) => {
                    issuer == token_issuer
                        && (subject == token_subject || client_id.as_ref() == Some(subject))
                }
                _ => false,
            }
        }))
    }

    /// SCAL2 where the credential's policy says its key is a remote QSCD's.
    pub async fn scal_of(&self, credential_id: Uuid) -> Result<u8, ActivationError> {
        let certificate = self
            .inner
            .store
            .certificate_of_credential(credential_id)
            .await?;
        let scal2 = certificate
            .and_then(|c| self.inner.policies.get(&c.policy_id).cloned())
            .is_some_and(|policy| policy.key.generation.requires_scal2());
        Ok(if scal2 { 2 } else { 1 })
    }

    /// A counted failure: journaled, and the credential locks at the limit.
    async fn count_failure(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        reason: &str,
    ) -> Result<(), ActivationError> {
        let limit = self.inner.settings.max_failed_activations;
        let (count, locked) = self
            .inner
            .store
            .record_activation_failure(credential_id, limit, self.now())
            .await?;
        self.journal(
            principal,
            Event::ActivationFailed(event::ActivationFailed {
                credential_id,
                reason: reason.to_owned(),
                consecutive_failures: count,
                limit,
                principal: principal.snapshot(),
            }),
        )
        .await?;
        if locked {
            self.journal(
                principal,
                Event::CredentialLocked(event::CredentialLocked {
                    credential_id,
                    after_failures: count,
                    principal: principal.snapshot(),
                }),
            )
            .await?;
        }
        Ok(())
    }

    /// A stranger's attempt: never counted against the credential; journaled up
    /// to a rate, then refused outright.
    async fn refuse_stranger(
        &self,
        principal: &Principal,
        credential_id: Uuid,
    ) -> Result<(), ActivationError> {
        let within_rate = {
            let mut strangers = self
                .inner
                .strangers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            strangers.retain(|_, (start, _)| now.duration_since(*start) < STRANGER_WINDOW);
            let (_, count) = strangers.entry(principal.id.clone()).or_insert((now, 0));
            *count += 1;
            *count <= self.inner.settings.stranger_refusals_per_minute
        };
        if !within_rate {
            return Err(ActivationError::RateLimited);
        }
        self.journal(
            principal,
            Event::ActivationRefused(event::ActivationRefused {
                credential_id,
                reason: "not entitled".to_owned(),
                principal: principal.snapshot(),
            }),
        )
        .await?;
        Ok(())
    }

    async fn journal(&self, principal: &Principal, event: Event) -> Result<u64, ActivationError> {
        Ok(self
            .inner
            .journal
            .append(&Actor::from(principal), event)
            .await?)
    }
}

/// How a SAD is stored: hex SHA-256 of its text.
fn sad_hash(sad: &str) -> String {
    hex::encode(Sha256::digest(sad.as_bytes()))
}
