//! The identity providers organisations register: the checks (an https issuer
//! at a public host; no caller of an issuer and audience claimed by two
//! registrations, the service's own included), registration and removal, each
//! journaled as an intent before the write and its outcome after.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::principal::Principal;
use super::provider_fetch::issuer_url_problem;
use crate::clock::SharedClock;
use crate::config::{AuthSettings, Callers};
use crate::error::{ErrorKind, HasErrorKind};
use crate::journal::{Journal, JournalError, JournalEvent};
use crate::store::identity::IdentityProviderRecord;
use crate::store::{Store, StoreError};

/// What an RA operator asks to register.
#[derive(Debug, Clone)]
pub struct NewProvider {
    pub issuer: String,
    pub audience: String,
    pub callers: Callers,
    pub allowed: Vec<String>,
    pub acr_values: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("`{field}` {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("{0}")]
    Conflict(String),
    #[error("no identity provider {0} for this organisation")]
    NotFound(Uuid),
    #[error("identity provider {0} is {1} already")]
    AlreadyThere(Uuid, &'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl HasErrorKind for ProviderError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Unprocessable,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::AlreadyThere(..) => ErrorKind::Conflict,
            Self::Store(e) => e.kind(),
            Self::Journal(e) => e.kind(),
        }
    }
}

impl ProviderError {
    /// The request field at fault, if one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Registers and removes organisations' identity providers.
#[derive(Debug, Clone)]
pub struct ProviderRegistry {
    store: Store,
    journal: Journal,
    clock: SharedClock,
    /// The service's own providers: issuer, audience, allowed callers.
    own: Vec<(String, String, Vec<String>)>,
    development: bool,
}

impl ProviderRegistry {
    pub fn new(
        store: Store,
        journal: Journal,
        clock: SharedClock,
        settings: &AuthSettings,
        development: bool,
    ) -> Self {
        Self {
            store,
            journal,
            clock,
            own: settings
                .identity_providers
                .iter()
                .map(|p| (p.issuer.clone(), p.audience.clone(), p.allowed.clone()))
                .collect(),
            development,
        }
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from(self.clock.now())
    }

    /// Registers `new` for `entity`, unless its issuer is not one sceau may
    /// fetch, or a caller it accepts is already accepted for the same issuer
    /// and audience by the service's own provider or another registration:
    /// that caller's tokens would then sign in here, or nowhere.
    pub async fn register(
        &self,
        principal: &Principal,
        entity: Uuid,
        new: NewProvider,
    ) -> Result<IdentityProviderRecord, ProviderError> {
        if new.issuer.chars().any(char::is_whitespace) {
            return Err(ProviderError::Invalid {
                field: "issuer",
                reason: "must be the provider's issuer URL, exactly as its tokens carry it"
                    .to_owned(),
            });
        }
        if let Some(reason) = issuer_url_problem(&new.issuer, self.development) {
            return Err(ProviderError::Invalid {
                field: "issuer",
                reason,
            });
        }
        if new.audience.trim().is_empty() {
            return Err(ProviderError::Invalid {
                field: "audience",
                reason: "must name the `aud` sceau's tokens carry".to_owned(),
            });
        }
        if self.own.iter().any(|(issuer, audience, allowed)| {
            *issuer == new.issuer && *audience == new.audience && overlap(allowed, &new.allowed)
        }) {
            return Err(ProviderError::Conflict(
                "callers of this issuer and audience sign in to the service's own provider: \
                 register the organisation's with an audience of its own, or name only its \
                 own callers in `allowed`"
                    .to_owned(),
            ));
        }
        if self
            .store
            .identity_providers_for_issuer(&new.issuer)
            .await?
            .iter()
            .any(|other| other.audience == new.audience && overlap(&other.allowed, &new.allowed))
        {
            return Err(ProviderError::Conflict(
                "a registration of this issuer and audience already accepts these callers"
                    .to_owned(),
            ));
        }
        let record = IdentityProviderRecord {
            id: Uuid::new_v4(),
            entity_id: entity,
            issuer: new.issuer,
            audience: new.audience,
            callers: new.callers,
            allowed: new.allowed,
            acr_values: new.acr_values,
            disabled: false,
        };
        let details = record_details(&record);
        let intent = self
            .append("identity_provider.registering", principal, details.clone())
            .await?;
        match self
            .store
            .insert_identity_provider(&record, self.now())
            .await
        {
            Ok(()) => {
                self.outcome(
                    "identity_provider.registered",
                    principal,
                    json!({ "intent": intent, "provider": details }),
                )
                .await;
                Ok(record)
            }
            Err(error) => {
                self.outcome(
                    "identity_provider.not_registered",
                    principal,
                    json!({ "intent": intent, "reason": error.to_string() }),
                )
                .await;
                Err(match error {
                    StoreError::Conflict(_) => ProviderError::Conflict(
                        "this provider is already registered for these callers of this \
                         organisation"
                            .to_owned(),
                    ),
                    other => other.into(),
                })
            }
        }
    }

