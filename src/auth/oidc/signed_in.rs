//! A person signed in to the portal: the claims of an ID token the portal's
//! OpenID client verified become a principal by the same rules as a person's
//! access token (the provider's registration for people, its roles claim, the
//! role assignments, one capacity per sign-in).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Audience, Callers, Claims, OidcError, OidcVerifier, Principal, refused};
use crate::config::Assurance;

/// What the portal keeps of an ID token, and makes each request's principal from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInPerson {
    pub issuer: String,
    pub subject: String,
    pub acr: Option<String>,
    #[serde(default)]
    pub amr: Vec<String>,
    /// The other claims of the ID token (the provider's roles claim among them).
    #[serde(default)]
    pub claims: HashMap<String, serde_json::Value>,
    /// The level of assurance the portal found the sign-in's `acr` to stand
    /// for, by the provider's `acr_levels`.
    pub assurance: Assurance,
}

impl OidcVerifier {
    /// The principal `person` stands for now. The issuer must be one
    /// registration of `auth.identity_providers` for people (an
    /// organisation's provider signs no one in to the portal). Strong
    /// authentication is the sign-in's level of assurance, substantial or
    /// high (eIDAS's strong authentication), else the token's own rule.
    pub async fn signed_in_person(&self, person: &SignedInPerson) -> Result<Principal, OidcError> {
        let registrations: Vec<_> = self
            .inner
            .back_office
            .iter()
            .filter(|r| r.issuer == person.issuer && r.callers == Callers::People)
            .filter(|r| r.allowed.is_empty() || r.allowed.contains(&person.subject))
            .collect();
        let [registration] = registrations.as_slice() else {
            return Err(refused(format!(
                "{} registration(s) of {:?} for people accept this person: exactly one must",
                registrations.len(),
                person.issuer
            )));
        };
        let claims = Claims {
            iss: person.issuer.clone(),
            sub: Some(person.subject.clone()),
            aud: Audience::Many(Vec::new()),
            exp: 0,
            iat: 0,
            nbf: None,
            client_id: None,
            acr: person.acr.clone(),
            amr: person.amr.clone(),
            cnf: None,
            other: person.claims.clone(),
        };
        if person.assurance < Assurance::Substantial {
            super::strength::strongly_authenticated(&claims, registration)?;
        }
        self.person(&claims, registration).await
    }
}
