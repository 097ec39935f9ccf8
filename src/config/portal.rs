//! The portal's settings: the identity providers people sign in with (sceau
//! being an OpenID client of each), the level of assurance each provider's
//! `acr` values stand for, and the sessions' timeouts.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;

use super::ConfigError;

/// An eIDAS level of assurance (Regulation 2015/1502), lowest first.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Assurance {
    Low,
    #[default]
    Substantial,
    High,
}

impl Assurance {
    pub fn name(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Substantial => "substantial",
            Self::High => "high",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Low, Self::Substantial, Self::High]
            .into_iter()
            .find(|level| level.name() == text)
    }
}

/// `[portal]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalSettings {
    /// The providers people sign in with (`[[portal.providers]]`); each must
    /// also be one of `auth.identity_providers`, for people, which says what
    /// its sign-ins may do. None: the portal signs no one in.
    pub providers: Vec<PortalProvider>,
    /// A session unused this long ends.
    pub session_idle_secs: u64,
    /// A session ends this long after its sign-in, used or not.
    pub session_absolute_secs: u64,
    /// A sign-in must have been made this recently (`auth_time`) when it
    /// reaches sceau; a step-up asks for a fresh one.
    pub max_auth_age_secs: u64,
    /// Development only: the instance serves its own identity provider at
    /// `/dev-idp`, signing in the demo's people (builds with the `dev-idp`
    /// feature, in development mode).
    pub dev_provider: bool,
}

impl Default for PortalSettings {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            session_idle_secs: 30 * 60,
            session_absolute_secs: 12 * 3600,
            max_auth_age_secs: 10 * 60,
            dev_provider: false,
        }
    }
}

/// `[[portal.providers]]`: one OpenID provider, and sceau's client there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalProvider {
    /// The name in URLs and on the sign-in page (`[a-z0-9-]`).
    pub name: String,
    /// Exactly the provider's `iss`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// What each `acr` value of this provider stands for. An ID token with
    /// an `acr` not listed here signs no one in; the portal asks for the
    /// values of the level an action needs (`acr_values`), lowest first.
    pub acr_levels: BTreeMap<String, Assurance>,
}

impl PortalProvider {
    /// The `acr` values that meet `level`, the closest first.
    pub fn acr_values_for(&self, level: Assurance) -> Vec<&str> {
        let mut values: Vec<(&Assurance, &String)> = self
            .acr_levels
            .iter()
            .filter(|(_, l)| **l >= level)
            .map(|(acr, l)| (l, acr))
            .collect();
        values.sort();
        values.into_iter().map(|(_, acr)| acr.as_str()).collect()
    }
}

impl PortalSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            setting: "portal.providers",
            reason,
        };
        let mut names = std::collections::BTreeSet::new();
        for provider in &self.providers {
            if provider.name.is_empty()
                || !provider
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(invalid(format!(
                    "name {:?}: use a-z, 0-9 and -",
                    provider.name
                )));
            }
            if !names.insert(provider.name.as_str()) {
                return Err(invalid(format!("name {:?} appears twice", provider.name)));
            }
            if !(provider.issuer.starts_with("https://") || provider.issuer.starts_with("http://"))
            {
                return Err(invalid(format!(
                    "{}: issuer {:?} is not an http(s) URL",
                    provider.name, provider.issuer
                )));
            }
            if !provider
                .acr_levels
                .values()
                .any(|level| *level >= Assurance::Substantial)
            {
                return Err(invalid(format!(
                    "{}: acr_levels names no value of level substantial or high, so no one \
                     could sign in",
                    provider.name
                )));
            }
        }
        if self.session_idle_secs == 0 || self.session_absolute_secs < self.session_idle_secs {
            return Err(ConfigError::Invalid {
                setting: "portal.session_idle_secs",
                reason: "must be positive and at most portal.session_absolute_secs".to_owned(),
            });
        }
        Ok(())
    }
}
