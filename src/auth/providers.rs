//! The identity providers organisations register: the checks (an https issuer
//! at a public host; no caller of an issuer and audience claimed by two
//! registrations, the service's own included), registration and removal, each
//! journaled as an intent before the write and its outcome after.

use time::OffsetDateTime;
use uuid::Uuid;

use super::principal::Principal;
use super::provider_fetch::issuer_url_problem;
use crate::clock::SharedClock;
use crate::config::{AuthSettings, Callers};
use crate::error::{ErrorKind, HasErrorKind};
use crate::journal::event::{NotDone, Provider, ProviderDone};
use crate::journal::{Actor, Event, Journal, JournalError};
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
    engine_constructor! {
        fn new(
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
        let provider = journal_provider(&record);
        let intent = self
            .append(
                principal,
                Event::IdentityProviderRegistering(provider.clone()),
            )
            .await?;
        match self
            .store
            .insert_identity_provider(&record, self.now())
            .await
        {
            Ok(()) => {
                let done = ProviderDone { intent, provider };
                self.outcome(principal, Event::IdentityProviderRegistered(done))
                    .await;
                Ok(record)
            }
            Err(error) => {
                let reason = error.to_string();
                let not_done = NotDone { intent, reason };
                self.outcome(principal, Event::IdentityProviderNotRegistered(not_done))
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
        let record = self.registered(entity, id).await?;
        let provider = journal_provider(&record);
        let intent = self
            .append(principal, Event::IdentityProviderRemoving(provider.clone()))
            .await?;
        let not_removed =
            |reason: String| Event::IdentityProviderNotRemoved(NotDone { intent, reason });
        match self.store.delete_identity_provider(entity, id).await {
            Ok(true) => {
                let done = ProviderDone { intent, provider };
                self.outcome(principal, Event::IdentityProviderRemoved(done))
                    .await;
                Ok(())
            }
            Ok(false) => {
                self.outcome(principal, not_removed("already removed".to_owned()))
                    .await;
                Err(ProviderError::NotFound(id))
            }
            Err(error) => {
                self.outcome(principal, not_removed(error.to_string()))
                    .await;
                Err(error.into())
            }
        }
    }

    /// The provider `id` that `entity` registered, or that it is not found.
    async fn registered(
        &self,
        entity: Uuid,
        id: Uuid,
    ) -> Result<IdentityProviderRecord, ProviderError> {
        self.store
            .identity_providers_of(entity)
            .await?
            .into_iter()
            .find(|record| record.id == id)
            .ok_or(ProviderError::NotFound(id))
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
        let record = self.registered(entity, id).await?;
        // The three events of this change: intent, done, not done.
        type Made<T> = fn(T) -> Event;
        let (done, doing, made, not_made): (_, Made<Provider>, Made<ProviderDone>, Made<NotDone>) =
            if disabled {
                (
                    "disabled",
                    Event::IdentityProviderDisabling,
                    Event::IdentityProviderDisabled,
                    Event::IdentityProviderNotDisabled,
                )
            } else {
                (
                    "enabled",
                    Event::IdentityProviderEnabling,
                    Event::IdentityProviderEnabled,
                    Event::IdentityProviderNotEnabled,
                )
            };
        if record.disabled == disabled {
            return Err(ProviderError::AlreadyThere(id, done));
        }
        let provider = journal_provider(&record);
        let intent = self.append(principal, doing(provider.clone())).await?;
        let written = self
            .store
            .set_identity_provider_disabled(entity, id, disabled, self.now())
            .await;
        let (outcome, result) = match written {
            Ok(true) => (
                made(ProviderDone { intent, provider }),
                Ok(IdentityProviderRecord { disabled, ..record }),
            ),
            Ok(false) => (
                not_made(NotDone {
                    intent,
                    reason: format!("{done} already"),
                }),
                Err(ProviderError::AlreadyThere(id, done)),
            ),
            Err(error) => (
                not_made(NotDone {
                    intent,
                    reason: error.to_string(),
                }),
                Err(error.into()),
            ),
        };
        self.outcome(principal, outcome).await;
        result
    }

    async fn append(&self, principal: &Principal, event: Event) -> Result<u64, ProviderError> {
        Ok(self.journal.append(&Actor::from(principal), event).await?)
    }

    /// The outcome of a write already made or refused: a journal failure is
    /// logged, and the intent entry stands for it.
    async fn outcome(&self, principal: &Principal, event: Event) {
        let kind = event.kind();
        if let Err(error) = self.append(principal, event).await {
            tracing::error!(%error, kind, "journaling an outcome failed; its intent entry stands");
        }
    }
}

/// Whether two `allowed` lists may accept one caller (empty: any).
fn overlap(one: &[String], other: &[String]) -> bool {
    one.is_empty() || other.is_empty() || one.iter().any(|caller| other.contains(caller))
}

fn journal_provider(record: &IdentityProviderRecord) -> Provider {
    Provider {
        id: record.id,
        entity_id: record.entity_id,
        issuer: record.issuer.clone(),
        audience: record.audience.clone(),
        callers: match record.callers {
            Callers::People => "people",
            Callers::Servers => "servers",
        }
        .to_owned(),
        allowed: record.allowed.clone(),
        acr_values: record.acr_values.clone(),
        disabled: record.disabled,
    }
}
