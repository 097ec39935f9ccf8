//! Activation credentials registered and revoked: each write between its
//! intent and its outcome in the journal, so a failed write is never recorded
//! as done.

use serde_json::json;
use uuid::Uuid;

use super::{Activation, ActivationError};
use crate::auth::principal::Principal;
use crate::journal::JournalEvent;
use crate::store::StoreError;
use crate::store::auth::{ActivationBinding, ActivationCredential};
use crate::store::entities::SealCredential;

impl Activation {
    /// Registers an activation credential for `credential`. The journal has
    /// the intent (`activation_credential.registering`) before the write and
    /// the outcome after it (`activation_credential.registered` with `details`
    /// of the new record, or `activation_credential.not_registered`), so a
    /// write that failed is never recorded as done. The caller's right to
    /// manage the credential is checked by the caller.
    pub async fn register(
        &self,
        principal: &Principal,
        credential: &SealCredential,
        binding: ActivationBinding,
        details: impl FnOnce(&ActivationCredential) -> serde_json::Value,
    ) -> Result<ActivationCredential, ActivationError> {
        let now = self.now();
        let intent = self
            .journal_event(
                "activation_credential.registering",
                principal,
                json!({ "credential_id": credential.id, "binding": binding_details(&binding) }),
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
                let mut outcome = details(&registered);
                if let Some(fields) = outcome.as_object_mut() {
                    fields.insert("intent".to_owned(), json!(intent));
                }
                self.journal_outcome("activation_credential.registered", principal, outcome)
                    .await;
                Ok(registered)
            }
            Err(error) => {
                self.journal_outcome(
                    "activation_credential.not_registered",
                    principal,
                    json!({ "intent": intent, "reason": error.to_string() }),
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
        let details = json!({ "id": activation.id, "credential_id": credential.id });
        let intent = self
            .journal_event("activation_credential.revoking", principal, details.clone())
            .await?;
        let now = self.now();
        let written = self
            .inner
            .store
            .revoke_activation_credential(activation.id, now)
            .await;
        let (kind, outcome, result) = match written {
            Ok(true) => (
                "activation_credential.revoked",
                json!({ "id": activation.id, "credential_id": credential.id, "intent": intent }),
                Ok(ActivationCredential {
                    active: false,
                    revoked_at: Some(now),
                    ..activation
                }),
            ),
            Ok(false) => (
                "activation_credential.not_revoked",
                json!({ "intent": intent, "reason": "already revoked" }),
                Err(ActivationError::AlreadyRevoked),
            ),
            Err(error) => (
                "activation_credential.not_revoked",
                json!({ "intent": intent, "reason": error.to_string() }),
                Err(error.into()),
            ),
        };
        self.journal_outcome(kind, principal, outcome).await;
        result
    }

    async fn journal_event(
        &self,
        kind: &str,
        principal: &Principal,
        details: serde_json::Value,
    ) -> Result<u64, ActivationError> {
        Ok(self
            .inner
            .journal
            .append(JournalEvent::new(kind, &principal.id, details))
            .await?)
    }

    /// An outcome entry: the change is already written or refused, so a
    /// journal failure here is logged; the intent entry stands for it.
    async fn journal_outcome(&self, kind: &str, principal: &Principal, details: serde_json::Value) {
        if let Err(error) = self.journal_event(kind, principal, details).await {
            tracing::error!(%error, kind, "journaling an outcome failed; its intent entry stands");
        }
    }
}

/// What an activation credential binds, for the journal.
fn binding_details(binding: &ActivationBinding) -> serde_json::Value {
    match binding {
        ActivationBinding::ClientCertificate { sha256 } => {
            json!({ "type": "client_certificate", "certificate_sha256": sha256 })
        }
        ActivationBinding::Oidc { issuer, subject } => {
            json!({ "type": "oidc", "issuer": issuer, "subject": subject })
        }
    }
}