    /// Removes one of `entity`'s providers: its tokens authenticate no more.
    pub async fn remove(
        &self,
        principal: &Principal,
        entity: Uuid,
        id: Uuid,
    ) -> Result<(), ProviderError> {
        let record = self
            .store
            .identity_providers_of(entity)
            .await?
            .into_iter()
            .find(|record| record.id == id)
            .ok_or(ProviderError::NotFound(id))?;
        let details = record_details(&record);
        let intent = self
            .append("identity_provider.removing", principal, details.clone())
            .await?;
        match self.store.delete_identity_provider(entity, id).await {
            Ok(true) => {
                self.outcome(
                    "identity_provider.removed",
                    principal,
                    json!({ "intent": intent, "provider": details }),
                )
                .await;
                Ok(())
            }
            Ok(false) => {
                self.outcome(
                    "identity_provider.not_removed",
                    principal,
                    json!({ "intent": intent, "reason": "already removed" }),
                )
                .await;
                Err(ProviderError::NotFound(id))
            }
            Err(error) => {
                self.outcome(
                    "identity_provider.not_removed",
                    principal,
                    json!({ "intent": intent, "reason": error.to_string() }),
                )
                .await;
                Err(error.into())
            }
        }
    }

    /// Disables (`disabled` true) or enables again one of `entity`'s
    /// providers: while disabled, its tokens authenticate no one. Unknown:
    /// `NotFound`; already in that state: `AlreadyThere`, nothing journaled.
    pub async fn set_disabled(
        &self,
        principal: &Principal,
        entity: Uuid,
        id: Uuid,
        disabled: bool,
    ) -> Result<IdentityProviderRecord, ProviderError> {
        let record = self
            .store
            .identity_providers_of(entity)
            .await?
            .into_iter()
            .find(|record| record.id == id)
            .ok_or(ProviderError::NotFound(id))?;
        let (doing, done, not_done) = if disabled {
            ("disabling", "disabled", "not_disabled")
        } else {
            ("enabling", "enabled", "not_enabled")
        };
        if record.disabled == disabled {
            return Err(ProviderError::AlreadyThere(id, done));
        }
        let details = record_details(&record);
        let intent = self
            .append(
                &format!("identity_provider.{doing}"),
                principal,
                details.clone(),
            )
            .await?;
        let written = self
            .store
            .set_identity_provider_disabled(entity, id, disabled, self.now())
            .await;
        let (kind, outcome, result) = match written {
            Ok(true) => (
                done,
                json!({ "intent": intent, "provider": details }),
                Ok(IdentityProviderRecord { disabled, ..record }),
            ),
            Ok(false) => (
                not_done,
                json!({ "intent": intent, "reason": format!("{done} already") }),
                Err(ProviderError::AlreadyThere(id, done)),
            ),
            Err(error) => (
                not_done,
                json!({ "intent": intent, "reason": error.to_string() }),
                Err(error.into()),
            ),
        };
        self.outcome(&format!("identity_provider.{kind}"), principal, outcome)
            .await;
        result
    }

    async fn append(
        &self,
        kind: &str,
        principal: &Principal,
        details: serde_json::Value,
    ) -> Result<u64, ProviderError> {
        Ok(self
            .journal
            .append(JournalEvent::new(kind, &principal.id, details))
            .await?)
    }

    /// The outcome of a write already made or refused: a journal failure is
    /// logged, and the intent entry stands for it.
    async fn outcome(&self, kind: &str, principal: &Principal, details: serde_json::Value) {
        if let Err(error) = self.append(kind, principal, details).await {
            tracing::error!(%error, kind, "journaling an outcome failed; its intent entry stands");
        }
    }
}

/// Whether two `allowed` lists may accept one caller (empty: any).
fn overlap(one: &[String], other: &[String]) -> bool {
    one.is_empty() || other.is_empty() || one.iter().any(|caller| other.contains(caller))
}

fn record_details(record: &IdentityProviderRecord) -> serde_json::Value {
    json!({
        "id": record.id,
        "entity_id": record.entity_id,
        "issuer": record.issuer,
        "audience": record.audience,
        "callers": match record.callers {
            Callers::People => "people",
            Callers::Servers => "servers",
        },
        "allowed": record.allowed,
        "acr_values": record.acr_values,
        "disabled": record.disabled,
    })
}
