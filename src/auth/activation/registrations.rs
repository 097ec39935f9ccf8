//! Activation credentials registered and revoked: each write between its
//! intent and its outcome in the journal, so a failed write is never recorded
//! as done.

use uuid::Uuid;

use super::{Activation, ActivationError};
use crate::auth::principal::Principal;
use crate::journal::event::{
    ActivationRegistered, ActivationRegistering, ActivationRevoked, ActivationRevoking, Binding,
    NotDone,
};
use crate::journal::{Actor, Event};
use crate::store::StoreError;
use crate::store::auth::{ActivationBinding, ActivationCredential};
use crate::store::entities::SealCredential;

impl Activation {
    /// Registers an activation credential for `credential`. The journal has
    /// the intent (`activation_credential.registering`) before the write and
    /// the outcome after it (`activation_credential.registered` with the new
    /// record, or `activation_credential.not_registered`), so a
    /// write that failed is never recorded as done. The caller's right to
    /// manage the credential is checked by the caller.
    pub async fn register(
        &self,
        principal: &Principal,
        credential: &SealCredential,
        binding: ActivationBinding,
    ) -> Result<ActivationCredential, ActivationError> {
        let now = self.now();
        let intent = self
            .journal_event(
                principal,
                Event::ActivationCredentialRegistering(ActivationRegistering {
                    credential_id: credential.id,
                    binding: journal_binding(&binding),
                }),
            )
            .await?;
        let written = self
            .inner
            .store
            .insert_activation_credential(
                credential.id,
                credential.entity_id,
                &binding,
                &principal.id,
                now,
            )
            .await;
        match written {
            Ok(registered) => {
                let outcome = ActivationRegistered {
                    intent,
                    id: registered.id,
                    credential_id: registered.seal_credential_id,
                    binding: journal_binding(&registered.binding),
                    status: if registered.active {
                        "active"
                    } else {
                        "revoked"
                    }
                    .to_owned(),
                    created_by: registered.created_by.clone(),
                    created_at: registered.created_at.into(),
                };
                self.journal_outcome(principal, Event::ActivationCredentialRegistered(outcome))
                    .await;
                Ok(registered)
            }
            Err(error) => {
                self.journal_outcome(
                    principal,
                    Event::ActivationCredentialNotRegistered(NotDone {
                        intent,
                        reason: error.to_string(),
                    }),
                )
                .await;
                Err(error.into())
            }
        }
    }

    /// Revokes one activation credential of `credential`, with its intent
    /// and outcome journaled around the write as [`Activation::register`]
    /// does. Unknown here: 404; revoked already: 409; a database failure is
    /// that failure, never a 404.
    pub async fn revoke_registration(
        &self,
        principal: &Principal,
        credential: &SealCredential,
        activation_id: Uuid,
    ) -> Result<ActivationCredential, ActivationError> {
        let activation = match self.inner.store.activation_credential(activation_id).await {
            Ok(found) if found.seal_credential_id == credential.id => found,
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                return Err(ActivationError::UnknownActivationCredential(activation_id));
            }
            Err(error) => return Err(error.into()),
        };
        if !activation.active {
            return Err(ActivationError::AlreadyRevoked);
        }
        let intent = self
            .journal_event(
                principal,
                Event::ActivationCredentialRevoking(ActivationRevoking {
                    id: activation.id,
                    credential_id: credential.id,
                }),
            )
            .await?;
        let now = self.now();
        let written = self
            .inner
            .store
            .revoke_activation_credential(activation.id, now)
            .await;
        let not_revoked =
            |reason: String| Event::ActivationCredentialNotRevoked(NotDone { intent, reason });
        let (outcome, result) = match written {
            Ok(true) => (
                Event::ActivationCredentialRevoked(ActivationRevoked {
                    id: activation.id,
                    credential_id: credential.id,
                    intent,
                }),
                Ok(ActivationCredential {
                    active: false,
                    revoked_at: Some(now),
                    ..activation
                }),
            ),
            Ok(false) => (
                not_revoked("already revoked".to_owned()),
                Err(ActivationError::AlreadyRevoked),
            ),
            Err(error) => (not_revoked(error.to_string()), Err(error.into())),
        };
        self.journal_outcome(principal, outcome).await;
        result
    }

    async fn journal_event(
        &self,
        principal: &Principal,
        event: Event,
    ) -> Result<u64, ActivationError> {
        Ok(self
            .inner
            .journal
            .append(&Actor::from(principal), event)
            .await?)
    }

    /// An outcome entry: the change is already written or refused, so a
    /// journal failure here is logged; the intent entry stands for it.
    async fn journal_outcome(&self, principal: &Principal, event: Event) {
        let kind = event.kind();
        if let Err(error) = self.journal_event(principal, event).await {
            tracing::error!(%error, kind, "journaling an outcome failed; its intent entry stands");
        }
    }
}

/// What an activation credential binds, for the journal.
fn journal_binding(binding: &ActivationBinding) -> Binding {
    match binding {
        ActivationBinding::ClientCertificate { sha256 } => Binding::ClientCertificate {
            certificate_sha256: sha256.clone(),
        },
        ActivationBinding::Oidc { issuer, subject } => Binding::Oidc {
            issuer: issuer.clone(),
            subject: subject.clone(),
        },
    }
}
