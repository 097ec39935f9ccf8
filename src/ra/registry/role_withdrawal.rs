//! The RA's withdrawal of organisation roles given in error (a SIREN taken by
//! someone who does not represent it, a person who left): the write between
//! its intent and its outcome in the journal.

use uuid::Uuid;

use super::{RaError, Registry, non_empty};
use crate::auth::{Principal, Role};
use crate::journal::event::{NotDone, RoleWithdrawal, RoleWithdrawn};
use crate::journal::{Actor, Event};
use crate::store::StoreError;
use crate::store::ra::{Effect, Person, RaChange};

impl Registry {
    /// Takes every role in his organisation from the sign-in bound to
    /// `person_id` (RA operators only, never for a request they are a party
    /// to). Returns the roles withdrawn; a person without one gets 409.
    pub async fn withdraw_roles(
        &self,
        principal: &Principal,
        person_id: Uuid,
        reason: &str,
    ) -> Result<(Person, Vec<String>), RaError> {
        if !principal.has(Role::RaOperator) {
            return Err(RaError::Forbidden(
                "an RA operator withdraws organisation roles".to_owned(),
            ));
        }
        let reason = non_empty("reason", reason, 2000)?;
        let person = match self.inner.store.person(person_id).await {
            Ok(person) => person,
            Err(StoreError::NotFound { .. }) => {
                return Err(RaError::NotFound(format!("no person {person_id}")));
            }
            Err(e) => return Err(e.into()),
        };
        if principal.entity == Some(person.entity_id) {
            return Err(RaError::Forbidden(
                "staff do not act on an organisation they hold a role in".to_owned(),
            ));
        }
        let Some((issuer, subject)) = person.identity.clone() else {
            return Err(RaError::Conflict(format!(
                "person {person_id} has not signed in yet: there is no role to withdraw"
            )));
        };
        let roles: Vec<String> = self
            .inner
            .store
            .role_holders(person.entity_id)
            .await?
            .into_iter()
            .filter(|(i, s, _)| *i == issuer && *s == subject)
            .map(|(_, _, role)| role)
            .collect();
        if roles.is_empty() {
            return Err(RaError::Conflict(format!(
                "person {person_id} holds no role in the organisation"
            )));
        }
        let withdrawal = RoleWithdrawal {
            person: person.id,
            entity: person.entity_id,
            issuer: issuer.clone(),
            subject: subject.clone(),
            roles: roles.clone(),
            reason: reason.to_string(),
        };
        let actor = Actor::from(principal);
        let intent = self
            .journal(&actor, Event::RoleWithdrawing(withdrawal.clone()))
            .await?;
        let change = RaChange::new().with(Effect::WithdrawRoles {
            issuer,
            subject,
            entity_id: person.entity_id,
        });
        let written = self.commit(&change).await;
        let outcome = match &written {
            Ok(()) => Event::RoleWithdrawn(RoleWithdrawn { intent, withdrawal }),
            Err(error) => Event::RoleNotWithdrawn(NotDone {
                intent,
                reason: error.to_string(),
            }),
        };
        if let Err(error) = self.journal(&actor, outcome).await {
            // The intent is recorded; the outcome's absence says it is unknown.
            tracing::error!(%error, intent, "the outcome of a role withdrawal was not journaled");
        }
        written?;
        Ok((person, roles))
    }
}
